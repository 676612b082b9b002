"""Registries that timed out, remembered on this node for a short while.

When a registry (or a mirror) does not answer within ``registry_timeout``,
every command started in the next :data:`BACKOFF_SECONDS` would wait the
whole budget again: 50 ranks of a job starting at once queued behind one
another for many times the budget. So a timeout leaves a small marker, and a
resolution in that window does not ask that registry: it fails at once (the
shim's documented fail-open, or exit 125 with ``on_error = "refuse"``), and a
mirror in that state is skipped, with a line saying why ("registry HOST timed
out N s ago; not asking it again for M s").

The marker lives in the user's own cache (``$XDG_CACHE_HOME/imagefit``, else
``~/.cache/imagefit``), named from this node's hostname and the registry (a
home is shared by the nodes of a cluster; a registry unreachable from one
partition may answer another), written and read with
:func:`shim.decisions.write_file` and :func:`shim.decisions.read_file` (no
links followed, no FIFO opened, only our own 0600 files read). A marker
dated in the future, naming another node or registry, or unreadable counts
as none. Nothing is remembered when the cache is in a directory another user
controls (root running with a user's environment). Tests age a marker by
rewriting its ``at`` (:func:`marker_path` names the file).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import time
from collections.abc import Mapping

#: Seconds a registry that timed out is not asked again from this node.
BACKOFF_SECONDS = 60.0


def marker_dir(environ: Mapping[str, str]) -> str | None:
    """``$XDG_CACHE_HOME/imagefit`` (else ``$HOME/.cache/imagefit``), or None
    when another user could tamper with it."""
    from hostfacts.fingerprint import may_create, owned_dir

    base = environ.get("XDG_CACHE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".cache"
    )
    path = os.path.join(base, "imagefit")
    if os.path.lexists(path):
        return path if owned_dir(path) else None
    return path if may_create(path) else None


def _node() -> str:
    return socket.gethostname()


def marker_name(domain: str, node: str | None = None) -> str:
    """The marker's file name for registry `domain` on `node` (this host)."""
    key = f"{node or _node()}\0{domain}".encode("utf-8", "surrogatepass")
    return "timeout-" + hashlib.sha256(key).hexdigest()[:32]


def marker_path(domain: str, environ: Mapping[str, str]) -> str | None:
    """Where the marker of `domain` for this node is (or would be)."""
    directory = marker_dir(environ)
    return None if directory is None else os.path.join(directory, marker_name(domain))


def remember(domain: str, environ: Mapping[str, str]) -> bool:
    """Record that `domain` timed out now; False (never an exception) when
    it cannot be written."""
    from shim.decisions import write_file

    directory = marker_dir(environ)
    if directory is None:
        return False
    data = json.dumps({"node": _node(), "registry": domain, "at": time.time()})
    return write_file(directory, marker_name(domain), data.encode(), False)


def recent(domain: str, environ: Mapping[str, str]) -> str | None:
    """One line when `domain` timed out on this node less than
    :data:`BACKOFF_SECONDS` ago (``registry HOST timed out N s ago; not
    asking it again for M s``), else None."""
    from shim.decisions import read_file

    path = marker_path(domain, environ)
    data = read_file(path, 4096, (os.geteuid(),)) if path else None
    if data is None:
        return None
    from shim.untrusted import loads_json, terminal_safe

    try:
        marker = loads_json(data, "timeout marker")
        at = float(marker["at"])
        if marker["node"] != _node() or marker["registry"] != domain:
            return None
    except (ValueError, TypeError, KeyError):
        return None
    age = time.time() - at
    if not (0 <= age < BACKOFF_SECONDS):
        return None  # expired, or from the future: not a marker
    return (
        f"registry {terminal_safe(domain, 100)} timed out {int(age)} s ago; "
        f"not asking it again for {math.ceil(BACKOFF_SECONDS - age)} s"
    )
