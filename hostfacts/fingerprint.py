"""Which facts a host has, without probing it: a fingerprint of the inputs
that decide the probed facts. Standard library only (the shim's hot path
uses it to look up cached decisions without loading facts or pydantic).

The material is the per-boot facts cache's key (:mod:`hostfacts.cache`): the
boot id, root, hostname, user, the environment variables that change what
probes find, the schema and probe versions. With ``$IMAGEFIT_FACTS`` the
fingerprint is the sha256 of that file's bytes.
"""

from __future__ import annotations

import hashlib
import os

#: Bumped whenever a probe changes what it reports for the same host.
PROBE_VERSION = 2
SCHEMA_VERSION = 1  # hostfacts.model.SCHEMA_VERSION (checked by a test)

#: Environment variables whose value changes what a probe finds.
KEY_ENV = (
    "PATH", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
    "IMAGEFIT_MPI_LIBRARY", "LOADEDMODULES", "_LMFILES_", "I_MPI_ROOT", "MPI_HOME", "OMPI_HOME",
    "APPTAINER_CONTAINER", "SINGULARITY_CONTAINER", "container",
)  # fmt: skip


def canonical(data) -> str:
    """A canonical text of nested dicts/lists/scalars (sorted keys): what the
    digests hash. Not JSON: the json module would import re on the hot path."""
    if isinstance(data, dict):
        return (
            "{"
            + ",".join(f"{canonical(str(k))}:{canonical(data[k])}" for k in sorted(data, key=str))
            + "}"
        )
    if isinstance(data, list | tuple):
        return "[" + ",".join(canonical(v) for v in data) + "]"
    return repr(data)


def material(boot_id: str, root: str, hostname: str, environ, uid: int) -> dict:
    """The inputs the fingerprint hashes."""
    return {
        "boot_id": boot_id,
        "root": root,
        "hostname": hostname,
        "env": {k: environ.get(k) for k in KEY_ENV},
        "schema": SCHEMA_VERSION,
        "probes": PROBE_VERSION,
        "uid": uid,
    }


def digest(data: dict) -> str:
    """32 hex characters of the sha256 of :func:`canonical` `data`."""
    return hashlib.sha256(canonical(data).encode()).hexdigest()[:32]


def live_fingerprint(environ, hostname: str) -> str | None:
    """Fingerprint of this host's facts (root ``/``), or of ``$IMAGEFIT_FACTS``;
    None when there is no boot id (facts then cannot be tied to a boot)."""
    facts_file = environ.get("IMAGEFIT_FACTS")
    if facts_file:
        try:
            with open(facts_file, "rb") as fh:
                return "file-" + hashlib.sha256(fh.read()).hexdigest()[:32]
        except OSError:
            return None
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot_id = fh.read().strip()
    except OSError:
        return None
    if not boot_id:
        return None
    return digest(material(boot_id, "/", hostname, environ, os.geteuid()))
