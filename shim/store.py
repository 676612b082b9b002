"""The index store: what a registry says about a reference, kept once for
the whole cluster in the site's shared directory (``decision_cache_dir``,
on the parallel file system), so that 1,000 nodes starting one image make
one index resolution, and an offline compute node still decides.

What it keeps is host-independent:

- ``<hex>.blob``: content, named by the sha256 of its bytes (the index
  document; the NFD compatibility artifacts found for it, as one JSON
  document). Shared by all users: every read is verified against its name,
  so a planted or damaged blob is only a miss.
- ``<refkey>.<uid>.ref``: a record of one resolution of a reference (tag or
  digest) by the writer `uid`: the index digest, its media type, the digest
  of its artifacts blob, where it was fetched and when. A record decides
  what an image *is*, so it is trusted only when written by the reader, by
  root or by a uid in ``cache_trusted_uids`` (the same rule as decisions).

Every file is read with ``O_NOFOLLOW|O_NONBLOCK`` and checked with fstat,
and written as a new ``O_EXCL`` file whose mode is set on its descriptor,
then renamed (:func:`shim.decisions.write_file`). Cold path only.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass

from shim import decisions
from shim.untrusted import loads_json

#: the largest index document the store keeps (the registry client's own bound)
MAX_DOCUMENT = 4 << 20
MAX_RECORD = 64 << 10
FORMAT = 1


@dataclass(frozen=True)
class Record:
    """One resolution of a reference, as kept in the store.

    Attributes:
        reference: the reference resolved (``domain/path:tag`` or ``@digest``).
        index_digest: digest of the document it named (``sha256:<hex>``).
        media_type: that document's media type.
        artifacts: digest of the blob holding its NFD artifacts, or None.
        fetched_at: epoch seconds of the fetch (or its last revalidation).
        source: the registry endpoint it came from (a mirror, or the registry).
    """

    reference: str
    index_digest: str
    media_type: str
    artifacts: str | None
    fetched_at: float
    source: str = ""

    def age(self, now: float | None = None) -> float:
        """Seconds since the fetch."""
        return (time.time() if now is None else now) - self.fetched_at


def ref_key(reference: str) -> str:
    """The file-name key of `reference`'s records."""
    return hashlib.sha256(b"ref\0" + reference.encode()).hexdigest()


def _hex(digest: str) -> str | None:
    if decisions._is_digest(digest):
        return digest[7:]
    return None


def read_blob(
    directory: str, digest: str, limit: int = MAX_DOCUMENT, trusted_uids: tuple[int, ...] = ()
) -> bytes | None:
    """The bytes of blob `digest`, or None when no copy holds those bytes: the
    shared ``<hex>.blob``, then the per-writer ``<hex>.<uid>.blob`` of this
    user, root and the trusted uids (written where the shared name is another
    user's and cannot be replaced)."""
    hexdigest = _hex(digest)
    if hexdigest is None:
        return None
    names = [
        f"{hexdigest}.blob",
        *(f"{hexdigest}.{uid}.blob" for uid in decisions.readers(trusted_uids)),
    ]
    for name in names:
        data = decisions.read_file(os.path.join(directory, name), limit)
        if data is not None and hashlib.sha256(data).hexdigest() == hexdigest:
            return data
    return None


def write_blob(
    directory: str, data: bytes, shared: bool, trusted_uids: tuple[int, ...] = ()
) -> str | None:
    """Keep `data` as a blob; its digest, or None when it could not be kept.
    A copy already at the shared name is kept only when it verifies and is
    owned by this user, root or a trusted uid and not writable by others (a
    copy another user planted could be damaged later); otherwise this user's
    copy replaces it, or, where it cannot (another user's file in a sticky
    directory), goes to this user's own name ``<hex>.<uid>.blob``."""
    hexdigest = hashlib.sha256(data).hexdigest()
    owners = decisions.readers(trusted_uids)
    for name in (f"{hexdigest}.blob", f"{hexdigest}.{os.geteuid()}.blob"):
        there = decisions.read_file(os.path.join(directory, name), max(len(data), 1), owners)
        if there is not None and hashlib.sha256(there).hexdigest() == hexdigest:
            return "sha256:" + hexdigest
        if decisions.write_file(directory, name, data, shared):
            return "sha256:" + hexdigest
    return None


