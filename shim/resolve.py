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
from scoring.policy import Policy
from shim import auth
from shim.errors import RegistryError
from shim.insecure import insecurity, registry_is_insecure  # noqa: F401  (re-exported)
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


@dataclass(frozen=True)
class IndexData:
    """What the registry holds for one reference, ready to be scored for any host.

    Attributes:
        reference: the reference fetched.
        digest: digest of the document it names.
        candidates: the index's candidates, or None for a single manifest.
        artifact_sets: NFD compatibility sets by subject digest (index or manifest).
        requests: registry requests made.
    """

    reference: Reference
    digest: str
    candidates: tuple | None
    artifact_sets: dict
    requests: int


def _parse(document: bytes, media_type: str) -> tuple | None:
    try:
        data = json.loads(document)
    except ValueError as exc:
        raise RegistryError(f"registry sent invalid JSON: {exc}") from None
    declared = data.get("mediaType") if isinstance(data, dict) else None
    if media_type not in INDEX_MEDIA_TYPES and declared not in INDEX_MEDIA_TYPES:
        return None
    try:
        return tuple(parse_index(data))
    except InvalidIndexError as exc:
        raise RegistryError(str(exc)) from None


def fetch(
    ref: Reference,
    *,
    environ: Mapping[str, str],
    insecure: bool,
    timeout: float,
    authfile: str | None = None,
    credentials: tuple[str, str] | None = None,
    nfd_artifacts: bool = True,
) -> IndexData:
    """Fetch the index `ref` names and the NFD artifacts attached to it and to
    its manifests (referrers API or its tag fallback; :mod:`shim.artifacts`).

    Raises:
        RegistryError: any registry or content failure (one line), including
            an NFD artifact that cannot be read.
    """
    creds = credentials or auth.credentials(ref.domain, ref.path, environ, authfile)
    client = RegistryClient(ref.domain, insecure=insecure, credentials=creds, timeout=timeout)
    manifest = client.get_manifest(ref.path, ref.reference)
    candidates = _parse(manifest.body, manifest.media_type)
    sets: dict = {}
    if candidates is not None and nfd_artifacts:
        from scoring.rules import parse_nfd_spec
        from shim.artifacts import fetch_nfd_specs

        subjects = [manifest.digest, *dict.fromkeys(c.digest for c in candidates)]
        for subject, specs in fetch_nfd_specs(client, ref.path, subjects).items():
            for spec in specs:
                try:
                    sets.setdefault(subject, []).extend(
                        parse_nfd_spec(spec.document, f"nfd:{spec.digest}")
                    )
                except ValueError as exc:
                    raise RegistryError(
                        f"NFD artifact {spec.digest} for {subject[:19]}: {exc}"
                    ) from None
    return IndexData(ref, manifest.digest, candidates, sets, client.requests_made)


def decide(data: IndexData, facts: HostFacts, policy: Policy | None = None) -> Decision:
    """The decision for `facts`: an index is scored; a single manifest passes through."""
    if data.candidates is None:
        return Decision(
            outcome=Outcome.PASSTHROUGH, reason="the reference names a single image manifest"
        )
    return select(
        data.candidates,
        facts,
        artifact_sets=data.artifact_sets,
        index_digest=data.digest,
        policy=policy,
    )


def resolve(
    ref: Reference,
    facts: HostFacts,
    *,
    environ: Mapping[str, str],
    insecure: bool,
    timeout: float,
    authfile: str | None = None,
    credentials: tuple[str, str] | None = None,
    nfd_artifacts: bool = True,
    policy: Policy | None = None,
    requested_platform: tuple | None = None,
) -> Resolution:
    """Fetch the index `ref` names and choose a build for `facts`.

    Raises:
        RegistryError: any registry or content failure (one line).
    """
    data = fetch(
        ref,
        environ=environ,
        insecure=insecure,
        timeout=timeout,
        authfile=authfile,
        credentials=credentials,
        nfd_artifacts=nfd_artifacts,
    )
    return Resolution(
        reference=ref,
        digest=data.digest,
        decision=decide(data, facts, policy),
        requests=data.requests,
    )
