"""The decision cache: what was chosen for a reference on this kind of host,
so a repeated ``podman run`` needs no registry, no facts probe and no heavy
import. Standard library only (this is the shim's hot path).

Key: sha256 of the canonical reference (with its tag or digest), the host
facts fingerprint (:mod:`hostfacts.fingerprint`: boot id, environment that
changes the facts, or the ``$IMAGEFIT_FACTS`` file) and the policy
fingerprint (policy entry, site CPU target, NFD artifacts on/off, a requested
platform). Value: one small JSON object (:class:`Entry`). Within the TTL
(``decision_cache_ttl``, default 600 s) an entry is used as is; after it, the
caller revalidates with one HEAD of the tag (same index digest: reuse), and
uses a stale entry with a warning when the registry cannot be reached.

Files: ``<dir>/<key>.entry``, one ``field<TAB>value`` per line (not JSON:
the json module imports ``re``, ~4 ms on every hit), written atomically (temporary file in the same
directory, fsync, rename), so a reader sees the old entry, the new one or
none, even when writers are killed; a corrupt or truncated entry is ignored
and replaced. ``<dir>`` is the site's ``decision_cache_dir`` (a directory
shared by all nodes, e.g. on the parallel file system) or
``$XDG_CACHE_HOME/imagefit/decisions``. An entry is trusted only when owned
by the reader, by root or by a uid in ``cache_trusted_uids``, and not
writable by group or others.

Single flight (:func:`single_flight`): the first process to miss a key takes
``<dir>/<key>.lock`` (``fcntl.flock``) and resolves; the others wait for its
entry, bounded, then resolve themselves.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time

DEFAULT_TTL = 600.0
FORMAT = 2
#: the one annotation the hot path needs (scoring.vocabulary.CONTAINER_KIND)
KIND_KEY = "org.supercontainers.container.kind"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            out.append({"n": "\n", "t": "\t"}.get(value[i + 1], value[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Entry:
    """One cached decision.

    Attributes:
        reference: the reference as resolved (``domain/path:tag`` or ``@digest``).
        index_digest: digest of the index the decision was made from.
        outcome: ``selected``, ``passthrough`` or ``refused``.
        chosen: the chosen manifest digest (``selected``), else None.
        annotations: the chosen descriptor's annotations; only the
            login-container kind is kept in the file.
        refusal: the refusal message (``refused``), else None.
        decided_at: epoch seconds of the decision (or of its last revalidation).
    """

    __slots__ = (
        "reference",
        "index_digest",
        "outcome",
        "chosen",
        "annotations",
        "refusal",
        "decided_at",
    )

    def __init__(
        self,
        reference,
        index_digest,
        outcome,
        chosen=None,
        annotations=None,
        refusal=None,
        decided_at=None,
    ):
        self.reference = reference
        self.index_digest = index_digest
        self.outcome = outcome
        self.chosen = chosen
        self.annotations = dict(annotations or {})
        self.refusal = refusal
        self.decided_at = time.time() if decided_at is None else decided_at

    def dumps(self) -> str:
        """The entry file's text."""
        fields = {
            "format": str(FORMAT),
            "reference": self.reference,
            "index_digest": self.index_digest,
            "outcome": self.outcome,
            "chosen": self.chosen or "",
            "kind": self.annotations.get(KIND_KEY, ""),
            "refusal": self.refusal or "",
            "decided_at": repr(float(self.decided_at)),
        }
        return "".join(f"{k}\t{_escape(v)}\n" for k, v in fields.items()) + "end\t\n"

    @classmethod
    def loads(cls, text: str) -> Entry | None:
        """The entry, or None for anything that is not a complete, valid one
        (the final ``end`` line proves the file is whole)."""
        fields = {}
        for line in text.split("\n"):
            name, tab, value = line.partition("\t")
            if tab:
                fields[name] = _unescape(value)
        if "end" not in fields or fields.get("format") != str(FORMAT):
            return None
        try:
            decided_at = float(fields.get("decided_at", ""))
        except ValueError:
            return None
        if not decided_at - decided_at == 0:  # inf or nan: an entry that would never expire
            return None
        outcome = fields.get("outcome")
        chosen = fields.get("chosen") or None
        refusal = fields.get("refusal") or None
        ok = (
            bool(fields.get("reference"))
            and _is_digest(fields.get("index_digest"))
            and outcome in ("selected", "passthrough", "refused")
            and (outcome != "selected" or _is_digest(chosen))
            and (outcome != "refused" or refusal is not None)
        )
        if not ok:
            return None
        kind = fields.get("kind")
        return cls(fields["reference"], fields["index_digest"], outcome, chosen,
                   {KIND_KEY: kind} if kind else {}, refusal, decided_at)  # fmt: skip

    def age(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.decided_at


def _is_digest(value) -> bool:
    hexdigits = set("0123456789abcdef")
    return (
        isinstance(value, str)
        and value.startswith("sha256:")
        and len(value) == 71
        and set(value[7:]) <= hexdigits
    )


def cache_dir(configured: str | None, environ) -> str:
    """The decision cache directory: the site's, else the user's."""
    if configured:
        return configured
    base = environ.get("XDG_CACHE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".cache"
    )
    return os.path.join(base, "imagefit", "decisions")


def key(reference: str, facts_fingerprint: str, policy: dict) -> str:
    """The cache key of a decision."""
    from hostfacts.fingerprint import canonical

    material = canonical({"ref": reference, "facts": facts_fingerprint, "policy": policy})
    return hashlib.sha256(material.encode()).hexdigest()


def _trusted(st: os.stat_result, trusted_uids: tuple[int, ...]) -> bool:
    return (
        stat.S_ISREG(st.st_mode)
        and (st.st_uid in (0, os.geteuid()) or st.st_uid in trusted_uids)
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def load(directory: str, cache_key: str, trusted_uids: tuple[int, ...] = ()) -> Entry | None:
    """The entry for `cache_key`, or None (absent, untrusted, corrupt)."""
    path = os.path.join(directory, cache_key + ".entry")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        if not _trusted(os.fstat(fd), trusted_uids):
            return None
        with os.fdopen(fd, "r", encoding="utf-8", closefd=False) as fh:
            text = fh.read(1 << 20)
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)
    return Entry.loads(text)


def store(directory: str, cache_key: str, entry: Entry, shared: bool = False) -> bool:
    """Write `entry` atomically; False (never an exception) if the directory is unusable.
    Shared directories get world-readable entries (0644), private ones 0600."""
    import tempfile

    try:
        os.makedirs(directory, mode=0o755 if shared else 0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".entry", dir=directory)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(entry.dumps())
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644 if shared else 0o600)
        os.replace(tmp, os.path.join(directory, cache_key + ".entry"))
        return True
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False


