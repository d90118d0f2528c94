#!/usr/bin/env bash
# hostile.sh -- hostile HTTP clients against the built replica:
# slowloris, the connection limit and the descriptor limit, oversized
# headers and URLs, a chunked body beyond --max-input, pipelined requests.
# None may crash, hang or end the replica early. Loopback only, bounded
# counts and times; the clients are python3 (standard library) and curl.
# Lines starting with '#' are the figures tests/README.md quotes.
. "$(dirname "$0")/../harness/lib.sh"

U() { echo "http://127.0.0.1:$R_PORT$1"; }

# hold.py PORT N MODE SECS READY: open N connections and keep them for at
# most SECS (or until killed). MODE idle: send nothing; slow: send half a
# request, then one more header byte every 0.5 s (slowloris). Writes
# "opened N" to READY once all are connected.
cat >"$T_DIR/hold.py" <<'PY'
import resource, socket, sys, time
port, n, mode, secs, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft != resource.RLIM_INFINITY and soft < n + 64:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64) if hard != resource.RLIM_INFINITY else n + 64, hard))
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if mode == "slow":
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    socks.append(s)
with open(ready, "w") as f:
    f.write("opened %d\n" % len(socks))
end = time.time() + secs
while time.time() < end:
    time.sleep(0.5)
    if mode == "slow":
        for s in socks:
            try:
                s.send(b"a")
            except OSError:
                pass
PY

# raw.py PORT FILE [PAUSE]: send the bytes of FILE on one connection, then
# shut the write side (after PAUSE s, default 0.2, so the server sees the
# end apart from the data) and read until the server closes (10 s at most).
# Prints the status code of every response seen, space-separated, or
# "closed" when none.
cat >"$T_DIR/raw.py" <<'PY'
import re, socket, sys, time
port, path = int(sys.argv[1]), sys.argv[2]
pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.2
data = open(path, "rb").read()
s = socket.create_connection(("127.0.0.1", port), timeout=10)
try:
    s.sendall(data)
    time.sleep(pause)
    s.shutdown(socket.SHUT_WR)
except OSError:
    pass
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
except OSError:
    pass
codes = re.findall(rb"HTTP/1\.[01] (\d{3})", out)
print(" ".join(c.decode() for c in codes) or "closed")
PY

