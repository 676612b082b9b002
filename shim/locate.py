"""Find the real runtime to exec, skipping the shim itself.

The shim is installed under the runtime's own name ahead of it on PATH. Like
ccache (ccache/ccache src/ccache/execute.cpp ``find_executable_in_path``) it
walks PATH and skips every entry that is the shim: the same file by
``(st_dev, st_ino)``, or any file whose real name is ``imagefit-shim``
(another installation). Relative PATH entries are never used. Standard
library only.
"""

from __future__ import annotations

import os

if False:  # for type checkers only: importing collections costs every shimmed command ~1.3 ms
    from collections.abc import Mapping

from shim.errors import RuntimeNotFound

SHIM_NAME = "imagefit-shim"


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def is_shim(path: str, self_identity: tuple[int, int] | None) -> bool:
    """True if `path` is this shim or another imagefit shim."""
    ident = _identity(path)
    if ident is not None and ident == self_identity:
        return True
    return os.path.basename(os.path.realpath(path)) == SHIM_NAME


def find_runtime(
    name: str,
    environ: Mapping[str, str],
    self_path: str,
    configured: str | None = None,
) -> str:
    """Absolute path of the real runtime `name`.

    Args:
        name: runtime name (``podman``...).
        environ: the environment (its PATH is searched).
        self_path: path the shim was started as (argv[0] or sys.executable script).
        configured: an absolute path from config, used if given.

    Raises:
        RuntimeNotFound: configured path unusable, or nothing but the shim on PATH.
    """
    self_identity = _identity(self_path)
    if configured:
        if not os.access(configured, os.X_OK) or is_shim(configured, self_identity):
            raise RuntimeNotFound(f"configured {name} {configured} is not an executable runtime")
        return configured
    for directory in environ.get("PATH", "").split(os.pathsep):
        if not directory or not os.path.isabs(directory):
            continue
        candidate = os.path.join(directory, name)
        if not os.path.isfile(candidate) or not os.access(candidate, os.X_OK):
            continue
        if is_shim(candidate, self_identity):
            continue
        return candidate
    raise RuntimeNotFound(f"no {name} found on PATH apart from the imagefit shim")
