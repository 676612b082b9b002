"""Host facts: what this machine is, as far as choosing a container build goes.

``hostfacts`` knows nothing of images, registries or argv (see DESIGN.md, data
flow). It probes the host (CPU through archspec for now), or loads a saved
facts file, and returns one immutable :class:`HostFacts` value.

Public API:
    host_facts(environ) -> HostFacts    the facts every command uses
    probe() -> HostFacts                probe this host now
    load_facts(path) -> HostFacts       read a saved facts JSON file
    facts_from_cpuinfo(path, machine)   facts computed from a /proc/cpuinfo dump
"""

from hostfacts.api import FACTS_ENV, facts_from_cpuinfo, host_facts, load_facts, probe
from hostfacts.errors import HostFactsError
from hostfacts.model import SCHEMA_VERSION, CpuFacts, HostFacts

__all__ = [
    "FACTS_ENV",
    "SCHEMA_VERSION",
    "CpuFacts",
    "HostFacts",
    "HostFactsError",
    "facts_from_cpuinfo",
    "host_facts",
    "load_facts",
    "probe",
]
