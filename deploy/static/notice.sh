#!/usr/bin/env bash
# notice.sh ROOT -- the notice file of the static binary, on stdout: for
# each library linked into it, its name, version and the Debian copyright
# file (licenses) from the build root ROOT. Installed beside the binary
# (`make install-static`) and put in the image.
set -euo pipefail
ROOT=${1:?usage: notice.sh ROOT}

pkgver() { chroot "$ROOT" dpkg-query -W -f '${Version}' "$1"; }
# section TITLE FILE
section() {
    printf '\n==============================================================================\n'
    printf '%s\n' "$1"
    printf '==============================================================================\n\n'
    cat "$2"
}

cat <<'HEAD'
oneshot-static: third-party software linked into this file
==========================================================

The static oneshot binary contains the libraries below, built from the
Debian 13 (trixie) packages and source packages named with each. Each
section carries that package's copyright file: the authors, the license
terms and, where the license asks for it, the full license text. oneshot's
own code is not covered by this file.
HEAD
rdk=$(ls -d "$ROOT"/src/librdkafka-*/ | head -1)
cjs=$(ls -d "$ROOT"/src/cjson-*/ | head -1)
section "librdkafka $(cat "$ROOT/opt/rdkafka/VERSION") (Debian source package librdkafka; rebuilt without cyrus-sasl and libcurl)" \
    "$rdk/debian/copyright"
section "librdkafka: bundled third-party code (LICENSES.txt of the source)" "$ROOT/opt/rdkafka/LICENSES.txt"
section "cJSON $(cat "$ROOT/opt/cjson/VERSION") (Debian source package cjson)" "$cjs/debian/copyright"
for p in libhiredis-dev libmicrohttpd-dev libssl-dev zlib1g-dev libzstd-dev liblz4-dev libc6-dev; do
    f=$ROOT/usr/share/doc/$p/copyright
    [ -f "$f" ] || { echo "notice.sh: $f missing" >&2; exit 1; }
    section "$p $(pkgver "$p") (Debian package; linked from its static archive)" "$f"
done
