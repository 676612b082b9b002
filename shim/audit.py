"""The audit log: one JSON line per decision, for the site.

Fields: ``event`` ("decision"), ``time`` (ISO 8601 UTC), ``user``, ``uid``,
``host``, ``runtime``, ``reference`` (as the user gave it), ``index_digest``,
``chosen`` (digest or null), ``outcome`` (selected, passthrough, refused,
error), ``reason``, ``cache`` (hit, miss, stale, revalidated), ``duration_ms``.
Credentials are never among them (nor the environment, nor argv beyond the
image reference).

Destination: the site's ``audit_log``: a file path (appended with O_APPEND,
one write per line, so concurrent shims do not interleave) or ``"syslog"``
(facility user). A cold decision logs through structlog (its JSON renderer);
a decision-cache hit, which must not import structlog, writes the same fields
with the standard library's json. A failure to log never stops the command.
"""

from __future__ import annotations

import json
import os
import socket
import time


def _common(fields: dict) -> dict:
    try:
        import pwd

        user = pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, ImportError):
        user = str(os.getuid())
    return {
        "event": "decision",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "user": user,
        "uid": os.getuid(),
        "host": socket.gethostname(),
        **fields,
    }


def _write_line(destination: str, line: str) -> None:
    if destination == "syslog":
        import syslog

        syslog.openlog("imagefit", 0, syslog.LOG_USER)
        syslog.syslog(syslog.LOG_INFO, line)
        return
    fd = os.open(destination, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def record(destination: str | None, *, light: bool, **fields) -> None:
    """Log one decision to `destination` (None: no audit log).

    Args:
        light: True on the hot path (standard library only); False logs through structlog.
        fields: runtime, reference, index_digest, chosen, outcome, reason, cache, duration_ms.
    """
    if not destination:
        return
    data = _common(fields)
    try:
        if light:
            line = json.dumps(data, sort_keys=True)
        else:
            import structlog

            renderer = structlog.processors.JSONRenderer(sort_keys=True)
            line = renderer(None, "info", dict(data))
        _write_line(destination, line)
    except Exception as exc:  # the audit log must never stop the command
        print(
            f"imagefit: cannot write the audit log {destination}: {exc}",
            file=__import__("sys").stderr,
        )
