/* stream.pml -- the redis-stream protocol of consumer/README.md: the entries
 * of one consumer group, STREAM_CLAIM (alone, or beginning the entry it
 * takes: STREAM_CLAIM_BEGIN), BEGIN, HEARTBEAT + STORE_BEAT,
 * FINAL + SETTLE, CANCEL. Run by tests/e2e/model.sh; tests/model/README.md
 * says what is modelled. */
/* An entry's state (e_st below). */
#define E_NONE  0           /* not added (yet) */
#define E_NEW   1           /* after the group's last-delivered id */
#define E_PEND  2           /* in the PEL of consumer e_own */
#define E_ACKED 3

/* BEGIN's "another live replica runs it" (common.pml): its lease, and an
 * entry of the job pending with it (every entry is a copy of the job). */
#define HOLDS_E(w, k) (e_st[k] == E_PEND && e_own[k] == w)
#ifdef BUG_RUNS_LEASE
#define RUNS(w) lease[w]    /* the mutant: a live lease alone */
#else
#define RUNS(w) (lease[w] && (HOLDS_E(w, 0) || HOLDS_E(w, 1) || (COPIES > 1 && (HOLDS_E(w, 2) || HOLDS_E(w, 3)))))
#endif
#include "common.pml"

/* The stream Q and its group. Entries in id order; at most COPIES
 * deliveries by the producer plus one retry entry (XADD attempt+1) each. */
#define NE (2 * COPIES)
byte e_st[NE];
byte e_own[NE];             /* the pending entry's consumer (a replica) */
byte e_del[NE];             /* its delivery count */
byte e_fld[NE];             /* its attempt field */
byte ne = COPIES;           /* entries added */

#define HELD(me) (e_st[cur] == E_PEND && e_own[cur] == me)

/* STREAM_CLAIM: lease (SET PX); returns our pending entry (a lost reply),
 * else one whose owner's lease is gone (XCLAIM: ours, deliveries+1; any of
 * them), else a new one (XREADGROUP >: deliveries 1). */
inline STREAM_CLAIM(me) {
    atomic {
        lease[me] = 1;
        r = R_NONE;
        cur = 0;
        i = 0;
        do
        :: i < NE ->
            if
            :: r == R_NONE && e_st[i] == E_PEND && e_own[i] == me -> r = R_HELD; cur = i
            :: else -> skip
            fi;
            i++
        :: else -> break
        od;
        if
        :: r == R_NONE ->
            i = 0;
            do
            :: i < NE ->
                if
                :: e_st[i] == E_PEND && e_own[i] != me && !lease[e_own[i]] ->
                    if
                    :: r == R_NONE -> r = R_HELD; cur = i
                    :: r == R_HELD -> cur = i           /* any of them */
                    :: r == R_HELD -> skip
                    fi
                :: else -> skip
                fi;
                i++
            :: else -> break
            od;
            if
            :: r == R_HELD -> e_own[cur] = me; e_del[cur]++
            :: else -> skip
            fi
        :: else -> skip
        fi;
        if
        :: r == R_NONE ->
            i = 0;
            do
            :: i < NE ->
                if
                :: e_st[i] == E_NEW -> e_st[i] = E_PEND; e_own[i] = me; e_del[i] = 1; r = R_HELD; cur = i; break
                :: else -> i++
                fi
            :: else -> break
            od
        :: else -> skip
        fi;
        i = 0;
        printf("MSC: r%d STREAM_CLAIM -> ", me); SAY_R(r);
        if
        :: r == R_HELD -> printf(" entry %d (deliveries %d)\n", cur, e_del[cur])
        :: else -> printf("\n")
        fi
    }
}

/* BEGIN: the entry is pending with us; then the record decides
 * (common.pml). The attempt: the entry's attempt field plus its delivery
 * count minus one. */
inline BEGIN(me) {
    atomic {
        if
        :: !HELD(me) -> r = R_LOST
        :: else -> cdel = e_del[cur]; att = e_fld[cur] + cdel - 1; BEGIN_DECIDE(me)
        fi;
        printf("MSC: r%d BEGIN -> ", me); SAY_R(r); printf(" (fence %d, attempt %d)\n", myf, att)
    }
}

/* STREAM_CLAIM that begins the entry it takes, in the same script (the
 * replica with --store redis: consumer/README.md "Steps"). Re-sent after
 * a lost reply, it finds the entry pending with us and its own running
 * record: the same fence. */
