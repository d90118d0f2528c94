#!/usr/bin/env bash
# bullseye_root.sh ROOT -- an older Debian root for the static binary's
# tests (tests/e2e/static.sh: it runs there; tests/e2e/image.sh: a user's
# own image is made from it): `debootstrap --variant=minbase bullseye` plus
# python3 (the user image's job is `oneshot -- python3 job.py`).
# As root. Made once and kept (about 1 min); remade when this file changes.
set -euo pipefail
ROOT=${1:?usage: bullseye_root.sh ROOT}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
recipe=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
[ -f "$ROOT/.oneshot-recipe" ] && [ "$(cat "$ROOT/.oneshot-recipe")" = "$recipe" ] && exit 0

. "$HERE/../../deploy/podman/mirror.sh"
mirror=$(debian_mirror)
debian_proxy
rm -rf "$ROOT.new"
mkdir -p "$(dirname "$ROOT")"
log=$ROOT.log
echo "bullseye_root: debootstrap --variant=minbase bullseye into $ROOT (log: $log)" >&2
debootstrap --variant=minbase --include=python3 bullseye "$ROOT.new" "$mirror" >"$log" 2>&1 || {
    tail -20 "$log" >&2
    exit 1
}
rm -rf "$ROOT.new/var/cache/apt/archives/"*.deb "$ROOT.new/var/lib/apt/lists/"*
echo "$recipe" >"$ROOT.new/.oneshot-recipe"
rm -rf "$ROOT"
mv "$ROOT.new" "$ROOT"
