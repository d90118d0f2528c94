#!/usr/bin/env bash
# static.sh -- the static file (`make static`, deploy/README.md "Static build") runs
# anywhere: `make static` builds it (the Debian 13 build root is cached in
# /var/cache/oneshot, so a rebuild is incremental), ldd calls it not
# dynamic, --version lists every bundled library, the notice file covers
# them, and in two roots the binary runs as a user runs it, under chroot:
#   empty     nothing but the binary, /etc/hosts, /etc/resolv.conf, the CA
#             certificates and /tmp (no /proc, no libc, no shell)
#   bullseye  Debian 11 minbase (tests/deploy/bullseye_root.sh, cached), glibc 2.31
# In each: an HTTP job (curl), a Redis job over TCP and a Kafka job (the
# real broker) whose servers are reached by names that only the root's
# /etc/hosts knows, the exec core running a program of that root, and a
# name the root does not know failing with a clear error.
# As root (chroot). Servers listen on loopback; chroot shares the network.
. "$(dirname "$0")/../harness/lib.sh"

STATIC=$ROOT/build/oneshot-static
BULLSEYE_CACHE=${ONESHOT_BULLSEYE_ROOT:-/var/cache/oneshot/bullseye-python3}
setup_fail() {
    echo "FAIL static set-up: $*"
    exit 1
}
[ "$(id -u)" = 0 ] || setup_fail "needs root (debootstrap, chroot)"

# --- set-up: the binary, the roots, Redis on TCP, the broker ---
t0=$(date +%s)
timeout 800 make -C "$ROOT" --no-print-directory static >"$T_DIR/make.log" 2>&1 ||
    setup_fail "make static: $(tail -5 "$T_DIR/make.log" | tr '\n' ' ')"
echo "# make static $(($(date +%s) - t0)) s (the build root cached in /var/cache/oneshot)"
timeout 600 bash "$ROOT/tests/deploy/bullseye_root.sh" "$BULLSEYE_CACHE" >"$T_DIR/bullseye.log" 2>&1 ||
    setup_fail "bullseye root: $(tail -5 "$T_DIR/bullseye.log" | tr '\n' ' ')"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
mkdir -p "$T_DIR/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --unixsocket "$T_DIR/redis/sock" --dir "$T_DIR/redis" \
    --save '' --appendonly no --logfile "$T_DIR/redis/log" >/dev/null 2>&1 &
