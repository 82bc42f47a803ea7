"""The project's Prometheus metrics, every one defined here; the code counts them where things happen, and /metrics
(paperpipeline/scrape.py) exposes them with the ones read at scrape time (docs/operations.md, "Metrics").

With PROMETHEUS_MULTIPROC_DIR set (the launcher sets it) every process, Daphne and Celery pool children alike,
keeps its values in memory-mapped files there and a scrape of any one Daphne process adds up all of them:
prometheus-client's multiprocess mode, chosen when prometheus_client is first imported. Each update is then a
write to a mapped page (about 1.5 µs), so nothing here is called per delivery: the fan-out counts per batch.

A leaf: the standard library and prometheus_client only (an import contract keeps it so), so papers and realtime
may both count without importing each other.
"""

import os
import time

from prometheus_client import Counter, Gauge, Histogram

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
if MULTIPROCESS_DIR:
    os.makedirs(MULTIPROCESS_DIR, exist_ok=True)  # its files are opened when the metrics below are made

# --- WebSocket connections (Daphne processes) ---

# Gauges are kept per process and added up over the processes alive ("livesum"): a process that died without
# saying so is dropped at the next scrape (paperpipeline.scrape.forget_dead_processes).
WS_CONNECTIONS = Gauge(
    "paperpipeline_ws_connections", "WebSocket connections open, by whether they authenticated yet.",
    ["state"], multiprocess_mode="livesum",
)
WS_SUBSCRIPTIONS = Gauge(
    "paperpipeline_ws_subscriptions", 'Subscriptions of open connections, by kind: "paper", topic "papers" '
    'or topic "system".', ["kind"], multiprocess_mode="livesum",
)
WS_CLOSES = Counter(
    "paperpipeline_ws_closes", "WebSocket connections ended, by the close code the server saw and the error the "
    'server closed them for (reason="too_slow": slow clients; "none": the client, the network or a shutdown).',
    ["code", "reason"],
)
WS_ERRORS = Counter("paperpipeline_ws_errors", "Error replies sent to clients, by error code.", ["code"])
WS_RATE_LIMIT_HITS = Counter(
    "paperpipeline_ws_rate_limit_hits", "Client messages or connections refused by a limit, by error code.",
    ["limit"],
)
WS_REPLAYED_EVENTS = Counter(
    "paperpipeline_ws_replayed_events", "Logged events read for clients resuming a paper with since.",
)

# --- the bus and the fan-out ---

EVENTS_PUBLISHED = Counter(
    "paperpipeline_events_published", "Events published on the bus, by event type (each once, whatever the number "
    "of groups and recipients).", ["event_type"],
)
BUS_PUBLISH_FAILURES = Counter(
    "paperpipeline_bus_publish_failures", "Publishes on the bus that failed (the event log keeps the event).",
)
FANOUT_MESSAGES = Counter(
    "paperpipeline_fanout_messages", "Bus messages the fan-out of a Daphne process read and handed out.",
)
WS_DELIVERIES = Counter(
    "paperpipeline_ws_deliveries", "Messages handed to connections by the fan-out: one per connection in the "
    "message's group (a connection's event-type filter or de-duplication may still hold one back).",
)
DELIVERY_LATENCY = Histogram(
    "paperpipeline_ws_delivery_latency_seconds", "From the PUBLISH to the socket writes of the fan-out batch "
    "carrying it, observed once per batch for its oldest message (hosts' clocks must agree: NTP); its count is the "
    "number of batches.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def fanout_batch(messages: int, handed: int, oldest_published_at: float | None) -> None:
    """Count one batch the fan-out handed out, right after its socket writes: its messages, their handing to
    members, and its oldest message's latency since it was published (the publisher's clock)."""
    FANOUT_MESSAGES.inc(messages)
    WS_DELIVERIES.inc(handed)
    if oldest_published_at is not None:
        DELIVERY_LATENCY.observe(max(0.0, time.time() - oldest_published_at))


REDIS_RECONNECTS = Counter(
    "paperpipeline_redis_reconnects", "Connections to Redis made again after one was lost, by client.", ["client"],
)

# --- the pipeline (Celery workers) ---

PIPELINE_STEP_SECONDS = Histogram(
    "paperpipeline_pipeline_step_duration_seconds", "How long each completed pipeline step took, by step.",
    ["step"], buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
PAPERS_COMPLETED = Counter("paperpipeline_papers_completed", "Papers processed to the end.")
PAPERS_FAILED = Counter("paperpipeline_papers_failed", "Papers that failed, by error code.", ["error_code"])

# Read at scrape time by the scraping process (paperpipeline.scrape), not counted here: papers by status
# (paperpipeline_papers), broker queue depth (paperpipeline_queue_depth), workers alive
# (paperpipeline_workers_alive) and whether each of those sources answered (paperpipeline_metrics_source_up).
