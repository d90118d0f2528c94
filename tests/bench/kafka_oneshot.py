#!/usr/bin/python3
"""kafka_oneshot.py -- the Python peer of a Kafka one-shot replica (`make bench`).

  kafka_oneshot.py --brokers B --topic T --group G [--prop K=V]...
      Join G on T, poll until the first message, commit its offset + 1
      synchronously, close (LeaveGroup), exit 0. What oneshot does around
      its job, without the job: no core, no result or status produced.
      auto commit off, auto.offset.reset=earliest, the client's default
      assignor. One JSON line on stderr (all ms, monotonic clock):
      import_ms (confluent_kafka import), join_ms (subscribe -> the first
      on_assign), assigned_ms (subscribe -> the last non-empty on_assign
      before the message: with the cooperative protocol the partition may
      come a rebalance after the first, empty one), claim_ms (that on_assign
      -> the message), commit_ms, close_ms,
      after_assign_ms (on_assign -> just before exit). Exit 1 on any error,
      2 when no message arrived within --timeout seconds.

  kafka_oneshot.py --check --brokers B --topic T --group G [--want N]
      Exit 0 iff G's committed offset on T [0] is N (default 1; -1: T [0]'s
      high watermark): the run under test claimed and committed the
      message. Off the clock.

Debian's python3-confluent-kafka (1.7.0, librdkafka 2.0.2), /usr/bin/python3.
"""
import time

T0 = time.monotonic()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

from confluent_kafka import Consumer, KafkaException, TopicPartition  # noqa: E402

T_IMPORTED = time.monotonic()


def ms(a, b):
    return round((b - a) * 1000.0, 3) if a is not None and b is not None else -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--prop", action="append", default=[], help="K=V, a librdkafka property")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--want", type=int, default=1)
    a = ap.parse_args()

    conf = {
        "bootstrap.servers": a.brokers,
        "group.id": a.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    for p in a.prop:
        k, _, v = p.partition("=")
        conf[k] = v

    if a.check:
        c = Consumer(conf)
        try:
            got = c.committed([TopicPartition(a.topic, 0)], timeout=10)
            if a.want < 0:
                a.want = c.get_watermark_offsets(TopicPartition(a.topic, 0), timeout=10)[1]
        finally:
            c.close()
        off = got[0].offset if got else None
        if off != a.want:
            print(f"kafka_oneshot.py --check: {a.group} committed {off} on {a.topic} [0], want {a.want}",
                  file=sys.stderr)
            return 1
        return 0

    t = {"first": None, "assigned": None}

    def on_assign(consumer, parts):
        now = time.monotonic()
        if t["first"] is None:
            t["first"] = now
        if parts:
            t["assigned"] = now

    c = Consumer(conf)
    t_sub = time.monotonic()
    c.subscribe([a.topic], on_assign=on_assign)
    until = t_sub + a.timeout
    msg = None
    while time.monotonic() < until:
        m = c.poll(0.1)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        msg = m
        break
    if msg is None:
        c.close()
        print("kafka_oneshot.py: no message", file=sys.stderr)
        return 2
    t_msg = time.monotonic()
    c.commit(message=msg, asynchronous=False)  # commits msg.offset() + 1
    t_commit = time.monotonic()
    c.close()
    t_close = time.monotonic()
    print(json.dumps({"import_ms": ms(T0, T_IMPORTED), "join_ms": ms(t_sub, t["first"]),
                      "assigned_ms": ms(t_sub, t["assigned"]),
                      "claim_ms": ms(t["assigned"], t_msg), "commit_ms": ms(t_msg, t_commit),
                      "close_ms": ms(t_commit, t_close), "after_assign_ms": ms(t["assigned"], t_close),
                      "offset": msg.offset()}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
