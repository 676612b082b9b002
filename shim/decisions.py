"""The decision cache: what was chosen for a reference on this kind of host,
so a repeated ``podman run`` needs no registry, no facts probe and no heavy
import. Standard library only (this is the shim's hot path).

Key: sha256 of the canonical reference (with its tag or digest), the node
class identity (:func:`hostfacts.fingerprint.class_identity`: the facts
scoring uses, not hostname, boot id or uid, so every node of a class shares
the decision) and the policy material (policy entry, NFD artifacts on/off, a
requested platform, the classes of a job). Value: :class:`Entry`. Within the TTL
(``decision_cache_ttl``, default 600 s) an entry is used as is; after it, the
caller revalidates with one HEAD of the tag (same index digest: reuse), and
uses a stale entry with a warning when the registry cannot be reached.

Files: ``<dir>/<key>.<uid>.entry`` (uid: the writer's, so users never
collide in a sticky shared directory), one ``field<TAB>value`` per line (not JSON:
the json module imports ``re``, ~4 ms on every hit), written atomically (temporary file in the same
directory, fsync, rename), so a reader sees the old entry, the new one or
none, even when writers are killed; a corrupt or truncated entry is ignored
and replaced. ``<dir>`` is the site's ``decision_cache_dir`` (a directory
shared by all nodes, e.g. on the parallel file system) or
``$XDG_CACHE_HOME/imagefit/decisions``. A reader looks for its own entry,
then root's, then those of ``cache_trusted_uids``: an entry is used only when
it is a regular file owned by that uid and not writable by group or others.
Every open is ``O_NOFOLLOW|O_NONBLOCK`` and checked with fstat (no link, FIFO
or device is ever followed or opened blocking); files are created with
``O_EXCL`` and their mode set with fchmod on the descriptor. The shim never
creates a site's shared directory (:func:`usable_dir`).

Single flight (:class:`single_flight`): the first process to miss a key
creates ``<dir>/<key>.lock`` with ``O_EXCL`` (atomic on NFS v3+, Lustre and
GPFS, unlike flock) and resolves; the others wait for its result, bounded; a
lock older than its lease (a crashed holder, another node's) is broken.
"""

from __future__ import annotations

import os
import stat
import time

DEFAULT_TTL = 600.0
#: 4: entries carry the chosen build's GPU vendor (``gpu``); older entries are
#: not read (a miss decides again), since a hit must add the same GPU flags
FORMAT = 4
#: values of an entry's ``gpu`` (shim.gpu_access NVIDIA, AMD; "" no GPU)
GPU_VENDORS = ("", "nvidia", "amd")
#: the one annotation the hot path needs (scoring.vocabulary.CONTAINER_KIND)
KIND_KEY = "org.supercontainers.container.kind"
#: bounds of an image's Cmd kept in an entry (words, characters in all)
MAX_CMD_WORDS = 1024
MAX_CMD_CHARS = 65536


def valid_cmd(value) -> bool:
    """True for an image ``Cmd`` an entry may keep: a list of at most
    :data:`MAX_CMD_WORDS` strings, :data:`MAX_CMD_CHARS` characters in all,
    none holding a NUL (no argv can)."""
    return (
        isinstance(value, list)
        and len(value) <= MAX_CMD_WORDS
        and all(isinstance(w, str) and "\0" not in w for w in value)
        and sum(len(w) for w in value) <= MAX_CMD_CHARS
    )


def _dump_cmd(cmd: list[str]) -> str:
    # the word count, then each word, tab-separated; each word escaped so that
    # it holds no tab (the whole value is escaped again by dumps)
    return "\t".join([str(len(cmd)), *(_escape(w) for w in cmd)])


