"""Log lines: the plain and JSON formats, the fields bound to a context, and secrets masked whoever logs them."""

import json
import logging

import pytest
import structlog

from paperpipeline import launcher, logs

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJl"


def emit(log_format: str, emit_records) -> list[str]:
    """The lines a handler in log_format writes for what emit_records logs on logger "t"."""
    config = logs.logging_config(log_format, "INFO")
    formatter = logging.config.DictConfigurator(config).configure_formatter(config["formatters"]["default"])
    lines: list[str] = []
    handler = logging.Handler()
    handler.setFormatter(formatter)
    handler.emit = lambda record: lines.append(handler.format(record))
    logger = logging.getLogger("t")
    logger.addHandler(handler)
    logger.propagate, logger.level = False, logging.INFO
    try:
        emit_records(logger)
    finally:
        logger.removeHandler(handler)
        structlog.contextvars.clear_contextvars()
    return lines


def some_records(logger: logging.Logger) -> None:
    structlog.contextvars.bind_contextvars(connection_id="c0ffee", user_id=7)
    logger.info("ws.subscribed", extra={"paper_id": "p-1", "since": 3})
    logger.warning("token was %s", JWT)
    try:
        raise RuntimeError(f"cannot reach redis://:s3cret@db.internal:6379/0 with {JWT[:20]}")
    except RuntimeError:
        logger.exception("publishing failed")


def test_json_lines_carry_the_event_its_context_and_fields_and_mask_secrets():
    lines = emit("json", some_records)
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["ws.subscribed", "token was [jwt]", "publishing failed"]
    first = records[0]
    assert (first["connection_id"], first["user_id"], first["paper_id"], first["since"]) == ("c0ffee", 7, "p-1", 3)
    assert (first["level"], first["logger"]) == ("info", "t") and first["timestamp"].endswith("Z")
    assert "RuntimeError" in records[2]["exception"] and "redis://:***@db.internal" in records[2]["exception"]
    text = "\n".join(lines)
    assert "eyJ" not in text and "s3cret" not in text


def test_plain_lines_are_human_readable_with_the_same_fields_and_masking():
    lines = emit("plain", some_records)
    assert "ws.subscribed" in lines[0] and "connection_id=c0ffee" in lines[0] and "paper_id=p-1" in lines[0]
    assert not lines[0].startswith("{")
    text = "\n".join(lines)
    assert "Traceback" in text and "eyJ" not in text and "s3cret" not in text


@pytest.mark.parametrize("text, masked", [
    (f"Bearer {JWT}", "Bearer [jwt]"),
    ("eyJhbGciOiJIUzI1", "[jwt]"),  # cut short, still masked
    ("postgres://app:pa55@db:5432/x", "postgres://app:***@db:5432/x"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),  # a port is no password
    ("redis+sentinel://:pw1@s1:26379,s2:26379/main/0?sentinel_password=pw2",
     "redis+sentinel://:***@s1:26379,s2:26379/main/0?sentinel_password=***"),
])
def test_redact_text(text, masked):
    assert logs.redact_text(text) == masked


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logs.logging_config("xml", "INFO")


def test_the_launcher_writes_json_lines_when_asked(monkeypatch, capsys):
    monkeypatch.setenv("LOG_FORMAT", "json")
    launcher.log("redis at redis://:pw@127.0.0.1:1/0 started")
    record = json.loads(capsys.readouterr().out)
    assert record["event"] == "redis at redis://:***@127.0.0.1:1/0 started"
    assert record["logger"] == "paperpipeline.launcher"
    assert "--quiet" in launcher.process_commands(port="1")["worker"]  # no banner among the JSON lines

    monkeypatch.delenv("LOG_FORMAT")
    launcher.log("plain again")
    assert capsys.readouterr().out == "[launcher] plain again\n"
    assert "--quiet" not in launcher.process_commands(port="1")["worker"]
