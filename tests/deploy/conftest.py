"""The deployment recipe's end-to-end test uses the end-to-end fixtures (a Redis of its own)."""

from tests.e2e.conftest import own_redis  # noqa: F401 (a fixture, found by pytest here)
