#!/usr/bin/env bash
# image.sh -- the container image (deploy/Dockerfile: the static file on an
# empty base) built and run with podman as a user would run it. No image
# registry is reachable: deploy/podman/setup.sh installs podman and makes
# the debian:bookworm-slim base locally (debootstrap, cached; here only the
# probe of container networking uses it); `make static` (bounded, the build
# root cached) lays out build/image-root. Then: podman build --pull=never, run
# with -p 127.0.0.1:PORT:8000, /health, a job, exit codes 0/1/65/78 out of
# `podman run` and `podman wait`, `podman stop` delivering SIGTERM (143,
# termination log), and the figures: image size and start to healthy.
# Last, deploy/README.md "Add oneshot to your own image": a user's image made FROM
# the bullseye root with python3 (tests/deploy/bullseye_root.sh, imported once),
# COPY --from the oneshot image, whose job is `oneshot -- python3 job.py`.
#
# `make image-test` runs this file alone (ONESHOT_IMAGE_SUMMARY=1 adds the
# "N passed, N failed" line and the exit code).
. "$(dirname "$0")/../harness/lib.sh"

IMAGE=localhost/oneshot:test
BASE=docker.io/library/debian:bookworm-slim
RUN_LABEL=oneshot.test=$$
PT=timeout
IMG_PASS=0
IMG_FAIL=0

# Containers of this run go at exit, whatever happened; then lib.sh's own.
img_cleanup() {
    local ids
    ids=$($PT 30 podman ps -aq --filter "label=$RUN_LABEL" 2>/dev/null)
    [ -n "$ids" ] && $PT 60 podman rm -f -t 0 $ids >/dev/null 2>&1
    t_cleanup
}
trap img_cleanup EXIT

