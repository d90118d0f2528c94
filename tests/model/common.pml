/* common.pml -- what the list and the stream models share: the job's
 * status record P:job:<id>, its result P:result:<id>, its cancel mark
 * P:cancel:<id>, the dead letter, the leases P:lease:W, the checked
 * properties and the fault injection (consumer/README.md is the contract).
 *
 * One job id. Replicas 0..NR-1 are faulty (a crash or a refused script
 * between any two steps, a pause past the lease, a lost reply then a
 * re-send, the first script of a pipelined pair refused or failed while
 * the second runs); replica NR is the janitor: it
 * starts once every other replica has exited, never faults, and sweeps,
 * claims and runs until nothing is left, then checks that nothing was lost.
 *
 * Compile-time knobs (spin -a -DNAME=...):
 *   NR       faulty replicas (2 or 3)
 *   COPIES   deliveries of the job id (1, or 2: a duplicate)
 *   CANCEL_ON an `oneshot cancel` of the job at any moment
 *   LOSTMAX  replies lost (then re-sent) over the whole run (default 2)
 *   PAUSEMAX pauses past the lease over the whole run (default 2)
 * Amendments to consumer/README.md (each closes a violation spin found in
 * the protocol as first written; tests/model/README.md has the trails),
 * now part of it:
 *   AMEND_BEGIN_CANCEL  BEGIN of a cancel-marked job nobody else runs
 *                       records it `cancelled` (fence+1) instead of writing
 *                       nothing (what redis/record.c's BEGIN does)
 *   AMEND_UNRUN_DEAD    an unrun delivery of a job recorded `dead` is
 *                       dead-lettered, never only acked (lifecycle.c's
 *                       settle_unrun since 9364d83)
 *   AMEND_CLAIM_SEQ     BLMOVE is sent only once LIST_CLAIM has answered
 *                       (nothing held, no orphan), not in its round trip
 *                       (the code: LIST_CLAIM moves a waiting item itself,
 *                       and BLMOVE waits only when the queue was empty)
 * Mutants (each must make spin find a violation):
 *   BUG_NO_FENCE        FINAL does not compare the fence
 *   BUG_SWEEP_NOCAS     SWEEP does not check that the orphan's copy and the
 *                       record's fence are still those seen (list)
 *   BUG_BEGIN_FINAL     BEGIN runs a job whose record is already final
 *   BUG_SETTLE_NOCHECK  SETTLE does not check that FINAL's record is there
 */

/* All three are the protocol now (consumer/README.md and the code adopted
 * them): always on. */
#define AMEND_BEGIN_CANCEL
#define AMEND_UNRUN_DEAD
#define AMEND_CLAIM_SEQ

#ifndef NR
#define NR 2
#endif
#ifndef COPIES
#define COPIES 1
#endif
#ifndef LOSTMAX
#define LOSTMAX 2
#endif
#ifndef PAUSEMAX
#define PAUSEMAX 2
#endif
#define MAXATT 2            /* --max-attempts */
#define JAN NR              /* the janitor's replica index */
#define NW (NR + 1)         /* replicas, janitor included */

/* record states (P:job:<id> "state") */
#define S_NONE        0     /* no record yet */
#define S_RUNNING     1
#define S_RETRYING    2
#define S_INTERRUPTED 3
#define S_SUCCEEDED   4     /* final from here on */
#define S_DEAD        5
#define S_CANCELLED   6
#define IS_FINAL(s)   ((s) >= S_SUCCEEDED)

/* replies of the steps */
#define R_NONE      0       /* claim: nothing to take */
#define R_HELD      1       /* claim: we hold a copy */
#define R_ORPHAN    2       /* LIST_CLAIM: a registered W' without lease */
#define R_RUN       3       /* BEGIN: run it (fence learnt) */
#define R_ALREADY   4       /* BEGIN: already <final> */
#define R_CANCELLED 5       /* BEGIN: cancel mark */
#define R_DUP       6       /* BEGIN: another live owner runs it */
#define R_LOST      7       /* we do not hold the copy any more */
#define R_STALE     8       /* our fence is not the record's */
#define R_OK        9
#define R_NOOP      10      /* the script found nothing to do */
#define R_ERR       11      /* the script failed: nothing written */

/* settle dispositions */
#define D_ACK     0
#define D_RETRY   1
#define D_DEAD    2
#define D_RELEASE 3
#define D_UNRUN   4         /* ack without running: already / duplicate / cancelled */

