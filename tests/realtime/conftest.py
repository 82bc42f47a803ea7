"""Fixtures of the realtime tests: each test's event loop leaves no Redis connection or reader task behind."""

import pytest

from realtime import bus
from realtime.fanout import aclose_fanout


@pytest.fixture(autouse=True)
async def close_loop_connections():
    """After each test, close what its event loop opened: the fan-out (reader and pub/sub connection) and the
    bus's publishing client."""
    yield
    await aclose_fanout()
    await bus.aclose()