def _load_cmd(text: str | None):
    """(ok, cmd): (True, None) when absent (an entry written before Cmd was
    kept: unknown), (False, None) when malformed."""
    if text is None:
        return True, None
    count, *words = text.split("\t")
    if not (count.isascii() and count.isdigit() and len(count) <= 5) or int(count) != len(words):
        return False, None
    cmd = [_unescape(w) for w in words]
    return (True, cmd) if valid_cmd(cmd) else (False, None)


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
        build: the chosen build's label (``zen4``), for messages; "" unknown.
        key: the cache key it was stored under (written in the file and
            checked on load: an entry linked or renamed to another key's
            name is not that key's entry).
        cmd: the chosen build's own ``Cmd`` from its image config (``[]``:
            none), run through the login shell when the user gives no
            command; None when unknown (not fetched, or an entry written
            before this field: such entries stay readable).
        gpu: the GPU the chosen build requires, ``nvidia``, ``amd`` or ""
            (none): what a hit needs to give the container its GPU
            (:mod:`shim.gpu_access`) without the index.
    """

    __slots__ = (
        "reference",
        "index_digest",
        "outcome",
        "chosen",
        "annotations",
        "refusal",
        "decided_at",
        "build",
        "key",
        "cmd",
        "gpu",
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
        build="",
        key="",
        cmd=None,
        gpu="",
    ):
        self.reference = reference
        self.index_digest = index_digest
        self.outcome = outcome
        self.chosen = chosen
        self.annotations = dict(annotations or {})
        self.refusal = refusal
        self.decided_at = time.time() if decided_at is None else decided_at
        self.build = build or ""
        self.key = key or ""
        self.cmd = list(cmd) if cmd is not None else None
        self.gpu = gpu or ""

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
            "build": self.build,
            "key": self.key,
            "gpu": self.gpu,
        }
        if self.cmd is not None:
            fields["cmd"] = _dump_cmd(self.cmd)
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
        if not 0 <= decided_at <= time.time() + 300:  # dated ahead: it would look fresh for ever
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
        cmd_ok, cmd = _load_cmd(fields.get("cmd"))
        gpu = fields.get("gpu", "")
        if not ok or not cmd_ok or gpu not in GPU_VENDORS:
            return None
        kind = fields.get("kind")
        return cls(fields["reference"], fields["index_digest"], outcome, chosen,
                   {KIND_KEY: kind} if kind else {}, refusal, decided_at,
                   fields.get("build", ""), fields.get("key", ""), cmd, gpu)  # fmt: skip

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
    return private_dir(environ)


def private_dir(environ) -> str:
    """The user's own decision cache directory (``$XDG_CACHE_HOME/imagefit/decisions``)."""
    base = environ.get("XDG_CACHE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".cache"
    )
    return os.path.join(base, "imagefit", "decisions")


def usable_dir(
    configured: str | None, environ, trusted_uids: tuple[int, ...] = ()
) -> tuple[str, bool, str | None]:
    """(directory, shared, warning): the site's shared directory when it is
    one the site made (the shim never creates it): a real directory, not a
    symbolic link, owned by root, by us or by a uid of `trusted_uids`, and
    not writable by group or others unless sticky (``1777``), under
    directories no other user can change (:func:`_site_parents`). Otherwise the
    user's private directory, with a warning naming why; None (no cache)
    when that is in a directory another user controls."""
    if not configured:
        return _private(environ), False, None
    configured = os.path.normpath(configured)  # "dir/" would follow a link at "dir"
    try:
        st = os.lstat(configured)
    except OSError as exc:
        reason = exc.strerror
    else:
        if stat.S_ISLNK(st.st_mode):
            reason = "a symbolic link (name the directory itself)"
        elif not stat.S_ISDIR(st.st_mode):
            reason = "not a directory"
        elif st.st_uid not in (0, os.geteuid(), *trusted_uids):
            reason = f"owned by uid {st.st_uid}, not root"
        elif st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
            reason = "writable by others without the sticky bit (chmod 1777)"
        elif not _site_parents(configured, trusted_uids):
            reason = (
                "a directory above it is another user's or writable by others "
                "without the sticky bit (it could be renamed or replaced)"
            )
        else:
            return configured, True, None
    return (
        _private(environ),
        False,
        f"shared cache directory {configured}: {reason}; using the per-user cache",
    )


def _site_parents(directory: str, trusted_uids: tuple[int, ...]) -> bool:
    """True when no other user can rename or replace `directory`: every
    directory above it is owned by root, us or a trusted uid, and not
    writable by group or others unless sticky
    (:func:`hostfacts.fingerprint._safe_chain`)."""
    from hostfacts.fingerprint import _safe_chain

    return _safe_chain(os.path.dirname(directory) or "/", False, tuple(trusted_uids))


