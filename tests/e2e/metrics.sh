#!/usr/bin/env bash
# metrics.sh -- GET /metrics (Prometheus text format, read back with the
# prometheus_client parser) and --pushgateway: the final metrics pushed at
# exit to a real Prometheus Pushgateway, and to fake gateways that record
# the request, answer 500, or never answer.
. "$(dirname "$0")/../lib.sh"

U() { echo "http://127.0.0.1:$R_PORT$1"; }
replica_of() { grep -o '"replica":"[^"]*"' "${1:-$R_LOG}" | head -1 | cut -d'"' -f4; }

# Parse Prometheus text (file $1) with the reference Python parser (Debian's
# python3-prometheus-client, so /usr/bin/python3) and
# print "name{k=v,...} value" lines, sorted labels, for grep.
prom_parse() {
    /usr/bin/python3 - "$1" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1], encoding="utf-8").read()
for fam in text_string_to_metric_families(text):
    if fam.name.startswith("oneshot_"):
        assert fam.type == "gauge", (fam.name, fam.type)
        assert fam.documentation, fam.name
    for s in fam.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        v = s.value
        print(f"{s.name}{{{labels}}} {int(v) if v == int(v) else v}")
PY
}

# A fake gateway: python http.server on a free port, recording each
# request (line, headers, body) into $1.req; mode ok | 500 | hang.
# Sets G_PORT.
fake_gateway() { # file mode
    local out=$1 mode=$2 portfile
    portfile=$(mktemp -u "$T_DIR/gw.XXXXXX")
    python3 - "$out" "$mode" "$portfile" <<'PY' &
import http.server, socket, sys, time
out, mode, portfile = sys.argv[1:4]
if mode == "hang":   # accepts connections (the backlog) but never answers
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
    open(portfile + ".tmp", "w").write(str(s.getsockname()[1]))
    import os; os.rename(portfile + ".tmp", portfile)
    time.sleep(120)
    sys.exit(0)
class H(http.server.BaseHTTPRequestHandler):
    def handle_one(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "ab") as f:
            f.write(f"{self.command} {self.path}\n{self.headers}".encode() + b"\n" + body + b"\n--end--\n")
        code = 500 if mode == "500" else 200
        self.send_response(code)
        msg = b"push failed on purpose\n" if code == 500 else b""
        self.send_header("Content-Length", str(len(msg))); self.end_headers(); self.wfile.write(msg)
    do_PUT = do_POST = handle_one
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
import os
open(portfile + ".tmp", "w").write(str(srv.server_address[1])); os.rename(portfile + ".tmp", portfile)
srv.timeout = 120
srv.handle_request(); srv.handle_request()
PY
    T_PIDS+=($!)
    wait_for 10 test -s "$portfile" || { fail "fake gateway did not start"; return 1; }
    G_PORT=$(cat "$portfile")
}

# The real Pushgateway (Debian's prometheus-pushgateway) on a free port.
# Sets P_PORT.
start_pushgateway() {
    local i
    for i in 1 2 3; do
        P_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        prometheus-pushgateway --web.listen-address="127.0.0.1:$P_PORT" >"$T_DIR/pgw.log" 2>&1 &
        T_PIDS+=($!)
        wait_for 10 curl -sf "http://127.0.0.1:$P_PORT/-/ready" && return 0
    done
    fail "pushgateway did not start: $(tail -2 "$T_DIR/pgw.log")"
    return 1
}

t_metrics_idle() {
    start_replica --idle-timeout 30 || return
    curl -s -m 5 -D "$T_DIR/h" -o "$T_DIR/m" "$(U /metrics)"
    assert_contains "$(cat "$T_DIR/h")" "200" "status"
    assert_contains "$(tr -d '\r' <"$T_DIR/h")" "Content-Type: text/plain; version=0.0.4" "content type"
    prom_parse "$T_DIR/m" >"$T_DIR/p" || { fail "not Prometheus text: $(head -c 300 "$T_DIR/m")"; return; }
    local p version
    p=$(cat "$T_DIR/p")
    version=$("$ONESHOT" --version | awk 'NR == 1 {print $2}')
    assert_contains "$p" "oneshot_up{} 1"
    assert_contains "$p" "oneshot_build_info{version=$version} 1"
    assert_contains "$p" "oneshot_state{state=idle} 1"
    assert_contains "$p" "oneshot_state{state=running} 0"
    assert_contains "$p" "oneshot_replica_info{job_id=,replica=$(replica_of),source=http} 1"
    assert_contains "$p" "oneshot_job_progress{} 0"
    assert_contains "$p" "oneshot_uptime_seconds{}"
    assert_contains "$p" "oneshot_start_time_seconds{}"
    assert_not_contains "$p" "oneshot_exit_code" "exit code before the end"
    assert_not_contains "$p" "oneshot_job_duration_seconds" "duration before a job"
    http POST "$(U /metrics)"
    assert_eq "$H_CODE" 405 "POST /metrics"
    http HEAD "$(U /metrics)" -I
    assert_eq "$H_CODE" 200 "HEAD /metrics"
    kill -TERM "$R_PID"
    assert_exit "$R_PID" 5 143 "SIGTERM while idle"
}

