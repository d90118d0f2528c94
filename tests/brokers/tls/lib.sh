# shellcheck shell=bash
# tests/brokers/tls/lib.sh -- certificates, a TLS redis-server and a TLS-capable
# oneshot for the TLS tests (bash). Source it after tests/harness/lib.sh.
#
#   tls_bin                  sets TLS_BIN: $ONESHOT_TLS_BIN if set, else
#                            build/oneshot-static if present (the default
#                            build folder only), else $BUILD/tls/oneshot made
#                            by `make tls` (trixie's hiredis, fetched once);
#                            1 when none can be had
#   tls_certs DIR            makes, with openssl, in DIR: ca.pem (the CA),
#                            wrong-ca.pem (another CA), server.pem/.key (from
#                            ca, for localhost and 127.0.0.1), expired.pem/.key,
#                            otherhost.pem/.key (for other.example), client.pem/
#                            .key (clientAuth, from ca), client-expired.pem/.key,
#                            client-enc.key (the client key with a passphrase)
#   tls_redis_start DIR [ARGS...]  redis_start (tests/harness/redis_start.sh) with a TLS
#                            port too: TLS_PORT (server.pem, CA ca.pem, clients
#                            not asked for certificates unless ARGS say), and
#                            PLAIN_PORT (plain TCP); the unix socket stays plain
#   tcli ARGS...             redis-cli --tls on TLS_PORT, as an operator would
#
# Certificates are EC P-256 (fast to make); the CA's key signs every leaf.

_tls_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)

tls_bin() {
    TLS_BIN=${ONESHOT_TLS_BIN:-}
    if [ -z "$TLS_BIN" ] && [ "$BUILD" = build ] && [ -x "$_tls_repo/build/oneshot-static" ]; then
        TLS_BIN=$_tls_repo/build/oneshot-static
    fi
    if [ -z "$TLS_BIN" ]; then
        # A no-op when it is up to date (under `make asan` it was made with
        # the sanitizers by the asan target itself).
        make -s -C "$_tls_repo" tls TLS_BUILD="$BUILD/tls" >"$T_DIR/make-tls.log" 2>&1 || {
            echo "# make tls failed: $(tail -3 "$T_DIR/make-tls.log")"
            return 1
        }
        TLS_BIN=$_tls_repo/$BUILD/tls/oneshot
    fi
    [ -x "$TLS_BIN" ] || return 1
    echo "# the TLS-capable oneshot: ${TLS_BIN#"$_tls_repo"/} ($("$TLS_BIN" --version 2>/dev/null | head -1))"
}

# _tls_leaf DIR NAME CN SAN EXT DAYS [CA]: a key and a certificate signed by CA.
_tls_leaf() {
    local d=$1 n=$2 cn=$3 san=$4 ext=$5 days=$6 ca=${7:-ca}
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$d/$n.key" \
        -out "$d/$n.csr" -subj "/CN=$cn" 2>/dev/null &&
        printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$san" "$ext" >"$d/$n.ext" &&
        openssl x509 -req -in "$d/$n.csr" -CA "$d/$ca.pem" -CAkey "$d/$ca.key" -CAcreateserial \
            -out "$d/$n.pem" -days "$days" -extfile "$d/$n.ext" 2>/dev/null
}

tls_certs() {
    local d=$1 c
    mkdir -p "$d"
    for c in ca wrong-ca; do
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$d/$c.key" \
            -out "$d/$c.pem" -subj "/CN=oneshot test $c" -days 2 2>/dev/null || return 1
    done
    _tls_leaf "$d" server localhost "DNS:localhost,IP:127.0.0.1" serverAuth 2 &&
        _tls_leaf "$d" expired localhost "DNS:localhost,IP:127.0.0.1" serverAuth -1 &&
        _tls_leaf "$d" otherhost other.example "DNS:other.example" serverAuth 2 &&
        _tls_leaf "$d" client oneshot-client "DNS:oneshot-client" clientAuth 2 &&
        _tls_leaf "$d" client-expired oneshot-client "DNS:oneshot-client" clientAuth -1 &&
        openssl pkey -in "$d/client.key" -aes256 -passout pass:KEYPASS -out "$d/client-enc.key" 2>/dev/null
}

tls_redis_start() {
    local d=$1
    shift
    TLS_PORT=$(_tls_free_port) && PLAIN_PORT=$(_tls_free_port) || return 1
    redis_start --port "$PLAIN_PORT" --bind 127.0.0.1 --tls-port "$TLS_PORT" --tls-cert-file "$d/server.pem" \
        --tls-key-file "$d/server.key" --tls-ca-cert-file "$d/ca.pem" --tls-auth-clients no "$@"
}

_tls_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

tcli() { redis-cli --tls --cacert "$TLS_CERTS/ca.pem" --cert "$TLS_CERTS/client.pem" --key "$TLS_CERTS/client.key" \
    -h localhost -p "$TLS_PORT" "$@"; }
