#!/usr/bin/env bash
# deploy.sh -- the files in deploy/ checked against the real schemas and
# the built binary: Kubernetes + KEDA manifests (kubernetes-models,
# @kubernetes-models/keda, and tsc over their types for unknown fields),
# podFailurePolicy against common/exitcodes.h, the Verda job deployment,
# the compose file (the Compose Specification's JSON schema) and the
# Dockerfile. Each replica configuration is run through
# `oneshot --print-config`. Then the same checks must catch broken copies.
. "$(dirname "$0")/../harness/lib.sh"

NODE_DIR=$ROOT/tests/deploy

# npm ci when node_modules is missing or older than the lock file.
node_setup() {
    command -v node >/dev/null && command -v npm >/dev/null || {
        echo "FAIL deploy set-up: node and npm are needed (tests/harness/deps.sh installs them)"
        exit 1
    }
    if ! cmp -s "$NODE_DIR/package-lock.json" "$NODE_DIR/node_modules/.oneshot-lock" 2>/dev/null; then
        (cd "$NODE_DIR" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >"$T_DIR/npm.log" 2>&1) || {
            echo "FAIL deploy set-up: npm ci: $(tail -3 "$T_DIR/npm.log" | tr '\n' ' ')"
            exit 1
        }
        cp "$NODE_DIR/package-lock.json" "$NODE_DIR/node_modules/.oneshot-lock"
    fi
}
node_setup

# validate CHECK [ROOT]: 0 when the check passes; its report in $T_DIR/v.out.
validate() {
    TMPDIR=$T_DIR timeout 120 node "$NODE_DIR/validate.mjs" "$1" "${2:-$ROOT}" "$ONESHOT" >"$T_DIR/v.out" 2>&1
}
report() { head -c 600 "$T_DIR/v.out" | tr '\n' ';'; }

t_k8s_schema() { validate k8s-schema || fail "$(report)"; }
t_k8s_strict() { validate k8s-strict || fail "$(report)"; }
t_k8s_exitcodes() { validate k8s-exitcodes || fail "$(report)"; }
t_k8s_contract() { validate k8s-contract || fail "$(report)"; }
t_verda() { validate verda || fail "$(report)"; }
t_compose() { validate compose || fail "$(report)"; }

t_dockerfile() {
    local df=$ROOT/deploy/Dockerfile
    [ -f "$df" ] || { fail "no deploy/Dockerfile"; return; }
    # One stage on an empty base: the static file's image root (make static).
    [ "$(grep -c '^FROM ' "$df")" = 1 ] && grep -q '^FROM scratch$' "$df" || fail "not one stage FROM scratch"
    grep -q '^COPY build/image-root/ /$' "$df" || fail "does not COPY build/image-root/ (make static)"
    grep -q '^EXPOSE 8000$' "$df" || fail "no EXPOSE 8000"
    grep -q '^STOPSIGNAL SIGTERM$' "$df" || fail "no STOPSIGNAL SIGTERM"
    grep -A2 '^HEALTHCHECK' "$df" | grep -q 'CMD \["/usr/local/bin/oneshot", "healthcheck"\]' ||
        fail "no HEALTHCHECK by oneshot healthcheck (GET /health)"
    grep -Eq '^USER [1-9][0-9]*(:[1-9][0-9]*)?$' "$df" || fail "no numeric non-root USER"
    grep -q '^ENTRYPOINT \["/usr/local/bin/oneshot"\]$' "$df" || fail "the binary is not the exec-form ENTRYPOINT"
    grep -q '^CMD \[\]$' "$df" || fail "CMD must be empty (flags and ONESHOT_* decide)"
    [ -f "$ROOT/deploy/Dockerfile.dockerignore" ] || fail "no deploy/Dockerfile.dockerignore"
    grep -qx '!build/image-root' "$ROOT/deploy/Dockerfile.dockerignore" || fail "the ignore file does not let build/image-root in"
}

# A copy of what the checks read, to break one thing at a time.
copy_root() {
    MUT=$T_DIR/mut
    rm -rf "$MUT"
    mkdir -p "$MUT/common"
    cp -r "$ROOT/deploy" "$MUT/"
    cp "$ROOT/common/exitcodes.h" "$MUT/common/"
}

# expect_caught CHECK 'what it must say' FILE SED-EXPR: break FILE in a
# fresh copy with sed; the check must fail and say so.
expect_caught() {
    local check=$1 says=$2 file=$3 expr=$4
    copy_root
    sed -i -e "$expr" "$MUT/$file"
    if cmp -s "$MUT/$file" "$ROOT/$file"; then
        fail "mutation '$expr' changed nothing in $file"
        return
    fi
    if validate "$check" "$MUT"; then
        fail "$check accepted $file with '$expr'"
    else
        grep -q -- "$says" "$T_DIR/v.out" || fail "$check on '$expr': report lacks '$says': $(report)"
    fi
}

