#!/usr/bin/env bash
# hiredis_trixie.sh DIR -- Debian 13 (trixie)'s hiredis 1.x, with its TLS
# library (libhiredis_ssl), unpacked into DIR for `make tls` on a Debian 12
# host, whose own hiredis 0.14 has no TLS.
#
# apt-get downloads libhiredis-dev and libhiredis1.1.0 from the trixie suite
# of this machine's Debian mirror, with a sources list, lists and cache of
# its own under DIR.apt (the host's apt configuration and state are not
# touched), checked against Debian's archive keyring; `dpkg -x` unpacks them
# into DIR (headers in DIR/usr/include/hiredis, libhiredis.a and
# libhiredis_ssl.a in DIR/usr/lib/<triplet>). Every apt-get step is bounded
# (HIREDIS_FETCH_S, 300 s). Done once: a DIR that has hiredis_ssl.h is kept.
set -euo pipefail

DIR=${1:?usage: hiredis_trixie.sh DIR}
mkdir -p "$(dirname "$DIR")"
DIR=$(cd "$(dirname "$DIR")" && pwd)/$(basename "$DIR")
LIMIT=${HIREDIS_FETCH_S:-300}
[ -f "$DIR/usr/include/hiredis/hiredis_ssl.h" ] && exit 0

say() { echo "hiredis_trixie: $*" >&2; }
. "$(dirname "$0")/../../../deploy/podman/mirror.sh"

apt=$DIR.apt
rm -rf "$DIR.new"
apt_private "$apt" deb trixie
mkdir -p "$apt/debs" "$DIR.new"
opts=("${APT_OPTS[@]}")
mirror=$(debian_mirror)
say "apt-get download libhiredis-dev libhiredis1.1.0 (trixie, $mirror)"
timeout "$LIMIT" apt-get -qq "${opts[@]}" update >"$apt/log" 2>&1 || {
    say "apt-get update of the trixie list failed: $(tail -3 "$apt/log")"
    exit 1
}
(cd "$apt/debs" && timeout "$LIMIT" apt-get -qq "${opts[@]}" download libhiredis-dev libhiredis1.1.0) \
    >>"$apt/log" 2>&1 || {
    say "apt-get download failed: $(tail -3 "$apt/log")"
    exit 1
}
for d in "$apt"/debs/*.deb; do dpkg -x "$d" "$DIR.new"; done
[ -f "$DIR.new/usr/include/hiredis/hiredis_ssl.h" ] || {
    say "the packages hold no hiredis_ssl.h"
    exit 1
}
rm -rf "$DIR"
mv "$DIR.new" "$DIR"
rm -rf "$apt"
say "unpacked into $DIR: $(cd "$DIR/usr/share/doc" && echo libhiredis*)"
