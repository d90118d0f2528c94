#!/usr/bin/env bash
# buildroot.sh ROOT -- the Debian 13 (trixie) build root `make static`
# compiles and links in. As root; idempotent.
#
# The root is made once with `debootstrap --variant=minbase trixie` from
# this machine's Debian mirror and kept: a later call whose recipe (this
# file) is unchanged returns at once. A changed recipe remakes it. It lives
# outside the git tree and outside build/ (the Makefile's STATIC_ROOT, by
# default /var/cache/oneshot/trixie-build), so `make clean` keeps it.
#
# In it:
#   - gcc, make, pkg-config and the -dev packages whose static archives
#     Debian ships: libc6-dev (libc.a), libmicrohttpd-dev, libhiredis-dev
#     (libhiredis.a and libhiredis_ssl.a, hiredis 1.x), libssl-dev
#     (OpenSSL 3), zlib1g-dev, libzstd-dev, liblz4-dev.
#   - cJSON's libcjson.a from trixie's cjson source package into /opt/cjson
#     (libcjson-dev ships the shared library only): one file, cJSON.c.
#   - librdkafka rebuilt from trixie's source package into /opt/rdkafka:
#     Debian's librdkafka is built with cyrus-sasl (GSSAPI) and libcurl
#     (OIDC), neither of which links statically. The rebuild has SSL, SASL
#     PLAIN/SCRAM/OAUTHBEARER (built into librdkafka), zlib, zstd, lz4 and
#     snappy (built in); not GSSAPI/Kerberos, not OIDC token fetching.
# Its package versions go to ROOT/versions.txt (for the notice file).
set -euo pipefail

ROOT=${1:?usage: buildroot.sh ROOT}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITE=trixie
PKGS="gcc libc6-dev make pkg-config dpkg-dev libmicrohttpd-dev libhiredis-dev
      libssl-dev zlib1g-dev libzstd-dev liblz4-dev ca-certificates"
# librdkafka's own configure: what the static file has and has not.
RDKAFKA_CONF="--prefix=/opt/rdkafka --disable-gssapi --disable-curl --enable-ssl
              --enable-zlib --enable-zstd --enable-lz4-ext --disable-debug-symbols"

say() { echo "buildroot: $*" >&2; }
[ "$(id -u)" -eq 0 ] || { say "run as root (debootstrap and chroot)"; exit 1; }

recipe=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
if [ -f "$ROOT/.oneshot-recipe" ] && [ "$(cat "$ROOT/.oneshot-recipe")" = "$recipe" ]; then
    exit 0
fi

. "$HERE/../podman/mirror.sh"
mirror=$(debian_mirror)
debian_proxy

start=$(date +%s)
rm -rf "$ROOT.new"
mkdir -p "$(dirname "$ROOT")"
log=$(dirname "$ROOT")/buildroot.log
say "debootstrap --variant=minbase $SUITE into $ROOT from $mirror (log: $log)"
debootstrap --variant=minbase "$SUITE" "$ROOT.new" "$mirror" >"$log" 2>&1 || {
    tail -20 "$log" >&2
    exit 1
}
cat >"$ROOT.new/etc/apt/sources.list" <<SRC
deb $mirror $SUITE main
deb-src $mirror $SUITE main
SRC
in_root() { chroot "$ROOT.new" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    DEBIAN_FRONTEND=noninteractive ${http_proxy:+http_proxy=$http_proxy} "$@"; }
say "apt-get install the compiler and the -dev packages"
in_root apt-get update -qq >>"$log" 2>&1
# shellcheck disable=SC2086
in_root apt-get install -y -qq --no-install-recommends $PKGS >>"$log" 2>&1 || {
    tail -20 "$log" >&2
    exit 1
}

say "librdkafka from trixie's source package, without cyrus-sasl and curl"
# shellcheck disable=SC2086
in_root sh -ec "
    mkdir -p /src && cd /src
    apt-get source -qq librdkafka
    cd librdkafka-*/
    # Only the C library is built: configure merely asks a C++ compiler
    # its version, so gcc stands in (no g++ in the root).
    CXX=gcc ./configure $(echo $RDKAFKA_CONF)
    make -C src -j\$(nproc) librdkafka.a
    install -D -m 0644 src/librdkafka.a /opt/rdkafka/lib/librdkafka.a
    install -D -m 0644 src/rdkafka.h /opt/rdkafka/include/librdkafka/rdkafka.h
    install -D -m 0644 LICENSE /opt/rdkafka/LICENSE
    cat LICENSES.txt >/opt/rdkafka/LICENSES.txt
    dpkg-parsechangelog -S Version >/opt/rdkafka/VERSION
" >>"$log" 2>&1 || {
    tail -30 "$log" >&2
    exit 1
}
say "libcjson.a from trixie's cjson source package"
in_root sh -ec "
    mkdir -p /src && cd /src
    apt-get source -qq cjson
    cd cjson-*/
    mkdir -p /opt/cjson/lib /opt/cjson/include/cjson
    gcc -std=c89 -O2 -fno-semantic-interposition -c cJSON.c -o /tmp/cJSON.o
    ar rcs /opt/cjson/lib/libcjson.a /tmp/cJSON.o
    install -m 0644 cJSON.h /opt/cjson/include/cjson/cJSON.h
    install -m 0644 LICENSE /opt/cjson/LICENSE
    dpkg-parsechangelog -S Version >/opt/cjson/VERSION
" >>"$log" 2>&1 || {
    tail -30 "$log" >&2
    exit 1
}
in_root dpkg-query -W -f '${Package} ${Version}\n' libc6-dev libmicrohttpd-dev libhiredis-dev \
    libssl-dev zlib1g-dev libzstd-dev liblz4-dev >"$ROOT.new/versions.txt"
echo "librdkafka-src $(cat "$ROOT.new/opt/rdkafka/VERSION")" >>"$ROOT.new/versions.txt"
echo "cjson-src $(cat "$ROOT.new/opt/cjson/VERSION")" >>"$ROOT.new/versions.txt"
rm -rf "$ROOT.new/var/cache/apt/archives/"*.deb
echo "$recipe" >"$ROOT.new/.oneshot-recipe"
rm -rf "$ROOT"
mv "$ROOT.new" "$ROOT"
say "made in $(( $(date +%s) - start )) s"