# chunked.py PORT TOTAL_BYTES: POST /job with a chunked body of that many
# bytes (1 MiB chunks); prints the status code, or "cut" when the server
# closed the connection without one.
cat >"$T_DIR/chunked.py" <<'PY'
import re, socket, sys
port, total = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=20)
s.sendall(b"POST /job HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
chunk = b"%x\r\n" % (1 << 20) + b"a" * (1 << 20) + b"\r\n"
sent = 0
try:
    while sent < total:
        s.sendall(chunk)
        sent += 1 << 20
    s.sendall(b"0\r\n\r\n")
except OSError:
    pass
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
except OSError:
    pass
m = re.match(rb"HTTP/1\.[01] (\d{3})", out)
print(m.group(1).decode() if m else "cut")
PY

# framing.py PORT FILE: send the bytes of FILE on one connection and keep
# it open; read until the server closes it (5 s at most). Prints the status
# codes seen (or "none") and "closed", or "open" when the server kept it.
cat >"$T_DIR/framing.py" <<'PY'
import re, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(open(sys.argv[2], "rb").read())
out, end = b"", "open"
try:
    while True:
        b = s.recv(65536)
        if not b:
            end = "closed"
            break
        out += b
except OSError:
    pass
codes = re.findall(rb"HTTP/1\.[01] (\d{3})", out)
print(" ".join(c.decode() for c in codes) or "none", end)
PY

hold() { # n mode secs: start a holder in the background (H_PID), wait until connected
    rm -f "$T_DIR/ready"
    python3 "$T_DIR/hold.py" "$R_PORT" "$1" "$2" "$3" "$T_DIR/ready" 2>"$T_DIR/hold.err" &
    H_PID=$!
    T_PIDS+=("$H_PID")
    wait_for 20 grep -q "opened $1" "$T_DIR/ready" || fail "holder: $(cat "$T_DIR/ready" "$T_DIR/hold.err" 2>/dev/null | tail -2)"
}

unhold() {
    kill "$H_PID" 2>/dev/null
    wait "$H_PID" 2>/dev/null
}

# Connections the replica holds (established, its port).
held() { ss -Htn state established "( sport = :$R_PORT )" 2>/dev/null | wc -l; }

# /health N times: every answer 200; sets MAX_MS (the slowest) and MED_MS.
health_times() { # n [curl -m seconds]
    local i t code times=()
    for i in $(seq "$1"); do
        read -r code t < <(curl -s -m "${2:-5}" -o /dev/null -w '%{http_code} %{time_total}\n' "$(U /health)")
        [ "$code" = 200 ] || fail "/health answered '$code'"
        times+=("$(awk -v t="$t" 'BEGIN { printf "%.1f", t * 1000 }')")
    done
    MAX_MS=$(printf '%s\n' "${times[@]}" | sort -g | tail -1)
    MED_MS=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
}

alive() { kill -0 "$R_PID" 2>/dev/null || fail "replica ended: $(tail -2 "$R_LOG")"; }

t_slowloris() {
    start_replica --http-timeout 30 --idle-timeout 60 || return
    hold 250 idle 40
    local H1=$H_PID
    hold 250 slow 40
    sleep 1 # a few trickled bytes on every slow connection
    local n
    n=$(held)
    [ "$n" -ge 500 ] || fail "the replica holds $n connections, expected 500"
    health_times 20
    awk -v m="$MAX_MS" 'BEGIN { exit !(m < 100) }' || fail "/health took $MAX_MS ms under slowloris"
    echo "# slowloris: $n connections held (250 idle, 250 trickling a header byte every 0.5 s);" \
        "/health median $MED_MS ms, max $MAX_MS ms over 20 requests"
    http POST "$(U '/job?duration=0')"
    assert_eq "$H_CODE" 200 "job under slowloris"
    assert_exit "$R_PID" 10 0 "exit under slowloris"
    unhold
    H_PID=$H1 unhold
}

t_connection_limit() {
    # A soft descriptor limit of 1024 (a common default) is raised for the
    # 1000 connections plus what the rest of the replica needs.
    R_LOG=$(mktemp "$T_DIR/replica.XXXXXX")
    (ulimit -S -n 1024 2>/dev/null; exec "$ONESHOT" --port 0 --bind 127.0.0.1 --http-timeout 3 --idle-timeout 60 \
        --log-level debug 2>"$R_LOG") &
    R_PID=$!
    T_PIDS+=("$R_PID")
    wait_for 5 grep -q '"port":' "$R_LOG" || { fail "replica did not start: $(tail -2 "$R_LOG")"; return; }
    R_PORT=$(grep -o '"port":[0-9]*' "$R_LOG" | head -1 | cut -d: -f2)
    local soft hard
    soft=$(awk '/^Max open files/ { print $4 }' "/proc/$R_PID/limits")
    hard=$(ulimit -H -n)
    if [ "$hard" = unlimited ] || [ "$hard" -ge 1064 ]; then
        [ "$soft" -ge 1064 ] || fail "soft RLIMIT_NOFILE $soft, expected >= 1064"
        grep -q 'RLIMIT_NOFILE raised' "$R_LOG" || fail "no 'RLIMIT_NOFILE raised' line"
    fi
    # 1100 idle connections: 1000 are served, the rest wait in the listen
    # backlog; the idle ones are cut after --http-timeout, freeing slots.
    hold 1100 idle 20
    sleep 0.5
    alive
    local t0=$SECONDS code t
    read -r code t < <(curl -s -m 15 -o /dev/null -w '%{http_code} %{time_total}\n' "$(U /health)")
    assert_eq "$code" 200 "/health past the connection limit"
    awk -v t="$t" 'BEGIN { exit !(t < 8) }' || fail "/health past the limit took $t s (--http-timeout 3)"
    echo "# connection limit: 1100 idle connections (limit 1000): /health answered in" \
        "$(awk -v t="$t" 'BEGIN { printf "%.1f", t }') s, once --http-timeout 3 cut idle ones"
    alive
    unhold
    health_times 5
    awk -v m="$MAX_MS" 'BEGIN { exit !(m < 100) }' || fail "/health after the flood took $MAX_MS ms"
    http POST "$(U '/job?duration=0')"
    assert_eq "$H_CODE" 200 "job after the flood"
    assert_exit "$R_PID" 10 0 "exit after the flood"
}

t_descriptor_limit() {
    # A hard limit of 300: fewer connections are served, so a flood cannot
    # take the descriptors the job still needs (here: the termination log).
    R_LOG=$(mktemp "$T_DIR/replica.XXXXXX")
    (ulimit -n 300 && exec "$ONESHOT" --port 0 --bind 127.0.0.1 --http-timeout 5 \
        --termination-log "$T_DIR/term.json" 2>"$R_LOG") &
    R_PID=$!
    T_PIDS+=("$R_PID")
    wait_for 5 grep -q '"port":' "$R_LOG" || { fail "replica did not start: $(tail -2 "$R_LOG")"; return; }
    R_PORT=$(grep -o '"port":[0-9]*' "$R_LOG" | head -1 | cut -d: -f2)
    grep -q 'serving at most 236 HTTP connections' "$R_LOG" || fail "no connection cap logged"
    curl -s -m 20 -X POST -o "$T_DIR/b" -w '%{http_code}' "$(U '/job?duration=2')" >"$T_DIR/c" &
    local c=$!
    wait_for 5 grep -q 'Running job' "$R_LOG" || fail "job never started"
    hold 400 idle 10
    local a b
    a=$(awk '{ print $14 + $15 }' "/proc/$R_PID/stat")
    sleep 1
    b=$(awk '{ print $14 + $15 }' "/proc/$R_PID/stat")
    [ $((b - a)) -lt 50 ] || fail "the replica is busy at the connection cap ($((b - a)) ticks in 1 s)"
    wait "$c"
    assert_eq "$(cat "$T_DIR/c")" 200 "job during the flood"
    assert_exit "$R_PID" 10 0 "exit during the flood"
    assert_contains "$(cat "$T_DIR/term.json" 2>/dev/null)" '"state":"succeeded"' "termination log"
    assert_not_contains "$(cat "$R_LOG")" "Too many open files" "log"
    unhold
}

# send_raw expected-codes-regex file: the answer must match (or the
# connection closed cleanly), and the replica must still serve /health.
send_raw() {
    local got
    got=$(timeout 15 python3 "$T_DIR/raw.py" "$R_PORT" "$2")
    [[ "$got" =~ ^($1)$ ]] || fail "$(basename "$2"): answered '$got', expected $1"
    alive
    http GET "$(U /health)"
    assert_eq "$H_CODE" 200 "/health after $(basename "$2")"
    RAW_GOT=$got
}

t_header_and_url_limits() {
    start_replica --idle-timeout 60 || return
    local big seen=""
    big=$(head -c 70000 /dev/zero | tr '\0' a)
    printf 'GET /health HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n' "$big" >"$T_DIR/big-header"
    send_raw '431|413|400|closed' "$T_DIR/big-header"
    seen+=" header:$RAW_GOT"
    printf 'GET /health?%s HTTP/1.1\r\nHost: x\r\n\r\n' "$big" >"$T_DIR/big-url"
    send_raw '414|431|413|400|closed' "$T_DIR/big-url"
    seen+=" url:$RAW_GOT"
    # POST /job never reaches the handler with such a URL: no job is taken
    printf 'POST /job?%s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n' "$big" >"$T_DIR/big-job-url"
    send_raw '414|431|413|400|closed' "$T_DIR/big-job-url"
    seen+=" job-url:$RAW_GOT"
    { printf 'GET /health HTTP/1.1\r\nHost: x\r\n'
      for i in $(seq 3000); do printf 'X-H%d: v\r\n' "$i"; done
      printf '\r\n'; } >"$T_DIR/many-headers"
    send_raw '431|413|400|closed' "$T_DIR/many-headers"
    seen+=" 3000-headers:$RAW_GOT"
    # Malformed requests: 400 or a close, never a crash
    printf 'GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n' >"$T_DIR/neg-length"
    send_raw '(400|413|200)( (400|413|200))*|closed' "$T_DIR/neg-length"
    printf 'GET\r\n\r\n' >"$T_DIR/no-version"
    send_raw '400|505|closed' "$T_DIR/no-version"
    printf '\0\377\r\n\r\nGET /health HTTP/1.1\r\n\r\n' >"$T_DIR/binary"
    send_raw '(400|200)( (400|200))*|closed' "$T_DIR/binary"
    echo "# header/URL limits (64 KiB per connection):$seen"
    http POST "$(U '/job?duration=0')"
    assert_eq "$H_CODE" 200 "job after the oversized requests"
    assert_exit "$R_PID" 5 0 "exit"
}

t_chunked_beyond_max_input() {
    start_replica --max-input 1k || return
    local got
    got=$(timeout 20 python3 "$T_DIR/chunked.py" "$R_PORT" $((4 << 20)))
    assert_eq "$got" 413 "4 MiB chunked body over --max-input 1k"
    assert_exit "$R_PID" 5 65 "exit after 413"
    # far beyond: past the 64 MiB drained for the 413 the connection is cut
    start_replica --max-input 1k || return
    got=$(timeout 30 python3 "$T_DIR/chunked.py" "$R_PORT" $((80 << 20)))
    [[ "$got" =~ ^(413|cut)$ ]] || fail "80 MiB chunked body: '$got'"
    assert_exit "$R_PID" 10 65 "exit after the cut"
    # an absurd chunk size: refused, the slot is freed, the replica stays
    start_replica --max-input 1k --idle-timeout 30 || return
    printf 'POST /job HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\nab\r\n' \
        >"$T_DIR/chunk-size"
    send_raw '400|413|closed' "$T_DIR/chunk-size"
    http POST "$(U '/job?duration=0')"
    assert_eq "$H_CODE" 200 "job after the bad chunk size"
    assert_exit "$R_PID" 5 0 "exit"
}

# Invalid framing: 400 and the connection closed, the job not taken; the
# replica logs one warning per request and keeps serving. Each would run a
# job on a prefix of its body, or leave the rest to be read as another
# request (where a proxy in front may have framed it the other way).
# libmicrohttpd refuses a Content-Length that is not a number itself
# (the "mhd-" cases, logged at debug), before any handler sees it.
t_bad_framing() {
    start_replica --core echo --idle-timeout 60 || return
    local name got warned want=0 h='POST /job HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
    local -a cases=(
        "two-lengths:${h}Content-Length: 2\r\nContent-Length: 16\r\n\r\n{\"duration\":0}  "
        "same-length-twice:${h}Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}"
        "length-and-chunked:${h}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
        "chunked-and-length:${h}Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
        "chunked-twice:${h}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
        "gzip-chunked:${h}Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
        "identity-and-length:${h}Transfer-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}"
        "space-before-colon:${h}Content-Length : 2\r\n\r\n{}"
        "tab-before-colon:${h}Transfer-Encoding\t: chunked\r\nContent-Length: 2\r\n\r\n{}"
        "chunked-with-bad-length:${h}Transfer-Encoding: chunked\r\nContent-Length: 2x\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
        "health-two-lengths:GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\n"
        "mhd-non-numeric-length:${h}Content-Length: 2x\r\n\r\n{}"
        "mhd-list-length:${h}Content-Length: 2, 2\r\n\r\n{}"
        "mhd-signed-length:${h}Content-Length: +2\r\n\r\n{}"
    )
    for c in "${cases[@]}"; do
        name=${c%%:*}
        printf "${c#*:}" >"$T_DIR/framing-$name"
        got=$(timeout 15 python3 "$T_DIR/framing.py" "$R_PORT" "$T_DIR/framing-$name" 2>&1)
        # (libmicrohttpd 0.9.75 writes its own error's header block twice)
        [[ "$got" =~ ^400( 400)?\ closed$ ]] || fail "$name: answered '$got', expected '400 closed'"
        kill -0 "$R_PID" 2>/dev/null || break
        [[ "$name" == mhd-* ]] || want=$((want + 1))
        warned=$(grep -c '"level":"warn".*refused (400): invalid framing: ' "$R_LOG")
        assert_eq "$warned" "$want" "$name: warning lines so far"
    done
    alive
    assert_not_contains "$(cat "$R_LOG")" 'claimed job' "no job was taken"
    http POST "$(U '/job')" -H 'Content-Type: application/json' -d '{"duration":0}'
    assert_eq "$H_CODE" 200 "a well-framed job afterwards"
    assert_exit "$R_PID" 5 0 "exit"
}

t_pipelined() {
    local req='POST /job?duration=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'
    # two jobs in one connection: the first runs and is answered, the
    # replica exits with its code; the second is never run
    start_replica || return
    printf "$req"'POST /job?duration=0 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n' >"$T_DIR/two-jobs"
    local got
    got=$(timeout 15 python3 "$T_DIR/raw.py" "$R_PORT" "$T_DIR/two-jobs")
    [[ "$got" =~ ^200( 503)?$ ]] || fail "two pipelined jobs answered '$got'"
    assert_exit "$R_PID" 5 0 "exit after two pipelined jobs"
    [ "$(grep -c 'Running job\|Request payload' "$R_LOG")" -le 2 ] || fail "ran more than one job"
    # GET /health pipelined behind the job
    start_replica || return
    printf "$req"'GET /health HTTP/1.1\r\nHost: x\r\n\r\n' >"$T_DIR/job-health"
    got=$(timeout 15 python3 "$T_DIR/raw.py" "$R_PORT" "$T_DIR/job-health")
    [[ "$got" =~ ^200( 200)?$ ]] || fail "job + health answered '$got'"
    assert_exit "$R_PID" 5 0 "exit after job + health"
    # a job pipelined behind GET /health (answered with Connection: close):
    # the job is dropped with the connection, the replica keeps waiting
    start_replica --idle-timeout 30 || return
    printf 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n'"$req" >"$T_DIR/health-job"
    got=$(timeout 15 python3 "$T_DIR/raw.py" "$R_PORT" "$T_DIR/health-job")
    [[ "$got" =~ ^200( 200)?$ ]] || fail "health + job answered '$got'"
    if [ "$got" = 200 ]; then
        alive
        http POST "$(U '/job?duration=0')"
        assert_eq "$H_CODE" 200 "job on a new connection"
    fi
    assert_exit "$R_PID" 5 0 "exit after health + job"
    check_sanitizers "$R_LOG"
}

t_run "hostile: slowloris, 500 connections, /health within 100 ms" t_slowloris
t_run "hostile: past the 1000-connection limit, soft fd limit raised" t_connection_limit
t_run "hostile: hard fd limit 300, connections capped, job unharmed" t_descriptor_limit
t_run "hostile: oversized header and URL, malformed requests" t_header_and_url_limits
t_run "hostile: chunked body beyond --max-input" t_chunked_beyond_max_input
t_run "hostile: invalid framing -> 400, connection closed, job not taken" t_bad_framing
t_run "hostile: pipelined requests around the job" t_pipelined
