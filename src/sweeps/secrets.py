"""Credentials never leave the process: ``scrub`` is the one function that every text bound for a
store, a tag, an artifact or the console passes through.

A password can arrive in a tracking URI spelled many ways: plain (``http://alice:pw@host``), as
Hydra writes an override (``http\\://alice\\:pw@host``), JSON-escaped (``http:\\/\\/...``),
percent-encoded (``http%3A%2F%2Falice%3Apw%40host``) or quoted in YAML. ``scrub`` removes the
user-info part of each; the passwords of URIs seen through ``remember`` are also removed
wherever they appear on their own, in any of those spellings.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from typing import Any
from urllib.parse import quote, unquote, urlsplit

MASK = "***"

# scheme :// user-info @: the user-info runs to the last @ before the host (a password may hold
# an @), never across a slash, white space or a quote. Plain, Hydra-escaped (\:, or \\: once
# YAML quoted it again) or JSON-escaped (\/) separators; a user-info percent-encodes its own
# special characters.
_PLAIN = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*\\{0,2}:\\{0,2}/\\{0,2}/)[^/\s'\"]*@")
# the whole URI percent-encoded (a query string): separators %3A%2F%2F and %40
_ENCODED = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*%3[aA]%2[fF]%2[fF])(?:(?!%2[fF])[^/\s'\"&])*%40")

_known: set[str] = set()  # secrets seen in URIs, in every spelling


def scrub(text: str) -> str:
    """``text`` without the user-info of any URL in it and without any remembered password."""
    if not text or ("@" not in text and "%40" not in text and not _known):
        return text
    out = text
    for secret in sorted(_known, key=len, reverse=True):
        if secret in out:
            out = out.replace(secret, MASK)
    out = _PLAIN.sub(lambda m: m.group("scheme"), out)
    return _ENCODED.sub(lambda m: m.group("scheme"), out)


def remember(uri: str) -> None:
    """Note the credentials of ``uri`` so that they are removed wherever they appear alone."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return
    for value in (parts.password, parts.username if parts.password is None else None):
        if not value or len(value) < 3:
            continue  # too short to mask without mangling ordinary text
        plain = unquote(value)
        for form in (value, plain, quote(plain, safe=""), _hydra_escaped(plain), _hydra_escaped(value)):
            _known.add(form)


def _hydra_escaped(text: str) -> str:
    """How Hydra escapes a string in an override it writes (overrides.yaml, hydra.yaml)."""
    return re.sub(r"([\\()\[\]{}:=, ])", r"\\\1", text)


def scrub_any(value: Any) -> Any:
    """``scrub`` over a text, or over the texts inside lists and mappings."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_any(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub_any(v) for v in value)
    return value


class _ScrubbedStream(io.TextIOBase):
    """A console stream whose every write passes through ``scrub``."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(scrub(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return self._stream.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")


def guard_console() -> None:
    """Scrub everything this process prints or logs: stdout, stderr and every log record
    (MLflow's own "View run ... at: <uri>" lines, Hydra's job lists, tracebacks)."""
    if not isinstance(sys.stdout, _ScrubbedStream):
        sys.stdout = _ScrubbedStream(sys.stdout)
    if not isinstance(sys.stderr, _ScrubbedStream):
        sys.stderr = _ScrubbedStream(sys.stderr)
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_sweeps_scrubs", False):
        return

    def scrubbed(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        if record.args and isinstance(record.msg, str):
            try:
                record.msg, record.args = record.msg % record.args, None
            except (TypeError, ValueError, KeyError):
                pass  # logging reports the bad format when it emits the record
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        return record

    scrubbed._sweeps_scrubs = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(scrubbed)
