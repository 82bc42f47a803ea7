"""The naive baseline: the tutorial setup (RedisChannelLayer, one consumer per client, group_send per event)."""

import os

SECRET_KEY = "bench-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["daphne", "channels"]
ROOT_URLCONF = "bench.naive.urls"
ASGI_APPLICATION = "bench.naive.asgi.application"
DATABASES = {}
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py's async pool holds 100 connections by default and raises past them: every client connecting
        # at once awaits its own group_add, so the pool fits the bench's largest client count (plus the layer's
        # own receive loop), lest the baseline's failed clients measure the pool rather than Channels.
        "CONFIG": {"hosts": [{"address": os.environ["REDIS_URL"],
                              "max_connections": int(os.environ.get("BENCH_MAX_CLIENTS", "5000")) + 100}],
                   "capacity": 10_000},
    }
}
