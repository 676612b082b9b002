"""Whether a file may be trusted: owned by root or by us, not writable by others.

The shim may run as root (rootful podman, a site wrapper); it must never act
on a config file or runtime path that another user could have written.
Standard library only.
"""

from __future__ import annotations

import os
import stat


def untrusted_reason(path: str, euid: int | None = None) -> str | None:
    """Why `path` must not be trusted, or None if it may be.

    Trusted: a regular file owned by root or by `euid` (default: ours), not
    writable by group or others, in a directory with the same properties
    (sticky world-writable directories excepted only for files we own).
    """
    euid = os.geteuid() if euid is None else euid
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"cannot stat {path}: {exc.strerror}"
    if st.st_uid not in (0, euid):
        return f"{path} is owned by uid {st.st_uid}"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by group or others"
    parent = os.path.dirname(os.path.realpath(path)) or "/"
    try:
        pst = os.stat(parent)
    except OSError as exc:
        return f"cannot stat {parent}: {exc.strerror}"
    if pst.st_uid not in (0, euid):
        return f"{parent} is owned by uid {pst.st_uid}"
    if pst.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not pst.st_mode & stat.S_ISVTX:
        return f"{parent} is writable by group or others"
    return None