def _private(environ) -> str | None:
    """The private directory, or None when another user could tamper with it
    (it, or where it would be created, is not ours: root with a user's HOME)."""
    from hostfacts.fingerprint import may_create, owned_dir

    path = private_dir(environ)
    if os.path.lexists(path):
        return path if owned_dir(path) else None
    return path if may_create(path) else None


def key(reference: str, identity: str, policy: dict) -> str:
    """The cache key of a decision: `reference` on node class `identity`
    under the policy material `policy`."""
    from hostfacts.fingerprint import canonical, sha256_hex  # sha256_hex: no OpenSSL load

    material = canonical({"ref": reference, "class": identity, "policy": policy})
    return sha256_hex(material.encode())


def readers(trusted_uids: tuple[int, ...] = ()) -> list[int]:
    """The uids whose files a reader uses, in order: itself, root, the trusted."""
    return list(dict.fromkeys((os.geteuid(), 0, *trusted_uids)))


def read_file(
    path: str, limit: int, owners: tuple[int, ...] | list[int] | None = None
) -> bytes | None:
    """At most `limit` bytes of the regular file `path`, or None: absent, a
    symbolic or hard link (more than one name), FIFO or device (never
    followed, never opened blocking), larger than `limit`, or (with `owners`)
    not owned by one of `owners` or writable by group or others."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        # one link only: a hard link planted under another name is not this file
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit or st.st_nlink > 1:
            return None
        if owners is not None and (
            st.st_uid not in owners or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        ):
            return None
        from hostfacts.fingerprint import read_fd

        return read_fd(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def write_file(directory: str, name: str, data: bytes, shared: bool) -> bool:
    """Write `data` to `directory`/`name` atomically: a new file made with
    O_EXCL in `directory`, fsync'd, its mode set on the descriptor (0644 when
    `shared`, else 0600), renamed over `name` (a link there is replaced, never
    followed). A private directory is created (0700); a shared one never.
    False (never an exception) when it cannot be written."""
    import secrets

    if not shared:
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError:
            return False
    tmp = os.path.join(directory, f".tmp-{secrets.token_hex(8)}")
    try:
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
    except OSError:
        return False
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            os.fchmod(fd, 0o644 if shared else 0o600)
        finally:
            os.close(fd)
        os.replace(tmp, os.path.join(directory, name))
        return True
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False


def load(directory: str, cache_key: str, trusted_uids: tuple[int, ...] = ()) -> Entry | None:
    """The entry for `cache_key` written by this user, root or a trusted uid
    (in that order), or None (absent, untrusted, corrupt)."""
    for uid in readers(trusted_uids):
        data = read_file(os.path.join(directory, f"{cache_key}.{uid}.entry"), 1 << 20, (uid,))
        if data is None:
            continue
        try:
            entry = Entry.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            entry = None
        if entry is not None and entry.key == cache_key:
            return entry
    return None


def store(directory: str, cache_key: str, entry: Entry, shared: bool = False) -> bool:
    """Write `entry` as this user's, atomically; False (never an exception)
    if the directory is unusable. Shared directories get world-readable
    entries (0644), private ones 0600."""
    entry.key = cache_key
    name = f"{cache_key}.{os.geteuid()}.entry"
    return write_file(directory, name, entry.dumps().encode("utf-8"), shared)


class LeaseLock:
    """A lock file made with ``O_CREAT|O_EXCL`` in `directory`: atomic on
    local file systems, NFS v3+, Lustre and GPFS, across processes and nodes.
    It holds the holder's host, pid and time; one older than `lease` seconds
    (by its mtime: a holder that crashed or hangs), dated ahead of the clock,
    or whose holder died on this node is broken by the next taker. Only a
    regular file owned by one of `owners` (the reader, root, trusted uids)
    is a lock worth waiting for: anything else at that name was planted and
    is removed where we may, else ignored. Release removes it only while it
    is still the file this holder created."""

    def __init__(
        self, directory: str, name: str, lease: float, owners: tuple[int, ...] | list[int] = ()
    ) -> None:
        self.path = os.path.join(directory, name)
        self.lease = lease
        self.owners = tuple(owners) or tuple(readers())
        self.ino: tuple[int, int] | None = None

    def acquire(self) -> bool:
        """True when this process now holds the lock."""
        for _ in range(2):
            try:
                fd = os.open(
                    self.path,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o600,
                )
            except FileExistsError:
                if not self._break_stale():
                    return False
                continue
            except OSError:
                return False
            try:
                st = os.fstat(fd)
                self.ino = (st.st_dev, st.st_ino)
                os.write(fd, f"{os.uname().nodename} {os.getpid()} {time.time():.3f}\n".encode())
            except OSError:  # a full disk: no lock left behind, none held
                os.close(fd)
                self.release()
                return False
            os.close(fd)
            return True
        return False

    def held_elsewhere(self) -> bool:
        """True while a trusted holder's lock file exists and its lease runs."""
        try:
            st = os.lstat(self.path)
        except OSError:
            return False
        return self._trusted(st) and self._fresh(st) and not self._holder_gone()

    def _trusted(self, st: os.stat_result) -> bool:
        """A lock worth waiting for: a regular file with one name (not a hard
        link planted to a file of root's), owned by one of the owners."""
        return stat.S_ISREG(st.st_mode) and st.st_uid in self.owners and st.st_nlink == 1

    def _fresh(self, st: os.stat_result) -> bool:
        """Within its lease; a time ahead of the clock (beyond 5 min of skew
        between nodes) is a planted lock, never fresh."""
        age = time.time() - st.st_mtime
        return -300 <= age <= self.lease

    def _holder_gone(self) -> bool:
        """True when the holder ran on this node and its process is gone
        (killed): its lock need not wait out the lease."""
        data = read_file(self.path, 256)
        if data is None:
            return False
        fields = data.decode("ascii", "replace").split()
        if len(fields) < 2 or fields[0] != os.uname().nodename or not fields[1].isdigit():
            return False
        try:
            os.kill(int(fields[1]), 0)
        except ProcessLookupError:
            return True
        except (OSError, ValueError, OverflowError):
            return False
        return False

    def _break_stale(self) -> bool:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        if self._trusted(st) and self._fresh(st) and not self._holder_gone():
            return False
        try:
            if stat.S_ISDIR(st.st_mode):
                os.rmdir(self.path)  # an empty directory planted at the name
            else:
                os.unlink(self.path)  # unlink never follows a link
        except FileNotFoundError:
            pass
        except OSError:
            return False
        return True

    def release(self) -> None:
        if self.ino is None:
            return
        try:
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self.ino:
                os.unlink(self.path)
        except OSError:
            pass
        self.ino = None