t_metrics_running() {
    start_replica || return
    curl -s -m 20 -X POST -H 'X-Inference-Id: metrics-run-1' -o /dev/null "$(U '/job?duration=2')" &
    local c=$!
    wait_for 5 sh -c "curl -s $(U /health) | grep -q '\"state\":\"running\"'" || fail "never running"
    sleep 0.3
    curl -s -m 5 -o "$T_DIR/m" "$(U /metrics)"
    prom_parse "$T_DIR/m" >"$T_DIR/p" || { fail "not Prometheus text"; return; }
    local p d
    p=$(cat "$T_DIR/p")
    assert_contains "$p" "oneshot_state{state=running} 1"
    assert_contains "$p" "oneshot_state{state=idle} 0"
    assert_contains "$p" "job_id=metrics-run-1"
    d=$(sed -n 's/^oneshot_job_duration_seconds{} //p' "$T_DIR/p")
    python3 -c "import sys; d=float('${d:-x}'); sys.exit(0 if 0 < d < 3 else 1)" 2>/dev/null ||
        fail "job duration while running: '$d'"
    wait "$c"
    assert_exit "$R_PID" 10 0 "exit"
}

t_push_real_gateway() {
    start_pushgateway || return
    start_replica --pushgateway "http://127.0.0.1:$P_PORT" --log-level debug || return
    local rep
    rep=$(replica_of)
    http POST "$(U '/job?duration=1')" -H 'X-Inference-Id: push-ok-1'
    assert_eq "$H_CODE" 200 "job"
    assert_exit "$R_PID" 10 0 "exit code"
    assert_contains "$(cat "$R_LOG")" "pushed the final metrics to 127.0.0.1:$P_PORT"
    curl -s -m 5 "http://127.0.0.1:$P_PORT/metrics" >"$T_DIR/g"
    prom_parse "$T_DIR/g" >/dev/null || fail "the gateway's /metrics does not parse"
    # The gateway re-exposes what it accepted, with job and instance.
    local g
    g=$(grep "instance=\"$rep\"" "$T_DIR/g" | grep 'job="oneshot"')
    assert_contains "$g" 'oneshot_exit_code{instance="'"$rep"'",job="oneshot"} 0' "gateway exit code"
    assert_contains "$g" 'oneshot_up{instance="'"$rep"'",job="oneshot"} 0' "pushed up = 0"
    assert_contains "$g" 'oneshot_job_state{instance="'"$rep"'",job="oneshot",state="succeeded"} 1'
    assert_contains "$g" 'oneshot_state{instance="'"$rep"'",job="oneshot",state="exiting"} 1'
    assert_contains "$g" 'job_id="push-ok-1"'
    echo "$g" | grep -Eq '^oneshot_job_duration_seconds\{[^}]*\} 1(\.[0-9]+)?$' || fail "duration not ~1 s: $(echo "$g" | grep duration)"
    assert_contains "$g" 'oneshot_job_attempt{'
    assert_contains "$g" 'oneshot_job_cpu_seconds{'
    assert_contains "$g" 'oneshot_job_max_rss_bytes{'
}

t_push_records_failed_job() {
    fake_gateway "$T_DIR/req" ok || return
    start_replica --pushgateway "http://pushuser:s3cr%40t@127.0.0.1:$G_PORT/prefix/" || return
    local rep
    rep=$(replica_of)
    http POST "$(U '/job?duration=0&failed=true')"
    assert_eq "$H_CODE" 500 "job"
    assert_exit "$R_PID" 10 1 "exit code stays the job's"
    wait_for 5 grep -q -- '--end--' "$T_DIR/req" || { fail "no push received"; return; }
    local req
    req=$(tr -d '\r' <"$T_DIR/req")
    assert_contains "$req" "PUT /prefix/metrics/job/oneshot/instance/$rep" "method and path"
    assert_contains "$req" "Content-Type: text/plain; version=0.0.4" "content type"
    assert_contains "$req" "Authorization: Basic $(printf 'pushuser:s3cr@t' | base64)" "basic auth"
    assert_contains "$req" "oneshot_exit_code 1"
    assert_contains "$req" 'oneshot_job_state{state="failed"} 1'
    assert_not_contains "$(cat "$R_LOG")" "s3cr" "password in the log"
    sed -n '/^# HELP/,/--end--/p' "$T_DIR/req" | grep -v -- '--end--' >"$T_DIR/body"
    prom_parse "$T_DIR/body" >/dev/null || fail "pushed body is not Prometheus text"
}

