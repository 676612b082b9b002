"""Entry points of :mod:`hostfacts`: probe (cached per boot), load, or replay."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from hostfacts import cache
from hostfacts.collect import collect, hostname_of
from hostfacts.context import ProbeContext
from hostfacts.cpu import cpu_facts, with_target
from hostfacts.errors import HostFactsError
from hostfacts.model import SCHEMA_VERSION, HostFacts

#: Environment variable naming a saved facts JSON to use instead of probing.
FACTS_ENV = "IMAGEFIT_FACTS"


def facts_from_cpuinfo(cpuinfo: str | Path, machine: str | None = None) -> HostFacts:
    """Host facts computed from a /proc/cpuinfo dump (another node's, say);
    only the CPU section is recorded.

    Raises:
        HostFactsError: unreadable file or unknown machine name.
    """
    return HostFacts(hostname="", cpu=cpu_facts(cpuinfo, machine))


def probe(ctx: ProbeContext | None = None, machine: str | None = None) -> HostFacts:
    """Probe now, uncached (every section; see :func:`hostfacts.collect.collect`).

    Raises:
        HostFactsError: the CPU cannot be described.
    """
    return collect(ctx or ProbeContext(), machine=machine)


def load_facts(path: str | Path) -> HostFacts:
    """Read a facts file as written by ``imagefit facts --json`` (a regular
    file of at most 8 MiB, read once without blocking: a FIFO or a device is
    refused; owned by root, or by the caller when not root, and not writable
    by group or others: :func:`hostfacts.fingerprint.read_regular`).

    Raises:
        HostFactsError: unreadable file, not a regular file, another user's
            or writable by others, too large,
            invalid JSON, a schema version this release does not know, or
            fields that do not validate.
    """
    from hostfacts.fingerprint import read_regular

    try:
        raw = read_regular(str(path))
    except OSError as exc:
        raise HostFactsError(f"cannot read facts file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise HostFactsError(f"facts file {path}: {exc}") from None
    return parse_facts(raw, path)


def parse_facts(raw: bytes, source: str | Path) -> HostFacts:
    """The facts in `raw` (the bytes of a facts file named `source`).

    Raises:
        HostFactsError: as :func:`load_facts`, for the content.
    """
    from pydantic import ValidationError

    path = source
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise HostFactsError(f"facts file {path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise HostFactsError(f"facts file {path} is nested too deeply to read") from None
    if not isinstance(data, dict):
        raise HostFactsError(f"facts file {path} must hold a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise HostFactsError(
            f"facts file {path} has schema_version {version!r}; this imagefit reads {SCHEMA_VERSION}"
        )
    try:
        return HostFacts.model_validate(data)
    except RecursionError:
        raise HostFactsError(f"facts file {path} is nested too deeply to read") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise HostFactsError(f"facts file {path}: {where}: {first['msg']}") from None


def host_facts(
    environ: Mapping[str, str] | None = None,
    *,
    root: str | Path = "/",
    machine: str | None = None,
    refresh: bool = False,
    cpu_target: str | None = None,
    timeout: float = 5.0,
) -> HostFacts:
    """The facts every imagefit command uses.

    ``$IMAGEFIT_FACTS`` if set (used as saved, no override applied: it
    describes its own node class); else the per-boot cache (see
    :mod:`hostfacts.cache`) unless `refresh`; else a fresh probe, which is
    then cached. A site `cpu_target` override is applied to probed facts.

    Args:
        environ: environment to read (default ``os.environ``).
        root: tree to probe (``imagefit facts --root DIR``); not cached unless ``/``.
        machine: kernel machine name for a copied tree.
        refresh: ignore the cache (``imagefit facts --refresh``).
        cpu_target: archspec target a site config sets for this node class.
        timeout: seconds per probe.

    Raises:
        HostFactsError: bad facts file, unusable CPU data, bad override.
    """
    environ = os.environ if environ is None else environ
    path = environ.get(FACTS_ENV)
    if path:
        return load_facts(path)
    ctx = ProbeContext(root=root, environ=environ, timeout=timeout)
    key = cache.cache_key(ctx, hostname_of(ctx)) if ctx.live and machine is None else None
    directory = cache.cache_dir(environ)
    facts = None if (refresh or key is None) else cache.load(directory, key)
    if facts is None:
        facts = collect(ctx, machine=machine)
        if key is not None:
            cache.store(directory, key, facts)
    if cpu_target and cpu_target != facts.cpu.target:
        facts = facts.model_copy(update={"cpu": with_target(facts.cpu, cpu_target)})
    return facts
