#!/usr/bin/env bash
# build.sh ROOT BUILD [make args] -- `make static`: BUILD/oneshot-static,
# compiled and linked in the Debian 13 build root ROOT (buildroot.sh makes
# or reuses it), with its .debug file and its notice file beside it.
#
# The sources (Makefile, common, config, consumer, include) are copied into
# ROOT/work/src with their times kept, so the make inside, whose objects
# stay in ROOT/work/build/<checkout>, recompiles only what changed. One
# object folder per checkout (named from its path): file times are only
# comparable within one checkout, and a second worktree or an older
# commit must never link another checkout's newer objects. As root (chroot).
set -euo pipefail

ROOT=${1:?usage: build.sh ROOT BUILD [make args]}
OUT=${2:?usage: build.sh ROOT BUILD [make args]}
shift 2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OBJ=/work/build/$(printf '%s' "$REPO" | sha1sum | cut -c1-16)

[ "$(id -u)" -eq 0 ] || { echo "make static: run as root (debootstrap and chroot)" >&2; exit 1; }
bash "$HERE/buildroot.sh" "$ROOT"

rm -rf "$ROOT/work/src"
mkdir -p "$ROOT/work/src" "$ROOT$OBJ" "$OUT"
(cd "$REPO" && tar -c Makefile common config consumer include) | tar -x -C "$ROOT/work/src"
chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
    make --no-print-directory -C /work/src -j"$(nproc)" BUILD="$OBJ" STATIC=1 "$@" "$OBJ/oneshot-static"
for f in oneshot-static oneshot-static.debug; do
    cp -p "$ROOT$OBJ/$f" "$OUT/$f.tmp" && mv -f "$OUT/$f.tmp" "$OUT/$f"
done
bash "$HERE/notice.sh" "$ROOT" >"$OUT/oneshot-static.NOTICE.tmp"
mv -f "$OUT/oneshot-static.NOTICE.tmp" "$OUT/oneshot-static.NOTICE"

# The runtime image's whole file system (deploy/Dockerfile: FROM scratch,
# COPY it): the binary, its notice, the build root's CA certificates, a
# numeric non-root user, a world-writable /tmp.
img=$OUT/image-root
rm -rf "$img"
mkdir -p "$img/usr/local/bin" "$img/etc/ssl/certs" "$img/tmp"
chmod 1777 "$img/tmp"
cp "$OUT/oneshot-static" "$img/usr/local/bin/oneshot"
cp "$OUT/oneshot-static.NOTICE" "$img/usr/local/bin/oneshot.NOTICE"
cp -L "$ROOT/etc/ssl/certs/ca-certificates.crt" "$img/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\noneshot:x:10001:10001:oneshot:/nonexistent:/sbin/nologin\n' \
    >"$img/etc/passwd"
printf 'root:x:0:\noneshot:x:10001:\n' >"$img/etc/group"
echo "make static: $OUT/oneshot-static ($(stat -c %s "$OUT/oneshot-static") bytes), $OUT/oneshot-static.NOTICE" >&2
