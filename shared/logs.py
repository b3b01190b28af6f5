"""Logging that cannot leak a phone number, an email address or a message body.

Message bodies are never passed to a logger by our code; as a second line of defence
every record is scrubbed of anything shaped like a phone number or an email address.

The scrubbing runs on every log line, whatever text an exception dragged in, so it must be
linear in the length of that text: each pattern can start only where its first character
class begins (a look-behind refuses a start inside a run that an earlier start already
scanned), and a line is cut to ``MAX_LOG_CHARS`` first.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone

# E.164 and international forms (+...), North American forms ((916) 555-0199, 916.555.0199)
# and bare runs of 9+ digits; not dates or times (2026-11-25 16:48:08 stays readable).
_PHONE = re.compile(
    r"\+\d[\d\s().-]{6,}\d"
    r"|\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b"
    r"|\b\d{9,}\b"
)
# The local part may start only where a run of local-part characters starts: without the
# look-behind a run of n word characters with no "@" costs n + (n-1) + ... steps.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+\.[\w.-]+")
MAX_LOG_CHARS = 8000


def redact(text: str) -> str:
    if len(text) > MAX_LOG_CHARS:
        text = f"{text[:MAX_LOG_CHARS]}… [{len(text) - MAX_LOG_CHARS} more characters]"
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in getattr(record, "fields", {}).items():
            entry[key] = value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class RedactingTextFormatter(logging.Formatter):
    """The readable format, with tracebacks scrubbed like the messages."""

    def formatException(self, ei) -> str:  # noqa: ANN001, N802
        return redact(super().formatException(ei))


def configure_logging(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingTextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "faust", "mode", "twilio.http_client"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
