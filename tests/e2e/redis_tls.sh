#!/usr/bin/env bash
# redis_tls.sh -- rediss:// against Debian's redis-server on a --tls-port,
# with a CA, server and client certificates made here with openssl
# (tests/brokers/tls/lib.sh): a job over TLS on redis-list and redis-stream and
# through the store, read back with `redis-cli --tls`; a wrong CA, the
# system store, an expired certificate and one for another host fail with
# a clear error, exit 69 and nothing taken; a server that requires a client
# certificate refuses a replica without one and takes one with one; TLS
# files that do not load are configuration errors (78); the host build (no
# TLS) refuses rediss:// with one line. Runs the TLS-capable binary of
# tests/brokers/tls/lib.sh's tls_bin (`make tls` when there is no other).
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/redis_start.sh"
. "$(dirname "$0")/../brokers/tls/lib.sh"

TLS_CERTS=$T_DIR/certs
tls_certs "$TLS_CERTS" || {
    echo "FAIL redis_tls: openssl could not make the certificates"
    exit 1
}
tls_bin || {
    echo "FAIL redis_tls: no TLS-capable oneshot (ONESHOT_TLS_BIN, build/oneshot-static or make tls)"
    exit 1
}
tls_redis_start "$TLS_CERTS" || exit 1
C=$TLS_CERTS
URL=rediss://localhost:$TLS_PORT/0
CA=(--redis-ca "$C/ca.pem")

# tls_run SECS ARGS...: one TLS replica in the foreground; RC, LOG.
tls_run() {
    local secs=$1
    shift
    LOG=$(mktemp "$T_DIR/replica.XXXXXX")
    RC=0
    timeout -s KILL "$secs" "$TLS_BIN" --port 0 --bind 127.0.0.1 "$@" 2>"$LOG" >/dev/null || RC=$?
    check_sanitizers "$LOG"
}

# The message of the first error line of a log.
first_error() { grep -m1 '"level":"error"' "$1" | sed 's/.*"msg":"\([^"]*\)".*/\1/'; }

# Nothing of queue Q was taken: one item waiting, no processing list,
# no lease, no record.
nothing_taken_list() { # queue id what
    assert_eq "$(rcli LLEN "$1")" 1 "$3: the job is still queued"
    assert_eq "$(rcli --scan --pattern "$1:processing:*" | wc -l)" 0 "$3: nothing held"
    assert_eq "$(rcli --scan --pattern 'oneshot:lease:*' | wc -l)" 0 "$3: no lease"
    assert_eq "$(rcli EXISTS "oneshot:job:$2")" 0 "$3: no record"
}

t_host_build_refuses() {
    local out rc=0
    out=$("$ONESHOT" --source redis-list --redis "rediss://localhost:$TLS_PORT/0" --idle-timeout 1 2>&1) || rc=$?
    if "$ONESHOT" --version 2>/dev/null | grep -q 'hiredis 0\.'; then
        assert_eq "$rc" 78 "exit of the build without TLS"
        assert_eq "$(printf '%s\n' "$out" | wc -l)" 1 "one line"
        assert_contains "$out" "--redis: rediss:// is not supported by this build: it has no TLS to Redis" "the line"
        assert_contains "$out" "use the static build (oneshot-static)" "the line"
        out=$("$ONESHOT" status x --redis "rediss://localhost:$TLS_PORT/0" 2>&1)
        assert_eq "$?" 78 "a subcommand too"
    else
        echo "# $ONESHOT has TLS: the refusal is the host build's (checked where it runs)"
    fi
}