T_PIDS+=($!)
rcli() { redis-cli -s "$T_DIR/redis/sock" "$@"; }
wait_for 10 sh -c "[ \"\$(redis-cli -s '$T_DIR/redis/sock' PING)\" = PONG ]" || setup_fail "redis-server did not start"
export TMPDIR_TEST=$T_DIR/kafka
. "$ROOT/tests/brokers/kafka_broker_start.sh"
kafka_broker_start >/dev/null || setup_fail "the test broker did not start"
KAFKA_PORT=${KAFKA_BROKERS##*:}

# Names only the roots' /etc/hosts resolve (.invalid never resolves in DNS).
HOSTS="127.0.0.1 localhost
127.0.0.1 redis.oneshot-test.invalid
127.0.0.1 kafka.oneshot-test.invalid"
REDIS_URL=redis://redis.oneshot-test.invalid:$REDIS_PORT/0
KAFKA_NAME=kafka.oneshot-test.invalid:$KAFKA_PORT

# The empty root: the binary and four things, nothing else.
EMPTY=$T_DIR/empty
mkdir -p "$EMPTY/bin" "$EMPTY/etc/ssl/certs" "$EMPTY/tmp"
chmod 1777 "$EMPTY/tmp"
cp "$STATIC" "$EMPTY/bin/oneshot"
printf '%s\n' "$HOSTS" >"$EMPTY/etc/hosts"
echo 'nameserver 127.0.0.1' >"$EMPTY/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$EMPTY/etc/ssl/certs/"
# The bullseye root: a copy of the cached one, its /etc/hosts ours.
OLD=$T_DIR/bullseye
cp -a "$BULLSEYE_CACHE" "$OLD"
cp "$STATIC" "$OLD/usr/local/bin/oneshot"
printf '%s\n' "$HOSTS" >"$OLD/etc/hosts"

# in_root ROOT ARGS...: lib.sh's $ONESHOT is this wrapper, so its
# start_replica and friends run the binary inside the root.
mkwrap() { # NAME ROOT BINARY-IN-ROOT [chroot options]
    printf '#!/bin/sh\nexec chroot %s %s %s "$@"\n' "${4:-}" "$2" "$3" >"$T_DIR/$1"
    chmod +x "$T_DIR/$1"
}
mkwrap in-empty "$EMPTY" /bin/oneshot --userspec=10001:10001
mkwrap in-bullseye "$OLD" /usr/local/bin/oneshot --userspec=10001:10001

# --- tests ---

t_not_dynamic() {
    local out
    out=$(ldd "$STATIC" 2>&1)
    assert_contains "$out" "not a dynamic executable" "ldd"
    [ -z "$(readelf -l "$STATIC" | grep -i 'INTERP')" ] || fail "program interpreter requested"
    [ -z "$(readelf -d "$STATIC" 2>/dev/null | grep NEEDED)" ] || fail "NEEDED entries"
    # Linked with the plain crtbegin.o (Makefile, STATIC_CRT): no frame
    # registry, so the unwinder finds frames through this header alone.
    readelf -lW "$STATIC" | grep -q 'GNU_EH_FRAME' || fail "no PT_GNU_EH_FRAME (--eh-frame-hdr): nothing could unwind"
    # glibc's start-up asks for the file's own path (for dlopen's $ORIGIN),
    # which the static file never uses: consumer/static_start.c answers
    # "unknown" without reading /proc/self/exe.
    local calls
    calls=$(strace -f -e trace=readlink,readlinkat "$STATIC" --version 2>&1 >/dev/null | grep -c 'proc/self/exe')
    assert_eq "$calls" 0 "reads of /proc/self/exe at start (consumer/static_start.c)"
    echo "# figure: build/oneshot-static $(stat -c %s "$STATIC") bytes (stripped; symbols in oneshot-static.debug)"
}

t_version_and_notice() {
    local v n lib
    v=$("$STATIC" --version)
    for lib in "librdkafka 2." "hiredis 1." "with hiredis_ssl" "libmicrohttpd 1." "cJSON 1." "OpenSSL 3." "zlib 1." \
        "zstd 1." "lz4 1." "glibc 2." "ssl" "sasl_scram" "zstd" "lz4" "snappy"; do
        assert_contains "$v" "$lib" "--version"
    done
    assert_not_contains "$v" "gssapi" "--version: GSSAPI is not in the static file"
    n=$(cat "$ROOT/build/oneshot-static.NOTICE" 2>/dev/null)
    for lib in librdkafka cJSON libhiredis-dev libmicrohttpd-dev libssl-dev zlib1g-dev libzstd-dev liblz4-dev \
        libc6-dev "Apache License" "GNU Lesser General Public License"; do
        assert_contains "$n" "$lib" "notice file"
    done
    # make install-static puts both side by side.
    make -C "$ROOT" --no-print-directory install-static PREFIX=/usr DESTDIR="$T_DIR/inst" >/dev/null 2>&1 ||
        fail "make install-static"
    [ -x "$T_DIR/inst/usr/bin/oneshot" ] && [ -s "$T_DIR/inst/usr/bin/oneshot.NOTICE" ] ||
        fail "install-static: $(find "$T_DIR/inst" | tr '\n' ' ')"
}

# The plugin core cannot be in a static file: a clear refusal (78).
# Another checkout of the sources (a second worktree, an older commit):
# its make static builds its own objects, whatever the times of its files
# against the objects another checkout left in the shared build root. The
# copy's files are dated 2001 and one string of its --version is changed.
t_other_checkout() {
    local tree=$T_DIR/tree
    mkdir -p "$tree"
    (cd "$ROOT" && tar -c Makefile common config consumer include deploy) | tar -x -C "$tree"
    sed -i 's|printf("oneshot %s (librdkafka|printf("oneshot-copy %s (librdkafka|' "$tree/consumer/main.c"
    grep -q 'oneshot-copy %s' "$tree/consumer/main.c" || { fail "the copy's --version string was not changed"; return; }
    find "$tree" -exec touch -h -d 2001-01-01 {} +
    timeout 800 make -C "$tree" --no-print-directory static >"$T_DIR/make-copy.log" 2>&1 ||
        { fail "make static in the copy: $(tail -3 "$T_DIR/make-copy.log" | tr '\n' ' ')"; return; }
    assert_contains "$("$tree/build/oneshot-static" --version)" "oneshot-copy " "the copy's own code in its static file"
    assert_contains "$("$STATIC" --version)" "oneshot 0." "this checkout's static file untouched"
}

t_plugin_refused() {
    local rc=0 out
    out=$("$STATIC" --core plugin:"$ROOT/build/plugins/wordcount.so" --port 0 2>&1) || rc=$?
    assert_eq "$rc" 78 "exit code"
    assert_contains "$out" "static build cannot load plugins" "message"
}

# http_job ROOT-WRAPPER: a replica in the root, POST /job from the host.
http_job() {
    ONESHOT=$T_DIR/$1
    start_replica --core echo || return
    http POST "http://127.0.0.1:$R_PORT/job" -H 'Content-Type: application/json' -d '{"n":7}'
    assert_eq "$H_CODE" 200 "POST /job"
    assert_eq "$H_BODY" '{"n":7}' "answer"
    assert_exit "$R_PID" 10 0 "replica exit"
}

# redis_job ROOT-WRAPPER: one LPUSHed job over TCP to a name from /etc/hosts.
redis_job() {
    local id=r$RANDOM
    ONESHOT=$T_DIR/$1
    rcli LPUSH jobs "{\"id\":\"$id\",\"input\":{\"k\":\"$1\"}}" >/dev/null
    LOG=$T_DIR/redis-$1.log
    RC=0
    timeout -s KILL 30 "$ONESHOT" --port 0 --bind 127.0.0.1 --source redis-list --redis "$REDIS_URL" \
        --core echo --idle-timeout 10 2>"$LOG" >/dev/null || RC=$?
    assert_eq "$RC" 0 "exit code ($(tail -2 "$LOG" | tr '\n' ' '))"
    assert_eq "$(rcli GET "oneshot:result:$id")" "{\"k\":\"$1\"}" "result"
    assert_eq "$(rcli HGET "oneshot:job:$id" state)" succeeded "state"
    assert_eq "$(rcli LLEN jobs)" 0 "queue"
}

# kafka_job ROOT-WRAPPER: one message, bootstrap by a name from /etc/hosts.
kafka_job() {
    local t=s$1-$RANDOM
    ONESHOT=$T_DIR/$1
    kafka_broker_ctl create "$t" "$t.results" "$t.status" "$t.dead" || { fail "create $t"; return; }
    printf '{"id":"k1","input":{"root":"%s"}}\n' "$1" | kcat -P -b "$KAFKA_BROKERS" -t "$t" -k k1 || fail "kcat"
    LOG=$T_DIR/kafka-$1.log
    RC=0
    local t0 ms join
    t0=$(date +%s%N)
    timeout -s KILL 60 "$ONESHOT" --port 0 --bind 127.0.0.1 --source kafka --kafka "$KAFKA_NAME" --queue "$t" \
        --group "g$t" --core echo --idle-timeout 30 2>"$LOG" >/dev/null || RC=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    assert_eq "$RC" 0 "exit code ($(tail -2 "$LOG" | tr '\n' ' '))"
    # The fence header is the claim time (ms): any such number, written as F.
    assert_eq "$(timeout 20 kcat -C -b "$KAFKA_BROKERS" -t "$t.results" -o beginning -e -q -f '%k|%h|%s\n' |
        sed -E 's/,fence=[1-9][0-9]{12}\|/,fence=F|/')" "k1|state=succeeded,exit_code=0,fence=F|{\"root\":\"$1\"}" \
        "result record"
    # Everything but the broker's join takes tens of ms. librdkafka >= 2.5
    # pushes client metrics (KIP-714) and then waits about 1 s in
    # rd_kafka_destroy, in most runs: oneshot turns that off.
    join=$(grep -o '"assigned_ms":[0-9]*' "$LOG" | head -1 | cut -d: -f2)
    [ $((ms - ${join:-0})) -lt 700 ] || fail "run took $ms ms of which the join $join ms (a stall at close?)"
}

# exec_job ROOT-WRAPPER EXPECTED PROGRAM...: the exec core runs a program
# of the root; its output is the answer.
exec_job() {
    local w=$1 want=$2
    shift 2
    ONESHOT=$T_DIR/$w
    start_replica -- "$@" || return
    http POST "http://127.0.0.1:$R_PORT/job" -d 'in'
    assert_eq "$H_CODE" 200 "POST /job ($(tail -2 "$R_LOG" | tr '\n' ' '))"
    assert_contains "$H_BODY" "$want" "the program's output"
    assert_exit "$R_PID" 10 0 "replica exit"
}

# A name the root's /etc/hosts lacks (and DNS cannot have): a clear error.
unknown_host() {
    local rc=0 out
    out=$(timeout -s KILL 30 "$T_DIR/$1" --port 0 --source redis-list \
        --redis redis://nowhere.oneshot-test.invalid:6379/0 --idle-timeout 5 2>&1) || rc=$?
    [ "$rc" != 0 ] && [ "$rc" != 137 ] || fail "exit code $rc"
    assert_contains "$out" "nowhere.oneshot-test.invalid" "the error names the host"
}

# --- Redis over TLS in the roots ---
# One TLS redis-server (tests/brokers/tls/lib.sh's certificates, and a server
# certificate for the name the roots' /etc/hosts gives it), the CA copied
# into the root's /tmp: a rediss:// job, the host name checked against the
# certificate, the CA given with --redis-ca as a user would mount it.
TLS_DIR=$T_DIR/tls
tls_server() {
    [ -n "${TLS_RPORT:-}" ] && return 0
    . "$ROOT/tests/brokers/tls/lib.sh"
    tls_certs "$TLS_DIR" &&
        _tls_leaf "$TLS_DIR" rootsrv redis.oneshot-test.invalid "DNS:redis.oneshot-test.invalid" serverAuth 2 ||
        { fail "certificates"; return 1; }
    TLS_RPORT=$(free_port)
    mkdir -p "$T_DIR/tlsredis"
    redis-server --port 0 --tls-port "$TLS_RPORT" --bind 127.0.0.1 --unixsocket "$T_DIR/tlsredis/sock" \
        --tls-cert-file "$TLS_DIR/rootsrv.pem" --tls-key-file "$TLS_DIR/rootsrv.key" \
        --tls-ca-cert-file "$TLS_DIR/ca.pem" --tls-auth-clients no --dir "$T_DIR/tlsredis" \
        --save '' --appendonly no --logfile "$T_DIR/tlsredis/log" >/dev/null 2>&1 &
    T_PIDS+=($!)
    wait_for 10 sh -c "[ \"\$(redis-cli -s '$T_DIR/tlsredis/sock' PING)\" = PONG ]" ||
        { fail "TLS redis-server did not start: $(tail -2 "$T_DIR/tlsredis/log")"; TLS_RPORT=""; return 1; }
}

tls_job() { # ROOT-WRAPPER ROOT-DIR
    local id=t$RANDOM tcli=(redis-cli -s "$T_DIR/tlsredis/sock")
    tls_server || return
    install -m 0644 "$TLS_DIR/ca.pem" "$2/tmp/oneshot-ca.pem"
    "${tcli[@]}" LPUSH jobs "{\"id\":\"$id\",\"input\":{\"tls\":\"$1\"}}" >/dev/null
    LOG=$T_DIR/tls-$1.log
    RC=0
    timeout -s KILL 30 "$T_DIR/$1" --port 0 --bind 127.0.0.1 --source redis-list \
        --redis "rediss://redis.oneshot-test.invalid:$TLS_RPORT/0" --redis-ca /tmp/oneshot-ca.pem \
        --core echo --idle-timeout 10 2>"$LOG" >/dev/null || RC=$?
    assert_eq "$RC" 0 "exit code ($(tail -2 "$LOG" | tr '\n' ' '))"
    assert_eq "$("${tcli[@]}" GET "oneshot:result:$id")" "{\"tls\":\"$1\"}" "result"
    assert_eq "$("${tcli[@]}" HGET "oneshot:job:$id" state)" succeeded "state"
    # The same server without the CA: the system store cannot vouch for it.
    "${tcli[@]}" LPUSH jobs "{\"id\":\"$id-2\",\"input\":1}" >/dev/null
    RC=0
    timeout -s KILL 30 "$T_DIR/$1" --port 0 --bind 127.0.0.1 --source redis-list \
        --redis "rediss://redis.oneshot-test.invalid:$TLS_RPORT/0" --core echo --idle-timeout 10 \
        2>"$LOG.noca" >/dev/null || RC=$?
    assert_eq "$RC" 69 "without the CA: exit code"
    assert_contains "$(cat "$LOG.noca")" "certificate" "without the CA: the reason"
    assert_eq "$("${tcli[@]}" LLEN jobs)" 1 "without the CA: nothing taken"
    "${tcli[@]}" DEL jobs >/dev/null
}

t_empty_http() { http_job in-empty; }
t_empty_redis() { redis_job in-empty; }
t_empty_kafka() { kafka_job in-empty && kafka_job in-empty && kafka_job in-empty; }
t_empty_exec() { exec_job in-empty "oneshot 0." /bin/oneshot --version; }
t_empty_unknown_host() { unknown_host in-empty; }
t_empty_tls() { tls_job in-empty "$EMPTY"; }
t_old_http() { http_job in-bullseye; }
t_old_redis() { redis_job in-bullseye; }
t_old_kafka() { kafka_job in-bullseye; }
t_old_exec() { exec_job in-bullseye "11." sh -c 'cat >/dev/null; cat /etc/debian_version'; }
t_old_unknown_host() { unknown_host in-bullseye; }
t_old_tls() { tls_job in-bullseye "$OLD"; }

t_run "static: ldd says not a dynamic executable; no interpreter, no NEEDED; an eh_frame header" t_not_dynamic
t_run "static: --version lists every bundled library; the notice file covers them; install-static" t_version_and_notice
t_run "static: a plugin core is refused with a clear error (78)" t_plugin_refused
t_run "static: make static from another checkout builds that checkout's code" t_other_checkout
t_run "static, empty root: an HTTP job (curl), as uid 10001" t_empty_http
t_run "static, empty root: a Redis job over TCP, the host from /etc/hosts" t_empty_redis
t_run "static, empty root: three Kafka jobs, the bootstrap host from /etc/hosts, none stalled at close" t_empty_kafka
t_run "static, empty root: the exec core runs a program of the root" t_empty_exec
t_run "static, empty root: an unknown host name is a clear error" t_empty_unknown_host
t_run "static, empty root: Redis over TLS (rediss:// to a name from /etc/hosts, --redis-ca; without it 69)" t_empty_tls
t_run "static, bullseye root: an HTTP job (curl), as uid 10001" t_old_http
t_run "static, bullseye root: a Redis job over TCP, the host from /etc/hosts" t_old_redis
t_run "static, bullseye root: a Kafka job, the bootstrap host from /etc/hosts" t_old_kafka
t_run "static, bullseye root: the exec core runs the root's sh and cat" t_old_exec
t_run "static, bullseye root: an unknown host name is a clear error" t_old_unknown_host
t_run "static, bullseye root: Redis over TLS (rediss:// to a name from /etc/hosts, --redis-ca; without it 69)" t_old_tls