inline STREAM_CLAIM_BEGIN(me) {
    atomic {
        STREAM_CLAIM(me);
        if
        :: r == R_HELD -> BEGIN(me)
        :: else -> skip
        fi
    }
}

/* HEARTBEAT (source): the entry is pending with us -> PEXPIRE the lease. */
inline HEARTBEAT(me) {
    atomic {
        if
        :: HELD(me) -> r = R_OK
        :: else -> r = R_LOST
        fi;
        printf("MSC: r%d HEARTBEAT -> ", me); SAY_R(r); printf("\n")
    }
}

/* SETTLE(disp, st): the entry is pending with us; the record holds st
 * under our fence (nothing checked for an unrun ack). ack: XACK; retry:
 * XADD attempt+1, XACK; dead: XADD the dead letter, XACK; release: the
 * delivery count set back to the one seen minus one (XCLAIM RETRYCOUNT),
 * left pending for a claim to take. The lease is removed. */
inline SETTLE(me) {
    atomic {
#ifdef BUG_SETTLE_NOCHECK
        if
        :: HELD(me) ->
#else
        if
        :: HELD(me) && (disp == D_UNRUN || (rec_fence == myf && rec_state == st)) ->
#endif
            if
            :: disp == D_ACK -> e_st[cur] = E_ACKED
            :: disp == D_UNRUN -> UNRUN_DEAD_LETTER(); e_st[cur] = E_ACKED
            :: disp == D_RETRY ->
                assert(ne < NE);
                e_st[ne] = E_NEW; e_fld[ne] = att + 1; ne++;
                e_st[cur] = E_ACKED
            :: disp == D_DEAD -> dl++; e_st[cur] = E_ACKED
            :: disp == D_RELEASE -> e_del[cur] = cdel - 1      /* XCLAIM RETRYCOUNT: absolute */
            fi;
            lease[me] = 0;
            r = R_OK
        :: else -> r = R_NOOP
        fi;
        printf("MSC: r%d SETTLE(", me); SAY_D(disp); printf(") -> "); SAY_R(r); printf("\n")
    }
}

inline FORGET() {
    r = 0; i = 0; cur = 0; cdel = 0; att = 0; myf = 0; st = 0; disp = 0; lost = 0
}

/* One replica (me < JAN: faulty, one job then exit) or the janitor. */
proctype Replica(byte me) {
    byte r, i, cur, cdel, att, myf, st, disp, loops;
    bool lost;
    if
    :: me == JAN -> (alive == 0); printf("MSC: janitor starts\n")
    :: else -> skip
    fi;
claim:
    /* The claim script begins the entry it takes; or BEGIN does, a step
     * of its own (an entry the script leaves to the replica, or one the
     * blocking XREADGROUP brought). */
    if
    :: STEP(STREAM_CLAIM_BEGIN(me))
    :: STEP(STREAM_CLAIM(me));
       if
       :: r == R_HELD -> STEP(BEGIN(me))
       :: else -> skip
       fi
    fi;
    if
    :: r == R_NONE -> goto idle
    :: r == R_LOST -> goto exit69
    :: r == R_ALREADY || r == R_DUP || r == R_CANCELLED -> disp = D_UNRUN; goto settle
    :: r == R_RUN && att > MAXATT ->
        st = S_DEAD; disp = D_DEAD; goto final           /* exhausted: dead-lettered unrun */
    :: r == R_RUN && att <= MAXATT -> skip
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
final:
    /* FINAL and SETTLE in one round trip: SETTLE is sent whatever FINAL's
     * answer, and FINAL may be refused (OOM, READONLY): no effect */
    if
    :: STEP(FINAL(me, st))
    :: me != JAN -> FAULT; atomic { printf("MSC: r%d FINAL refused\n", me) }
    fi;
settle:
    STEP(SETTLE(me));
    if
    :: r == R_NOOP && me != JAN -> goto exit69      /* the entry stays pending, to be claimed */
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
    :: me == JAN ->
        i = 0;
        do
        :: i < NE -> assert(e_st[i] == E_NONE || e_st[i] == E_ACKED); i++
        :: else -> break
        od;
        CHECK_NOT_LOST(); goto end
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
        for (k : 0 .. COPIES - 1) {
            e_st[k] = E_NEW; e_fld[k] = 1
        }
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