t_checks_catch_mistakes() {
    local k=deploy/k8s
    expect_caught k8s-contract "restartPolicy OnFailure" $k/scaledjob-redis-list.yaml 's/restartPolicy: Never/restartPolicy: OnFailure/'
    expect_caught k8s-strict "livenesProbe" $k/scaledjob-kafka.yaml 's/livenessProbe:/livenesProbe:/'
    expect_caught k8s-strict "activeDeadlineSecond" $k/scaledjob-redis-streams.yaml 's/activeDeadlineSeconds:/activeDeadlineSecond:/'
    expect_caught k8s-schema "activeDeadlineSeconds" $k/scaledjob-kafka.yaml 's/activeDeadlineSeconds: 3600/activeDeadlineSeconds: "1h"/'
    expect_caught k8s-exitcodes "exit code 79 (FailJob expected) is in no rule" common/exitcodes.h 's/OS_EXIT_CONFIG      78/OS_EXIT_CONFIG      79/'
    expect_caught k8s-exitcodes "first podFailurePolicy rule must be FailJob" $k/scaledjob-kafka.yaml 's/values: \[65, 78\]/values: [65]/'
    expect_caught k8s-exitcodes "exit code 143: Count, expected Ignore" $k/scaledjob-redis-list.yaml 's/values: \[69, 130\]/values: [69, 130, 143]/; s/values: \[143\]/values: [142]/'
    expect_caught k8s-contract "livenessProbe must be GET /health" $k/scaledjob-kafka.yaml 's|path: /health|path: /healthz|'
    expect_caught k8s-contract "topic 'other'" $k/scaledjob-kafka.yaml 's/topic: jobs/topic: other/'
    expect_caught k8s-contract "Secret oneshot-broker has no key" $k/credentials.yaml 's/^  redis-password:/  redis-pass:/'
    expect_caught k8s-contract "ssl.ca.location /etc/oneshot/ca.crt is no file of a Secret volume" $k/scaledjob-kafka.yaml 's|ssl.ca.location=/etc/oneshot/kafka-ca/ca.crt|ssl.ca.location=/etc/oneshot/ca.crt|'
    expect_caught k8s-contract "KEDA's ca is unset" $k/credentials.yaml '/- parameter: ca$/,+2d'
    expect_caught k8s-contract "no Secret key other-ca/ca.crt" $k/credentials.yaml '/- parameter: ca$/{n;s/kafka-cluster-ca-cert/other-ca/}'
    expect_caught k8s-contract "invalid configuration" $k/scaledjob-redis-list.yaml '/name: ONESHOT_MAX_ATTEMPTS/{n;s/"3"/"zero"/}'
    expect_caught k8s-contract "lease '31' but the redis-list replicas use '30'" $k/cronjob-sweep-redis-list.yaml 's/value: "30"/value: "31"/'
    expect_caught k8s-contract "group 'other' but the redis-stream replicas use 'oneshot'" $k/cronjob-sweep-redis-streams.yaml '/name: ONESHOT_GROUP/{n;s/oneshot/other/}'
    expect_caught k8s-contract "args must be \[sweep\]" $k/cronjob-sweep-redis-list.yaml 's/args: \[sweep\]/args: [run]/'
    expect_caught k8s-contract "no sweep CronJob for the redis-stream ScaledJob" $k/cronjob-sweep-redis-streams.yaml '1,$d'
    expect_caught k8s-strict "schedul" $k/cronjob-sweep-redis-list.yaml 's/^  schedule:/  schedul:/'
    expect_caught verda "is not deadline_seconds" deploy/verda/job-deployment.json 's/"deadline_seconds": 3600/"deadline_seconds": 1800/'
    expect_caught verda "exposed_port" deploy/verda/job-deployment.json 's/"exposed_port": 8000/"exposed_port": 8080/'
    expect_caught compose "additional properties" deploy/compose.yaml 's/stop_grace_period:/stop_grace_periods:/'
    expect_caught compose "KRaft" deploy/compose.yaml 's/KAFKA_PROCESS_ROLES: broker,controller/KAFKA_PROCESS_ROLES: broker/'
    expect_caught compose "must exceed ONESHOT_TERM_GRACE" deploy/compose.yaml 's/stop_grace_period: 30s/stop_grace_period: 10s/'
}

t_run "dockerfile: the static file FROM scratch, non-root, EXPOSE/STOPSIGNAL/HEALTHCHECK/ENTRYPOINT" t_dockerfile
t_run "k8s: manifests validate against kubernetes-models and @kubernetes-models/keda" t_k8s_schema
t_run "k8s: no unknown fields (tsc over the models' types)" t_k8s_strict
t_run "k8s: podFailurePolicy matches common/exitcodes.h and the contract" t_k8s_exitcodes
t_run "k8s: restartPolicy, deadlines, probes, resources, secrets, triggers vs --print-config, sweep CronJobs vs their ScaledJobs" t_k8s_contract
t_run "verda: job deployment fields, deadline = --deadline, env accepted by the binary" t_verda
t_run "compose: Compose Specification schema, KRaft Kafka, workers wired to the services" t_compose
t_run "deploy checks catch broken copies" t_checks_catch_mistakes
