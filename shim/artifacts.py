"""NFD image-compatibility artifacts: find, fetch, verify and decode them.

Node Feature Discovery's artifact (kubernetes-sigs/node-feature-discovery,
api/image-compatibility/v1alpha1/spec.go; docs/usage/image-compatibility.md)
is an OCI image manifest with

* ``artifactType`` ``application/vnd.nfd.image-compatibility.v1alpha1`` (older
  tools put the type in ``config.mediaType`` instead; both are accepted),
* one layer ``application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml``
  holding the spec (``...+json`` is accepted too),
* ``subject``: the image manifest or index it describes,
* the annotation ``org.opencontainers.image.created`` (RFC 3339).

It is found through the referrers API or its tag fallback
(:meth:`shim.registry.RegistryClient.referrers`; distribution-spec v1.1
"Listing Referrers", "Referrers Tag Schema"). As ``nfd compat validate-node``
does, only the newest artifact of a subject counts, by the ``created``
annotation on its referrer descriptor.

This module decodes the spec document; evaluating it is ``scoring``'s job.
Any failure for one subject is a :class:`~shim.errors.RegistryError` naming
that subject; the caller decides whether to fail open.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from shim.errors import RegistryError
from shim.registry import MEDIA_TYPE_MANIFEST, RegistryClient
from shim.untrusted import MAX_JSON_DEPTH, loads_json

NFD_ARTIFACT_TYPE = "application/vnd.nfd.image-compatibility.v1alpha1"
NFD_SPEC_YAML = "application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml"
NFD_SPEC_JSON = "application/vnd.nfd.image-compatibility.spec.v1alpha1+json"
SPEC_MEDIA_TYPES = (NFD_SPEC_YAML, NFD_SPEC_JSON)
CREATED_ANNOTATION = "org.opencontainers.image.created"

#: A spec layer larger than this is refused before it is fetched.
MAX_SPEC_BYTES = 1024 * 1024
#: Worker threads at most, whatever the caller asks.
MAX_WORKERS = 16
#: Nodes a decoded spec may have, aliases expanded (a YAML alias bomb is tiny
#: on the wire and exponential in memory once walked).
MAX_SPEC_NODES = 200_000
#: libyaml's composer (PyYAML's C loader) recurses on the C stack once per
#: nesting level and crashes the process (SIGSEGV) at ~20000 levels, fewer in
#: a thread. Every level needs one of ``[ { - ? :``; a layer with more of them
#: than this is read with the pure-Python loader, which raises RecursionError.
MAX_C_YAML_INDICATORS = 1000
#: Subjects (the index and its builds) whose NFD artifacts are looked up at
#: most: a registry without the referrers API costs one request per subject,
#: and a real index has tens of builds, not thousands.
MAX_SUBJECTS = 1000


@dataclass(frozen=True)
class NfdSpec:
    """The newest NFD artifact attached to one subject, decoded.

    Attributes:
        subject: digest of the manifest or index the artifact describes.
        digest: digest of the artifact's manifest.
        created: its ``org.opencontainers.image.created`` annotation, or None.
        document: the decoded spec (``version``, ``compatibilities``, ...).
        media_type: media type of the spec layer (YAML or JSON).
    """

    subject: str
    digest: str
    created: str | None
    document: dict
    media_type: str


def fetch_nfd_specs(
    client: RegistryClient,
    repository: str,
    subjects: list[str],
    *,
    max_workers: int = 8,
) -> dict[str, list[NfdSpec]]:
    """The NFD spec of each subject (its newest artifact), fetched in parallel.

    The first subject's referrers are listed on the calling thread: that
    settles the scheme (https or http), authentication and whether the
    registry has the referrers API, so the workers then make only the
    requests they need (one tag GET per subject on a registry without the
    API). The rest runs on at most `max_workers` threads; the client's
    deadline bounds the whole.

    For each subject: list the referrers of type :data:`NFD_ARTIFACT_TYPE`,
    keep the newest (:func:`newest`), fetch its manifest (verified; an OCI
    image manifest of the NFD type whose ``subject`` is this subject), its
    spec layer (verified, at most :data:`MAX_SPEC_BYTES`) and decode it. So
    each subject costs at most one listing (bounded by the client:
    ``MAX_REFERRER_PAGES`` pages, ``MAX_REFERRERS`` descriptors), one
    manifest and one blob, however many artifacts it has.

    Args:
        client: the registry client (its deadline bounds every request).
        repository: repository path of the subjects.
        subjects: digests (the index and every candidate manifest);
            duplicates are merged.

    Returns:
        ``{subject: [NfdSpec]}`` in the order given; an empty list for a
        subject with no NFD artifact.

    Raises:
        RegistryError: one line naming the first subject (in the order given)
            whose artifact could not be listed, fetched, verified or decoded
            (DigestMismatch for content that does not hash to its digest);
            or more than :data:`MAX_SUBJECTS` subjects (nothing is asked:
            looking up part of them would ignore the others' artifacts).
    """
    ordered = list(dict.fromkeys(subjects))
    if len(ordered) > MAX_SUBJECTS:
        raise RegistryError(
            f"{client.domain}/{repository}: NFD artifacts of {len(ordered):,} images: "
            f"looked up for at most {MAX_SUBJECTS:,} (nfd_artifacts = false decides from "
            "the index alone)"
        )
    result: dict[str, list[NfdSpec]] = {s: [] for s in ordered}
    if not ordered:
        return result
    first = ordered[0]
    first_listing = _guard(client, repository, first, _list, client, repository, first)
    workers = max(1, min(max_workers, MAX_WORKERS, len(ordered)))

    def one(subject: str, listing: list[dict] | None) -> list[NfdSpec]:
        return _guard(client, repository, subject, _fetch, client, repository, subject, listing)

    if workers == 1:
        for subject in ordered:
            result[subject] = one(subject, first_listing if subject == first else None)
        return result

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imagefit-nfd")
    try:
        futures = {s: pool.submit(one, s, first_listing if s == first else None) for s in ordered}
        for subject in ordered:
            wait = max(0.0, client.deadline - time.monotonic()) + 1.0
            try:
                result[subject] = futures[subject].result(timeout=wait)
            except FutureTimeout:
                raise RegistryError(
                    f"NFD artifact of {client.domain}/{repository}@{subject}: "
                    f"registry {client.domain} timed out after {client.timeout:g} s"
                ) from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return result


def newest(descriptors: list[dict]) -> dict | None:
    """The newest descriptor by its ``org.opencontainers.image.created``
    annotation (RFC 3339, compared as instants to the nanosecond).

    A missing or unparsable ``created`` sorts oldest; equal instants are
    broken by the lowest digest, so the choice never depends on listing
    order.
    """
    ranked = rank(descriptors)
    return ranked[0] if ranked else None


def rank(descriptors: list[dict]) -> list[dict]:
    """`descriptors` newest first (see :func:`newest`)."""

    def key(d: dict) -> tuple:
        instant = parse_rfc3339((d.get("annotations") or {}).get(CREATED_ANNOTATION))
        return (instant is None, -(instant or 0), d["digest"])

    return sorted(descriptors, key=key)


_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_rfc3339(value) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 date-time, or None.

    Accepts ``T``/``t``/space, ``Z``/``z`` or ``±hh:mm``, any number of
    fraction digits (beyond 9 ignored); a leap second ``:60`` counts as ``:59``.
    """
    if not isinstance(value, str):
        return None
    m = _RFC3339.match(value.strip())
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction, zone = m.group(7) or "", m.group(8)
    if zone in ("Z", "z"):
        tz = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            return None
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        moment = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=tz)
    except ValueError:
        return None
    seconds = (moment - _EPOCH) // timedelta(seconds=1)
    return seconds * 1_000_000_000 + int((fraction + "000000000")[:9])


