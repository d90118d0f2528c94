/* list.pml -- the redis-list protocol of consumer/README.md: LIST_CLAIM +
 * BLMOVE, SWEEP, BEGIN, HEARTBEAT + STORE_BEAT, FINAL + SETTLE, CANCEL.
 * Run by tests/e2e/model.sh; tests/model/README.md says what is modelled. */
#include "common.pml"

/* Q: the copies in the queue, by the attempt their bytes carry (a multiset:
 * a claim may take any, which covers every order). Copies of one id with
 * the same attempt are the same bytes (a producer's re-send). */
byte qn[MAXATT + 2];
byte proc[NW];              /* Q:processing:W: attempt of the copy held, 0: empty */
bool reg[NW];               /* W in Q:workers */

/* LIST_CLAIM: lease (SET PX), registration (SADD); returns our held copy
 * (the reply of a BLMOVE was lost), else one orphan: a registered W'
 * without lease whose processing list holds a copy (any of them), with its
 * bytes and the record's fence as seen now. */
inline LIST_CLAIM(me) {
    atomic {
        lease[me] = 1;
        reg[me] = 1;
        r = R_NONE; ow = 0; ob = 0; sf = 0;
        if
        :: proc[me] != 0 -> r = R_HELD
        :: else ->
            i = 0;
            do
            :: i < NW ->
                if
                :: i != me && reg[i] && !lease[i] && proc[i] != 0 ->
                    if
                    :: r == R_NONE -> r = R_ORPHAN; ow = i
                    :: r == R_ORPHAN -> ow = i          /* SMEMBERS: any order */
                    :: r == R_ORPHAN -> skip
                    fi
                :: else -> skip
                fi;
                i++
            :: else -> break
            od;
            if
            :: r == R_ORPHAN -> ob = proc[ow]; sf = rec_fence
            :: else -> skip
            fi
        fi;
        i = 0;
        printf("MSC: r%d LIST_CLAIM -> ", me); SAY_R(r);
        if
        :: r == R_ORPHAN -> printf(" r%d (its copy: attempt %d; record fence %d)\n", ow, ob, sf)
        :: else -> printf("\n")
        fi
    }
}

/* BLMOVE Q Q:processing:W: one copy (any: the queue is a multiset) into
 * our empty processing list; got: it moved one. An empty queue: the
 * replica waits, then exits 75 (waiting is the interleaving in which it
 * runs later). */
inline BLMOVE(me) {
    atomic {
        got = 0;
        if
        :: proc[me] == 0 ->
            i = 1;
            do
            :: i <= MAXATT + 1 ->
                if
                :: qn[i] > 0 && got == 0 -> got = i
                :: qn[i] > 0 && got != 0 -> got = i     /* any of them */
                :: qn[i] > 0 && got != 0 -> skip
                :: qn[i] == 0 -> skip
                fi;
                i++
            :: else -> break
            od;
            if
            :: got != 0 -> qn[got]--; proc[me] = got; got = 1
            :: else -> skip
            fi
        :: else -> skip     /* a copy held already (not modelled: see README.md) */
        fi;
        i = 0;
        if
        :: got -> printf("MSC: r%d BLMOVE -> a copy (attempt %d)\n", me, proc[me])
        :: else -> printf("MSC: r%d BLMOVE -> nothing\n", me)
        fi
    }
}

/* SWEEP of orphan ow: its owner has no lease; its copy is still the bytes
 * we saw; the record's fence is still the one we saw. Then: a final record:
 * drop the copy (a dead letter pushed first when `dead`); else back to the
 * queue with attempt+1 (record `interrupted`, fence+1), or past
 * --max-attempts dead-lettered (record `dead`, fence+1). The owner leaves
 * Q:workers. */