def load_record(
    directory: str, reference: str, trusted_uids: tuple[int, ...] = ()
) -> Record | None:
    """The newest trusted record of `reference` (the reader's, root's or a
    trusted uid's), or None."""
    best = None
    key = ref_key(reference)
    for uid in decisions.readers(trusted_uids):
        data = decisions.read_file(os.path.join(directory, f"{key}.{uid}.ref"), MAX_RECORD, (uid,))
        record = _parse_record(data, reference) if data is not None else None
        if record is not None and (best is None or record.fetched_at > best.fetched_at):
            best = record
    return best


def _parse_record(data: bytes, reference: str) -> Record | None:
    try:
        doc = loads_json(data, "index store record")  # bounded: depth, number length
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return None
    fetched_at = doc.get("fetched_at")
    artifacts = doc.get("artifacts")
    ok = (
        doc.get("reference") == reference
        and decisions._is_digest(doc.get("index_digest"))
        and isinstance(doc.get("media_type"), str)
        and (artifacts is None or decisions._is_digest(artifacts))
        and isinstance(fetched_at, int | float)
        and not isinstance(fetched_at, bool)
    )
    try:
        # finite, not before the epoch, not dated ahead (it would look fresh for ever)
        ok = ok and 0 <= float(fetched_at) <= time.time() + 300
    except (OverflowError, ValueError):
        ok = False
    if not ok:
        return None
    return Record(
        reference,
        doc["index_digest"],
        doc["media_type"],
        artifacts,
        float(fetched_at),
        str(doc.get("source", ""))[:200],
    )


def save_record(directory: str, record: Record, shared: bool) -> bool:
    """Write `record` as this user's."""
    doc = {
        "format": FORMAT,
        "reference": record.reference,
        "index_digest": record.index_digest,
        "media_type": record.media_type,
        "artifacts": record.artifacts,
        "fetched_at": record.fetched_at,
        "source": record.source,
    }
    name = f"{ref_key(record.reference)}.{os.geteuid()}.ref"
    return decisions.write_file(directory, name, json.dumps(doc).encode(), shared)


def save(directory: str, data, shared: bool, trusted_uids: tuple[int, ...] = ()) -> Record | None:
    """Keep what :func:`shim.resolve.fetch` found (an IndexData with its raw
    document): the blobs, then this user's record. None when nothing could be
    kept (no raw document, or a blob that could not be written: then no
    record names it)."""
    if not data.document or write_blob(directory, data.document, shared, trusted_uids) is None:
        return None
    artifacts = None
    if data.specs:
        body = json.dumps(
            {s: [[d, doc] for d, doc in specs] for s, specs in sorted(data.specs.items())},
            sort_keys=True,
            default=str,
        ).encode()
        artifacts = write_blob(directory, body, shared, trusted_uids)
        if artifacts is None:
            return None
    record = Record(
        str(data.reference),
        data.digest,
        data.media_type,
        artifacts,
        time.time(),
        getattr(data, "source", "") or "",
    )
    save_record(directory, record, shared)
    return record


def index_data(directory: str, record: Record, ref, trusted_uids: tuple[int, ...] = ()):
    """The IndexData (:mod:`shim.resolve`) that `record` describes, rebuilt
    from verified blobs; None when a blob is missing or fails verification.

    Raises:
        RegistryError: the stored document does not parse (as from the registry).
    """
    from shim.resolve import IndexData, parse_document, parse_specs

    document = read_blob(directory, record.index_digest, MAX_DOCUMENT, trusted_uids)
    if document is None:
        return None
    specs: dict = {}
    if record.artifacts:
        body = read_blob(directory, record.artifacts, 16 << 20, trusted_uids)
        if body is None:
            return None
        try:
            raw = loads_json(body, "stored NFD artifacts")
            specs = {s: [(d, doc) for d, doc in items] for s, items in raw.items()}
        except (ValueError, TypeError, AttributeError, RecursionError):
            return None
    candidates = parse_document(document, record.media_type)  # RegistryError as from the registry
    return IndexData(
        ref,
        record.index_digest,
        candidates,
        parse_specs(specs),
        0,
        document=document,
        media_type=record.media_type,
        specs=specs,
        source=record.source,
    )
