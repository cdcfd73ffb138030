"""Logging set-up: one JSON object per stdout line (or a console format for people).

Every record carries ``correlation_id`` and, inside a workflow, ``workflow_id``,
``workflow_type`` and ``node`` from ``agents.context`` (and, while tracing, the current span's
``trace_id`` and ``span_id``); a redaction pass keeps API keys and
bearer tokens out of every line, tracebacks included. uvicorn's own loggers are routed through
the same handler so nothing the server prints is anything but JSON.

Cost, since a server writes several lines per run: lines are encoded with orjson (python-json-
logger's ``OrjsonFormatter``), redaction first asks one combined pattern whether a string could
hold a secret at all (almost none do) before running the replacements, and ``agentflow serve``
formats and writes through a ``QueueHandler`` and one writer thread, so the event loop only
enqueues a record. The writer takes what is queued in batches, one write and flush per batch and
at most one wake-up every ``BATCH_SECONDS``: the stock ``QueueListener`` woke for, and flushed,
every line, which cost about as much CPU as formatting it (issue 16: INFO may cost at most 1 ms
per run more than WARNING, at ~13 lines per run).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import logging.handlers
import queue
import re
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from pythonjsonlogger.orjson import OrjsonFormatter

from agents import context, telemetry

__all__ = ["configure_logging", "install_context_fields", "redact", "uvicorn_log_config", "write_synchronously"]

_SECRET_PATTERNS = [
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), "sk-***"),
    (re.compile(r"\btvly-[A-Za-z0-9_\-]{4,}"), "tvly-***"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/\-]+=*"), r"\1 ***"),
    (
        re.compile(r"(?i)((?:authorization|x-api-key|api[_-]?key)['\"]?\s*[:=]\s*['\"]?)([^'\"\s,}]+)"),
        r"\1***",
    ),
]
#: A lower-cased text holding none of these cannot match a pattern above or name a key below: it is
#: returned as is (plain substring tests: a case-insensitive regex alternation scanning the line costs ~15× more).
_SECRET_MARKERS = ("sk-", "tvly-", "bearer", "authorization", "api_key", "api-key", "apikey")


def _may_hold_secret(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


_SECRET_KEYS = {"authorization", "x-api-key", "api_key", "apikey", "openai_api_key", "tavily_api_key"}
_CONTEXT_FIELDS = ("correlation_id", "workflow_id", "workflow_type", "node")


def redact(text: str) -> str:
    """Mask anything shaped like an API key or credential in ``text``."""
    if not _may_hold_secret(text):
        return text
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if key.lower() in _SECRET_KEYS and value:
        return "***"
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    return value


_base_factory = logging.getLogRecordFactory()


def _record_with_context(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    for name in _CONTEXT_FIELDS:
        value = getattr(context, name).get()
        if value is not None:
            setattr(record, name, value)
    ids = telemetry.current_ids()
    if ids is not None:
        record.trace_id, record.span_id = ids
    return record


def install_context_fields() -> None:
    """Stamp the request/workflow context onto every record at creation, for every handler.

    (A record factory rather than a handler filter, so test capture and any handler a user adds
    see the same fields as our stdout handler.)
    """
    if logging.getLogRecordFactory() is not _record_with_context:
        logging.setLogRecordFactory(_record_with_context)


install_context_fields()


class AgentflowJsonFormatter(OrjsonFormatter):
    """python-json-logger's orjson formatter with our field names, UTC timestamps and redaction."""

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data["timestamp"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        for name in _CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is None:
                log_data.pop(name, None)
            else:
                log_data[name] = value
        log_data.pop("color_message", None)  # uvicorn's ANSI duplicate of ``message``

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        ordered: dict[str, Any] = {
            k: log_data.pop(k) for k in ("timestamp", "level", "logger", "message") if k in log_data
        }
        ordered.update(log_data)
        return ordered

    def serialize_log_record(self, log_data: dict[str, Any]) -> str:
        line = super().serialize_log_record(log_data)
        if not _may_hold_secret(line):  # nearly every line: no field needs a look
            return line
        return super().serialize_log_record({key: _redact_value(key, value) for key, value in log_data.items()})


class ConsoleFormatter(logging.Formatter):
    """A compact human format: time, level, logger, ids, message, then extras."""

    _SKIP = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "color_message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{name}={getattr(record, name)}" for name in _CONTEXT_FIELDS if getattr(record, name, None))
        extras = " ".join(
            f"{k}={v}" for k, v in record.__dict__.items() if k not in self._SKIP and k not in _CONTEXT_FIELDS
        )
        stamp = datetime.fromtimestamp(record.created, tz=UTC).strftime("%H:%M:%S.%f")[:-3]
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        line = " ".join(part for part in (line, ids and f"[{ids}]", extras) if part)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


