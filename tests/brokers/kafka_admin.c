/* kafka_admin -- what the tests ask of a real Kafka broker that kcat cannot
 * do, through librdkafka's Admin API (tests/brokers/kafka_broker_start.sh uses it).
 *
 *   kafka_admin -b BROKERS [-X K=V]... create TOPIC[:PARTITIONS[:K=V[,K=V]...]] ...
 *       CreateTopics (replication factor 1, topic configs K=V, e.g.
 *       max.message.bytes=2000000); a topic that exists is fine.
 *       Returns once the metadata shows every partition of every topic
 *       with a leader, so the next produce or join finds them.
 *   kafka_admin -b BROKERS [-X K=V]... warm
 *       The broker's first idempotent producer and first group lookup
 *       create __transaction_state and __consumer_offsets; this makes both
 *       happen now (an InitProducerId and an OffsetFetch), off the tests'
 *       clocks: a real cluster has them already.
 *   kafka_admin -b BROKERS [-X K=V]... group GROUP
 *       One line: "state=S members=N assigned=P" (DescribeConsumerGroups;
 *       P = partitions assigned over all members), then one line per
 *       member: "member CLIENT_ID HOST PARTITIONS".
 *
 * Every call is bounded (10 s); exit 0 on success, 1 on an error (printed
 * to stderr), 2 on bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#define TIMEOUT_MS 10000
#define MAX_PROPS 32

static const char *brokers;
static const char *props[MAX_PROPS];
static int nprops;

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A handle of the given type with -b and every -X; extra: NULL-terminated
 * name, value pairs set first. */
static rd_kafka_t *client(rd_kafka_type_t type, const char *const *extra) {
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof(err)) != RD_KAFKA_CONF_OK) goto bad;
    for (int i = 0; extra && extra[i]; i += 2)
        if (rd_kafka_conf_set(c, extra[i], extra[i + 1], err, sizeof(err)) != RD_KAFKA_CONF_OK) goto bad;
    for (int i = 0; i < nprops; i++) {
        char name[256];
        const char *eq = strchr(props[i], '=');
        if (!eq || (size_t)(eq - props[i]) >= sizeof(name)) {
            snprintf(err, sizeof(err), "-X %s: not K=V", props[i]);
            goto bad;
        }
        memcpy(name, props[i], (size_t)(eq - props[i]));
        name[eq - props[i]] = '\0';
        if (rd_kafka_conf_set(c, name, eq + 1, err, sizeof(err)) != RD_KAFKA_CONF_OK) goto bad;
    }
    rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof(err));
    if (rk) return rk;
    c = NULL;
bad:
    if (c) rd_kafka_conf_destroy(c);
    fprintf(stderr, "kafka_admin: %s\n", err);
    return NULL;
}

/* The result event of an admin call on q, or NULL after TIMEOUT_MS. */
static rd_kafka_event_t *await(rd_kafka_queue_t *q) {
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, TIMEOUT_MS);
    if (!ev) fprintf(stderr, "kafka_admin: no answer within %d ms\n", TIMEOUT_MS);
    return ev;
}

/* 1 when every partition of each topic has a leader. */
static int leaders_ready(rd_kafka_t *rk, char **topics, int n) {
    const struct rd_kafka_metadata *md = NULL;
    int ok = 0;
    if (rd_kafka_metadata(rk, 1, NULL, &md, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
    for (int i = 0; i < n; i++) {
        size_t len = strcspn(topics[i], ":");
        int found = 0;
        for (int t = 0; t < md->topic_cnt && !found; t++) {
            const struct rd_kafka_metadata_topic *mt = &md->topics[t];
            if (strlen(mt->topic) != len || strncmp(mt->topic, topics[i], len) != 0) continue;
            if (mt->err || mt->partition_cnt == 0) break;
            found = 1;
            for (int p = 0; p < mt->partition_cnt; p++)
                if (mt->partitions[p].leader < 0 || mt->partitions[p].err) found = 0;
        }
        if (!found) goto end;
    }
    ok = 1;
end:
    rd_kafka_metadata_destroy(md);
    return ok;
}

static int cmd_create(char **topics, int n) {
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, NULL);
    if (!rk) return 1;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_NewTopic_t **nt = calloc((size_t)n, sizeof(*nt));
    char err[512];
    int rc = 1;
    for (int i = 0; i < n; i++) {
        char name[256];
        const char *colon = strchr(topics[i], ':');
        size_t len = colon ? (size_t)(colon - topics[i]) : strlen(topics[i]);
        int parts = colon ? atoi(colon + 1) : 1;
        const char *configs = colon ? strchr(colon + 1, ':') : NULL;
        if (len == 0 || len >= sizeof(name) || parts < 1) {
            fprintf(stderr, "kafka_admin: bad topic '%s'\n", topics[i]);
            goto end;
        }
        memcpy(name, topics[i], len);
        name[len] = '\0';
        nt[i] = rd_kafka_NewTopic_new(name, parts, 1, err, sizeof(err));
        if (!nt[i]) {
            fprintf(stderr, "kafka_admin: %s: %s\n", name, err);
            goto end;
        }
        for (const char *c = configs; c && *c;) {
            char kv[512], *eq;
            size_t kl = strcspn(++c, ",");
            if (kl >= sizeof(kv)) kl = sizeof(kv) - 1;
            memcpy(kv, c, kl);
            kv[kl] = '\0';
            c += kl;
            if (!(eq = strchr(kv, '='))) {
                fprintf(stderr, "kafka_admin: %s: config '%s' is not K=V\n", name, kv);
                goto end;
            }
            *eq = '\0';
            rd_kafka_NewTopic_set_config(nt[i], kv, eq + 1);
        }
    }
    rd_kafka_CreateTopics(rk, nt, (size_t)n, NULL, q);
    rd_kafka_event_t *ev = await(q);
    if (!ev) goto end;
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;
    rc = rd_kafka_event_error(ev) ? 1 : 0;
    if (rc) fprintf(stderr, "kafka_admin: create: %s\n", rd_kafka_event_error_string(ev));
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) continue;
        fprintf(stderr, "kafka_admin: create %s: %s\n", rd_kafka_topic_result_name(tr[i]),
                rd_kafka_topic_result_error_string(tr[i]));
        rc = 1;
    }
    rd_kafka_event_destroy(ev);
    if (rc == 0) {
        long long until = now_ms() + TIMEOUT_MS;
        while (!leaders_ready(rk, topics, n)) {
            if (now_ms() >= until) {
                fprintf(stderr, "kafka_admin: topics have no leader after %d ms\n", TIMEOUT_MS);
                rc = 1;
                break;
            }
            struct timespec d = {0, 20 * 1000000L};
            nanosleep(&d, NULL);
        }
    }