def decode_spec(data: bytes, media_type: str) -> dict:
    """Decode a spec layer: JSON for ``...+json``, YAML otherwise.

    JSON is read within bounds (:func:`shim.untrusted.loads_json`: depth,
    number length). YAML is read with PyYAML's safe loader (no Python
    objects), except that timestamps stay strings (as they do for NFD's Go
    decoder into untyped values, and so the document stays JSON-shaped); a
    layer that could nest deeply is read by the pure-Python loader (see
    :data:`MAX_C_YAML_INDICATORS`). The document must be a mapping of at
    most :data:`MAX_SPEC_NODES` nodes, aliases expanded, nested at most
    :data:`shim.untrusted.MAX_JSON_DEPTH` deep.

    Raises:
        RegistryError: not valid UTF-8, JSON or YAML; not a mapping; too big
            or too deep.
    """
    if media_type.endswith("+json"):
        try:
            document = loads_json(data, "spec layer")
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise RegistryError(f"spec layer is not valid JSON: {_one_line(exc)}") from None
    else:
        import yaml

        indicators = sum(data.count(c) for c in (b"[", b"{", b"-", b"?", b":"))
        try:
            document = yaml.load(data, Loader=_loader(c=indicators <= MAX_C_YAML_INDICATORS))
        except yaml.YAMLError as exc:
            raise RegistryError(f"spec layer is not valid YAML: {_yaml_problem(exc)}") from None
        except RecursionError:  # the pure-Python composer recurses once per level
            raise RegistryError("spec layer is YAML nested too deeply to read") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise RegistryError(f"spec layer is not valid YAML: {_one_line(exc)}") from None
    if not isinstance(document, dict):
        raise RegistryError(
            f"spec layer is not a mapping (a {type(document).__name__} at the top level)"
        )
    _check_size(document)
    return document


