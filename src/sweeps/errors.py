"""Turn whatever stopped a command (our ConfigError, Hydra's and OmegaConf's config errors, a
failed job) into one line naming the key, the value and what is allowed."""

from __future__ import annotations

import re
from typing import Optional

from sweeps.checks import allowed
from sweeps.config import ConfigError


def _chain(err: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: Optional[BaseException] = err
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def one_line(err: BaseException) -> tuple[str, str]:
    """Classify an exception and describe it in one line.

    Returns:
        (kind, message): kind is ``config`` for bad input (exit 2) or ``error`` otherwise.
    """
    from omegaconf.errors import OmegaConfBaseException

    while type(err).__name__ == "AbortSweep" and err.__cause__ is not None:
        err = err.__cause__  # a wrapper that only carried the error past Hydra
    chain = _chain(err)
    for e in chain:
        if isinstance(e, ConfigError):
            return "config", str(e)
    for e in chain:
        if isinstance(e, OmegaConfBaseException) and getattr(e, "full_key", None):
            return "config", _omegaconf(e)
    name = type(err).__name__
    if name in ("ConfigCompositionException", "MissingConfigException", "OverrideParseException",
                "HydraException") or isinstance(err, OmegaConfBaseException):
        return "config", _hydra(err)
    first = (str(err).strip().splitlines() or [name])[0]
    return "error", f"{name}: {first}"


def _omegaconf(e: BaseException) -> str:
    key = getattr(e, "full_key", "")
    msg = str(e).strip().splitlines()[0]
    what = allowed(key)
    if type(e).__name__ == "ConfigKeyError" or "not in" in msg:
        m = re.search(r"Key '([^']+)' not in '([^']+)'", msg)
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        return f"{key}: unknown config key{f' under {parent!r}' if parent else ''} ({m.group(0) if m else msg}); " \
               "see `sweeps --cfg job` for the keys that exist"
    m = re.search(r"Value '([^']*)' (?:of type '\w+' )?could not be converted to (\w+)", msg)
    if m:
        return f"{key}={m.group(1)!r}: must be {what or 'a ' + m.group(2).lower()}"
    m = re.search(r"Invalid value '([^']*)', expected one of \[([^\]]*)\]", msg)
    if m:  # a name that is not in the field's Names enum
        return f"{key}={m.group(1)!r}: must be {what or f'one of [{m.group(2)}]'}"
    return f"{key}: {msg}"


def _hydra(e: BaseException) -> str:
    text = str(e).strip()
    m = re.search(r"Could not find '([^/']+)/([^']+)'", text)
    if m:
        group, value = m.groups()
        options = re.findall(r"^\t(\S+)$", text, flags=re.M)
        opts = f"; allowed: {', '.join(o for o in options if not o.endswith('_schema'))}" if options else ""
        return f"{group}={value!r}: no such {group} config{opts}"
    m = re.search(r"Could not override '([^']+)'", text)
    if m:
        key = m.group(1)
        return f"{key}: unknown config key ({' '.join(text.splitlines()[1:2]) or text}); " \
               "see `sweeps --cfg job` for the keys that exist"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[:2]) if lines else type(e).__name__