/* Names in the trails (printf runs only when spin replays a trail). */
inline SAY_ST(x) {
    if
    :: x == S_NONE -> printf("none")
    :: x == S_RUNNING -> printf("running")
    :: x == S_RETRYING -> printf("retrying")
    :: x == S_INTERRUPTED -> printf("interrupted")
    :: x == S_SUCCEEDED -> printf("succeeded")
    :: x == S_DEAD -> printf("dead")
    :: x == S_CANCELLED -> printf("cancelled")
    :: else -> printf("?%d", x)
    fi
}
inline SAY_R(x) {
    if
    :: x == R_NONE -> printf("nothing")
    :: x == R_HELD -> printf("held")
    :: x == R_ORPHAN -> printf("orphan")
    :: x == R_RUN -> printf("run")
    :: x == R_ALREADY -> printf("already")
    :: x == R_CANCELLED -> printf("cancelled")
    :: x == R_DUP -> printf("duplicate")
    :: x == R_LOST -> printf("lost")
    :: x == R_STALE -> printf("stale")
    :: x == R_OK -> printf("ok")
    :: x == R_NOOP -> printf("noop")
    :: x == R_ERR -> printf("error")
    :: else -> printf("?%d", x)
    fi
}
inline SAY_D(x) {
    if
    :: x == D_ACK -> printf("ack")
    :: x == D_RETRY -> printf("retry")
    :: x == D_DEAD -> printf("dead")
    :: x == D_RELEASE -> printf("release")
    :: x == D_UNRUN -> printf("ack unrun")
    :: else -> printf("?%d", x)
    fi
}

/* --- Redis state shared by both sources --- */
bool lease[NW];             /* P:lease:W exists */
byte rec_state;             /* P:job:<id> state */
byte rec_fence;             /* P:job:<id> fence */
byte rec_worker;            /* P:job:<id> worker */
byte res_fence;             /* P:result:<id>: fence of the FINAL that set it, 0: none */
bool cmark;                 /* P:cancel:<id> */
byte dl;                    /* entries in --dead-letter */

byte alive = NR;            /* faulty replicas not exited yet */
byte lost_budget = LOSTMAX;
byte pause_budget = PAUSEMAX;

/* --- ghost variables for the properties --- */
byte final_writes;          /* record writes that made it final */
hidden byte runs;

/* Every write to the record goes through here. basis: the fence the writer
 * believes current (its own from BEGIN, or the one SWEEP saw); nf: the
 * fence written. */
inline REC_WRITE(nst, basis, nf) {
    printf("MSC:   record "); SAY_ST(rec_state); printf("/fence %d := ", rec_fence); SAY_ST(nst);
    printf("/fence %d (the writer's fence: %d)\n", nf, basis);
    assert(basis == rec_fence);          /* (2) no stale write applied */
    assert(!IS_FINAL(rec_state));        /* (1) a final record is never replaced */
    if
    :: IS_FINAL(nst) -> final_writes++
    :: else -> skip
    fi;
    assert(final_writes <= 1);           /* (1) final at most once */
    rec_state = nst;
    rec_fence = nf
}

/* SETTLE of an unrun delivery: ack, and (amended) a dead job's copy goes
 * to the dead letter: it may be the one whose dead letter was never pushed. */
inline UNRUN_DEAD_LETTER() {
#ifdef AMEND_UNRUN_DEAD
    if
    :: rec_state == S_DEAD -> dl++
    :: else -> skip
    fi
#else
    skip
#endif
}

/* (1)-(3) at quiescence: the janitor found nothing left to sweep or claim. */
inline CHECK_NOT_LOST() {
    printf("MSC: quiescent: record "); SAY_ST(rec_state); printf("/fence %d, dead letters %d, core runs %d\n", rec_fence, dl, runs);
    assert(IS_FINAL(rec_state));                          /* (3) the job is final... */
    assert(rec_state != S_DEAD || dl > 0);                /* ...and a dead job is in the dead letter */
    assert(rec_state != S_SUCCEEDED || res_fence == rec_fence); /* ...and a success has its result */
    assert(final_writes == 1)
}

/* Between any two steps a faulty replica may crash, or have its next
 * script refused (OOM, READONLY) and exit 69: the same for the job, no
 * effect and no further step. A local choice, so that partial-order
 * reduction keeps it cheap. */
#define FAULT \
    if \
    :: me != JAN -> goto crashed \
    :: skip \
    fi

/* Inside a step's atomic block: its reply may be lost on the wire. */
#define MAYBE_LOSE \
    if \
    :: me != JAN && lost_budget > 0 -> lost_budget--; lost = 1; printf("MSC: r%d reply lost\n", me) \
    :: skip \
    fi

/* A step: its script (one atomic block); if the reply was lost the
 * replica sends it again (after maybe crashing first) and acts on the
 * reply that reaches it. */
#define STEP(S) \
    FAULT; \
    do \
    :: atomic { S; MAYBE_LOSE }; \
       if \
       :: lost -> lost = 0; FAULT \
       :: else -> break \
       fi \
    od