class single_flight:
    """Context manager: ``with single_flight(dir, key, wait) as flight:`` —
    ``flight.leader`` is True when this process holds the key's lock and must
    resolve; otherwise another process held it, and ``flight.entry`` is its
    result (None when it did not come within `wait` seconds, or failed)."""

    def __init__(
        self,
        directory: str,
        cache_key: str,
        wait: float,
        trusted_uids: tuple[int, ...] = (),
        shared=False,
    ):
        self.directory = directory
        self.key = cache_key
        self.wait = wait
        self.trusted_uids = trusted_uids
        self.shared = shared
        self.fd: int | None = None
        self.leader = True
        self.entry: Entry | None = None

    def __enter__(self) -> single_flight:
        import fcntl

        try:
            os.makedirs(self.directory, mode=0o755 if self.shared else 0o700, exist_ok=True)
            self.fd = os.open(
                os.path.join(self.directory, self.key + ".lock"), os.O_RDWR | os.O_CREAT, 0o644
            )
        except OSError:
            return self  # no lock possible: resolve alone
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return self
        except OSError:
            pass
        self.leader = False
        deadline = time.monotonic() + self.wait
        delay = 0.01
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue
            # the leader is done (or died): its entry, if it wrote one
            self.entry = load(self.directory, self.key, self.trusted_uids)
            if self.entry is None:
                self.leader = True  # it failed: we resolve, holding the lock
            return self
        return self  # waited long enough: resolve ourselves without the lock

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the flock