t_list_over_tls() {
    local id out
    id=$("$TLS_BIN" submit --redis "$URL" "${CA[@]}" --id tls-l1 '{"n":1}' 2>"$T_DIR/submit.log") ||
        fail "submit over TLS: $(cat "$T_DIR/submit.log")"
    assert_eq "$id" tls-l1 "submit's id"
    tls_run 20 --source redis-list --redis "$URL" "${CA[@]}" --core echo --idle-timeout 5 --log-level debug
    assert_eq "$RC" 0 "replica over TLS: $(first_error "$LOG")"
    assert_eq "$(tcli HGET oneshot:job:tls-l1 state)" succeeded "state (redis-cli --tls)"
    assert_eq "$(tcli GET oneshot:result:tls-l1)" '{"n":1}' "result (redis-cli --tls)"
    assert_eq "$(tcli LLEN jobs)" 0 "queue empty"
    # wait over TLS: pub/sub and the record
    out=$(timeout 10 "$TLS_BIN" wait tls-l1 --redis "$URL" "${CA[@]}" --timeout 5 2>/dev/null)
    assert_eq "$?" 0 "wait over TLS"
    assert_eq "$out" '{"n":1}' "wait's result"
    grep -q 'claimed job' "$LOG" || fail "no claim logged"
}

t_stream_over_tls() {
    # the IP address form: the certificate's IP SAN is checked, no SNI
    local u=rediss://127.0.0.1:$TLS_PORT/0
    tcli XADD tjobs '*' input '{"n":2}' id tls-s1 >/dev/null
    tls_run 20 --source redis-stream --queue tjobs --redis "$u" "${CA[@]}" --core echo --idle-timeout 5
    assert_eq "$RC" 0 "stream replica over TLS: $(first_error "$LOG")"
    assert_eq "$(tcli HGET oneshot:job:tls-s1 state)" succeeded "state"
    assert_eq "$(tcli GET oneshot:result:tls-s1)" '{"n":2}' "result"
    assert_eq "$(tcli XPENDING tjobs oneshot | head -1)" 0 "nothing pending"
}

# Without --redis-ca the system store decides: OpenSSL's default paths,
# which SSL_CERT_FILE overrides (here: the test CA is the whole store).
t_system_store() {
    rcli LPUSH jobs '{"id":"tls-d1","input":"store"}' >/dev/null
    SSL_CERT_FILE=$C/ca.pem tls_run 20 --source redis-list --redis "$URL" --core echo --idle-timeout 5
    assert_eq "$RC" 0 "the system store (SSL_CERT_FILE) trusts the test CA: $(first_error "$LOG")"
    assert_eq "$(tcli GET oneshot:result:tls-d1)" store "result"
}

t_store_behind_http() {
    start_replica_tls --source http --store redis --redis "$URL" "${CA[@]}" --core echo || return
    http POST "http://127.0.0.1:$R_PORT/job" -H 'X-Inference-Id: tls-h1' -H 'Content-Type: application/json' -d '{"n":3}'
    assert_eq "$H_CODE" 200 "POST /job"
    assert_exit "$R_PID" 10 0 "http replica"
    assert_eq "$(tcli HGET oneshot:job:tls-h1 state)" succeeded "the store's record over TLS"
}

start_replica_tls() {
    local saved=$ONESHOT
    ONESHOT=$TLS_BIN
    start_replica "$@"
    local rc=$?
    ONESHOT=$saved
    return $rc
}

# A job longer than a heartbeat period (--lease 3: a beat a second): the
# heartbeat thread opens its own TLS connection (the store's) and renews
# the lease over the shared one while the core runs.
t_heartbeat_over_tls() {
    local hb
    rcli LPUSH jobs '{"id":"tls-b1","input":"x"}' >/dev/null
    tls_run 20 --source redis-list --redis "$URL" "${CA[@]}" --lease 3 --idle-timeout 5 -- sh -c 'sleep 2.5; echo beat'
    assert_eq "$RC" 0 "job over TLS with heartbeats: $(first_error "$LOG")"
    assert_eq "$(tcli GET oneshot:result:tls-b1)" beat "result"
    hb=$(tcli HGET oneshot:job:tls-b1 heartbeat_at)
    [ -n "$hb" ] || fail "no heartbeat_at in the record"
    assert_eq "$(rcli CLIENT LIST | grep -c 'name=oneshot:store-hb:')" 0 "the heartbeat's connection is closed"
}