inline SWEEP(me) {
    atomic {
#ifdef BUG_SWEEP_NOCAS
        if
        :: !lease[ow] ->
#else
        if
        :: !lease[ow] && proc[ow] == ob && rec_fence == sf ->
#endif
            if
            :: IS_FINAL(rec_state) ->
                if :: rec_state == S_DEAD -> dl++ :: else -> skip fi
            :: !IS_FINAL(rec_state) && ob + 1 <= MAXATT ->
                qn[ob + 1]++;
                REC_WRITE(S_INTERRUPTED, sf, rec_fence + 1)
            :: !IS_FINAL(rec_state) && ob + 1 > MAXATT ->
                dl++;
                REC_WRITE(S_DEAD, sf, rec_fence + 1)
            fi;
            proc[ow] = 0;
            reg[ow] = 0;
            r = R_OK
        :: else -> r = R_NOOP
        fi;
        printf("MSC: r%d SWEEP(r%d, attempt %d, fence %d) -> ", me, ow, ob, sf); SAY_R(r); printf("\n")
    }
}

/* BEGIN: we hold the copy; then the record decides (common.pml). */
inline BEGIN(me) {
    atomic {
        if
        :: proc[me] == 0 -> r = R_LOST
        :: else -> att = proc[me]; BEGIN_DECIDE(me)
        fi;
        printf("MSC: r%d BEGIN -> ", me); SAY_R(r); printf(" (fence %d, attempt %d)\n", myf, att)
    }
}

/* HEARTBEAT (source): we hold the copy -> PEXPIRE the lease (a lease gone
 * stays gone). */
inline HEARTBEAT(me) {
    atomic {
        if
        :: proc[me] != 0 -> r = R_OK
        :: else -> r = R_LOST
        fi;
        printf("MSC: r%d HEARTBEAT -> ", me); SAY_R(r); printf("\n")
    }
}

/* SETTLE(disp, st): we hold the copy; the record holds st under our fence
 * (what FINAL wrote; `running` for a release), nothing for an unrun ack.
 * ack: drop; retry: push attempt+1; dead: push the dead letter; release:
 * the copy back to the head. Lease and registration removed. */
inline SETTLE(me) {
    atomic {
#ifdef BUG_SETTLE_NOCHECK
        if
        :: proc[me] != 0 ->
#else
        if
        :: proc[me] != 0 && (disp == D_UNRUN || (rec_fence == myf && rec_state == st)) ->
#endif
            if
            :: disp == D_ACK -> skip
            :: disp == D_UNRUN -> UNRUN_DEAD_LETTER()
            :: disp == D_RETRY -> qn[proc[me] + 1]++
            :: disp == D_DEAD -> dl++
            :: disp == D_RELEASE -> qn[proc[me]]++
            fi;
            proc[me] = 0;
            lease[me] = 0;
            reg[me] = 0;
            r = R_OK
        :: else -> r = R_NOOP
        fi;
        printf("MSC: r%d SETTLE(", me); SAY_D(disp); printf(") -> "); SAY_R(r); printf("\n")
    }
}

/* An exited replica's locals are dead: clear them (fewer states). */
inline FORGET() {
    r = 0; i = 0; ow = 0; ob = 0; sf = 0; att = 0; myf = 0; st = 0; disp = 0; lost = 0; got = 0
}

