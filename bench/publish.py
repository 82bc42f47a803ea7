"""Publisher process: RATE events/s for SECONDS, each stamped with its send time; reports publish cost.

Usage: publish.py MODE RATE SECONDS OUT.json [PAPER_ID OWNER_ID FIRST_SEQ]. MODE project uses the project's
broadcast_event (sync, as a Celery worker would); naive uses async_to_sync(group_send) per event, the way
tutorials do; raw and batched PUBLISH to their servers' Redis channel."""

import json
import os
import sys
import time


def publisher(mode, paper_id, owner_id):
    if mode == "project":
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paperpipeline.settings")
        import django

        django.setup()
        from realtime.broadcast import broadcast_event

        return lambda payload: broadcast_event(payload, owner_id=owner_id)
    if mode == "naive":
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.naive.settings")
        import django

        django.setup()
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        return lambda payload: async_to_sync(layer.group_send)("paper", {"type": "paper.event", "event": payload})
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    return lambda payload: client.publish("bench:paper", json.dumps(payload))


def main(mode, rate, seconds, out, paper_id="00000000-0000-0000-0000-000000000000", owner_id="1", first_seq="1"):
    send = publisher(mode, paper_id, int(owner_id))
    costs, interval, start = [], 1 / rate, time.monotonic()
    # Seqs above the paper's log, as the outbox would allocate them (clients drop seqs they already have).
    first = int(first_seq)
    for seq in range(first, first + int(rate * seconds)):
        due = start + (seq - first) * interval
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        payload = {"event_type": "entity_extracted", "paper_id": paper_id, "seq": seq, "entity_id": f"e{seq}",
                   "entity_type": "MODEL", "entity_name": "BenchNet", "confidence": 0.9, "sent_ns": time.time_ns()}
        began = time.perf_counter_ns()
        send(payload)
        costs.append((time.perf_counter_ns() - began) / 1e6)
    with open(out, "w") as fh:
        json.dump({"published": len(costs), "publish_ms": costs, "elapsed_s": time.monotonic() - start}, fh)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], *sys.argv[5:])
