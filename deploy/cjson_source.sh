#!/usr/bin/env bash
# cjson_source.sh DIR -- the host's Debian cjson source package, unpacked
# with its Debian patches, for the build to compile cJSON.c into the binary
# (Makefile "cJSON"): libcjson-dev ships the shared library only, and
# loading it costs a replica ~0.1 ms of a ~1.5 ms Redis cycle
# (tests/README.md "Where a Redis cycle's time goes").
#
# apt-get source fetches it from the deb-src side of this machine's Debian
# mirror and suite (the host's own codename), with a sources list, lists
# and cache of its own under DIR.apt (the host's apt configuration and
# state are not touched), checked against Debian's archive keyring; apt
# verifies the files against the signed Sources index, and dpkg-source
# (dpkg-dev) applies the patches. Out come DIR/cJSON.c,
# DIR/include/cjson/cJSON.h, DIR/LICENSE, DIR/copyright (Debian's) and
# DIR/VERSION. Every apt-get step is bounded (CJSON_FETCH_S, 300 s). Done
# once: a DIR that has cJSON.c is kept; concurrent calls (make -j) take
# turns on DIR.lock. Offline: `make CJSON=system` links the shared library.
set -euo pipefail

DIR=${1:?usage: cjson_source.sh DIR}
mkdir -p "$(dirname "$DIR")"
DIR=$(cd "$(dirname "$DIR")" && pwd)/$(basename "$DIR")
LIMIT=${CJSON_FETCH_S:-300}
[ -f "$DIR/cJSON.c" ] && exit 0
exec 9>"$DIR.lock"
flock 9
[ -f "$DIR/cJSON.c" ] && exit 0 # another make fetched it while we waited

say() { echo "cjson_source: $*" >&2; }
. "$(dirname "$0")/podman/mirror.sh"
mirror=$(debian_mirror)
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$codename" ] || { say "no VERSION_CODENAME in /etc/os-release (not Debian?); try make CJSON=system"; exit 1; }
command -v dpkg-source >/dev/null || { say "dpkg-source missing (apt-get install dpkg-dev)"; exit 1; }

apt=$DIR.apt
rm -rf "$DIR.new"
apt_private "$apt" deb-src "$codename"
mkdir -p "$apt/src" "$DIR.new/include/cjson"
opts=("${APT_OPTS[@]}")
fail() {
    say "$1: $(tail -3 "$apt/log"); offline, try make CJSON=system"
    exit 1
}
say "apt-get source cjson ($codename, $mirror)"
timeout "$LIMIT" apt-get -qq "${opts[@]}" update >"$apt/log" 2>&1 || fail "apt-get update of the deb-src list failed"
(cd "$apt/src" && timeout "$LIMIT" apt-get -qq "${opts[@]}" source cjson) >>"$apt/log" 2>&1 ||
    fail "apt-get source cjson failed"
src=$(ls -d "$apt"/src/cjson-*/ 2>/dev/null | head -1)
[ -n "$src" ] && [ -f "$src/cJSON.c" ] && [ -f "$src/cJSON.h" ] || fail "the source package holds no cJSON.c"
cp "$src/cJSON.c" "$src/LICENSE" "$DIR.new/"
cp "$src/cJSON.h" "$DIR.new/include/cjson/"
cp "$src/debian/copyright" "$DIR.new/copyright"
(cd "$src" && dpkg-parsechangelog -S Version) >"$DIR.new/VERSION"
rm -rf "$DIR"
mv "$DIR.new" "$DIR"
rm -rf "$apt"
say "cjson $(cat "$DIR/VERSION") unpacked into $DIR"