/* One replica (me < JAN: faulty, one job then exit) or the janitor. */
proctype Replica(byte me) {
    byte r, i, ow, ob, sf, att, myf, st, disp, loops;
    byte got;
    bool lost;
    if
    :: me == JAN -> (alive == 0); printf("MSC: janitor starts\n")
    :: else -> skip
    fi;
claim:
    /* LIST_CLAIM and BLMOVE go out in one round trip: BLMOVE runs whatever
     * LIST_CLAIM answers, even when LIST_CLAIM failed (a script error such
     * as WRONGTYPE on Q:workers, or refused: nothing written) */
    FAULT;
    if
    :: atomic { LIST_CLAIM(me) }
    :: me != JAN -> atomic { r = R_ERR; printf("MSC: r%d LIST_CLAIM fails (refused or a script error): nothing written\n", me) }
    fi;
#ifdef AMEND_CLAIM_SEQ
    if
    :: r == R_NONE -> FAULT; BLMOVE(me)
    :: else -> got = 0
    fi;
#else
    if
    :: r != R_HELD -> BLMOVE(me)
    :: else -> got = 0
    fi;
#endif
    /* the round trip's reply lost: LIST_CLAIM alone finds what BLMOVE moved */
    if
    :: atomic { me != JAN && lost_budget > 0 -> lost_budget--; printf("MSC: r%d claim reply lost\n", me) }; goto recover
    :: skip
    fi;
    if
    :: r == R_ERR -> goto exit69                    /* the claim failed: exit 69 */
    :: r == R_HELD -> goto begin
    :: r == R_ORPHAN -> STEP(SWEEP(me));
        if
        :: got -> goto begin
        :: else -> goto claim
        fi
    :: r == R_NONE ->
        if
        :: got -> goto begin
        :: else -> goto idle
        fi
    fi;
recover:
    STEP(LIST_CLAIM(me));
    if
    :: r == R_HELD -> goto begin
    :: r == R_ORPHAN -> STEP(SWEEP(me)); goto claim
    :: r == R_NONE -> goto claim
    fi;
begin:
    STEP(BEGIN(me));
    if
    :: r == R_LOST -> goto exit69
    :: r == R_ALREADY || r == R_DUP || r == R_CANCELLED -> disp = D_UNRUN; goto settle
    :: r == R_RUN -> skip
    fi;
    d_step { runs++; printf("MSC: r%d runs the core (attempt %d)\n", me, att) };
    /* a heartbeat or not */
    if
    :: skip
    :: STEP(HEARTBEAT(me));
       if :: r == R_LOST -> goto exit69 :: else -> skip fi;
       STEP(STORE_BEAT(me));
       if :: r == R_STALE -> goto exit69 :: else -> skip fi
    fi;
    /* the core's outcome */
    if
    :: st = S_SUCCEEDED; disp = D_ACK
    :: att < MAXATT -> st = S_RETRYING; disp = D_RETRY
    :: att >= MAXATT -> st = S_DEAD; disp = D_DEAD
    :: cmark -> st = S_CANCELLED; disp = D_ACK
    :: me != JAN -> st = S_RUNNING; disp = D_RELEASE; goto settle     /* SIGTERM */
    fi;
    /* FINAL and SETTLE in one round trip: SETTLE is sent whatever FINAL's
     * answer, and FINAL may be refused (OOM, READONLY): no effect */
    if
    :: STEP(FINAL(me, st))
    :: me != JAN -> FAULT; atomic { printf("MSC: r%d FINAL refused\n", me) }
    fi;
settle:
    STEP(SETTLE(me));
    if
    :: r == R_NOOP && me != JAN -> goto exit69      /* the copy stays held, to be swept */
    :: me == JAN ->
        loops++;
        assert(loops < 8);                  /* the janitor gets to an end */
        goto claim
    :: else -> skip
    fi;
    atomic { alive--; printf("MSC: r%d exits, settled\n", me); FORGET() };
    goto end;
idle:
    if
    :: me == JAN -> CHECK_NOT_LOST(); goto end
    :: else -> skip
    fi;
exit69:
crashed:
    /* gone without settling: its lease expires, at some point */
    atomic { lease[me] = 0; alive--; printf("MSC: r%d gone (crash, refused step or exit), its lease expires\n", me); FORGET() };
end:
    skip
}

init {
    byte k;
    atomic {
        qn[1] = COPIES;
        for (k : 0 .. JAN) {
            run Replica(k)
        }
        for (k : 0 .. JAN - 1) {
            run Pauser(k)
        }
#ifdef CANCEL_ON
        run Canceller();
#endif
    }
}
