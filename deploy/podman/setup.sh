#!/usr/bin/env bash
# setup.sh -- make this Debian machine able to build and run the oneshot
# image with podman, with no image registry reachable. Idempotent; as root.
#
#   1. apt-get install podman, runc, debootstrap and the network helpers
#      (netavark, aardvark-dns, iptables) when missing.
#   2. /etc/containers/containers.conf, when it does not exist yet: runc
#      (crun refuses this sandbox's hybrid cgroups), cgroupfs, events to a
#      file, and ulimits the sandbox accepts. An existing file is left
#      alone and deploy/podman/containers.conf is used through
#      CONTAINERS_CONF instead (see env.sh).
#   3. A base image named docker.io/library/debian:bookworm-slim, made
#      with `debootstrap --variant=minbase bookworm` from this machine's
#      own apt sources and settings (copied in, so apt works inside the
#      image as it does here), trimmed like the official slim image (no
#      docs, man pages, locales, apt lists or caches) and `podman import`ed.
#      Kept once made: `podman image exists` skips this step (about 40 s).
#
# ONESHOT_BASE_IMAGE overrides the name; ONESHOT_REBUILD_BASE=1 remakes it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BASE=${ONESHOT_BASE_IMAGE:-docker.io/library/debian:bookworm-slim}
SUITE=bookworm

say() { echo "podman-setup: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { say "run as root"; exit 1; }

# --- 1. packages ---
# netavark + aardvark-dns + iptables: bridge networking for `podman run -p`
# (without iptables netavark fails with "No such file or directory").
missing=""
for f in /usr/bin/podman:podman /usr/sbin/runc:runc /usr/sbin/debootstrap:debootstrap \
         /usr/lib/podman/netavark:netavark /usr/lib/podman/aardvark-dns:aardvark-dns \
         /usr/sbin/iptables:iptables; do
    [ -e "${f%%:*}" ] || missing="$missing ${f#*:}"
done
if [ -n "$missing" ]; then
    say "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# --- 2. containers.conf ---
if [ ! -e /etc/containers/containers.conf ]; then
    install -d /etc/containers
    install -m 0644 "$HERE/containers.conf" /etc/containers/containers.conf
    say "wrote /etc/containers/containers.conf"
fi
. "$HERE/env.sh"

# --- 3. base image ---
if [ "${ONESHOT_REBUILD_BASE:-0}" != 1 ] && podman image exists "$BASE"; then
    exit 0
fi
mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)\/\{0,1\}$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
# debootstrap does not read apt.conf: hand it apt's proxy, if there is one.
proxy=$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -1)
[ -n "$proxy" ] && [ -z "${http_proxy:-}" ] && export http_proxy=$proxy
work=$(mktemp -d /tmp/oneshot-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
say "debootstrap --variant=minbase $SUITE from $mirror (about 40 s)"
debootstrap --variant=minbase "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    exit 1
}

# The host's apt sources and settings, so `apt-get` inside behaves as here
# (same mirror, same proxy or validity settings, same keyrings).
rm -f "$root/etc/apt/sources.list"
[ -s /etc/apt/sources.list ] && cp /etc/apt/sources.list "$root/etc/apt/"
for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    cp "$f" "$root/etc/apt/sources.list.d/"
    # Keyrings they name, when the image lacks them.
    for k in $(sed -n 's/^Signed-By: *\(\/.*\)$/\1/p; s/.*signed-by=\([^] ]*\).*/\1/p' "$f"); do
        [ -e "$root$k" ] || { [ -e "$k" ] && install -D -m 0644 "$k" "$root$k"; }
    done
done
[ -e /etc/apt/apt.conf ] && cp /etc/apt/apt.conf "$root/etc/apt/"
for f in /etc/apt/apt.conf.d/*; do
    [ -f "$f" ] || continue
    # Hooks for desktop services the image does not have stay out.
    grep -qiE 'packagekit|appstream|postgresql' "$f" && continue
    cp "$f" "$root/etc/apt/apt.conf.d/"
done

# Slim: what the official bookworm-slim image leaves out, for good (dpkg
# excludes) and now (delete).
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# as debian:bookworm-slim: no documentation, manual pages or translations
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/{info,man,groff,linda,lintian}/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
       "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/var/log/apt/* \
       "$root"/tmp/* "$root"/root/.bash_history
: >"$root/etc/machine-id"

say "podman import -> $BASE"
tar -C "$root" --numeric-owner -c . |
    podman import -q --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - "$BASE" >/dev/null
podman image exists "$BASE"
say "base image $BASE: $(podman image inspect --format '{{.Size}}' "$BASE") bytes"
