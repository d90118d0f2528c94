#!/usr/bin/python3
"""kafka_burst.py -- the Python peer of `oneshot fleet` on Kafka (`make bench`).

  kafka_burst.py --brokers B --topic T --group G [--prop K=V]...

One long-lived confluent-kafka consumer in burst mode: join G on T, and for
each message run the echo job (its value is the result), produce the result
to T.results (key = the message key, idempotent producer, flushed) and
commit offset + 1 synchronously: what a oneshot replica does per job, in
one process for all of them. Stops once every assigned partition reached
its end (enable.partition.eof) and nothing came for --idle seconds. One
JSON line on stdout: jobs, wall_s (subscribe -> the last commit),
jobs_per_s, cpu_ms. Exit 0 once at least one job ran.
Debian's python3-confluent-kafka (librdkafka 2.0.2), /usr/bin/python3.
"""
import argparse
import json
import resource
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--prop", action="append", default=[])
    ap.add_argument("--idle", type=float, default=1.0)
    a = ap.parse_args()
    conf = {"bootstrap.servers": a.brokers, "group.id": a.group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "enable.partition.eof": True}
    for p in a.prop:
        k, _, v = p.partition("=")
        conf[k] = v
    prod = Producer({"bootstrap.servers": a.brokers, "enable.idempotence": True})
    c = Consumer(conf)
    t0 = time.monotonic()
    c.subscribe([a.topic])
    jobs, last, eof, t_end = 0, time.monotonic(), set(), t0
    while True:
        m = c.poll(0.1)
        if m is None:
            if c.assignment() and eof >= {(p.topic, p.partition) for p in c.assignment()} and \
                    time.monotonic() - last >= a.idle:
                break
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                eof.add((m.topic(), m.partition()))
                continue
            raise KafkaException(m.error())
        eof.discard((m.topic(), m.partition()))
        prod.produce(a.topic + ".results", key=m.key(), value=m.value(),
                     headers={"state": "succeeded", "exit_code": "0"})
        if prod.flush(30) != 0:
            raise SystemExit("kafka_burst.py: result not delivered")
        c.commit(message=m, asynchronous=False)
        jobs += 1
        last = t_end = time.monotonic()
    c.close()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    wall = t_end - t0
    print(json.dumps({"jobs": jobs, "wall_s": round(wall, 3), "jobs_per_s": round(jobs / wall, 2) if wall else 0,
                      "cpu_ms": round((ru.ru_utime + ru.ru_stime) * 1000)}))
    return 0 if jobs else 1


if __name__ == "__main__":
    sys.exit(main())
