#!/usr/bin/env bash
# deploy_run.sh -- the deploy files run for real, with the
# container runtimes this machine has (no cluster, no registry):
#
#  1. each ScaledJob of deploy/k8s: its Job template's pod spec as written
#     (tests/deploy/podspec.py takes it out of the YAML) played with
#     `podman kube play`, the Secret of credentials.yaml in podman's secret
#     store (and the Kafka template's CA Secret, with a CA made here); the
#     broker (Redis, or the tests' Kafka with its SASL_SSL listener) runs
#     inside the pod's own network namespace on the loopback address
#     (nsenter), where the manifest's host names point.
#     Checked: the security context, the liveness probe's path and port, the
#     composed environment, one job in the store, the exit code and what
#     podFailurePolicy does with it, the termination message.
#  2. deploy/compose.yaml with podman-compose (images built here).
#  3. deploy/verda/job-deployment.json's container settings on the image.
#
# Where podman cannot honour a field as Kubernetes would, a `#` line says
# which and the test checks the field another way (deploy/README.md "Run
# for real"). Nothing is skipped: a missing tool is a FAIL.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../brokers/tls/lib.sh"

IMAGE=localhost/oneshot:test
BASE=docker.io/library/debian:bookworm-slim
PS="/usr/bin/python3 $ROOT/tests/deploy/podspec.py"
K8S=$ROOT/deploy/k8s
CRED=$K8S/credentials.yaml
RUN_LABEL=oneshot.test=$$
PT=timeout
DR_PODS=()

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_s SECONDS cmd...: wall-clock bounded (lib.sh's wait_for counts
# tries, and a podman command takes a tenth of a second or more).
wait_s() {
    local end=$(($(now_ms) + $1 * 1000))
    shift
    while [ "$(now_ms)" -lt "$end" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.3
    done
    return 1
}
T0=$(now_ms)

dr_cleanup() {
    local p ids
    for p in "${DR_PODS[@]:-}"; do
        [ -n "$p" ] && $PT 60 podman pod rm -f -t 0 "$p" >/dev/null 2>&1
    done
    if [ -n "${DR_COMPOSE:-}" ]; then
        $PT 120 $DR_COMPOSE down -v -t 0 >/dev/null 2>&1
        $PT 30 podman network rm -f "$CNET" >/dev/null 2>&1
    fi
    ids=$($PT 30 podman ps -aq --filter "label=$RUN_LABEL" 2>/dev/null)
    [ -n "$ids" ] && $PT 60 podman rm -f -t 0 $ids >/dev/null 2>&1
    for p in "$T_DIR"/*.redis.pid "$T_DIR"/*.kafka.pid; do
        [ -f "$p" ] && kill -KILL $(cat "$p") 2>/dev/null
    done
    [ "${DR_KUBE_NET:-}" = made ] && $PT 30 podman network rm -f podman-default-kube-network >/dev/null 2>&1
    $PT 30 podman secret rm oneshot-broker >/dev/null 2>&1
    $PT 30 podman volume rm -f tmp >/dev/null 2>&1
    if [ -n "${KCA_SECRET:-}" ]; then
        $PT 30 podman secret rm "$KCA_SECRET" >/dev/null 2>&1
        $PT 30 podman volume rm -f "$KCA_SECRET" >/dev/null 2>&1
    fi
    t_cleanup
}
trap dr_cleanup EXIT

setup_fail() {
    echo "FAIL deploy run set-up: $*"
    exit 1
}

# The image test's lock: one podman image test at a time (the tag, the
# build cache, the secret name and the pod port 8000 are the machine's).
exec 9>/tmp/oneshot-image-test.lock
flock -w 900 9 || setup_fail "another image test holds /tmp/oneshot-image-test.lock"

for c in podman nsenter curl redis-server redis-cli podman-compose /usr/bin/catatonit; do
    command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] ||
        setup_fail "$c is missing (make deps installs it: tests/harness/deps.sh)"
done
/usr/bin/python3 -c 'import yaml' 2>/dev/null || setup_fail "python3-yaml is missing (make deps)"

$PT 900 bash "$ROOT/deploy/podman/setup.sh" >"$T_DIR/setup.log" 2>&1 ||
    setup_fail "deploy/podman/setup.sh: $(tail -5 "$T_DIR/setup.log" | tr '\n' ' ')"
. "$ROOT/deploy/podman/env.sh"

# The image as tests/e2e/image.sh builds it (its layers are cached: when
# nothing changed this is a cache hit, and image.sh's build is one after).
t0=$(now_ms)
$PT 800 make -C "$ROOT" --no-print-directory static >"$T_DIR/static.log" 2>&1 ||
    setup_fail "make static: $(tail -5 "$T_DIR/static.log" | tr '\n' ' ')"
$PT 900 podman build --pull=never --format docker \
    -f "$ROOT/deploy/Dockerfile" --ignorefile "$ROOT/deploy/Dockerfile.dockerignore" \
    -t "$IMAGE" "$ROOT" >"$T_DIR/build.log" 2>&1 ||
    setup_fail "podman build: $(grep -E 'error|Error' "$T_DIR/build.log" | tail -3 | tr '\n' ' ')"
echo "# podman build $(($(now_ms) - t0)) ms"

# =====================================================================
# 1. The ScaledJobs' pod templates, played with podman kube play.
# =====================================================================

# The manifests' image name, served from local storage: imagePullPolicy
# IfNotPresent then pulls nothing.
MIMG=$($PS get "$K8S/scaledjob-redis-list.yaml" containers.0.image)
$PT 30 podman tag "$IMAGE" "$MIMG" || setup_fail "podman tag $MIMG"

ns_run() { nsenter -t "$POD_PID" -n "$@"; }
# The test's own side of Redis: its unix socket (the pod's namespace goes
# with the pod).
rcli() { redis-cli -s "$T_DIR/$POD.redis.sock" -a "$REDIS_PW" --no-auth-warning "$@"; }

# play_pod FILE NAME: the wrapped pod created (not started), its infra
# container started; sets POD, CTR, POD_PID (the infra's pid, whose
# network namespace the pod shares), POD_IP.
play_pod() {
    local f=$1
    POD=$2
    CTR=$POD-$($PS get "$f" containers.0.name)
    $PS pod "$f" "$POD" "$T_DIR/$POD.yaml" "$CRED" || { fail "podspec.py pod $f"; return 1; }
    DR_PODS+=("$POD")
    $PT 60 podman kube play --start=false "$T_DIR/$POD.yaml" >"$T_DIR/$POD.play" 2>&1 ||
        { fail "podman kube play: $(tail -2 "$T_DIR/$POD.play")"; return 1; }
    local infra
    infra=$(podman pod inspect "$POD" --format '{{.InfraContainerID}}')
    $PT 30 podman start "$infra" >/dev/null || { fail "infra start"; return 1; }
    POD_PID=$(podman inspect "$infra" --format '{{.State.Pid}}')
    POD_IP=$(podman inspect "$infra" --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}')
}

# The Redis the manifests name (redis.redis.svc:6379, password from the
# Secret), inside the pod's network namespace on 127.0.0.1.
pod_redis() {
    ns_run redis-server --port 6379 --bind 127.0.0.1 --requirepass "$REDIS_PW" \
        --unixsocket "$T_DIR/$POD.redis.sock" --save '' --appendonly no --daemonize yes --dir "$T_DIR" \
        --logfile "$T_DIR/$POD.redis.log" --pidfile "$T_DIR/$POD.redis.pid" ||
        { fail "redis-server in the pod's network namespace"; return 1; }
    wait_s 10 rcli PING || { fail "redis never answered"; return 1; }
}

# The security context as podman applied it, and as the running process
# has it (/proc/PID/status of the replica).
check_security() {
    local f=$1 cfg pid st
    cfg=$(podman inspect "$CTR" --format '{{.Config.User}}|{{.HostConfig.ReadonlyRootfs}}|{{.EffectiveCaps}}|{{.HostConfig.SecurityOpt}}')
    assert_eq "$cfg" "$($PS get "$f" securityContext.runAsUser):$($PS get "$f" securityContext.runAsGroup)|true|[]|[no-new-privileges]" "podman inspect user|readOnlyRootFilesystem|caps|allowPrivilegeEscalation"
    pid=$(podman inspect "$CTR" --format '{{.State.Pid}}')
    st=$(cat "/proc/$pid/status" 2>/dev/null)
    assert_contains "$st" "$(printf 'Uid:\t10001\t10001\t10001\t10001')" "running uid"
    assert_contains "$st" "$(printf 'CapEff:\t0000000000000000')" "effective capabilities"
    assert_contains "$st" "$(printf 'CapBnd:\t0000000000000000')" "bounding set (drop ALL)"
    assert_contains "$st" "$(printf 'NoNewPrivs:\t1')" "no new privileges"
    assert_contains "$st" "$(printf 'Seccomp:\t2')" "seccompProfile RuntimeDefault (a filter)"
    # A read-only root: the replica's own mount table says ro.
    assert_contains "$(awk '$2 == "/" {print $4}' "/proc/$pid/mounts")" "ro" "root mount"
    # As the replica's user: the root refuses a write, the volume at /tmp
    # (the spec's emptyDir, where an exec core works) takes one. The image
    # has no shell: a host shell as uid 10001 writes through the replica's
    # own view of its file system (/proc/PID/root).
    local as10001=(setpriv --reuid=10001 --regid=10001 --clear-groups sh -c)
    $PT 30 "${as10001[@]}" "echo x >/proc/$pid/root/usr/local/w" >/dev/null 2>&1 && fail "the root filesystem took a write"
    $PT 30 "${as10001[@]}" "echo x >/proc/$pid/root/tmp/w && rm /proc/$pid/root/tmp/w" >/dev/null 2>&1 ||
        fail "/tmp (emptyDir) not writable by uid 10001"
}

# The liveness probe's path and port, asked where the kubelet asks (the
# pod's address) and on its loopback, from inside the pod's namespace.
check_probe() {
    local f=$1 path port ip out
    path=$($PS get "$f" containers.0.livenessProbe.httpGet.path)
    port=$($PS get "$f" containers.0.livenessProbe.httpGet.port)
    for ip in "$POD_IP" 127.0.0.1; do
        out=$(ns_run curl -sf -m 3 "http://$ip:$port$path")
        assert_contains "$out" '"status":"ok"' "probe http://$ip:$port$path"
    done
    PROBE_BODY=$out
    # podman turns the probe into an exec healthcheck running curl inside
    # the container (the image has none) and runs it through systemd timers.
    local hc
    hc=$(podman inspect "$CTR" --format '{{json .Config.Healthcheck.Test}}')
    echo "# podman kube play: livenessProbe httpGet becomes the healthcheck $hc, run by systemd (none here) with a curl the image lacks; probed with curl from the pod's network namespace instead"
}

# After the replica's exit: the exit code, what podFailurePolicy does with
# it, and the termination message.
check_exit() {
    local f=$1 want=$2 want_action=$3 rc tmp
    rc=$($PT 90 podman wait "$CTR" 2>/dev/null || echo timeout)
    assert_eq "$rc" "$want" "exit code"
    assert_eq "$($PS action "$f" "$rc")" "$want_action" "podFailurePolicy for $rc"
    podman logs "$CTR" >"$T_DIR/$POD.log" 2>&1
    grep '^{' "$T_DIR/$POD.log" >"$T_DIR/$POD.json"
    check_json_lines "$T_DIR/$POD.json"
    assert_contains "$(grep "\"msg\":\"exit " "$T_DIR/$POD.json")" "\"exit_code\":$want" "exit log line"
    tmp=$($PS get "$f" containers.0.terminationMessagePath)
    assert_eq "$tmp" /dev/termination-log "terminationMessagePath"
    echo "# podman kube play: terminationMessagePath is not mounted (the replica's $tmp is not writable: '$(grep -o 'termination log[^"]*' "$T_DIR/$POD.json" | head -1)'); the kubelet's bind mount is checked with podman run below"
    assert_contains "$(cat "$T_DIR/$POD.json")" "termination log $tmp: Permission denied" "replica log"
}

# term_run FILE [podman run options...]: the image run as the kubelet runs
# the template's container: the composed env (podspec.py env), the spec's
# security context, a file bind-mounted at terminationMessagePath; and no
# network (its broker unreachable). Sets TM_RC, TM_FILE (the termination
# message's file), TM_LOG.
term_run() {
    local f=$1 tmp
    shift
    tmp=$($PS get "$f" containers.0.terminationMessagePath)
    TM_FILE=$T_DIR/$POD.termlog TM_LOG=$T_DIR/$POD.tm.log TM_RC=0
    : >"$TM_FILE" && chmod 0666 "$TM_FILE"
    $PS env "$f" "$CRED" >"$T_DIR/$POD.env"
    $PT 60 podman run --rm --label "$RUN_LABEL" --network none --read-only --tmpfs /tmp \
        --user 10001:10001 --cap-drop ALL --security-opt no-new-privileges \
        --env-file "$T_DIR/$POD.env" -v "$TM_FILE:$tmp" "$@" "$MIMG" >"$TM_LOG" 2>&1 || TM_RC=$?
}

# The termination message where the spec says, with the file the kubelet
# would mount there (term_run; the broker unreachable: 69, which
# podFailurePolicy counts). ARGS: more podman run options.
check_termination_message() {
    local f=$1
    term_run "$@"
    assert_eq "$TM_RC" 69 "replica without its broker"
    assert_eq "$($PS action "$f" "$TM_RC")" Count "podFailurePolicy for 69"
    assert_contains "$(cat "$TM_FILE")" '"exit_code":69' "termination message at $($PS get "$f" containers.0.terminationMessagePath)"
    [ "$(stat -c %s "$TM_FILE")" -le 4096 ] || fail "termination message over 4 KiB (the kubelet keeps 4096 bytes)"
}

# podman 4.3.1 leaves $(VAR) in env values unexpanded (Kubernetes expands
# references to variables defined earlier in the list): shown on the spec
# as written, created only.
t_podman_env_expansion() {
    local f=$K8S/scaledjob-redis-list.yaml env
    $PS asis "$f" dr-asis "$T_DIR/asis.yaml" || { fail "podspec.py asis"; return; }
    DR_PODS+=(dr-asis)
    $PT 60 podman kube play --start=false "$T_DIR/asis.yaml" >"$T_DIR/asis.play" 2>&1 ||
        { fail "podman kube play: $(tail -2 "$T_DIR/asis.play")"; return; }
    env=$(podman inspect dr-asis-oneshot --format '{{range .Config.Env}}{{println .}}{{end}}')
    assert_contains "$env" "REDIS_PASSWORD=$($PS env "$f" "$CRED" | sed -n 's/^REDIS_PASSWORD=//p')" "secretKeyRef from podman's secret store"
    if grep -q 'ONESHOT_REDIS_URL=.*\$(REDIS_PASSWORD)' <<<"$env"; then
        echo "# podman kube play $(podman --version | cut -d' ' -f3): \$(VAR) in env values is passed unexpanded; podspec.py expands it as the kubelet does (earlier variables only, \$\$ a literal \$)"
    else
        echo "# podman kube play expands \$(VAR) itself now: podspec.py's expansion is no longer needed"
    fi
    $PT 60 podman pod rm -f -t 0 dr-asis >/dev/null 2>&1
    # stop timeout: terminationGracePeriodSeconds is not carried over.
}

t_redis_list_pod() {
    local f=$K8S/scaledjob-redis-list.yaml
    play_pod "$f" dr-redis-list || return
    pod_redis || return
    $PT 60 podman pod start "$POD" >/dev/null 2>&1 || { fail "pod start"; return; }
    wait_s 20 ns_run curl -sf -m 1 http://127.0.0.1:8000/health ||
        { fail "never healthy: $(podman logs "$CTR" 2>&1 | tail -3)"; return; }
    check_security "$f"
    check_probe "$f"
    assert_contains "$PROBE_BODY" '"source":"redis-list"' "/health source"
    local grace
    grace=$(podman inspect "$CTR" --format '{{.Config.StopTimeout}}')
    [ "$grace" != "$($PS get "$f" terminationGracePeriodSeconds)" ] &&
        echo "# podman kube play: terminationGracePeriodSeconds $($PS get "$f" terminationGracePeriodSeconds) becomes a stop timeout of $grace s (podman's default); ONESHOT_TERM_GRACE 20 is under both"
    rcli LPUSH "$($PS env "$f" "$CRED" | sed -n 's/^ONESHOT_QUEUE=//p')" '{"id":"k8s-list-1","input":{"duration":1,"via":"kube play"}}' >/dev/null
    check_exit "$f" 0 Succeeded
    assert_contains "$(rcli GET oneshot:result:k8s-list-1)" '"success":true,"message":"Job completed successfully","executionTime":1' "demo result in the store"
    assert_contains "$(rcli HGETALL oneshot:job:k8s-list-1)" "succeeded" "status record"
    # The composed ONESHOT_REDIS_URL (password from the Secret) got in:
    # without it AUTH is refused and the replica exits 69 (as with the
    # spec as written under podman, t_podman_env_expansion).
    assert_not_contains "$(cat "$T_DIR/$POD.json")" "AUTH refused" "replica log"
    check_termination_message "$f"
}

t_redis_stream_pod() {
    local f=$K8S/scaledjob-redis-streams.yaml
    play_pod "$f" dr-redis-streams || return
    pod_redis || return
    $PT 60 podman pod start "$POD" >/dev/null 2>&1 || { fail "pod start"; return; }
    wait_s 20 ns_run curl -sf -m 1 http://127.0.0.1:8000/health ||
        { fail "never healthy: $(podman logs "$CTR" 2>&1 | tail -3)"; return; }
    check_security "$f"
    check_probe "$f"
    assert_contains "$PROBE_BODY" '"source":"redis-stream"' "/health source"
    # A failing job: 1, which podFailurePolicy fails the Job on (the
    # queue retries: the entry is re-queued while attempts remain).
    rcli XADD jobs '*' id k8s-stream-1 input '{"duration":0,"failed":true}' >/dev/null
    check_exit "$f" 1 FailJob
    assert_contains "$(rcli HGETALL oneshot:job:k8s-stream-1)" "attempt" "status record in the store"
    check_termination_message "$f"
}

# The Kafka the template names (ONESHOT_KAFKA_BROKERS, SASL_SSL with
# SCRAM-SHA-512, user and password from the Secret), inside the pod's
# network namespace: tests/brokers/kafka_broker_start.sh with its SASL_SSL listener
# on 127.0.0.1 at the manifest's port, advertised under the manifest's
# host name (hostAliases points it at 127.0.0.1 in the pod), its
# certificate for that name signed by a CA made here (kafka_certs). The
# test's side: the broker's PLAINTEXT listener KB, through the namespace
# (ktopic). One start; its pid goes to $POD.kafka.pid (dr_cleanup).
kafka_certs() {
    local host=${1%:*}
    KCERTS=$T_DIR/kafka-certs
    tls_certs "$KCERTS" && _tls_leaf "$KCERTS" server "$host" "DNS:$host" serverAuth 2 ||
        { fail "openssl: the broker's certificate"; return 1; }
}
pod_kafka() { # file brokers
    local f=$1 b=$2 k=$T_DIR/$POD.kafka t0 rc=0
    t0=$(now_ms)
    mkdir -p "$k"
    env TMPDIR_TEST="$k" KAFKA_TLS_DIR="$KCERTS" KAFKA_TLS_HOST="${b%:*}" KAFKA_SASL_SSL_PORT="${b##*:}" \
        KAFKA_SCRAM_USER="$($PS env "$f" "$CRED" | sed -n 's/^KAFKA_USERNAME=//p')" \
        KAFKA_SCRAM_PASSWORD="$($PS env "$f" "$CRED" | sed -n 's/^KAFKA_PASSWORD=//p')" KPID="$T_DIR/$POD.kafka.pid" \
        $PT 150 nsenter -t "$POD_PID" -n bash -c 'T_PIDS=(); . "$1"; shift; kafka_broker_start "$@"; rc=$?
            echo "${T_PIDS[*]}" >"$KPID"; echo "${KAFKA_BROKERS:-}" >"$TMPDIR_TEST/brokers"; exit $rc' _ \
        "$ROOT/tests/brokers/kafka_broker_start.sh" "$KQ:1" "$KQ.results" "$KQ.status" "$KQ.dead" >"$T_DIR/$POD.kafka.out" 2>&1 || rc=$?
    KB=$(cat "$k/brokers" 2>/dev/null)
    [ "$rc" = 0 ] && [ -n "$KB" ] ||
        { fail "the broker in the pod's network namespace: $(tail -3 "$T_DIR/$POD.kafka.out" | tr '\n' ' ')"; return 1; }
    echo "# scaledjob-kafka: the test broker (SASL_SSL/SCRAM-SHA-512 at $b) started in the pod's network namespace in $(($(now_ms) - t0)) ms"
}
# The records of topic $1 as "key headers value" lines. Through the
# broker's own pid: the pod's infra container stops with the replica, and
# the broker keeps the network namespace.
ktopic() { $PT 30 nsenter -t "$(cat "$T_DIR/$POD.kafka.pid")" -n kcat -C -b "$KB" -t "$1" -o beginning -e -q -f '%k %h %s\n'; }

# The Kafka template: a demo job through SASL_SSL/SCRAM-SHA-512 with the
# CA from the manifest's kafka-ca Secret volume: exit 0, the result and
# status records on the topics. Then the template's container as the
# kubelet runs it without a network (69, Count) and without the optional CA
# Secret (78, FailJob: ssl.ca.location names no file).
t_kafka_pod() {
    local f=$K8S/scaledjob-kafka.yaml b env want pid ca mnt out
    b=$($PS env "$f" "$CRED" | sed -n 's/^ONESHOT_KAFKA_BROKERS=//p')
    KQ=$($PS env "$f" "$CRED" | sed -n 's/^ONESHOT_QUEUE=//p')
    mnt=$($PS get "$f" containers.0.volumeMounts.1.mountPath)
    ca=$mnt/$($PS get "$f" volumes.1.secret.items.0.path)
    assert_eq "$($PS get "$f" containers.0.volumeMounts.1.name)|$($PS get "$f" volumes.1.name)|$($PS get "$f" volumes.1.secret.secretName)" \
        "kafka-ca|kafka-ca|$KCA_SECRET" "the CA volume"
    kafka_certs "$b" || return
    # The Secret the kafka-ca volume names, holding the test's CA, in
    # podman's secret store before the play (which fills the volume).
    $PS volsecret "$f" kafka-ca "$KCERTS/ca.pem" "$T_DIR/kafka-ca.yaml" >/dev/null &&
        $PT 30 podman secret create "$KCA_SECRET" "$T_DIR/kafka-ca.yaml" >/dev/null ||
        { fail "podman secret create $KCA_SECRET"; return; }
    $PT 30 podman volume rm -f "$KCA_SECRET" >/dev/null 2>&1
    # The spec's volumes as written, created only: what podman does with
    # an optional Secret volume whose Secret exists.
    $PS asis "$f" dr-kafka-asis "$T_DIR/kafka-asis.yaml" || { fail "podspec.py asis"; return; }
    DR_PODS+=(dr-kafka-asis)
    $PT 60 podman kube play --start=false "$T_DIR/kafka-asis.yaml" >"$T_DIR/kafka-asis.play" 2>&1 ||
        { fail "podman kube play: $(tail -2 "$T_DIR/kafka-asis.play")"; return; }
    if podman inspect dr-kafka-asis-oneshot --format '{{range .Mounts}}{{println .Destination}}{{end}}' | grep -qx "$mnt"; then
        echo "# podman kube play mounts an optional Secret volume now: podspec.py's optional: false is no longer needed"
    else
        echo "# podman kube play $(podman --version | cut -d' ' -f3): the optional Secret volume kafka-ca is not mounted though $KCA_SECRET exists (optional unset: a panic); podspec.py makes it optional: false, the missing Secret is run below with podman run"
    fi
    $PT 60 podman pod rm -f -t 0 dr-kafka-asis >/dev/null 2>&1
    echo "# podman kube play $(podman --version | cut -d' ' -f3): a Secret volume is a named volume $KCA_SECRET (kept after the pod) holding every key of the Secret's data undecoded; items, stringData and defaultMode ignored: podspec.py volsecret writes the PEM itself under the items' keys"
    play_pod "$f" dr-kafka || return
    pod_kafka "$f" "$b" || return
    $PT 60 podman pod start "$POD" >/dev/null 2>&1 || { fail "pod start"; return; }
    wait_s 20 ns_run curl -sf -m 1 http://127.0.0.1:8000/health ||
        { fail "never healthy: $(podman logs "$CTR" 2>&1 | tail -3)"; return; }
    check_security "$f"
    check_probe "$f"
    assert_contains "$PROBE_BODY" '"source":"kafka"' "/health source"
    env=$(podman inspect "$CTR" --format '{{range .Config.Env}}{{println .}}{{end}}')
    want=$($PS env "$f" "$CRED" | grep '^ONESHOT_KAFKA_PROPS=')
    assert_contains "$want" "sasl.username=oneshot,sasl.password=change-me,ssl.ca.location=$ca" "composed props"
    assert_contains "$env" "$want" "replica environment"
    # The CA where ssl.ca.location looks, as the replica sees it, read-only.
    pid=$(podman inspect "$CTR" --format '{{.State.Pid}}')
    cmp -s "/proc/$pid/root$ca" "$KCERTS/ca.pem" || fail "$ca in the replica is not the Secret's CA"
    assert_contains "$(awk -v m="$mnt" '$2 == m {print $4}' "/proc/$pid/mounts")" "ro" "$mnt mount"
    # One job, produced as a client of the cluster would (the envelope's id).
    printf '%s\n' '{"id":"k8s-kafka-1","input":{"duration":1,"via":"kube play"}}' |
        $PT 30 nsenter -t "$POD_PID" -n kcat -P -b "$KB" -t "$KQ" -k k8s-kafka-1 || fail "produce"
    check_exit "$f" 0 Succeeded
    out=$(ktopic "$KQ.results")
    assert_contains "$out" "k8s-kafka-1 " "the result's key"
    assert_contains "$out" '"success":true,"message":"Job completed successfully","executionTime":1' "demo result on $KQ.results"
    out=$(ktopic "$KQ.status" | tail -1)
    assert_contains "$out" "k8s-kafka-1 " "the status record's key"
    assert_contains "$out" '"state":"succeeded"' "final status record on $KQ.status"
    # Logged in with SCRAM over TLS, the certificate checked by the CA.
    assert_contains "$(cat "$T_DIR/$POD.json")" '"job_id":"k8s-kafka-1"' "replica log"
    assert_not_contains "$(cat "$T_DIR/$POD.json")" "Authentication failed" "replica log"
    assert_not_contains "$(cat "$T_DIR/$POD.json")" "certificate verify failed" "replica log"
    kill -KILL $(cat "$T_DIR/$POD.kafka.pid") 2>/dev/null
    # Without a network: 69 Count; the CA mounted where the volume puts it.
    check_termination_message "$f" -v "$KCERTS/ca.pem:$ca:ro"
    # Without the CA Secret (the volume is optional): 78 at once, FailJob.
    term_run "$f"
    assert_eq "$TM_RC" 78 "replica without the CA Secret"
    assert_eq "$($PS action "$f" "$TM_RC")" FailJob "podFailurePolicy for 78"
    assert_contains "$(cat "$TM_LOG")" "ssl.ca.location failed" "replica log without the CA Secret"
    assert_contains "$(cat "$TM_FILE")" '"exit_code":78' "termination message"
}

# The sweep CronJobs' pod: an orphan planted in the pod's Redis (a
# replica's copy whose lease is gone), the pod run once as the CronJob
# runs it; it exits 0, prints what it moved as one JSON line, and the
# orphan is waiting work again (list: in the queue; stream: a new entry in
# the group's lag, the orphan acked), attempt 2.
t_sweep_pod() { # file pod-name
    local f=$K8S/$1 rc out
    play_pod "$f" "$2" || return
    pod_redis || return
    if [ "$($PS get "$f" containers.0.env.0.value)" = redis-list ]; then
        rcli RPUSH jobs:processing:ghost '{"id":"k8s-orphan-1","input":{"duration":0}}' >/dev/null
        rcli SADD jobs:workers ghost >/dev/null
    else
        rcli XGROUP CREATE jobs oneshot 0 MKSTREAM >/dev/null
        rcli XADD jobs '*' input '{"duration":0}' id k8s-orphan-1 >/dev/null
        rcli XREADGROUP GROUP oneshot ghost COUNT 1 STREAMS jobs '>' >/dev/null
        rcli XCLAIM jobs oneshot ghost 0 "$(rcli XRANGE jobs - + | head -1)" IDLE 100000000 JUSTID >/dev/null
    fi
    rcli HSET oneshot:job:k8s-orphan-1 id k8s-orphan-1 state running worker ghost fence 1 >/dev/null
    $PT 60 podman pod start "$POD" >/dev/null 2>&1 || { fail "pod start"; return; }
    rc=$($PT 90 podman wait "$CTR" 2>/dev/null || echo timeout)
    assert_eq "$rc" 0 "exit code"
    podman logs "$CTR" >"$T_DIR/$POD.log" 2>&1
    out=$(grep '^{"source"' "$T_DIR/$POD.log")
    assert_contains "$out" '"id":"k8s-orphan-1"' "the sweep's JSON"
    assert_contains "$out" '"count":1' "the sweep's JSON"
    assert_eq "$(rcli HGET oneshot:job:k8s-orphan-1 state)" interrupted "record"
    assert_eq "$(rcli HGET oneshot:job:k8s-orphan-1 fence)" 2 "fence"
    if [ "$($PS get "$f" containers.0.env.0.value)" = redis-list ]; then
        assert_contains "$(rcli LRANGE jobs 0 -1)" '"attempt":2' "back in the queue"
    else
        assert_contains "$(rcli XINFO GROUPS jobs | tr '\n' ' ')" 'lag 1 ' "in the group's lag"
        assert_eq "$(rcli XPENDING jobs oneshot | head -1)" 0 "the orphan acked"
    fi
    assert_eq "$(podman inspect "$CTR" --format '{{.Config.User}}|{{.HostConfig.ReadonlyRootfs}}')" \
        "$($PS get "$f" securityContext.runAsUser):$($PS get "$f" securityContext.runAsGroup)|true" "user|readOnlyRootFilesystem"
}
t_sweep_list_pod() { t_sweep_pod cronjob-sweep-redis-list.yaml dr-sweep-list; }
t_sweep_stream_pod() { t_sweep_pod cronjob-sweep-redis-streams.yaml dr-sweep-streams; }

# Every ScaledJob (and CronJob) of deploy/k8s is one of those played here.
PLAYED="scaledjob-redis-list.yaml scaledjob-redis-streams.yaml scaledjob-kafka.yaml cronjob-sweep-redis-list.yaml cronjob-sweep-redis-streams.yaml"
t_coverage() {
    local f k
    for f in "$K8S"/*.yaml; do
        for k in $(/usr/bin/python3 -c 'import sys, yaml; print(" ".join(d["kind"] for d in yaml.safe_load_all(open(sys.argv[1])) if d))' "$f"); do
            case "$k" in
            ScaledJob | CronJob | Job | Deployment)
                case " $PLAYED " in *" ${f##*/} "*) ;; *) fail "${f##*/}: a $k this test does not play" ;; esac ;;
            esac
        done
    done
    /usr/bin/python3 -c 'import glob, sys, yaml; sys.exit(any(d.get("kind") == "CronJob" for f in glob.glob(sys.argv[1] + "/*.yaml") for d in yaml.safe_load_all(open(f)) if d))' "$K8S" &&
        echo "# deploy/k8s has no janitor CronJob: nothing to play for it"
}

podman network exists podman-default-kube-network || DR_KUBE_NET=made
REDIS_PW=$($PS env "$K8S/scaledjob-redis-list.yaml" "$CRED" | sed -n 's/^REDIS_PASSWORD=//p')
$PT 30 podman secret rm oneshot-broker >/dev/null 2>&1
# The Kafka template's CA Secret (a volume's, not credentials.yaml's).
KCA_SECRET=$($PS get "$K8S/scaledjob-kafka.yaml" volumes.1.secret.secretName)
$PT 30 podman secret rm "$KCA_SECRET" >/dev/null 2>&1
$PS secret "$CRED" "$T_DIR/secret.json" && $PT 30 podman secret create oneshot-broker "$T_DIR/secret.json" >/dev/null ||
    setup_fail "podman secret create oneshot-broker"
echo "# podman kube play $(podman --version | cut -d' ' -f3): a Secret document in the played YAML is stored as YAML but read back as JSON of base64 values (secretKeyRef fails), so credentials.yaml's Secret goes in with podman secret create"

t_run "deploy run: every workload of deploy/k8s is played" t_coverage
t_run "deploy run: podman keeps \$(VAR) in env as written (kubelet's expansion done by podspec.py)" t_podman_env_expansion
t_run "deploy run: scaledjob-redis-list pod: security context, probe, composed env, a job in Redis, exit 0, termination message" t_redis_list_pod
t_run "deploy run: scaledjob-redis-streams pod: security context, probe, composed env, a failed job, exit 1 FailJob, termination message" t_redis_stream_pod
t_run "deploy run: scaledjob-kafka pod: security context, probe, composed SASL props, CA from its Secret volume, a job over SASL_SSL/SCRAM-SHA-512, exit 0, records on .results/.status; 69 Count without a network, 78 FailJob without the CA, termination message" t_kafka_pod
t_run "deploy run: cronjob-sweep-redis-list pod: an orphan back in the list, attempt 2, exit 0" t_sweep_list_pod
t_run "deploy run: cronjob-sweep-redis-streams pod: an orphan back in the lag, attempt 2, exit 0" t_sweep_stream_pod

# =====================================================================
# 2. deploy/compose.yaml with podman-compose.
# =====================================================================
# podman-compose 1.0.3 (Debian 12) names the project after the folder, not
# the file's `name:`; -p gives it the file's name.
CDIR=$ROOT/tests/deploy/run
CPROJ=$(/usr/bin/python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["name"])' "$ROOT/deploy/compose.yaml")
CNET=${CPROJ}_default
CRUN() { $PT 60 podman run --rm --label "$RUN_LABEL" --network "$CNET" oneshot:local "$@"; }
cexec() { $PT 30 podman exec "${CPROJ}_$1_1" "${@:2}"; }

# The Redis and Kafka images of the override file, from the local base:
# Debian's redis-server; the tests' Kafka 4.1.1 jars with Debian's Java.
compose_images() {
    local ctx=$T_DIR/compose-ctx
    mkdir -p "$ctx"
    [ -d "$ROOT/tests/brokers/kafka/target/libs" ] || { fail "tests/brokers/kafka/target/libs missing (make deps)"; return 1; }
    cp -a "$ROOT/tests/brokers/kafka/target/libs" "$ctx/libs" &&
        cp "$CDIR"/*.sh "$CDIR/log4j2.properties" "$ctx/" || { fail "build context"; return 1; }
    $PT 600 podman build --pull=never -f "$CDIR/redis.Containerfile" -t localhost/oneshot-compose-redis:test \
        "$ctx" >"$T_DIR/redis-build.log" 2>&1 || { fail "redis image: $(tail -3 "$T_DIR/redis-build.log")"; return 1; }
    $PT 600 podman build --pull=never -f "$CDIR/kafka.Containerfile" -t localhost/oneshot-compose-kafka:test \
        "$ctx" >"$T_DIR/kafka-build.log" 2>&1 || { fail "kafka image: $(tail -3 "$T_DIR/kafka-build.log")"; return 1; }
    # The compose file's oneshot image name, on the image built above.
    $PT 30 podman tag "$IMAGE" "$(/usr/bin/python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["x-oneshot"]["image"])' "$ROOT/deploy/compose.yaml")"
}

t_compose() {
    local t0 i id out
    compose_images || return
    # Left by a run that was killed: this project's containers go first.
    $PT 120 $DR_COMPOSE_CMD down -v -t 0 >/dev/null 2>&1
    $PT 30 podman network rm "$CNET" >/dev/null 2>&1
    t0=$(now_ms)
    DR_COMPOSE=$DR_COMPOSE_CMD
    $PT 300 $DR_COMPOSE up -d --no-build >"$T_DIR/compose-up.log" 2>&1 ||
        { fail "podman-compose up: $(grep -v systemd "$T_DIR/compose-up.log" | tail -3)"; return; }
    echo "# compose up $(($(now_ms) - t0)) ms; podman-compose $(podman-compose version 2>/dev/null | sed -n 's/^podman-compose[a-z]* version *//p')"
    grep -q -- '--stop-timeout' "$T_DIR/compose-up.log" ||
        echo "# podman-compose: stop_grace_period 30s is not passed on (podman's stop timeout stays 10 s; ONESHOT_TERM_GRACE 20 is over it)"
    echo "# podman-compose: depends_on condition service_healthy is not waited for (healthchecks need systemd timers here); workers that start first exit 69 and restart: unless-stopped brings them back"
    assert_eq "$(podman ps --filter "label=io.podman.compose.project=$CPROJ" --filter label=com.docker.compose.service=worker -q | wc -l)" 2 "worker replicas (deploy.replicas)"
    assert_eq "$(podman inspect "${CPROJ}_worker_1" --format '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.RestartPolicy.Name}}')" "true unless-stopped" "worker read_only, restart"
    # The brokers answer (their own healthcheck commands, run by hand).
    wait_s 60 cexec redis redis-cli ping || { fail "redis never answered"; return; }
    wait_s 90 cexec kafka /opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092 ||
        { fail "kafka never answered: $(podman logs "${CPROJ}_kafka_1" 2>&1 | tail -3)"; return; }
    # Jobs from the host (`oneshot submit` in a one-off container on the
    # project network, as the compose file's comment does with exec).
    for i in 1 2 3 4; do
        CRUN submit --redis redis://redis:6379/0 --id "compose-list-$i" "{\"duration\":1,\"n\":$i}" >/dev/null ||
            fail "submit compose-list-$i"
    done
    CRUN submit --source kafka --kafka kafka:9092 --queue jobs --id compose-kafka-1 '{"duration":1}' >/dev/null ||
        fail "submit compose-kafka-1"
    for i in 1 2 3 4; do
        wait_s 60 sh -c "podman exec ${CPROJ}_redis_1 redis-cli GET oneshot:result:compose-list-$i | grep -q success" ||
            fail "compose-list-$i never drained"
    done
    assert_eq "$(cexec redis redis-cli LLEN jobs)" 0 "queue drained"
    wait_s 60 sh -c "podman logs ${CPROJ}_worker-kafka_1 2>&1 | grep '\"job_id\":\"compose-kafka-1\"' | grep -q 'exit_code\":0'" ||
        fail "compose-kafka-1 never ran: $(podman logs "${CPROJ}_worker-kafka_1" 2>&1 | grep -v systemd | tail -3)"
    # The HTTP service: the demo contract on the published port, twice
    # (a fresh replica after each job).
    for i in 1 2; do
        wait_s 30 curl -sf -m 1 http://127.0.0.1:8000/health || { fail "http service never healthy"; break; }
        http POST 'http://127.0.0.1:8000/job?duration=1' -H 'Content-Type: application/json' -d '{"note":"compose"}'
        assert_eq "$H_CODE" 200 "POST /job ($i)"
        assert_contains "$H_BODY" '"success":true' "answer"
        [ "$i" = 1 ] && wait_s 10 sh -c '! curl -sf -m 1 http://127.0.0.1:8000/health'
    done
    # down: nothing of the project left.
    t0=$(now_ms)
    $PT 200 $DR_COMPOSE down -v -t 5 >"$T_DIR/compose-down.log" 2>&1 || fail "podman-compose down"
    DR_COMPOSE=""
    echo "# compose down $(($(now_ms) - t0)) ms"
    if podman network exists "$CNET"; then
        echo "# podman-compose 1.0.3: down leaves the project network $CNET; removed here"
        $PT 30 podman network rm "$CNET" >/dev/null 2>&1
    fi
    out=$(podman ps -aq --filter "label=io.podman.compose.project=$CPROJ"; podman pod ps -q --filter "name=$CPROJ";
        podman volume ls -q | grep "^${CPROJ}_"; podman network ls -q --filter "name=^${CPROJ}_")
    assert_eq "$out" "" "left after down"
}
DR_COMPOSE_CMD="podman-compose -p $CPROJ -f $ROOT/deploy/compose.yaml -f $CDIR/compose.override.yaml"

# =====================================================================
# 3. The Verda deployment's container settings.
# =====================================================================
VJ=$ROOT/deploy/verda/job-deployment.json
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# verda_run [extra podman run options...]: the image with exactly the env
# of job-deployment.json, its exposed_port published on a free loopback
# port. Sets V_ID, V_PORT.
verda_run() {
    local xp
    xp=$($PS get "$VJ" containers.0.exposed_port)
    $PS verda "$VJ" >"$T_DIR/verda.env"
    V_PORT=$(free_port)
    V_ID=$($PT 60 podman run -d --label "$RUN_LABEL" --env-file "$T_DIR/verda.env" \
        -p "127.0.0.1:$V_PORT:$xp" "$@" "$IMAGE" 2>>"$T_DIR/verda.err")
    [ -n "$V_ID" ] || { fail "podman run: $(tail -2 "$T_DIR/verda.err")"; return 1; }
}

t_verda_job() {
    local hp hpath xp t0
    hp=$($PS get "$VJ" containers.0.healthcheck.port)
    hpath=$($PS get "$VJ" containers.0.healthcheck.path)
    xp=$($PS get "$VJ" containers.0.exposed_port)
    assert_eq "$($PS get "$VJ" containers.0.entrypoint_overrides.enabled)" False "entrypoint_overrides"
    assert_eq "$hp" "$xp" "health check port = exposed_port (the platform reaches one port)"
    verda_run || return
    wait_s 20 curl -sf -m 1 "http://127.0.0.1:$V_PORT$hpath" ||
        { fail "health check $hpath never answered: $(podman logs "$V_ID" 2>&1 | tail -3)"; return; }
    assert_contains "$(curl -s -m 2 "http://127.0.0.1:$V_PORT$hpath")" '"status":"ok"' "health"
    # The image's own HEALTHCHECK reads ONESHOT_PORT from the same env.
    $PT 30 podman healthcheck run "$V_ID" >/dev/null 2>&1 || fail "podman healthcheck run: unhealthy"
    # As the platform posts it: POST /job on exposed_port, the id in
    # X-Inference-Id, the caller's body.
    http POST "http://127.0.0.1:$V_PORT/job?duration=1" -H 'X-Inference-Id: bi-deploy-run-1' \
        -H 'Content-Type: application/json' -d '{"note":"verda"}'
    assert_eq "$H_CODE" 200 "job"
    assert_contains "$H_BODY" '"success":true' "answer"
    t0=$(now_ms)
    assert_eq "$($PT 20 podman wait "$V_ID" 2>/dev/null || echo timeout)" 0 "exit after the response"
    echo "# verda: exit $(($(now_ms) - t0)) ms after the response"
    podman logs "$V_ID" >"$T_DIR/verda.log" 2>&1
    assert_contains "$(cat "$T_DIR/verda.log")" '"job_id":"bi-deploy-run-1"' "X-Inference-Id as the job id"
    check_json_lines "$T_DIR/verda.log"
}

# The deadline: ONESHOT_DEADLINE is the platform's deadline_seconds and the
# watchdog acts ONESHOT_DEADLINE_MARGIN earlier. Run at scale (3600/30 s
# would take an hour): deadline 10 s, margin 4 s, the platform's kill at
# 10 s from the container's start (podman run --timeout); a 30 s job gets
# 504 and the replica exits 124 before the kill (which would be 137/255).
t_verda_deadline() {
    local d m t0 ms rc
    d=$($PS verda "$VJ" | sed -n 's/^ONESHOT_DEADLINE=//p')
    m=$($PS verda "$VJ" | sed -n 's/^ONESHOT_DEADLINE_MARGIN=//p')
    assert_eq "$d" "$($PS get "$VJ" scaling.deadline_seconds)" "ONESHOT_DEADLINE = scaling.deadline_seconds"
    [ "$m" -gt 0 ] && [ "$m" -lt "$d" ] || fail "margin $m not within the deadline $d"
    t0=$(now_ms)
    verda_run --timeout 10 -e ONESHOT_DEADLINE=10 -e ONESHOT_DEADLINE_MARGIN=4 || return
    wait_s 20 curl -sf -m 1 "http://127.0.0.1:$V_PORT/health" || { fail "never healthy"; return; }
    http POST "http://127.0.0.1:$V_PORT/job?duration=30" -H 'X-Inference-Id: bi-deploy-run-2'
    ms=$(($(now_ms) - t0))
    assert_eq "$H_CODE" 504 "answer at the deadline"
    assert_contains "$H_BODY" "deadline exceeded" "answer"
    rc=$($PT 20 podman wait "$V_ID" 2>/dev/null || echo timeout)
    ms=$(($(now_ms) - t0))
    assert_eq "$rc" 124 "exit code (the watchdog's, not the platform's kill)"
    echo "# verda: deadline 10 s, margin 4 s: exited $rc at $ms ms from podman run (the kill at 10000)"
    [ "$ms" -lt 10000 ] || fail "exit at $ms ms, not before the platform's kill"
}

t_run "deploy run: compose.yaml with podman-compose: jobs drain through worker and worker-kafka, http answers POST /job, down leaves nothing" t_compose
t_run "deploy run: verda job-deployment.json: its env, port and health path, a job posted as the platform does, exit 0 after the answer" t_verda_job
t_run "deploy run: verda deadline settings end the replica (504, 124) before the platform's kill" t_verda_deadline

echo "# deploy_run.sh $(($(now_ms) - T0)) ms"
