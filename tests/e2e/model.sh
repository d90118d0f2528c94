#!/usr/bin/env bash
# model.sh -- the Promela models of the Redis job protocol (consumer/README.md;
# tests/model/README.md) checked exhaustively with spin:
# no job lost, no stale write applied, no job final twice, under a crash,
# a pause past the lease, a lost reply re-sent or a refused script at any
# step. Each check: spin -a, pan compiled -DSAFETY, a bounded search. The
# protocol must show no violation; each mutant (a check of the protocol
# removed) must show one, so the properties are known to bite. Every
# check runs in $T_DIR; the states explored print as "#" lines.
. "$(dirname "$0")/../harness/lib.sh"

MODEL=$ROOT/tests/model
for c in spin cc; do
    command -v $c >/dev/null || { echo "FAIL model: $c is not installed (make deps)"; exit 1; }
done

# verify NAME MODEL EXPECT SPIN-FLAGS...: EXPECT "none" (no violation, full
# search) or "violation" (spin must find one).
verify() {
    local name=$1 model=$2 expect=$3
    shift 3
    local d=$T_DIR/$name
    mkdir -p "$d"
    cp "$MODEL"/*.pml "$d/"
    if ! (cd "$d" && spin -a "$@" "$model.pml" >spin.log 2>&1); then
        fail "spin -a $*: $(head -3 "$d/spin.log" | tr '\n' ' ')"
        return
    fi
    # a mutant's search is short: compiling pan fast matters more
    local opt=-O2
    [ "$expect" = violation ] && opt=-O0
    if ! (cd "$d" && cc -w $opt -DSAFETY -DMEMLIM=2048 -DVECTORSZ=1024 -o pan pan.c >cc.log 2>&1); then
        fail "cc pan.c: $(head -3 "$d/cc.log" | tr '\n' ' ')"
        return
    fi
    (cd "$d" && ./pan -m20000 -c1 >pan.out 2>&1)
    local out=$d/pan.out errors states secs
    errors=$(grep -o 'errors: [0-9]*' "$out" | grep -o '[0-9]*$')
    states=$(grep -o '^ *[0-9.e+]* states, stored' "$out" | grep -o '[0-9.e+]*' | head -1)
    secs=$(grep -o 'elapsed time [0-9.e+-]*' "$out" | grep -o '[0-9.e+-]*$')
    if [ -z "$errors" ]; then
        fail "pan did not finish: $(tail -3 "$out" | tr '\n' ' ')"
        return
    fi
    echo "# $name: ${states:-?} states, ${secs:-?} s, errors: $errors (spin -a $*)"
    if [ "$expect" = none ]; then
        if [ "$errors" != 0 ]; then
            fail "spin found a violation: $(head -1 "$out")"
            trail "$d" "$model" "$@"
        elif grep -qE 'Search not completed|max search depth too small|reached -DMEMLIM' "$out"; then
            fail "the search was not complete: $(grep -m1 -E 'not completed|too small|MEMLIM' "$out")"
        fi
    else
        if [ "$errors" = 0 ]; then
            fail "spin found no violation: the mutant is not caught"
        else
            echo "#   caught: $(head -1 "$out" | sed 's/^pan:1: //')"
        fi
    fi
}

# The counterexample, shortened (pan -i, bounded), replayed with the steps'
# names, as "#" lines.
trail() { # dir model flags...
    local d=$1 model=$2
    shift 2
    cp "$d/$model.pml.trail" "$d/first.trail"
    (cd "$d" && timeout 60 ./pan -m20000 -i >short.out 2>&1) || cp "$d/first.trail" "$d/$model.pml.trail"
    (cd "$d" && spin -t -T "$@" "$model.pml" 2>&1) >"$d/replay"
    grep -E '^MSC:|Error|failed assertion' "$d/replay" | sed 's/^MSC: /  /; s/^/#   /'
    local at
    at=$(grep -o 'spin: [a-z]*\.pml:[0-9]*' "$d/replay" | tail -1 | sed 's/spin: //')
    [ -n "$at" ] && echo "#   at $at: $(sed -n "${at#*:}p" "$d/${at%%:*}" | sed 's/^ *//')"
}

CHECK=()
check() { verify "${CHECK[@]}"; }
run() { # title name model expect flags...
    local title=$1
    shift
    CHECK=("$@")
    t_run "model: $title" check
}

# The protocol: consumer/README.md (with the three amendments the model
# showed necessary, now part of it: tests/model/README.md).
run "redis-list, 2 replicas + janitor, 1 copy: nothing lost, no stale write, final once" \
    list list none
run "redis-list, 2 replicas + janitor, a duplicate copy" \
    list-dup list none -DCOPIES=2
run "redis-list, 3 replicas + janitor, a lost reply and a pause" \
    list-3 list none -DNR=3 -DLOSTMAX=1 -DPAUSEMAX=1
run "redis-list, 3 replicas + janitor, two pauses (stale writers in a chain)" \
    list-3p list none -DNR=3 -DLOSTMAX=0 -DPAUSEMAX=2
run "redis-list, a duplicate and an oneshot cancel at any moment" \
    list-cancel list none -DCOPIES=2 -DCANCEL_ON
run "redis-stream, 2 replicas + janitor, 1 entry: nothing lost, no stale write, final once" \
    stream stream none
run "redis-stream, 2 replicas + janitor, a duplicate entry" \
    stream-dup stream none -DCOPIES=2
run "redis-stream, 3 replicas + janitor, a lost reply and two pauses" \
    stream-3 stream none -DNR=3 -DLOSTMAX=1
run "redis-stream, a duplicate and an oneshot cancel at any moment" \
    stream-cancel stream none -DCOPIES=2 -DCANCEL_ON

# Mutants: each must be caught.
run "mutant caught: FINAL without the fence check (list)" mut-list-fence list violation -DBUG_NO_FENCE
run "mutant caught: SWEEP without its compare-and-set (list)" mut-list-cas list violation -DBUG_SWEEP_NOCAS
run "mutant caught: BEGIN over a final record (list)" mut-list-final list violation -DCOPIES=2 -DBUG_BEGIN_FINAL
run "mutant caught: SETTLE without checking FINAL's record (list)" mut-list-settle list violation -DBUG_SETTLE_NOCHECK
run "mutant caught: FINAL without the fence check (stream)" mut-stream-fence stream violation -DBUG_NO_FENCE
run "mutant caught: BEGIN over a final record (stream)" mut-stream-final stream violation -DCOPIES=2 -DBUG_BEGIN_FINAL
run "mutant caught: SETTLE without checking FINAL's record (stream)" mut-stream-settle stream violation -DBUG_SETTLE_NOCHECK
run "mutant caught: a live lease alone taken for a replica running the job (stream, the claim that begins)" mut-stream-runs stream violation -DBUG_RUNS_LEASE
