"""The image index model: candidates as the scoring sees them.

Follows the OCI image-spec v1.1 (image-index.md, descriptor.md) and accepts
the Docker manifest list (application/vnd.docker.distribution.manifest.list.v2+json),
which has the same shape. Descriptors that are not image manifests (nested
indexes, artifacts) are kept as candidates but never fit.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class InvalidIndexError(ValueError):
    """The document is not a valid image index. The message is one line."""


class Platform(BaseModel):
    """An index descriptor's ``platform`` (image-index.md, "platform")."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    architecture: str
    os: str
    variant: str | None = None
    os_version: str | None = Field(default=None, alias="os.version")
    os_features: tuple[str, ...] = Field(default=(), alias="os.features")
    features: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


class Candidate(BaseModel):
    """One descriptor of the index: a build the host might run.

    ``position`` is its 0-based place in the index (the final tie-break: the
    first match wins, image-index.md).
    """

    model_config = ConfigDict(frozen=True)

    position: int
    digest: str
    media_type: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = {}


class _Descriptor(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    media_type: str = Field(alias="mediaType")
    digest: str
    size: int = Field(ge=0)
    platform: Platform | None = None
    annotations: dict[str, str] | None = None


class _Index(BaseModel):
    schema_version: int = Field(alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    manifests: list[_Descriptor]


def parse_index(document: Any) -> list[Candidate]:
    """Candidates of an image index, in index order.

    Args:
        document: the index JSON, already decoded (a dict).

    Returns:
        One Candidate per descriptor of ``manifests``.

    Raises:
        InvalidIndexError: not an object, wrong ``schemaVersion``/``mediaType``,
            a descriptor without a valid sha256 digest, size or platform fields.
    """
    if not isinstance(document, dict):
        raise InvalidIndexError("image index is not a JSON object")
    try:
        index = _Index.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        where = "".join(c if c.isprintable() else repr(c)[1:-1] for c in where)  # keys: one line
        raise InvalidIndexError(f"invalid image index at {where}: {first['msg']}") from None
    if index.schema_version != 2:
        raise InvalidIndexError(f"image index schemaVersion is {index.schema_version}, not 2")
    if index.media_type is not None and index.media_type not in INDEX_MEDIA_TYPES:
        raise InvalidIndexError(f"document mediaType {index.media_type!r} is not an image index")
    candidates = []
    for position, desc in enumerate(index.manifests):
        if not _DIGEST.fullmatch(desc.digest):  # not match(): "$" accepts a trailing newline
            raise InvalidIndexError(
                f"manifest {position} has digest {desc.digest!r}: expected sha256:<64 hex>"
            )
        candidates.append(
            Candidate(
                position=position,
                digest=desc.digest,
                media_type=desc.media_type,
                size=desc.size,
                platform=desc.platform,
                annotations=desc.annotations or {},
            )
        )
    return candidates
