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
import json
import os
from collections.abc import Mapping

#: Bumped whenever a probe changes what it reports for the same host.
PROBE_VERSION = 2
SCHEMA_VERSION = 1  # hostfacts.model.SCHEMA_VERSION (checked by a test)

#: Environment variables whose value changes what a probe finds.
KEY_ENV = (
    "PATH", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
    "IMAGEFIT_MPI_LIBRARY", "LOADEDMODULES", "_LMFILES_", "I_MPI_ROOT", "MPI_HOME", "OMPI_HOME",
    "APPTAINER_CONTAINER", "SINGULARITY_CONTAINER", "container",
)  # fmt: skip


def material(boot_id: str, root: str, hostname: str, environ: Mapping[str, str], uid: int) -> dict:
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
    """32 hex characters of the sha256 of `data` as canonical JSON."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def live_fingerprint(environ: Mapping[str, str], hostname: str) -> str | None:
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