# The fleet's backlog queries and its replicas (given the same TLS flags).
t_fleet_over_tls() {
    local i out
    for i in 1 2 3; do rcli LPUSH jobs "{\"id\":\"tls-f$i\",\"input\":$i}" >/dev/null; done
    out=$(timeout 60 "$TLS_BIN" fleet --drain --max-concurrent 2 --redis "$URL" "${CA[@]}" -- --source redis-list \
        --core echo 2>"$T_DIR/fleet.log")
    assert_eq "$?" 0 "fleet over TLS: $(grep -m1 '"level":"error"' "$T_DIR/fleet.log")"
    check_sanitizers "$T_DIR/fleet.log"
    assert_contains "$out" '"done":3' "the summary"
    for i in 1 2 3; do assert_eq "$(tcli GET "oneshot:result:tls-f$i")" "$i" "result of tls-f$i"; done
}

# A refused server certificate: exit 69 at once (no retries: well within
# the 10 s budget), the reason in one error line, nothing taken.
refused() { # what expected-in-message args...
    local what=$1 want=$2 t0
    shift 2
    rcli LPUSH tq "{\"id\":\"tls-q\",\"input\":1}" >/dev/null
    t0=$(date +%s%N)
    tls_run 20 --source redis-list --queue tq --idle-timeout 5 "$@"
    assert_eq "$RC" 69 "$what: exit"
    assert_contains "$(first_error "$LOG")" "$want" "$what: the error"
    [ $((($(date +%s%N) - t0) / 1000000)) -lt 5000 ] || fail "$what: not at once ($(((($(date +%s%N) - t0) / 1000000))) ms)"
    nothing_taken_list tq tls-q "$what"
    rcli DEL tq >/dev/null
}

t_refused_certificates() {
    refused "wrong CA" "the server's certificate is refused: self-signed certificate in certificate chain" \
        --redis "$URL" --redis-ca "$C/wrong-ca.pem"
    refused "system store (the test CA is not in it)" "(checked against the system store)" --redis "$URL"
    rcli CONFIG SET tls-cert-file "$C/expired.pem" tls-key-file "$C/expired.key" >/dev/null
    refused "expired server certificate" "certificate has expired" --redis "$URL" "${CA[@]}"
    rcli CONFIG SET tls-cert-file "$C/otherhost.pem" tls-key-file "$C/otherhost.key" >/dev/null
    refused "certificate for another host" "the server's certificate is not for localhost" --redis "$URL" "${CA[@]}"
    rcli CONFIG SET tls-cert-file "$C/server.pem" tls-key-file "$C/server.key" >/dev/null
    # rediss:// to a plain port: Redis waits for the rest of a line, so
    # the handshake times out, which a frozen server also does: retried
    # within the budget (3 s here), then 69, nothing taken
    rcli LPUSH tq '{"id":"tls-q","input":1}' >/dev/null
    ONESHOT_REDIS_RETRY_MS=3000 tls_run 20 --source redis-list --queue tq --idle-timeout 5 \
        --redis "rediss://localhost:$PLAIN_PORT/0" "${CA[@]}"
    assert_eq "$RC" 69 "plain port: exit"
    assert_contains "$(first_error "$LOG")" "is the server's port a TLS port?" "plain port: the error"
    nothing_taken_list tq tls-q "plain port"
    rcli DEL tq >/dev/null
    # a stream entry is not delivered either
    rcli XADD tsq '*' input 1 id tls-sq >/dev/null
    tls_run 20 --source redis-stream --queue tsq --idle-timeout 5 --redis "$URL" --redis-ca "$C/wrong-ca.pem"
    assert_eq "$RC" 69 "stream, wrong CA: exit"
    assert_eq "$(rcli XLEN tsq)" 1 "stream, wrong CA: the entry stays"
    assert_eq "$(rcli EXISTS oneshot:job:tls-sq)" 0 "stream, wrong CA: no record"
    rcli XINFO GROUPS tsq 2>/dev/null | grep -q oneshot && fail "stream, wrong CA: a group was made"
}