/* A replica paused (a GC, a frozen VM, SIGSTOP) past its lease: the lease
 * expires while it takes no step, at any point between two of its steps;
 * it resumes later (the stale writer) or never (a crash). */
proctype Pauser(byte k) {
end_pause:
    do
    :: atomic { pause_budget > 0 && lease[k] -> pause_budget--; lease[k] = 0; printf("MSC: r%d paused past its lease\n", k) }
    od
}

/* FINAL(st): checks our fence; writes the result (a success), then the
 * record, publishes. Re-sent, it finds its record there and says ok. */
inline FINAL(me, st) {
    atomic {
#ifdef BUG_NO_FENCE
        if
        :: IS_FINAL(rec_state) -> r = R_OK
        :: else ->
            if :: st == S_SUCCEEDED -> res_fence = myf :: else -> skip fi;
            REC_WRITE(st, myf, myf); r = R_OK
        fi;
#else
        if
        :: rec_fence != myf -> r = R_STALE
        :: rec_fence == myf && rec_state == S_RUNNING ->
            if :: st == S_SUCCEEDED -> res_fence = myf :: else -> skip fi;
            REC_WRITE(st, myf, myf); r = R_OK
        :: else -> r = R_OK      /* our record is already there */
        fi;
#endif
        printf("MSC: r%d FINAL(", me); SAY_ST(st); printf(") fence %d -> ", myf); SAY_R(r); printf("\n")
    }
}

/* STORE_BEAT: our fence, `running` -> heartbeat_at, progress. */
inline STORE_BEAT(me) {
    atomic {
        if
        :: rec_fence == myf && rec_state == S_RUNNING -> REC_WRITE(S_RUNNING, myf, myf); r = R_OK
        :: else -> r = R_STALE
        fi;
        printf("MSC: r%d STORE_BEAT fence %d -> ", me, myf); SAY_R(r); printf("\n")
    }
}

/* CANCEL (oneshot cancel, CANCEL_LUA): a final job is left alone; else
 * the mark, and a job with a record nobody runs (retrying, interrupted)
 * is recorded `cancelled`, fence+1. No record: the mark only (BEGIN then
 * records it). A running one: the mark only (its heartbeat sees it). */
inline CANCEL() {
    atomic {
        if
        :: IS_FINAL(rec_state) -> skip
        :: else ->
            cmark = 1;
            if
            :: rec_state == S_NONE || rec_state == S_RUNNING -> skip
            :: else -> REC_WRITE(S_CANCELLED, rec_fence, rec_fence + 1); res_fence = 0
            fi
        fi;
        printf("MSC: CANCEL -> record "); SAY_ST(rec_state); printf("/fence %d\n", rec_fence)
    }
}

#ifdef CANCEL_ON
proctype Canceller() {
    CANCEL()
}
#endif

/* The decision BEGIN makes once it knows we hold the copy (both sources).
 * held_ok: we hold the copy. Sets r, and myf when we run. */
#ifdef BUG_BEGIN_FINAL
#define SEEN_FINAL 0
#else
#define SEEN_FINAL IS_FINAL(rec_state)
#endif
/* BEGIN's "another live replica runs it": the record's worker has its
 * lease (list; a list replica never claims again after its begin, so its
 * lease means it holds that job's copy) or, on a stream, has its lease and
 * an entry of the job pending (stream.pml: a stream replica whose claim
 * and begin reply was lost re-sends the claim, which sets its lease
 * again, after its entry may have been taken over). */
#ifndef RUNS
#define RUNS(w) lease[w]
#endif

inline BEGIN_DECIDE(me) {
    if
    :: rec_state == S_RUNNING && rec_worker == me ->
        r = R_RUN; myf = rec_fence              /* a re-send: the same answer */
    :: else ->
        if
        :: SEEN_FINAL -> r = R_ALREADY
        :: else ->
            if
            :: cmark ->
#ifdef AMEND_BEGIN_CANCEL
                if
                :: rec_state == S_RUNNING && RUNS(rec_worker) -> r = R_DUP
                :: else -> REC_WRITE(S_CANCELLED, rec_fence, rec_fence + 1); res_fence = 0; r = R_CANCELLED
                fi
#else
                r = R_CANCELLED
#endif
            :: else ->
                if
                :: rec_state == S_RUNNING && RUNS(rec_worker) -> r = R_DUP
                :: else ->
                    REC_WRITE(S_RUNNING, rec_fence, rec_fence + 1);
                    res_fence = 0; /* an earlier attempt's result is dropped */
                    rec_worker = me; myf = rec_fence; r = R_RUN
                fi
            fi
        fi
    fi
}
