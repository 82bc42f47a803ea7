"""Pytest plugin: before Django settings load, give the session its own redis-server and scratch folder."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from paperpipeline.redis_server import start_redis_server

_state: dict = {}


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """Runs before pytest-django imports settings, so REDIS_URL and the var folder are in place."""
    var_dir = Path(tempfile.mkdtemp(prefix="paperpipeline-test-"))
    _state["var_dir"] = var_dir
    os.environ["PAPERPIPELINE_VAR_DIR"] = str(var_dir)
    os.environ["MEDIA_ROOT"] = str(var_dir / "media")
    os.environ["DJANGO_HTTPS"] = "false"  # the test clients, browsers included, speak plain http
    # The realtime bus follows REDIS_URL here: tests never publish to a Redis named for the deployment.
    os.environ.pop("REALTIME_REDIS_URL", None)
    # The test process counts metrics in memory; each end-to-end system gets a metrics directory of its own.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.pop("METRICS_TOKEN", None)
    if os.environ.get("TEST_REDIS_URL"):
        os.environ["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    else:
        _state["redis"], os.environ["REDIS_URL"] = start_redis_server(workdir=var_dir / "redis")
    return (yield)


def pytest_unconfigure(config):
    """Stop the session's redis-server and remove its scratch folder."""
    process = _state.pop("redis", None)
    if process is not None:
        process.terminate()
        process.wait(timeout=10)
    var_dir = _state.pop("var_dir", None)
    if var_dir is not None:
        shutil.rmtree(var_dir, ignore_errors=True)