def _formatter(log_format: str) -> logging.Formatter:
    if log_format == "console":
        return ConsoleFormatter()
    return AgentflowJsonFormatter("%(message)s", reserved_attrs=[*_RESERVED, "taskName"])


_RESERVED = [
    "args", "asctime", "created", "exc_info", "exc_text", "filename", "funcName", "levelname", "levelno",
    "lineno", "module", "msecs", "msg", "name", "pathname", "process", "processName",
    "relativeCreated", "stack_info", "thread", "threadName",
]  # fmt: skip


class _RecordQueueHandler(logging.handlers.QueueHandler):
    """Enqueues the record itself: the listener formats it (the stock ``prepare`` formats here,
    on the caller's thread, to make the record picklable, which an in-process queue needs not)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


#: How long the writer lets lines gather after writing a batch (the most a line waits for it).
BATCH_SECONDS = 0.02


class _BatchWriter:
    """Formats and writes queued records with ``handler`` on its own thread, a batch at a time."""

    def __init__(self, handler: logging.StreamHandler[TextIO]) -> None:
        self.handler = handler
        self.queue: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self.queue.get()]
            while True:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            for record in batch:
                if record is None:
                    stopping = True
                elif self.handler.filter(record):
                    self._write(record)
            with contextlib.suppress(Exception):  # a closed or broken stream: lines are lost, the server goes on
                self.handler.flush()
            if not stopping:
                time.sleep(BATCH_SECONDS)  # let the next lines gather: one wake-up, one write

    def _write(self, record: logging.LogRecord) -> None:
        # StreamHandler.emit, minus its flush per line.
        try:
            self.handler.stream.write(self.handler.format(record) + self.handler.terminator)
        except Exception:
            self.handler.handleError(record)

    def stop(self) -> None:
        """Write every line queued so far, then end the thread."""
        self.queue.put(None)
        self._thread.join()


_listener: _BatchWriter | None = None


def _stop_listener() -> None:
    """Write every line still queued, then stop the writer thread (also at exit)."""
    global _listener
    if _listener is not None:
        listener, _listener = _listener, None
        listener.stop()


def write_synchronously() -> None:
    """Drain the writer and write every later line on the caller's thread.

    Called when the app's lifespan ends: uvicorn then logs its last lines and, stopped by a
    signal, re-raises it, which ends the process without running ``atexit`` (so a queued line
    would be lost).
    """
    if _listener is None:
        return
    direct = _listener.handler
    _stop_listener()
    logging.getLogger().handlers[:] = [direct]


atexit.register(_stop_listener)


def configure_logging(
    level: str = "INFO",
    log_format: str = "json",
    *,
    stream: TextIO | None = None,
    background: bool = False,
) -> None:
    """Route the root, agentflow and uvicorn loggers to one handler on ``stream`` (stdout).

    Args:
        background: format and write on a listener thread (``agentflow serve``); lines then
            reach ``stream`` a moment later, and every queued line is written at exit.
    """
    global _listener
    _stop_listener()
    # No line prints the caller's file, thread or process (those attributes are reserved):
    # skip collecting them for every record, as the logging HOWTO's "Optimization" suggests.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    stream_handler = logging.StreamHandler(stream or sys.stdout)
    stream_handler.setFormatter(_formatter(log_format))
    handler: logging.Handler = stream_handler
    if background:
        _listener = _BatchWriter(stream_handler)
        handler = _RecordQueueHandler(_listener.queue)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpx2", "httpcore", "openai", "arxiv"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # uvicorn's access logger is replaced by our own access line (with duration and request id).
    # Not propagating either: uvicorn formats each response's client and quoted path for it
    # whenever the logger has a handler up its hierarchy (``hasHandlers``), even a disabled one.
    access = logging.getLogger("uvicorn.access")
    access.disabled = True
    access.propagate = False
    # Client libraries log every HTTP request at INFO; our llm_call / node lines say it better.
    for noisy in ("httpx", "httpx2", "httpcore", "openai", "arxiv", "aiosqlite", "asyncio", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def uvicorn_log_config() -> dict[str, Any]:
    """A uvicorn ``log_config`` that leaves our handlers in place (uvicorn would replace them)."""
    return {"version": 1, "disable_existing_loggers": False}