t_client_certificate() {
    rcli CONFIG SET tls-auth-clients yes >/dev/null
    refused "no client certificate, the server requires one" \
        "(TLS: tlsv13 alert certificate required); the server requires a client certificate: --redis-cert, --redis-key" \
        --redis "$URL" "${CA[@]}"
    refused "an expired client certificate" "certificate expired); the server refused the client certificate" \
        --redis "$URL" "${CA[@]}" \
        --redis-cert "$C/client-expired.pem" --redis-key "$C/client-expired.key"
    rcli LPUSH jobs '{"id":"tls-c1","input":"mtls"}' >/dev/null
    tls_run 20 --source redis-list --redis "$URL" "${CA[@]}" --redis-cert "$C/client.pem" --redis-key "$C/client.key" \
        --core echo --idle-timeout 5
    assert_eq "$RC" 0 "with the client certificate: $(first_error "$LOG")"
    assert_eq "$(tcli GET oneshot:result:tls-c1)" mtls "result"
    rcli CONFIG SET tls-auth-clients no >/dev/null
}

# Files that do not load: 78 and one line, before anything is consumed.
t_bad_files() {
    local out rc line
    echo "not a certificate" >"$T_DIR/junk.pem"
    while IFS='|' read -r what want args; do
        rc=0
        # shellcheck disable=SC2086
        out=$(timeout 10 "$TLS_BIN" --source redis-list --idle-timeout 1 --redis "$URL" $args 2>&1 </dev/null) || rc=$?
        assert_eq "$rc" 78 "$what: exit"
        assert_eq "$(printf '%s\n' "$out" | wc -l)" 1 "$what: one line"
        assert_contains "$out" "$want" "$what"
    done <<EOF
CA file not PEM|--redis-ca: '$T_DIR/junk.pem' holds no CA certificate|--redis-ca $T_DIR/junk.pem
CA file missing|--redis-ca: '$T_DIR/none.pem': No such file|--redis-ca $T_DIR/none.pem
key of another certificate|--redis-key: '$C/server.key' is not the key of --redis-cert|--redis-ca $C/ca.pem --redis-cert $C/client.pem --redis-key $C/server.key
encrypted key (never prompts)|--redis-key: '$C/client-enc.key' holds no private key OpenSSL can load (PEM, no passphrase)|--redis-ca $C/ca.pem --redis-cert $C/client.pem --redis-key $C/client-enc.key
certificate without a key|--redis-cert: needs --redis-key too|--redis-cert $C/client.pem
CA with a plain URL|--redis-ca: set, but --redis is not a rediss:// URL|--redis redis://localhost:$PLAIN_PORT/0 --redis-ca $C/ca.pem
EOF
    assert_eq "$(rcli LLEN jobs)" 0 "nothing was consumed"
}

t_run "redis_tls: the build without TLS refuses rediss:// with one line (78)" t_host_build_refuses
t_run "redis_tls: redis-list job, submit and wait over TLS; read with redis-cli --tls" t_list_over_tls
t_run "redis_tls: redis-stream job over TLS to an IP address" t_stream_over_tls
t_run "redis_tls: the system store (SSL_CERT_FILE) without --redis-ca" t_system_store
t_run "redis_tls: the store behind the HTTP source over TLS" t_store_behind_http
t_run "redis_tls: heartbeats over TLS (the heartbeat thread's own connection)" t_heartbeat_over_tls
t_run "redis_tls: fleet --drain over TLS (backlog queries and replicas)" t_fleet_over_tls
t_run "redis_tls: wrong CA, system store, expired, other host, plain port: 69 at once, nothing taken" \
    t_refused_certificates
t_run "redis_tls: client certificate required: none or expired refused (69), the right one runs" t_client_certificate
t_run "redis_tls: TLS files that do not load: 78, one line" t_bad_files
