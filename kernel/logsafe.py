"""Keeping personal data and secrets out of log lines.

The first rule is in the log calls themselves: they name records by topic,
partition and offset, customers by id, and never quote an event, an alert, a
request body or a webhook receiver's answer (those carry phone numbers, e-mail
addresses and customers' comments).  This module is the safety net behind it:
`install` makes every log record of the process mask what still looks like an
e-mail address or an international phone number, tracebacks included, whoever
logged it (our code, faust, aiokafka, uvicorn).
It cannot recognise free text such as a survey comment; only the first rule
keeps that out.

`CXT_LOG_PII=true` (`Settings.log_pii`) turns the mask off, for debugging on a
machine with test data.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from kernel.settings import Settings

# An e-mail address, and a phone number in international form (+ and 7-15 digits,
# separators allowed); bare digit runs are offsets, counts and ids, not phones.
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+\d(?:[\s().-]?\d){6,14}")
MASK = "<redacted>"


def redact(text: str) -> str:
    """`text` with e-mail addresses and international phone numbers masked."""
    if "@" in text:
        text = _EMAIL.sub(MASK, text)
    if "+" in text:
        text = _PHONE.sub(MASK, text)
    return text


def safe_url(url: str) -> str:
    """A URL fit for a log line: scheme, host and port only.  User info, the path and
    the query can hold credentials (https://user:pass@..., .../hooks/T0/B0/SECRET, ?token=)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable url>"
    return f"{parts.scheme}://{host}{port}/..." if parts.path not in ("", "/") or parts.query \
        else f"{parts.scheme}://{host}{port}"


def clean(record: logging.LogRecord) -> logging.LogRecord:
    """Mask e-mail addresses and phone numbers in a record's message and traceback."""
    try:
        message = record.getMessage()
    except Exception:  # a broken log call: leave it to logging's own error report
        return record
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and not record.exc_text:
        record.exc_text = _FORMATTER.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


_FORMATTER = logging.Formatter()


class RedactingFilter(logging.Filter):
    """`clean` as a filter, for a handler set up outside `install`'s reach."""

    def filter(self, record: logging.LogRecord) -> bool:
        clean(record)
        return True


def install(settings: Settings) -> None:
    """Mask every log record of this process from now on, once.

    Done where records are made (the record factory), not on handlers: faust and
    uvicorn replace the root handlers when they start, and a record made by any
    logger passes the factory whatever handler writes it.  Only records of an
    enabled level are made, so the cost is one regex pass per written line."""
    if settings.log_pii:
        return
    make = logging.getLogRecordFactory()
    if getattr(make, "_cxt_redacting", False):
        return

    def redacting_factory(*args: object, **kwargs: object) -> logging.LogRecord:
        return clean(make(*args, **kwargs))

    redacting_factory._cxt_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)
