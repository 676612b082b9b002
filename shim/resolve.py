"""Resolve one image reference to a decision: registry -> facts -> scoring.

This is the cold path: it imports oras (through :mod:`shim.registry`),
pydantic, archspec. The shim's hot path never imports it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from hostfacts import HostFacts
from scoring import INDEX_MEDIA_TYPES, Decision, InvalidIndexError, Outcome, parse_index, select
from shim import auth, registries_conf
from shim.errors import RegistryError
from shim.reference import Reference
from shim.registry import RegistryClient


@dataclass(frozen=True)
class Resolution:
    """What resolving a reference found.

    Attributes:
        reference: the reference resolved.
        digest: digest of the document the reference named (index or manifest).
        decision: the scoring decision (PASSTHROUGH for a single manifest).
        requests: registry requests made.
    """

    reference: Reference
    digest: str
    decision: Decision
    requests: int


def insecurity(
    ref: Reference,
    environ: Mapping[str, str],
    insecure_registries: tuple[str, ...],
    tls_verify: bool | None,
) -> str | None:
    """Why the registry of `ref` is reached without TLS verification (plain
    HTTP allowed), or None: exactly where podman would, ``--tls-verify=false``
    on the command line ("command line") or registries.conf ``insecure``
    ("registries.conf"), and also imagefit's ``insecure_registries``
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


def decide(document: bytes, media_type: str, facts: HostFacts) -> Decision:
    """Decision for a fetched document: an index is scored; a single manifest
    passes through.

    Raises:
        RegistryError: the document is not valid JSON or not a valid index.
    """
    try:
        data = json.loads(document)
    except ValueError as exc:
        raise RegistryError(f"registry sent invalid JSON: {exc}") from None
    declared = data.get("mediaType") if isinstance(data, dict) else None
    if media_type not in INDEX_MEDIA_TYPES and declared not in INDEX_MEDIA_TYPES:
        return Decision(
            outcome=Outcome.PASSTHROUGH, reason="the reference names a single image manifest"
        )
    try:
        candidates = parse_index(data)
    except InvalidIndexError as exc:
        raise RegistryError(str(exc)) from None
    return select(candidates, facts)


def resolve(
    ref: Reference,
    facts: HostFacts,
    *,
    environ: Mapping[str, str],
    insecure: bool,
    timeout: float,
    authfile: str | None = None,
) -> Resolution:
    """Fetch the index `ref` names and choose a build for `facts`.

    Raises:
        RegistryError: any registry or content failure (one line).
    """
    creds = auth.credentials(ref.domain, ref.path, environ, authfile)
    client = RegistryClient(ref.domain, insecure=insecure, credentials=creds, timeout=timeout)
    manifest = client.get_manifest(ref.path, ref.reference)
    decision = decide(manifest.body, manifest.media_type, facts)
    return Resolution(
        reference=ref, digest=manifest.digest, decision=decision, requests=client.requests_made
    )
