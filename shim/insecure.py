"""Where the shim talks to a registry without TLS verification: exactly where
podman would, plus imagefit's own list. Standard library only."""

from __future__ import annotations

if False:  # for type checkers only: importing collections costs every shimmed command ~1.3 ms
    from collections.abc import Mapping

from shim import registries_conf
from shim.reference import Reference


def insecurity(
    ref: Reference,
    environ: Mapping[str, str],
    insecure_registries: tuple[str, ...],
    tls_verify: bool | None,
) -> str | None:
    """Why the registry of `ref` is reached without TLS verification (plain
    HTTP allowed), or None: ``--tls-verify=false`` (or the runtime's
    equivalent) on the command line ("command line"), registries.conf
    ``insecure`` ("registries.conf"), imagefit's ``insecure_registries``
    ("imagefit config"). An explicit ``--tls-verify=true`` wins over both files."""
    if tls_verify is not None:
        return None if tls_verify else "command line"
    if registries_conf.insecure(ref.name, environ):
        return "registries.conf"
    if ref.domain in insecure_registries:
        return "imagefit config"
    return None


def registry_is_insecure(
    ref: Reference,
    environ: Mapping[str, str],
    insecure_registries: tuple[str, ...],
    tls_verify: bool | None,
) -> bool:
    """True when :func:`insecurity` names a reason."""
    return insecurity(ref, environ, insecure_registries, tls_verify) is not None
