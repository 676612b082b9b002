"""Per-boot cache of probed facts, so the shim does not pay NVML
initialisation or MPI probing on every run.

Key: sha256 of the boot id (``/proc/sys/kernel/random/boot_id``: a reboot,
e.g. after a driver upgrade, starts afresh), the root probed, the hostname,
the environment variables that change what the probes find (PATH,
LD_LIBRARY_PATH, CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES, loaded
environment modules, IMAGEFIT_MPI_LIBRARY...), the schema version and this
package's version. Location: ``$IMAGEFIT_CACHE_DIR``, else
``$XDG_CACHE_HOME/imagefit``, else ``~/.cache/imagefit``; one file per key,
written atomically (temporary file + rename). A file that is not ours, is
writable by others, or does not validate is ignored (and replaced).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from hostfacts.context import ProbeContext
from hostfacts.fingerprint import (  # noqa: E402
    digest,
    facts_cache_dir,
    material,
    may_create,
    owned_dir,
    read_private,
)
from hostfacts.model import HostFacts


def cache_dir(environ: Mapping[str, str]) -> Path:
    """Directory of the facts cache for this user."""
    return Path(facts_cache_dir(environ))


def cache_key(ctx: ProbeContext, hostname: str) -> str | None:
    """The key of `ctx`'s facts, or None when there is no boot id to tie them
    to. For the live root it equals :func:`hostfacts.fingerprint.live_fingerprint`."""
    boot_id = (ctx.read_text("/proc/sys/kernel/random/boot_id") or "").strip()
    if not boot_id:
        return None
    return digest(material(boot_id, str(ctx.root.resolve()), hostname, ctx.environ, os.geteuid()))


def load(directory: Path, key: str) -> HostFacts | None:
    """Cached facts for `key`, or None (absent, untrusted, corrupt or stale
    schema). Trusted only in a directory of ours no other user can change
    (:func:`hostfacts.fingerprint.owned_dir`: root running with a user's HOME
    uses none), from a private regular file of ours
    (:func:`hostfacts.fingerprint.read_private`: no link, FIFO or device)."""
    data = read_private(str(directory / f"facts-{key}.json"), 8 << 20)
    if data is None or not owned_dir(str(directory)):
        return None
    try:
        return HostFacts.model_validate_json(data)
    except (ValueError, RecursionError):
        return None


def store(directory: Path, key: str, facts: HostFacts) -> Path | None:
    """Write facts for `key` atomically (a new ``O_EXCL`` file, renamed); None
    (and no exception) if the directory is unusable or not ours alone."""
    import secrets

    path = str(directory)
    if not os.path.lexists(path):
        if not may_create(path):
            return None
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
        except OSError:
            return None
    if not owned_dir(path):
        return None
    tmp = os.path.join(path, f".facts-{secrets.token_hex(8)}")
    try:
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
    except OSError:
        return None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(facts.model_dump_json())
        final = directory / f"facts-{key}.json"
        os.replace(tmp, final)
        return final
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return None