t_push_idle_and_deadline() {
    # No job before --idle-timeout: 75, pushed.
    fake_gateway "$T_DIR/req1" ok || return
    start_replica --idle-timeout 1 --pushgateway "http://127.0.0.1:$G_PORT" || return
    assert_exit "$R_PID" 10 75 "idle exit"
    wait_for 5 grep -q -- '--end--' "$T_DIR/req1" || fail "idle: no push"
    assert_contains "$(cat "$T_DIR/req1")" 'oneshot_job_state{state="idle"} 1'
    assert_contains "$(cat "$T_DIR/req1")" "oneshot_exit_code 75"
    # The deadline cancels the job: 124, pushed, and the termination log too.
    fake_gateway "$T_DIR/req2" ok || return
    start_replica --deadline 3 --deadline-margin 1 --pushgateway "http://127.0.0.1:$G_PORT" \
        --termination-log "$T_DIR/term.json" || return
    http POST "$(U '/job?duration=30')"
    assert_eq "$H_CODE" 504 "deadline answer"
    assert_exit "$R_PID" 10 124 "deadline exit"
    wait_for 5 grep -q -- '--end--' "$T_DIR/req2" || fail "deadline: no push"
    assert_contains "$(cat "$T_DIR/req2")" "oneshot_exit_code 124"
    assert_contains "$(cat "$T_DIR/req2")" 'oneshot_job_state{state="timed_out"} 1'
    assert_contains "$(cat "$T_DIR/term.json" 2>/dev/null)" '"exit_code":124'
}

# A gateway that fails never changes the exit code, and never holds the
# replica much past the push timeout (2 s).
t_push_failures_are_warnings() {
    local port t0 t1
    # Nothing listens.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    start_replica --pushgateway "http://127.0.0.1:$port" || return
    http POST "$(U '/job?duration=0')"
    assert_exit "$R_PID" 5 0 "unreachable gateway: exit code"
    assert_contains "$(cat "$R_LOG")" '"level":"warn"'
    assert_contains "$(cat "$R_LOG")" "final metrics not pushed"
    # The gateway answers 500.
    fake_gateway "$T_DIR/req500" 500 || return
    start_replica --pushgateway "http://127.0.0.1:$G_PORT" || return
    http POST "$(U '/job?duration=0&failed=1')"
    assert_exit "$R_PID" 5 1 "500 from the gateway: exit code"
    assert_contains "$(cat "$R_LOG")" "500"
    # The gateway accepts the connection and never answers.
    fake_gateway "$T_DIR/reqhang" hang || return
    start_replica --pushgateway "http://127.0.0.1:$G_PORT" || return
    t0=$(date +%s%N)
    http POST "$(U '/job?duration=0')"
    assert_exit "$R_PID" 10 0 "silent gateway: exit code"
    t1=$(date +%s%N)
    [ $(((t1 - t0) / 1000000)) -lt 4500 ] || fail "silent gateway held the replica $(((t1 - t0) / 1000000)) ms"
    assert_contains "$(cat "$R_LOG")" "no answer within 2000 ms"
    # A URL it cannot use (https, a bad port) is refused at start: exit 78,
    # one line naming the setting, nothing consumed.
    local out
    out=$("$ONESHOT" --port 0 --pushgateway "https://127.0.0.1:9091" 2>&1)
    assert_eq "$?" 78 "https URL: exit code"
    assert_contains "$out" "--pushgateway: https is not supported"
    out=$("$ONESHOT" --port 0 --pushgateway "http://127.0.0.1:99999" 2>&1)
    assert_eq "$?" 78 "bad port: exit code"
    assert_contains "$out" "--pushgateway"
}

t_push_grouping_from_url() {
    fake_gateway "$T_DIR/reqg" ok || return
    start_replica --pushgateway "http://127.0.0.1:$G_PORT/metrics/job/batch/team/vision" || return
    http POST "$(U '/job?duration=0')"
    assert_exit "$R_PID" 5 0 "exit"
    wait_for 5 grep -q -- '--end--' "$T_DIR/reqg" || { fail "no push"; return; }
    assert_eq "$(head -1 "$T_DIR/reqg")" "PUT /metrics/job/batch/team/vision" "grouping key taken from the URL"
}

t_run "metrics: Prometheus text on GET /metrics while idle (state, build info, uptime)" t_metrics_idle
t_run "metrics: running job has state, job id and a growing duration" t_metrics_running
t_run "pushgateway: final metrics land in a real Prometheus Pushgateway" t_push_real_gateway
t_run "pushgateway: PUT path, content type, basic auth, failed job's exit code; no password logged" t_push_records_failed_job
t_run "pushgateway: idle (75) and deadline (124) pushed; termination log on the deadline" t_push_idle_and_deadline
t_run "pushgateway: unreachable, 500, silent or unusable gateway: warn, same exit code, bounded" t_push_failures_are_warnings
t_run "pushgateway: a grouping key in the URL is used as given" t_push_grouping_from_url
