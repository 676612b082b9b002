"""Host facts: what this machine is, as far as choosing a container build goes.

``hostfacts`` knows nothing of images, registries or argv (see DESIGN.md, data
flow). It probes the host (CPU through archspec, NVIDIA through NVML, AMD
through KFD, MPI by calling the library, system and interconnect from
procfs/sysfs), or loads a saved facts file, and returns one immutable
:class:`HostFacts` value.

Public API (imported lazily, so :mod:`hostfacts.fingerprint` stays light
enough for the shim's hot path):
    host_facts(environ) -> HostFacts    the facts every command uses (cached per boot)
    probe() -> HostFacts                probe this host now
    load_facts(path) -> HostFacts       read a saved facts JSON file
    facts_from_cpuinfo(path, machine)   facts computed from a /proc/cpuinfo dump
"""

from __future__ import annotations

_EXPORTS = {
    "FACTS_ENV": "hostfacts.api",
    "facts_from_cpuinfo": "hostfacts.api",
    "host_facts": "hostfacts.api",
    "load_facts": "hostfacts.api",
    "probe": "hostfacts.api",
    "HostFactsError": "hostfacts.errors",
    "SCHEMA_VERSION": "hostfacts.model",
    "CpuFacts": "hostfacts.model",
    "HostFacts": "hostfacts.model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hostfacts' has no attribute {name!r}")
    # __import__, not importlib: importing importlib (and warnings) costs the
    # shim's hot path ~0.5 ms where it only needs hostfacts.fingerprint
    value = getattr(__import__(module, fromlist=[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