end:
    for (int i = 0; i < n; i++)
        if (nt[i]) rd_kafka_NewTopic_destroy(nt[i]);
    free(nt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

static char warm_value[] = "w";

static int cmd_warm(void) {
    static const char *const pconf[] = {"enable.idempotence", "true", NULL};
    static const char *const cconf[] = {"group.id", "oneshot-warm", NULL};
    int rc = 0;
    rd_kafka_t *p = client(RD_KAFKA_PRODUCER, pconf);
    if (!p) return 1;
    /* The idempotent producer's InitProducerId is sent at start; a flush
     * of nothing does not wait for it, a message does. */
    rd_kafka_resp_err_t e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC("oneshot-warm"), RD_KAFKA_V_VALUE(warm_value, 1),
                                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (!e) e = rd_kafka_flush(p, TIMEOUT_MS);
    if (e) {
        fprintf(stderr, "kafka_admin: warm: produce: %s\n", rd_kafka_err2str(e));
        rc = 1;
    }
    rd_kafka_destroy(p);
    rd_kafka_t *c = client(RD_KAFKA_CONSUMER, cconf);
    if (!c) return 1;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, "oneshot-warm", 0);
    /* Retried by librdkafka while the coordinator loads. */
    if ((e = rd_kafka_committed(c, l, TIMEOUT_MS)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka_admin: warm: group coordinator: %s\n", rd_kafka_err2str(e));
        rc = 1;
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(c);
    return rc;
}

static int cmd_group(const char *group) {
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, NULL);
    if (!rk) return 1;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    int rc = 1;
    rd_kafka_DescribeConsumerGroups(rk, &group, 1, NULL, q);
    rd_kafka_event_t *ev = await(q);
    if (!ev) goto end;
    const rd_kafka_DescribeConsumerGroups_result_t *res = rd_kafka_event_DescribeConsumerGroups_result(ev);
    size_t cnt = 0;
    const rd_kafka_ConsumerGroupDescription_t **gd =
        res ? rd_kafka_DescribeConsumerGroups_result_groups(res, &cnt) : NULL;
    if (rd_kafka_event_error(ev) || cnt != 1) {
        fprintf(stderr, "kafka_admin: group %s: %s\n", group, rd_kafka_event_error_string(ev));
    } else if (rd_kafka_ConsumerGroupDescription_error(gd[0])) {
        fprintf(stderr, "kafka_admin: group %s: %s\n", group,
                rd_kafka_error_string(rd_kafka_ConsumerGroupDescription_error(gd[0])));
    } else {
        size_t n = rd_kafka_ConsumerGroupDescription_member_count(gd[0]);
        int assigned = 0;
        for (size_t i = 0; i < n; i++) {
            const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(gd[0], i);
            const rd_kafka_topic_partition_list_t *a =
                rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m));
            assigned += a ? a->cnt : 0;
        }
        printf("state=%s members=%zu assigned=%d\n",
               rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(gd[0])), n, assigned);
        for (size_t i = 0; i < n; i++) {
            const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(gd[0], i);
            const rd_kafka_topic_partition_list_t *a =
                rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m));
            printf("member %s %s", rd_kafka_MemberDescription_client_id(m), rd_kafka_MemberDescription_host(m));
            for (int k = 0; a && k < a->cnt; k++) printf(" %s:%d", a->elems[k].topic, (int)a->elems[k].partition);
            printf("\n");
        }
        rc = 0;
    }
    rd_kafka_event_destroy(ev);
end:
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

static int usage(void) {
    fprintf(stderr, "usage: kafka_admin -b BROKERS [-X K=V]... create TOPIC[:PARTITIONS]... | warm | group GROUP\n");
    return 2;
}

int main(int argc, char **argv) {
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (!strcmp(argv[i], "-b"))
            brokers = argv[i + 1];
        else if (!strcmp(argv[i], "-X") && nprops < MAX_PROPS)
            props[nprops++] = argv[i + 1];
        else
            return usage();
    }
    if (!brokers || i >= argc) return usage();
    if (!strcmp(argv[i], "create") && i + 1 < argc) return cmd_create(argv + i + 1, argc - i - 1);
    if (!strcmp(argv[i], "warm") && i + 1 == argc) return cmd_warm();
    if (!strcmp(argv[i], "group") && i + 2 == argc) return cmd_group(argv[i + 1]);
    return usage();
}
