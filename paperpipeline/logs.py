"""Logging for every process: human-readable lines by default, one JSON object per line with LOG_FORMAT=json.

Code logs with the standard library (`logger.info("ws.subscribed", extra={...})`); structlog's ProcessorFormatter
renders each record with its `extra` fields and the context bound in structlog's contextvars (a WebSocket
connection's `connection_id` and `user_id`, a Celery task's `task_id` and `paper_id`). Whatever is rendered goes
through `redact` last: a JWT or a URL's password never reaches a log, whoever passed it to a logger.

No Django here: the launcher formats its own lines with `json_line` before any settings exist.
"""

import json
import logging
import logging.config
import re
from datetime import UTC, datetime
from typing import Any

import structlog

FORMATS = ("plain", "json")

# A JWT (its header is base64url of '{"...', so it starts with eyJ), whole or cut short.
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]{4,}(?:\.[A-Za-z0-9_\-]*){0,2}")
# The password of a URL's userinfo (redis://:secret@host, postgres://user:secret@host).
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):[^@\s/]+@")
# The sentinels' password of a Sentinel URL (redis+sentinel://…?sentinel_password=secret).
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]sentinel_password=)[^&\s]+")


def redact_text(text: str) -> str:
    """The text with JWTs and URL passwords masked."""
    masked = _URL_PASSWORD.sub(r"\g<head>:***@", _JWT.sub("[jwt]", text))
    return _QUERY_PASSWORD.sub(r"\g<head>***", masked)


def redact(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: mask secrets in every string of the event, the formatted traceback included."""
    return {key: redact_text(value) if isinstance(value, str) else value for key, value in event_dict.items()}


def _stringify_event(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """A record's message may be any object; the rendered event is always its text."""
    event_dict["event"] = str(event_dict.get("event", ""))
    return event_dict


# Applied to records of the standard library's loggers (all of the project's, Django's, Celery's, Daphne's).
_PRE_CHAIN = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ExtraAdder(),
]


def formatter(log_format: str) -> dict[str, Any]:
    """The `logging.config` formatter of a log format."""
    if log_format == "json":
        renderer: Any = structlog.processors.JSONRenderer(default=str)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    return {
        "()": structlog.stdlib.ProcessorFormatter,
        "foreign_pre_chain": _PRE_CHAIN,
        "processors": [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _stringify_event,
            structlog.processors.format_exc_info,  # the traceback as one string field, redacted like the rest
            redact,
            renderer,
        ],
    }


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """The LOGGING dict of every process: one console handler on the root logger, in the chosen format."""
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter(log_format)},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "default"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's DEFAULT_LOGGING gives these handlers of their own: the root's alone, in one format.
            "django": {"handlers": [], "propagate": True, "level": "INFO"},
            "django.server": {"handlers": [], "propagate": True},
            "daphne": {"level": "WARNING"},
            "django.channels.server": {"level": "WARNING"},
        },
    }


def configure(config: dict[str, Any]) -> None:
    """Apply a LOGGING dict (Django's LOGGING_CONFIG; Celery's setup_logging), with Python warnings as records."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


def json_line(event: str, *, logger: str, level: str = "info", **fields: Any) -> str:
    """One JSON log line as the formatter writes it, for a process without logging set up (the launcher)."""
    record = {"event": event, "level": level, "logger": logger,
              "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"), **fields}
    return redact_text(json.dumps(record, default=str))
