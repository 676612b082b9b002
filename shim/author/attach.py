"""``imagefit attach REF --nfd SPEC``: attach an NFD image-compatibility
artifact to an index (default) or to one of its builds.

The artifact is what Node Feature Discovery reads
(docs/usage/image-compatibility.md) and :mod:`shim.artifacts` fetches:

* the spec, validated first with ``scoring.rules.parse_nfd_spec`` (an invalid
  spec is refused, one line), as a blob of media type
  ``application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml``;
* the empty config (``application/vnd.oci.empty.v1+json``, ``{}``);
* an OCI image manifest with ``artifactType``
  ``application/vnd.nfd.image-compatibility.v1alpha1``, that layer, ``subject``
  the index or the build's manifest, and the annotation
  ``org.opencontainers.image.created`` (now, or ``--created``): the newest
  artifact of a subject is the one that counts.

It is pushed by digest. A registry with the referrers API answers
``OCI-Subject``; otherwise (Distribution 2.8) the referrers tag
``sha256-<hex of the subject>`` is updated as distribution-spec "Pushing
Manifests with Subject" asks: pull the index it holds (or start an empty one),
add the artifact's descriptor (with ``artifactType`` and annotations), push it
back.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from scoring import INDEX_MEDIA_TYPES
from scoring.index import MANIFEST_MEDIA_TYPES, OCI_INDEX, OCI_MANIFEST
from shim.author.common import AuthorError, short_digest
from shim.untrusted import loads_json

EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"


def read_spec(path: str) -> bytes:
    """The spec file's bytes, once they decode and parse as an NFD spec.

    Raises:
        AuthorError: unreadable, not YAML/JSON, not a valid v1alpha1 spec.
    """
    from scoring.rules import parse_nfd_spec
    from shim.artifacts import NFD_SPEC_YAML, decode_spec
    from shim.author.common import SPEC_FILE_LIMIT
    from shim.errors import RegistryError
    from shim.untrusted import read_bounded

    try:
        data = read_bounded(path, SPEC_FILE_LIMIT)  # a FIFO or /dev/zero: one line, no hang
    except OSError as exc:
        raise AuthorError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        document = decode_spec(data, NFD_SPEC_YAML)
        sets = parse_nfd_spec(document, path)
    except (RegistryError, ValueError) as exc:
        raise AuthorError(f"{path}: {exc}") from None
    if not sets:
        raise AuthorError(f"{path}: the spec has no compatibilities")
    return data


def created_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def subject_of(client, repository: str, reference: str, build: str | None) -> tuple[dict, str]:
    """(subject descriptor, what it is) for REF, or for the build of REF's
    index named by its CPU target or its digest."""
    from scoring.cpu import annotated_target

    manifest = client.get_manifest(repository, reference)
    try:
        doc = loads_json(manifest.body)
    except ValueError:
        raise AuthorError(f"{repository}:{reference} is not JSON") from None
    media_type = (doc.get("mediaType") if isinstance(doc, dict) else None) or manifest.media_type
    descriptor = {"mediaType": media_type, "digest": manifest.digest, "size": len(manifest.body)}
    if media_type not in INDEX_MEDIA_TYPES:
        if build and build not in (manifest.digest, manifest.digest.removeprefix("sha256:")):
            raise AuthorError(f"--build {build}: the reference names a single image manifest")
        return descriptor, "the image"
    if not build:
        return descriptor, "the index"
    entries = [
        d
        for d in doc.get("manifests") or []
        if isinstance(d, dict) and d.get("mediaType") in MANIFEST_MEDIA_TYPES
    ]
    wanted = build.strip().lower()
    if wanted.startswith("sha256:") or (
        len(wanted) >= 12 and set(wanted) <= set("0123456789abcdef")
    ):
        found = [d for d in entries if str(d.get("digest", "")).removeprefix("sha256:").startswith(
            wanted.removeprefix("sha256:"))]  # fmt: skip
    else:
        found = [d for d in entries if annotated_target(d.get("annotations") or {}) == wanted]
    if len(found) != 1:
        raise AuthorError(
            f"--build {build}: {len(found)} builds of the index match (name one by digest)"
            if found else f"--build {build}: no build of the index has that CPU target or digest"
        )  # fmt: skip
    d = found[0]
    return {"mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"]}, (
        f"build {build}"
    )


def push_blob(client, repository: str, data: bytes) -> dict:
    import hashlib

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if not client.blob_exists(repository, digest):
        client.put_blob(repository, digest, data)
    return {"digest": digest, "size": len(data)}


def add_referrer(client, repository: str, subject: str, descriptor: dict) -> str:
    """Add `descriptor` to the referrers tag index of `subject`; its tag."""
    from shim.registry import referrers_tag

    tag = referrers_tag(subject)
    found = client.find_manifest(repository, tag)
    if found is None:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    else:
        try:
            index = loads_json(found.body)
        except ValueError:
            index = None
        if (
            not isinstance(index, dict)
            or not isinstance(index.get("manifests"), list)
            or (index.get("mediaType") or found.media_type) != OCI_INDEX
        ):
            raise AuthorError(
                f"{repository}:{tag} holds a {found.media_type}, not a referrers index"
            )
    if any(
        isinstance(m, dict) and m.get("digest") == descriptor["digest"] for m in index["manifests"]
    ):
        return tag
    index["manifests"].append(descriptor)
    body = json.dumps(index, indent=2).encode() + b"\n"
    client.put_manifest(repository, tag, body, OCI_INDEX)
    return tag


def run(args) -> int:
    from shim.artifacts import CREATED_ANNOTATION, NFD_ARTIFACT_TYPE, NFD_SPEC_YAML, parse_rfc3339
    from shim.author.common import Registries, parse_reference, tls_option

    spec = read_spec(args.nfd)
    created = args.created or created_now()
    if parse_rfc3339(created) is None:
        raise AuthorError(f"--created {created!r} is not an RFC 3339 date-time")
    ref = parse_reference(args.reference)
    registries = Registries(
        tls_verify=tls_option(args.tls_verify), authfile=args.authfile, timeout=args.timeout
    )
    client = registries.client(ref)
    subject, what = subject_of(client, ref.path, ref.reference, args.build)
    layer = push_blob(client, ref.path, spec)
    config = push_blob(client, ref.path, EMPTY)
    annotations = {CREATED_ANNOTATION: created}
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": NFD_ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, **config},
        "layers": [{"mediaType": NFD_SPEC_YAML, **layer}],
        "subject": subject,
        "annotations": annotations,
    }
    body = json.dumps(manifest, indent=2).encode() + b"\n"
    import hashlib

    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    pushed = client.put_manifest(ref.path, digest, body, OCI_MANIFEST)
    if pushed.subject:
        how = "the registry indexes referrers (OCI-Subject)"
    else:
        descriptor = {
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": len(body),
            "artifactType": NFD_ARTIFACT_TYPE,
            "annotations": annotations,
        }
        how = "referrers tag " + add_referrer(client, ref.path, subject["digest"], descriptor)
    print(f"attached {digest} to {what} {ref.name}@{subject['digest']} ({how})")
    print(
        f"  spec {args.nfd} ({layer['size']} bytes, {short_digest(layer['digest'])}), created {created}"
    )
    return 0
