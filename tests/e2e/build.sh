#!/usr/bin/env bash
# build.sh -- what the host build links, and its offline variant: cJSON,
# hiredis and libmicrohttpd are compiled into build/oneshot (no shared
# library of theirs is loaded; Makefile "cJSON"), the cJSON in it is the
# host's Debian source package's, and `make CJSON=system` (no fetch: the
# shared libcjson) builds a binary that runs a job.
. "$(dirname "$0")/../harness/lib.sh"

t_needed() {
    local needed
    needed=$(readelf -d "$ONESHOT" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
    assert_contains "$needed" "libc.so.6" "NEEDED"
    local lib
    for lib in libcjson libhiredis libmicrohttpd librdkafka; do
        assert_not_contains "$needed" "$lib" "NEEDED ($needed)"
    done
}

t_cjson_from_source_package() {
    local v upstream out
    v=$(cat "$ROOT/build/cjson/VERSION" 2>/dev/null) || { fail "no build/cjson/VERSION"; return; }
    upstream=${v%%-*}
    out=$("$ONESHOT" --version)
    assert_contains "$out" "cJSON $upstream)" "--version's first line"
    assert_contains "$out" "cJSON $upstream linked in" "--version's build line"
    [ -s "$ROOT/build/cjson/LICENSE" ] || fail "no LICENSE beside the fetched cJSON.c"
}

# The variant for a host without a reachable archive: nothing fetched,
# the shared library linked, the same echo job answered.
t_cjson_system() {
    local b=$T_DIR/sys
    make -C "$ROOT" --no-print-directory -j2 CJSON=system CJSON_DIR="$T_DIR/none" BUILD="$b" "$b/oneshot" \
        >"$T_DIR/make.log" 2>&1 || { fail "make CJSON=system: $(tail -3 "$T_DIR/make.log")"; return; }
    [ -e "$T_DIR/none" ] && fail "CJSON=system fetched the source package"
    readelf -d "$b/oneshot" | grep -q 'NEEDED.*libcjson\.so' || fail "CJSON=system does not link libcjson.so"
    assert_contains "$("$b/oneshot" --version)" "cJSON 1.7" "--version"
    assert_contains "$("$b/oneshot" --version)" "shared" "--version"
    "$b/oneshot" --print-config --queue q9 | python3 -c 'import json,sys; assert json.load(sys.stdin)["queue"] == "q9"' ||
        fail "--print-config (cJSON's printer) is not the JSON expected"
    ONESHOT=$b/oneshot start_replica --core echo --idle-timeout 10 || return
    local body='{"id":"b1","input":{"k":[1,"x"]}}' out
    out=$(curl -s -X POST --data "$body" "http://127.0.0.1:$R_PORT/job")
    assert_eq "$out" "$body" "echo answer"
    assert_exit "$R_PID" 10 0 "CJSON=system replica"
}

t_run "build: build/oneshot loads no shared cJSON, hiredis, libmicrohttpd or librdkafka" t_needed
t_run "build: its cJSON is the Debian source package's, LICENSE kept beside it" t_cjson_from_source_package
t_run "build: make CJSON=system links the shared libcjson, fetches nothing, runs a job" t_cjson_system
exit $((T_FAILS > 0))
