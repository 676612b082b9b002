"""Entry points of :mod:`hostfacts`: probe, load, or take a facts override."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from hostfacts.cpu import cpu_facts
from hostfacts.errors import HostFactsError
from hostfacts.model import SCHEMA_VERSION, HostFacts

#: Environment variable naming a saved facts JSON to use instead of probing.
FACTS_ENV = "IMAGEFIT_FACTS"


def facts_from_cpuinfo(cpuinfo: str | Path, machine: str | None = None) -> HostFacts:
    """Host facts computed from a /proc/cpuinfo dump (another node's, say).

    Raises:
        HostFactsError: unreadable file or unknown machine name.
    """
    return HostFacts(hostname="", cpu=cpu_facts(cpuinfo, machine))


def probe() -> HostFacts:
    """Probe this host now (reads /proc/cpuinfo through archspec).

    Raises:
        HostFactsError: the CPU cannot be described.
    """
    return HostFacts(hostname=socket.gethostname(), cpu=cpu_facts())


def load_facts(path: str | Path) -> HostFacts:
    """Read a facts JSON file as written by ``imagefit facts --json``.

    Raises:
        HostFactsError: unreadable file, invalid JSON, a schema version this
            release does not know, or fields that do not validate.
    """
    from pydantic import ValidationError

    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise HostFactsError(f"cannot read facts file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise HostFactsError(f"facts file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HostFactsError(f"facts file {path} must hold a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise HostFactsError(
            f"facts file {path} has schema_version {version!r}; this imagefit reads {SCHEMA_VERSION}"
        )
    try:
        return HostFacts.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise HostFactsError(f"facts file {path}: {where}: {first['msg']}") from None


def host_facts(environ: Mapping[str, str] | None = None) -> HostFacts:
    """The facts every imagefit command uses: ``$IMAGEFIT_FACTS`` if set,
    else a probe of this host.

    Raises:
        HostFactsError: see :func:`load_facts` and :func:`probe`.
    """
    environ = os.environ if environ is None else environ
    path = environ.get(FACTS_ENV)
    if path:
        return load_facts(path)
    return probe()
