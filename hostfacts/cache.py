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
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from hostfacts.context import ProbeContext
from hostfacts.fingerprint import digest, facts_cache_dir, material  # noqa: E402
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


def _trusted(path: Path) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def load(directory: Path, key: str) -> HostFacts | None:
    """Cached facts for `key`, or None (absent, untrusted, corrupt or stale schema)."""
    path = directory / f"facts-{key}.json"
    if not _trusted(path):
        return None
    try:
        return HostFacts.model_validate_json(path.read_bytes())
    except (OSError, ValueError):
        return None


def store(directory: Path, key: str, facts: HostFacts) -> Path | None:
    """Write facts for `key` atomically; None (and no exception) if the directory is unusable."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".facts-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(facts.model_dump_json())
            final = directory / f"facts-{key}.json"
            os.replace(tmp, final)
            return final
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        return None