class single_flight:
    """Context manager: ``with single_flight(dir, key, wait, check=...) as flight:``.

    ``flight.leader`` is True when this process holds ``<key>.lock`` (a
    :class:`LeaseLock`) and must do the work; otherwise another process (on
    this node or another) holds it, and ``flight.entry`` is what `check()`
    returned once it released the lock or once `check()` found a result while
    waiting (polled with backoff), or None after `wait` seconds; then the
    caller does the work itself, without the lock. The default `check` loads
    the decision entry for `key`. Without a usable directory (`directory`
    None), every caller leads."""

    def __init__(
        self,
        directory: str | None,
        cache_key: str,
        wait: float,
        trusted_uids: tuple[int, ...] = (),
        shared: bool = False,
        check=None,
    ):
        self.directory = directory
        self.key = cache_key
        self.wait = wait
        self.check = check or (lambda: load(directory, cache_key, trusted_uids))
        self.trusted_uids = trusted_uids
        self.shared = shared
        self.lock: LeaseLock | None = None
        self.leader = True
        self.entry = None

    def __enter__(self) -> single_flight:
        if self.directory is None:
            return self
        if not self.shared:
            try:
                os.makedirs(self.directory, mode=0o700, exist_ok=True)
            except OSError:
                return self
        lock = LeaseLock(self.directory, self.key + ".lock", self.wait, readers(self.trusted_uids))
        if lock.acquire():
            self.lock = lock
            return self
        if not lock.held_elsewhere():
            return self  # a name another user planted, that we may not remove: lead without it
        self.leader = False
        deadline = time.monotonic() + self.wait
        delay = 0.01
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)
            self.entry = self.check()
            if self.entry is not None:
                return self
            if not lock.held_elsewhere():
                if lock.acquire():  # the holder is gone without a result: we lead
                    self.lock = lock
                    self.leader = True
                return self
        return self  # waited long enough: work alone, without the lock

    def __exit__(self, *exc) -> None:
        if self.lock is not None:
            self.lock.release()