img_run() {
    t_run "$@"
    if [ "$T_FAILED" = 0 ]; then IMG_PASS=$((IMG_PASS + 1)); else IMG_FAIL=$((IMG_FAIL + 1)); fi
}
setup_fail() {
    echo "FAIL image set-up: $*"
    [ "${ONESHOT_IMAGE_SUMMARY:-}" = 1 ] && echo "0 passed, 1 failed"
    exit 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One image test at a time on a machine (the tag and the build cache are
# shared).
exec 9>/tmp/oneshot-image-test.lock
flock -w 900 9 || setup_fail "another image test holds /tmp/oneshot-image-test.lock"

# --- set-up: podman, the base image, networking, the build ---
t0=$(now_ms)
$PT 900 bash "$ROOT/deploy/podman/setup.sh" >"$T_DIR/setup.log" 2>&1 ||
    setup_fail "deploy/podman/setup.sh: $(tail -5 "$T_DIR/setup.log" | tr '\n' ' ')"
. "$ROOT/deploy/podman/env.sh"
echo "# image set-up (podman, base image) $(($(now_ms) - t0)) ms"

# Bridge networking (netavark + iptables) is the default; where it does not
# work, host networking: then `-p` means nothing and the replica is told
# its port with --port instead.
NET=bridge
if ! $PT 120 podman run --rm --pull=never --label "$RUN_LABEL" "$BASE" \
    sh -c 'apt-get -o Acquire::Retries=2 update -qq' >"$T_DIR/net.log" 2>&1; then
    if $PT 120 podman run --rm --pull=never --network host --label "$RUN_LABEL" "$BASE" \
        sh -c 'apt-get update -qq' >>"$T_DIR/net.log" 2>&1; then
        NET=host
    else
        setup_fail "no network for apt inside containers: $(tail -3 "$T_DIR/net.log" | tr '\n' ' ')"
    fi
fi
echo "# container networking: $NET"

t0=$(now_ms)
$PT 800 make -C "$ROOT" --no-print-directory static >"$T_DIR/static.log" 2>&1 ||
    setup_fail "make static: $(tail -5 "$T_DIR/static.log" | tr '\n' ' ')"
echo "# make static $(($(now_ms) - t0)) ms (build root cached)"
t0=$(now_ms)
build_net=()
[ "$NET" = host ] && build_net=(--network host)
$PT 900 podman build --pull=never --format docker "${build_net[@]}" \
    -f "$ROOT/deploy/Dockerfile" --ignorefile "$ROOT/deploy/Dockerfile.dockerignore" \
    -t "$IMAGE" "$ROOT" >"$T_DIR/build.log" 2>&1 ||
    setup_fail "podman build: $(grep -E 'error|Error' "$T_DIR/build.log" | tail -3 | tr '\n' ' ')"
echo "# podman build $(($(now_ms) - t0)) ms"
# Layers of builds older than two hours go (the current ones stay cached).
$PT 120 podman image prune -f --filter until=2h >/dev/null 2>&1

# start_ctr [podman run options...] -- [oneshot flags...]: a detached
# container of the image on a free loopback port. Sets C_ID, C_PORT.
start_ctr() {
    local opts=() flags=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    flags=("$@")
    C_PORT=$(free_port)
    if [ "$NET" = host ]; then
        opts+=(--network host)
        flags+=(--port "$C_PORT" --bind 127.0.0.1)
    else
        opts+=(-p "127.0.0.1:$C_PORT:8000")
    fi
    C_ID=$($PT 60 podman run -d --label "$RUN_LABEL" "${opts[@]}" "$IMAGE" "${flags[@]}" 2>>"$T_DIR/podman.log")
    [ -n "$C_ID" ] || { fail "podman run failed: $(tail -2 "$T_DIR/podman.log")"; return 1; }
}
CU() { echo "http://127.0.0.1:$C_PORT$1"; }
healthy() { curl -sf -m 1 "$(CU /health)" | grep -q '"status":"ok"'; }
# ctr_wait ID SECONDS: the container's exit code (podman wait), or "timeout".
ctr_wait() { $PT "$2" podman wait "$1" 2>/dev/null || echo timeout; }

# --- tests ---

t_image() {
    local size mb cfg
    size=$($PT 30 podman image inspect --format '{{.Size}}' "$IMAGE")
    mb=$((size / 1000000))
    echo "# figure: image size $mb MB ($size bytes; goal <= 15 MB: the static file on an empty base)"
    [ "$size" -le 15000000 ] || fail "image is $size bytes, over 15 MB"
    cfg=$($PT 30 podman image inspect --format \
        '{{.Config.User}}|{{.Config.Entrypoint}}|{{.Config.Cmd}}|{{.Config.StopSignal}}|{{range $p, $_ := .Config.ExposedPorts}}{{$p}}{{end}}|{{.Config.Healthcheck.Test}}' "$IMAGE")
    assert_contains "$cfg" "10001:10001|[/usr/local/bin/oneshot]|[]|SIGTERM|8000/tcp|" "image config"
    assert_contains "$cfg" "/usr/local/bin/oneshot healthcheck" "healthcheck"
    # Its whole file system: the binary, its notice, CA certificates,
    # passwd/group, /tmp (1777). No shell, no libc, no package manager.
    local c files
    c=$($PT 30 podman create --label "$RUN_LABEL" "$IMAGE" 2>/dev/null)
    $PT 60 podman export -o "$T_DIR/fs.tar" "$c" || fail "podman export"
    $PT 30 podman rm -f "$c" >/dev/null 2>&1
    files=$(tar -tvf "$T_DIR/fs.tar" | awk '{print $1, $6}' | sed 's|^\([^ ]*\) \./|\1 |; s|/$||' | sort -k2)
    for f in usr/local/bin/oneshot usr/local/bin/oneshot.NOTICE etc/passwd etc/group etc/ssl/certs/ca-certificates.crt; do
        echo "$files" | grep -q " $f\$" || fail "$f missing from the image"
    done
    echo "$files" | grep -q '^drwxrwxrwt tmp$' || fail "/tmp not 1777: $(echo "$files" | grep ' tmp$')"
    local extra
    extra=$(echo "$files" | awk '$1 !~ /^d/ {print $2}' | grep -vxE 'usr/local/bin/oneshot(\.NOTICE)?|etc/(passwd|group)|etc/ssl/certs/ca-certificates.crt')
    [ -z "$extra" ] || fail "files beyond the static file's: $(echo "$extra" | head -5 | tr '\n' ' ')"
    tar -xOf "$T_DIR/fs.tar" --wildcards '*etc/passwd' | grep -q '^oneshot:x:10001:10001:' || fail "/etc/passwd lacks the user 10001"
    local v
    v=$($PT 60 podman run --rm --label "$RUN_LABEL" "$IMAGE" --version 2>&1)
    assert_contains "$v" "librdkafka 2." "--version"
    assert_contains "$v" "static build" "--version"
    assert_contains "$v" "hiredis_ssl" "--version"
}

t_flags_and_env_pass() {
    local out
    out=$($PT 60 podman run --rm --label "$RUN_LABEL" -e ONESHOT_QUEUE=from-env "$IMAGE" \
        --print-config --source redis-list 2>&1)
    assert_contains "$out" '"source":	"redis-list"' "flag after the image name"
    assert_contains "$out" '"queue":	"from-env"' "ONESHOT_* from -e"
    assert_contains "$out" '"port":	8000' "default port"
    assert_contains "$out" '"core":	"demo"' "default core"
}

t_demo_job() {
    local t0 ms
    t0=$(now_ms)
    start_ctr || return
    wait_for 20 healthy || { fail "never healthy: $($PT 10 podman logs "$C_ID" 2>&1 | tail -3)"; return; }
    ms=$(($(now_ms) - t0))
    echo "# figure: container start to healthy $ms ms (podman run -d to the first 200 on /health; goal <= 1000 ms)"
    $PT 30 podman healthcheck run "$C_ID" >/dev/null 2>&1 || fail "podman healthcheck run: unhealthy"
    http POST "$(CU '/job?duration=1')" -H 'Content-Type: application/json' -d '{"note":"image"}'
    assert_eq "$H_CODE" 200 "job"
    assert_contains "$H_BODY" '"success":true'
    assert_eq "$(ctr_wait "$C_ID" 20)" 0 "podman wait"
    local logs
    logs=$($PT 30 podman logs "$C_ID" 2>&1)
    assert_contains "$logs" "Progress: 1/1 seconds elapsed" "log"
    assert_contains "$logs" '"exit_code":0' "last log line"
}

t_start_to_healthy() {
    local i t0 ms all=()
    for i in 1 2 3; do
        t0=$(now_ms)
        start_ctr || return
        wait_for 20 healthy || { fail "never healthy"; return; }
        ms=$(($(now_ms) - t0))
        all+=("$ms")
        $PT 30 podman rm -f -t 0 "$C_ID" >/dev/null 2>&1
    done
    local med
    med=$(printf '%s\n' "${all[@]}" | sort -n | sed -n 2p)
    echo "# figure: container start to healthy, median of 3: $med ms (runs: ${all[*]}; goal <= 1000 ms)"
    [ "$med" -le 3000 ] || fail "start to healthy $med ms"
}

t_exit_codes() {
    local rc
    # 1: the job failed.
    start_ctr || return
    wait_for 20 healthy || { fail "never healthy"; return; }
    http POST "$(CU '/job?duration=0&failed=true')"
    assert_eq "$H_CODE" 500 "failed job"
    assert_eq "$(ctr_wait "$C_ID" 20)" 1 "podman wait, failed job"
    assert_eq "$($PT 30 podman inspect --format '{{.State.ExitCode}}' "$C_ID")" 1 "inspect, failed job"
    # 65: bad input.
    start_ctr || return
    wait_for 20 healthy || { fail "never healthy"; return; }
    http POST "$(CU '/job?duration=abc')"
    assert_eq "$H_CODE" 422 "bad input"
    assert_eq "$(ctr_wait "$C_ID" 20)" 65 "podman wait, bad input"
    # 78: bad configuration, straight out of a foreground `podman run`.
    rc=0
    $PT 60 podman run --rm --label "$RUN_LABEL" "$IMAGE" --port abc >"$T_DIR/cfg.out" 2>&1 || rc=$?
    assert_eq "$rc" 78 "podman run, bad flag"
    assert_contains "$(cat "$T_DIR/cfg.out")" "--port" "config error names the setting"
    # 0 from a foreground `podman run` too (the replica exits after its job).
    rc=0
    $PT 60 podman run --rm --label "$RUN_LABEL" "$IMAGE" --idle-timeout 1 >/dev/null 2>&1 || rc=$?
    assert_eq "$rc" 75 "podman run, idle timeout"
}

t_stop_sends_sigterm() {
    local tl=$T_DIR/tl t0 ms
    mkdir -p "$tl" && chmod 0777 "$tl"
    # Idle: SIGTERM ends it at once with 143 (SIGKILL would be 137).
    start_ctr || return
    wait_for 20 healthy || { fail "never healthy"; return; }
    t0=$(now_ms)
    $PT 30 podman stop -t 20 "$C_ID" >/dev/null 2>&1
    ms=$(($(now_ms) - t0))
    assert_eq "$(ctr_wait "$C_ID" 10)" 143 "podman stop, idle"
    [ "$ms" -lt 5000 ] || fail "podman stop took $ms ms (SIGTERM not handled?)"
    # Running: the job outlives --term-grace 1: answered 503, given back,
    # 143, and the termination log says so.
    start_ctr -v "$tl:/tl" -- --term-grace 1 --termination-log /tl/term.json || return
    wait_for 20 healthy || { fail "never healthy"; return; }
    curl -s -m 30 -X POST -o "$T_DIR/job.body" -w '%{http_code}' "$(CU '/job?duration=30')" >"$T_DIR/job.code" &
    local c=$!
    wait_for 10 sh -c "curl -s $(CU /health) | grep -q '\"state\":\"running\"'" || fail "never running"
    t0=$(now_ms)
    $PT 40 podman stop -t 25 "$C_ID" >/dev/null 2>&1
    ms=$(($(now_ms) - t0))
    wait "$c"
    assert_eq "$(cat "$T_DIR/job.code")" 503 "answer to the interrupted job"
    assert_eq "$(ctr_wait "$C_ID" 10)" 143 "podman stop, running"
    [ "$ms" -lt 10000 ] || fail "podman stop took $ms ms"
    local term
    term=$(cat "$tl/term.json" 2>/dev/null)
    # An HTTP job is not re-delivered: its record ends final.
    assert_contains "$term" '"state":"failed"' "termination log"
    assert_contains "$term" '"exit_code":143' "termination log"
    [ "$(stat -c %s "$tl/term.json" 2>/dev/null || echo 99999)" -lt 4096 ] || fail "termination log over 4 KiB"
}

# deploy/README.md "Add oneshot to your own image": a user's image from another base
# (the bullseye root with python3, imported once under a tag that names its
# recipe), the static file COPY --from the oneshot image, the job
# `oneshot -- python3 job.py`, run with podman like the image itself.
t_user_image() {
    local broot=${ONESHOT_BULLSEYE_ROOT:-/var/cache/oneshot/bullseye-python3} tag u=$T_DIR/user
    $PT 600 bash "$ROOT/tests/deploy/bullseye_root.sh" "$broot" >"$T_DIR/bullseye.log" 2>&1 ||
        { fail "bullseye root: $(tail -3 "$T_DIR/bullseye.log" | tr '\n' ' ')"; return; }
    tag=localhost/oneshot-test-bullseye:$(head -c 12 "$broot/.oneshot-recipe")
    if ! podman image exists "$tag"; then
        tar -C "$broot" --numeric-owner -c . | $PT 300 podman import -q - "$tag" >/dev/null ||
            { fail "podman import of the bullseye root"; return; }
    fi
    mkdir -p "$u"
    cat >"$u/job.py" <<'PY'
import json, sys
job = json.load(sys.stdin)
print(json.dumps({"sum": job["a"] + job["b"], "python": sys.version.split()[0]}))
PY
    cat >"$u/Containerfile" <<EOF
FROM $tag
COPY --from=$IMAGE /usr/local/bin/oneshot /usr/local/bin/oneshot
COPY job.py /app/job.py
WORKDIR /app
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/oneshot", "--", "python3", "job.py"]
EOF
    $PT 300 podman build --pull=never --format docker -t localhost/oneshot-user:test "$u" >"$T_DIR/user-build.log" 2>&1 ||
        { fail "podman build of the user image: $(tail -3 "$T_DIR/user-build.log" | tr '\n' ' ')"; return; }
    local saved=$IMAGE
    IMAGE=localhost/oneshot-user:test
    start_ctr
    IMAGE=$saved
    [ -n "$C_ID" ] || return
    wait_for 20 healthy || { fail "never healthy: $($PT 10 podman logs "$C_ID" 2>&1 | tail -3)"; return; }
    http POST "$(CU /job)" -H 'Content-Type: application/json' -d '{"a":2,"b":40}'
    assert_eq "$H_CODE" 200 "job ($($PT 10 podman logs "$C_ID" 2>&1 | tail -2 | tr '\n' ' '))"
    assert_contains "$H_BODY" '"sum": 42' "python3's answer"
    assert_contains "$H_BODY" '"python": "3.9' "the base's own python3 (bullseye: 3.9)"
    assert_eq "$(ctr_wait "$C_ID" 20)" 0 "podman wait"
    $PT 60 podman rmi -f localhost/oneshot-user:test >/dev/null 2>&1
}

img_run "image: <= 15 MB, config (non-root, EXPOSE, STOPSIGNAL, HEALTHCHECK, ENTRYPOINT), the static file and nothing else" t_image
img_run "image: flags after the image name and ONESHOT_* env reach the binary" t_flags_and_env_pass
img_run "image: podman run -p, /health, healthcheck, a demo job, podman wait 0" t_demo_job
img_run "image: container start to healthy" t_start_to_healthy
img_run "image: exit codes 1, 65 (podman wait), 78 and 75 (podman run)" t_exit_codes
img_run "image: podman stop delivers SIGTERM: 143 idle and running, termination log" t_stop_sends_sigterm
img_run "image: a user's image FROM bullseye + python3 with COPY --from the oneshot image runs \`oneshot -- python3 job.py\`" t_user_image

if [ "${ONESHOT_IMAGE_SUMMARY:-}" = 1 ]; then
    echo "$IMG_PASS passed, $IMG_FAIL failed"
    [ "$IMG_FAIL" = 0 ]
fi