# -- internals --------------------------------------------------------------------


def _list(client: RegistryClient, repository: str, subject: str) -> list[dict]:
    return client.referrers(repository, subject, NFD_ARTIFACT_TYPE)


def _fetch(
    client: RegistryClient,
    repository: str,
    subject: str,
    listing: list[dict] | None,
) -> list[NfdSpec]:
    if listing is None:
        listing = _list(client, repository, subject)
    chosen = newest(listing)
    if chosen is None:
        return []
    manifest = client.get_manifest(repository, chosen["digest"])
    where = f"artifact {chosen['digest']}"
    try:
        doc = loads_json(manifest.body, "manifest")
    except ValueError as exc:
        raise RegistryError(f"{where}: manifest is not valid JSON: {_one_line(exc)}") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{where}: manifest is not a JSON object")
    media_type = doc.get("mediaType") or manifest.media_type
    if media_type != MEDIA_TYPE_MANIFEST:
        raise RegistryError(f"{where}: {media_type} is not an OCI image manifest")
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    if NFD_ARTIFACT_TYPE not in (doc.get("artifactType"), config.get("mediaType")):
        raise RegistryError(
            f"{where}: artifactType {doc.get('artifactType')!r} is not {NFD_ARTIFACT_TYPE}"
        )
    declared = doc.get("subject") if isinstance(doc.get("subject"), dict) else {}
    if declared.get("digest") != subject:
        raise RegistryError(
            f"{where}: its subject is {declared.get('digest')!r}, not the image it is listed for"
        )
    layers = doc.get("layers") if isinstance(doc.get("layers"), list) else []
    layer = next(
        (ly for ly in layers if isinstance(ly, dict) and ly.get("mediaType") in SPEC_MEDIA_TYPES),
        None,
    )
    if layer is None:
        raise RegistryError(f"{where}: no layer of type {NFD_SPEC_YAML} (or +json)")
    size = layer.get("size")
    if isinstance(size, int) and size > MAX_SPEC_BYTES:
        raise RegistryError(f"{where}: spec layer of {size} bytes exceeds {MAX_SPEC_BYTES}")
    blob = client.get_blob(repository, str(layer.get("digest")), max_bytes=MAX_SPEC_BYTES)
    try:
        document = decode_spec(blob, layer["mediaType"])
    except RegistryError as exc:
        raise RegistryError(f"{where}: {exc}") from None
    return [
        NfdSpec(
            subject=subject,
            digest=chosen["digest"],
            created=chosen["annotations"].get(CREATED_ANNOTATION),
            document=document,
            media_type=layer["mediaType"],
        )
    ]


def _guard(client: RegistryClient, repository: str, subject: str, func, *args):
    """Run `func`; re-raise a RegistryError as one line naming `subject`."""
    try:
        return func(*args)
    except RegistryError as exc:
        message = f"NFD artifact of {client.domain}/{repository}@{subject}: {_one_line(exc)}"
        raise type(exc)(message) from None


_LOADERS: dict[bool, type] = {}


def _loader(c: bool = True):
    """PyYAML's SafeLoader (the C one when built and `c`) without the
    timestamp resolver."""
    if c not in _LOADERS:
        import yaml

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if c else yaml.SafeLoader
        resolvers = {
            first: [(tag, rx) for tag, rx in entries if tag != "tag:yaml.org,2002:timestamp"]
            for first, entries in base.yaml_implicit_resolvers.items()
        }
        _LOADERS[c] = type("NfdSpecLoader", (base,), {"yaml_implicit_resolvers": resolvers})
    return _LOADERS[c]


def _check_size(document) -> None:
    """Walk `document` without recursion: at most :data:`MAX_SPEC_NODES`
    nodes, nested at most ``MAX_JSON_DEPTH`` deep (the store's ``json.dumps``
    and the scoring model recurse once per level)."""
    budget = MAX_SPEC_NODES
    stack = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise RegistryError(f"spec has more than {MAX_SPEC_NODES} nodes (aliases expanded)")
        if depth > MAX_JSON_DEPTH:
            raise RegistryError(f"spec nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(node, dict):
            stack.extend((k, depth + 1) for k in node.keys())
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list | tuple | set):
            stack.extend((v, depth + 1) for v in node)


def _yaml_problem(exc) -> str:
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return _one_line(exc)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text or type(exc).__name__)[:300]
