"""Redis clients from one URL: Sentinel URLs parsed strictly, kombu's form for Celery, and clients that follow a
real failover (a master, a replica and three sentinels)."""

import asyncio
import os
import subprocess
import sys

import pytest
import redis

from paperpipeline import redis_clients
from paperpipeline.redis_clients import SentinelTarget, celery_broker, check_url, sentinel_target
from tests.sentinel_cluster import MASTER_NAME, sentinel_cluster

URL = "redis+sentinel://:s3cr%40t@10.0.0.1:26380,10.0.0.2,[::1]:5000/mymaster/2?sentinel_password=sp"


def test_a_sentinel_url_names_the_sentinels_the_master_and_how_to_authenticate():
    assert sentinel_target(URL) == SentinelTarget(
        sentinels=(("10.0.0.1", 26380), ("10.0.0.2", 26379), ("::1", 5000)),
        master="mymaster", db=2, username=None, password="s3cr@t", sentinel_password="sp",
    )
    bare = sentinel_target("redis+sentinel://sentinel.internal/cache")
    assert bare == SentinelTarget(sentinels=(("sentinel.internal", 26379),), master="cache")
    assert sentinel_target("redis+sentinel://app:pw@h:1/m").username == "app"


@pytest.mark.parametrize("url, complaint", [
    ("redis+sentinel://:hunter2@/mymaster", "at least one sentinel"),
    ("redis+sentinel://:hunter2@h:1", "path is /<master name>"),
    ("redis+sentinel://:hunter2@h:1/m/0/extra", "path is /<master name>"),
    ("redis+sentinel://:hunter2@h:1/m/zero", "database is a number"),
    ("redis+sentinel://:hunter2@h:99999/m", "port from 1 to 65535"),
    ("redis+sentinel://:hunter2@h:port/m", "port from 1 to 65535"),
    ("redis+sentinel://:hunter2@h:1/m?ssl=true", "no parameter 'ssl'"),
    ("redis+sentinel://:hunter2@" + ",".join(["h:1"] * 17) + "/m", "at most 16"),
])
def test_a_malformed_sentinel_url_is_refused_saying_why_without_repeating_it(url, complaint):
    with pytest.raises(ValueError) as refused:
        sentinel_target(url)
    assert complaint in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_only_redis_urls_are_accepted():
    for url in ("redis://h:1/0", "rediss://h:1/0", "unix:///run/redis.sock", URL):
        check_url(url)
    with pytest.raises(ValueError, match="starts with redis://"):
        check_url("amqp://guest@h//")


def test_a_process_refuses_to_start_with_a_malformed_redis_url():
    env = {**os.environ, "REDIS_URL": "redis+sentinel://:hunter2@h:1"}
    started = subprocess.run([sys.executable, "-c", "import paperpipeline.settings"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert started.returncode != 0
    assert "ImproperlyConfigured: REDIS_URL: a Sentinel URL's path" in started.stderr
    assert "hunter2" not in started.stderr


def test_celery_gets_the_same_redis_in_kombus_terms():
    assert celery_broker("redis://:pw@h:1/0") == ("redis://:pw@h:1/0", {})
    broker, options = celery_broker(URL)
    assert broker == (
        "sentinel://:s3cr%40t@10.0.0.1:26380/2;sentinel://:s3cr%40t@10.0.0.2:26379/2;sentinel://:s3cr%40t@[::1]:5000/2"
    )
    assert options["master_name"] == "mymaster"
    assert options["sentinel_kwargs"]["password"] == "sp"


def test_the_project_configures_celery_from_the_brokers_redis_url():
    from django.conf import settings

    from paperpipeline.celery import app

    assert settings.BROKER_REDIS_URL == settings.REDIS_URL  # no CELERY_BROKER_URL in the tests
    assert (app.conf.broker_url, app.conf.broker_transport_options) == celery_broker(settings.BROKER_REDIS_URL)
    assert app.conf.worker_consumer == "paperpipeline.celery:BrokerLossConsumer"


def test_a_sentinel_url_in_celery_broker_url_reaches_every_celery_connection():
    # Celery reads that environment variable itself, as is, before any setting: the settings must still win.
    probe = (
        "from paperpipeline.celery import app\n"
        "for c in (app.connection_for_read(), app.connection_for_write(), app.pool.acquire()):\n"
        "    print(type(c.transport).__name__, c.as_uri(), c.transport_options['master_name'])\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "paperpipeline.settings",
           "CELERY_BROKER_URL": "redis+sentinel://:pw@s1:1,s2:2/main/3?sentinel_password=sp"}
    ran = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == ["SentinelTransport sentinel://:**@s1:1/3 main"] * 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with sentinel_cluster(tmp_path_factory.mktemp("sentinel")) as running:
        yield running


def test_clients_find_the_master_through_the_sentinels_and_follow_a_failover(cluster):
    sync = redis_clients.client(cluster.url, socket_timeout=2, socket_connect_timeout=2)

    async def read(key: str) -> bytes | None:
        async with redis_clients.async_client(cluster.url, socket_timeout=2) as client:
            return await client.get(key)

    sync.set("before", b"1")
    assert sync.connection_pool.get_master_address()[1] == cluster.master_port()
    sync.wait(1, 2000)  # the replica has it before the master dies
    assert asyncio.run(read("before")) == b"1"

    old = cluster.kill_master()
    new = cluster.wait_for_failover(old)
    # The same client's next command reconnects, asking the sentinels again: it reaches the promoted replica.
    assert sync.get("before") == b"1"
    sync.set("after", b"2")
    assert sync.connection_pool.get_master_address()[1] == new
    assert asyncio.run(read("after")) == b"2"
    sync.close()


def test_a_wrong_sentinel_password_is_an_error_not_a_hang(cluster):
    wrong = cluster.url.replace(f"sentinel_password={cluster.sentinel_password}", "sentinel_password=wrong")
    client = redis_clients.client(wrong, socket_timeout=2, socket_connect_timeout=2)
    with pytest.raises(redis.ConnectionError):  # every sentinel refused: MasterNotFoundError
        client.ping()
    client.close()
    assert MASTER_NAME in cluster.url
