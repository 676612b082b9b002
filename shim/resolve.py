"""What the registry says about a reference (:func:`fetch`, :func:`head`:
mirrors in order, then the registry), and the decision for host facts
(:func:`decide`): registry -> facts -> scoring.

This is the cold path: it imports requests (through :mod:`shim.registry`),
pydantic, archspec. The shim's hot path never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hostfacts import HostFacts
from scoring import (
    INDEX_MEDIA_TYPES,
    Decision,
    InvalidIndexError,
    Outcome,
    parse_index,
    select,
    select_common,
)
from scoring.policy import Policy
from shim import auth
from shim.errors import RegistryError
from shim.insecure import insecurity, registry_is_insecure  # noqa: F401  (re-exported)
from shim.reference import Reference
from shim.registry import RegistryClient, RegistryTimeout
from shim.untrusted import loads_json


@dataclass(frozen=True)
class IndexData:
    """What the registry holds for one reference, ready to be scored for any host.

    Attributes:
        reference: the reference fetched.
        digest: digest of the document it names.
        candidates: the index's candidates, or None for a single manifest.
        artifact_sets: NFD compatibility sets by subject digest (index or manifest).
        requests: registry requests made (at every endpoint tried).
        document: the raw bytes of the document (what the index store keeps).
        media_type: its media type.
        specs: the NFD spec documents found, ``{subject: [(artifact digest,
            decoded spec)]}`` (what `artifact_sets` was parsed from).
        source: the endpoint repository it came from (``host/path``: a
            mirror's, or the registry's at its registries.conf location).
    """

    reference: Reference
    digest: str
    candidates: tuple | None
    artifact_sets: dict
    requests: int
    document: bytes = b""
    media_type: str = ""
    specs: dict = field(default_factory=dict)
    source: str = ""


def parse_specs(specs: dict) -> dict:
    """NFD compatibility sets by subject from ``{subject: [(artifact digest, spec)]}``.

    A set that cannot be read fails that set only (``parse_nfd_spec(...,
    strict=False)``: it never matches and carries its reason for explain);
    a spec that cannot be read at all (not a mapping, another version)
    becomes one such set for its subject. Never raises for a spec's content.
    """
    from scoring.rules import CompatibilitySet, parse_nfd_spec

    sets: dict = {}
    for subject, items in specs.items():
        for digest, document in items:
            source = f"nfd:{digest}"
            try:
                found = parse_nfd_spec(document, source, strict=False)
            except ValueError as exc:
                found = (CompatibilitySet(source=source, error=f"NFD artifact {digest}: {exc}"),)
            sets.setdefault(subject, []).extend(found)
    return sets


def parse_document(document: bytes, media_type: str) -> tuple | None:
    """The candidates of an index document, or None for a single manifest.

    Raises:
        RegistryError: invalid JSON or an index that does not validate.
    """
    return _parse(document, media_type)


def _parse(document: bytes, media_type: str) -> tuple | None:
    try:
        data = loads_json(document, "the index")
    except ValueError as exc:
        raise RegistryError(f"registry sent invalid JSON: {exc}") from None
    declared = data.get("mediaType") if isinstance(data, dict) else None
    if media_type not in INDEX_MEDIA_TYPES and declared not in INDEX_MEDIA_TYPES:
        return None
    try:
        return tuple(parse_index(data))
    except InvalidIndexError as exc:
        raise RegistryError(str(exc)) from None
    except RecursionError:
        raise RegistryError("the index is nested too deeply to read") from None


def fetch(
    ref: Reference,
    *,
    environ: Mapping[str, str],
    insecure: bool,
    timeout: float,
    authfile: str | None = None,
    credentials: tuple[str, str] | None = None,
    nfd_artifacts: bool = True,
    tls_verify: bool | None = None,
) -> IndexData:
    """Fetch the index `ref` names and the NFD artifacts attached to it and to
    its manifests (referrers API or its tag fallback; :mod:`shim.artifacts`),
    from where podman would pull it: the registry's mirrors in order, then the
    registry at its (possibly remapped) location (:func:`_first_source`).
    The artifacts come from the same endpoint as the index.

    Args:
        insecure: TLS verification off for the registry itself (not for its
            mirrors: each has its own ``insecure`` in registries.conf).
        timeout: seconds for the whole attempt, all sources together.
        credentials: explicit credentials (``--creds``): sent only to
            endpoints on the reference's own host.
        tls_verify: the command line's ``--tls-verify`` (or equivalent) when
            given: it applies to every source, as in containers/image.

    Raises:
        RegistryError: any registry or content failure (one line), including
            an NFD artifact that cannot be read; a blocked registry; an
            invalid registries.conf.
    """
    (manifest, client, source, before) = _first_source(
        ref,
        lambda client, source: client.get_manifest(source.path, ref.reference),
        environ=environ,
        insecure=insecure,
        timeout=timeout,
        authfile=authfile,
        credentials=credentials,
        tls_verify=tls_verify,
    )
    candidates = _parse(manifest.body, manifest.media_type)
    found: dict = {}
    if candidates is not None and nfd_artifacts:
        from shim.artifacts import fetch_nfd_specs

        subjects = [manifest.digest, *dict.fromkeys(c.digest for c in candidates)]
        for subject, specs in fetch_nfd_specs(client, source.path, subjects).items():
            if specs:
                found[subject] = [(spec.digest, spec.document) for spec in specs]
    return IndexData(
        ref,
        manifest.digest,
        candidates,
        parse_specs(found),
        before + client.requests_made,
        document=manifest.body,
        media_type=manifest.media_type,
        specs=found,
        source=source.name,
    )


def head(
    ref: Reference,
    *,
    environ: Mapping[str, str],
    insecure: bool,
    timeout: float,
    authfile: str | None = None,
    credentials: tuple[str, str] | None = None,
    tls_verify: bool | None = None,
) -> str | None:
    """HEAD the manifest `ref` names through the same sources as :func:`fetch`
    (mirrors, then the registry, one deadline): the digest the first endpoint
    that has it announces (``Docker-Content-Digest``), or None when that
    endpoint announces none (the caller then fetches).

    Raises:
        RegistryError: no source answered (one line), a blocked registry, an
            invalid registries.conf.
    """
    digest, _client, _source, _before = _first_source(
        ref,
        lambda client, source: client.head_digest(source.path, ref.reference),
        environ=environ,
        insecure=insecure,
        timeout=timeout,
        authfile=authfile,
        credentials=credentials,
        tls_verify=tls_verify,
    )
    return digest


def _first_source(
    ref: Reference,
    action,
    *,
    environ: Mapping[str, str],
    insecure: bool,
    timeout: float,
    authfile: str | None,
    credentials: tuple[str, str] | None,
    tls_verify: bool | None,
):
    """``action(client, source)`` at each pull source of `ref` in podman's
    order until one succeeds (containers/image docker/docker_image_src.go
    ``newImageSource``; the sources: :func:`shim.registries_conf.pull_sources`,
    after pkg/sysregistriesv2/system_registries_v2.go
    ``PullSourcesFromReference``).

    Each endpoint gets its own TLS setting (the registry: `insecure` or its
    registries.conf entry's ``insecure``; a
    mirror: its registries.conf ``insecure``; `tls_verify`, when given, wins
    for all) and credentials looked up for the host and repository actually
    contacted (`credentials` only on the reference's own host, as
    containers/image drops ``DockerAuthConfig`` for mirrors elsewhere). Every
    endpoint's content is verified by :class:`RegistryClient` as the
    registry's is. All sources share one deadline, `timeout` seconds from now.

    A source that timed out on this node in the last
    :data:`shim.backoff.BACKOFF_SECONDS` is not asked (a mirror is skipped,
    the registry fails at once, with the line :func:`shim.backoff.recent`
    gives); a source is remembered as timed out when it had at least half the
    budget left when it was asked (so a registry squeezed by slow mirrors
    before it is not blamed).

    Returns:
        (the action's result, the client, the Source, requests made at the
        sources that failed).

    Raises:
        RegistryError: every source failed: the registry's error (of its
            type), then the mirrors' in brackets; a ``blocked`` source fails
            without a request.
    """
    import time

    from shim import backoff
    from shim.registries_conf import RegistriesConfError, pull_sources

    deadline = time.monotonic() + timeout
    try:
        sources = pull_sources(ref.name, ref.digest is not None, environ)
    except RegistriesConfError as exc:
        raise RegistryError(str(exc)) from None
    failures: list[tuple[object, RegistryError]] = []
    requests = 0
    for source in sources:
        if source.blocked is not None:
            failures.append(
                (source, RegistryError(f"registry {source.blocked} is blocked in registries.conf"))
            )
            continue
        recent = backoff.recent(source.domain, environ)
        if recent is not None:
            failures.append((source, RegistryTimeout(recent)))
            continue
        if tls_verify is not None:
            skip_verify = not tls_verify
        else:
            # the registry: the caller's view or its own registries.conf entry (the
            # same files pull_sources read, drop-ins included), as podman decides
            skip_verify = source.insecure if source.mirror else (insecure or source.insecure)
        if credentials and source.domain == ref.domain:
            creds = credentials
        else:
            creds = auth.credentials(source.domain, source.path, environ, authfile)
        client = RegistryClient(
            source.domain,
            insecure=skip_verify,
            credentials=creds,
            timeout=timeout,
            deadline=deadline,
        )
        fair = deadline - time.monotonic() >= timeout / 2
        try:
            return action(client, source), client, source, requests
        except RegistryError as exc:
            requests += client.requests_made
            failures.append((source, exc))
            client.watchdog.cancel()
            if isinstance(exc, RegistryTimeout) and fair and client.requests_made:
                backoff.remember(source.domain, environ)
    _source, error = failures[-1]
    if len(failures) == 1:
        raise error
    mirrors = "; ".join(f"[{e}]" for _s, e in failures[:-1])
    raise type(error)(f"{error} (mirrors also failed: {mirrors})") from None


def decide(
    data: IndexData,
    facts: HostFacts | Mapping[str, HostFacts],
    policy: Policy | Mapping[str, Policy | None] | None = None,
    requested_platform: tuple | None = None,
    visible: Mapping[str, str] | None = None,
) -> Decision:
    """The decision for `facts`: an index is scored (:func:`scoring.select`;
    for ``{node class: facts}``, the one build that fits them all,
    :func:`scoring.select_common`, with one policy or each class's); a single
    manifest passes through.

    `requested_platform`: (os, architecture, variant or None) the command
    line asked for, this machine's OS and architecture
    (:func:`shim.intercept._native_request`), or None: passed to scoring,
    which keeps only the builds the runtime would take for it
    (:func:`scoring.platform.check_requested`).

    `visible`: the command's environment, whose visible-device variables
    (``CUDA_VISIBLE_DEVICES``...) narrow every facts' GPUs to the job's
    (:func:`hostfacts.visible.narrow`); None: the node's GPUs, all of them."""
    if data.candidates is None:
        return Decision(
            outcome=Outcome.PASSTHROUGH, reason="the reference names a single image manifest"
        )
    if visible:
        from hostfacts.visible import narrow

        if isinstance(facts, Mapping):
            facts = {name: narrow(f, visible) for name, f in facts.items()}
        else:
            facts = narrow(facts, visible)
    choose = select_common if isinstance(facts, Mapping) else select
    return choose(
        data.candidates,
        facts,
        artifact_sets=data.artifact_sets,
        index_digest=data.digest,
        policy=policy,
        requested_platform=requested_platform,
    )
