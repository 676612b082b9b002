"""Which facts a host has, without probing it: a fingerprint of the inputs
that decide the probed facts. Standard library only (the shim's hot path
uses it to look up cached decisions without loading facts or pydantic).

The material is the per-boot facts cache's key (:mod:`hostfacts.cache`): the
boot id, root, hostname, user, the environment variables that change what
probes find, the schema and probe versions. With ``$IMAGEFIT_FACTS`` the
fingerprint is the sha256 of that file's bytes.
"""

from __future__ import annotations

import os

#: Bumped whenever a probe changes what it reports for the same host.
PROBE_VERSION = 3  # 3: MIG instance UUIDs, AMD UUIDs
SCHEMA_VERSION = 1  # hostfacts.model.SCHEMA_VERSION (checked by a test)

#: The job's visible-device variables (:mod:`hostfacts.visible`): they say
#: which of the node's GPUs the job uses, so a decision depends on them
#: whatever the facts come from (probe, ``$IMAGEFIT_FACTS``, a class's file).
VISIBLE_ENV = (
    "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
)  # fmt: skip

#: Environment variables whose value changes what a probe finds.
KEY_ENV = (
    "PATH", "LD_LIBRARY_PATH", *VISIBLE_ENV,
    "IMAGEFIT_MPI_LIBRARY", "LOADEDMODULES", "_LMFILES_", "I_MPI_ROOT", "MPI_HOME", "OMPI_HOME",
    "APPTAINER_CONTAINER", "SINGULARITY_CONTAINER", "container",
)  # fmt: skip


def canonical(data) -> str:
    """A canonical text of nested dicts/lists/scalars (sorted keys): what the
    digests hash. Not JSON: the json module would import re on the hot path."""
    if isinstance(data, dict):
        return (
            "{"
            + ",".join(f"{canonical(str(k))}:{canonical(data[k])}" for k in sorted(data, key=str))
            + "}"
        )
    if isinstance(data, list | tuple):
        return "[" + ",".join(canonical(v) for v in data) + "]"
    return repr(data)


def material(boot_id: str, root: str, hostname: str, environ, uid: int) -> dict:
    """The inputs the fingerprint hashes."""
    return {
        "boot_id": boot_id,
        "root": root,
        "hostname": hostname,
        "env": {k: environ.get(k) for k in KEY_ENV},
        "schema": SCHEMA_VERSION,
        "probes": PROBE_VERSION,
        "uid": uid,
    }


def sha256_hex(data: bytes) -> str:
    """The sha256 of `data` in hex, from CPython's own sha256 (the built-in
    ``_sha256``, ``_sha2`` from 3.12) where there is one: ``hashlib`` imports
    OpenSSL's ``_hashlib`` (~3 ms, more on a busy node), which a decision-cache
    hit need not pay. The same digest either way; hashlib where neither exists."""
    try:
        from _sha256 import sha256
    except ImportError:
        try:
            from _sha2 import sha256
        except ImportError:
            from hashlib import sha256
    return sha256(data).hexdigest()


def digest(data: dict) -> str:
    """32 hex characters of the sha256 of :func:`canonical` `data`."""
    return sha256_hex(canonical(data).encode())[:32]


def live_fingerprint(environ, hostname: str) -> str | None:
    """Fingerprint of this host's facts (root ``/``), or of ``$IMAGEFIT_FACTS``;
    None when there is no boot id (facts then cannot be tied to a boot)."""
    facts_file = environ.get("IMAGEFIT_FACTS")
    if facts_file:
        try:
            return file_fingerprint(read_regular(facts_file))
        except (OSError, ValueError):
            return None
    try:
        # bytes, decoded as UTF-8 (its codec is loaded at start-up; "ascii"
        # would import encodings.ascii on the hot path): the same text for a UUID
        with open("/proc/sys/kernel/random/boot_id", "rb") as fh:
            boot_id = fh.read(256).decode("utf-8", "replace").strip()
    except OSError:
        return None
    if not boot_id:
        return None
    return digest(material(boot_id, "/", hostname, environ, os.geteuid()))


#: Fields that describe one node, not what scoring sees of its class: where
#: and when it was probed, how (evidence, timings), and per-device serials.
_NODE_ONLY = frozenset({"hostname", "root", "probe", "uuid", "address", "source"})


def class_material(dump):
    """The facts that scoring uses, from ``HostFacts.model_dump(mode="json")``:
    everything but the node-only fields (hostname, probed root, probe records,
    GPU UUIDs, PCI addresses, the CPU data source). Two nodes of one class
    give equal material."""
    if isinstance(dump, dict):
        return {k: class_material(v) for k, v in dump.items() if k not in _NODE_ONLY}
    if isinstance(dump, list | tuple):
        return [class_material(v) for v in dump]
    return dump


def class_identity(dump: dict) -> str:
    """The node-class identity of facts (``HostFacts.model_dump(mode="json")``):
    ``class-`` and 32 hex characters of the sha256 of :func:`class_material`.
    Nodes with equal identities get equal decisions, so they share them."""
    return "class-" + digest(class_material(dump))


def facts_cache_dir(environ) -> str:
    """Directory of the per-boot facts cache (see :mod:`hostfacts.cache`)."""
    explicit = environ.get("IMAGEFIT_CACHE_DIR")
    if explicit:
        return explicit
    base = environ.get("XDG_CACHE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".cache"
    )
    return os.path.join(base, "imagefit")


def _safe_chain(path: str, own_last: bool, also: tuple[int, ...] = ()) -> bool:
    """Every directory from ``/`` down to `path` is one no other user can
    change: owned by us or root (or a uid of `also`, the site's trusted
    uids), not writable by group or others unless sticky (``/tmp``); a
    symbolic link on the way must be owned the same way (so nobody else can
    point it elsewhere). With `own_last`, `path` itself must be a real
    directory (no link) of ours, writable by us alone."""
    uid = os.geteuid()
    owners = (uid, 0, *also)
    parts = [p for p in os.path.normpath(path).split("/") if p]
    here = "/"
    for i in range(len(parts) + 1):
        if i:
            here = os.path.join(here, parts[i - 1])
        last = i == len(parts)
        try:
            lst = os.lstat(here)
            st = lst if lst.st_mode & 0o170000 != 0o120000 else os.stat(here)
        except OSError:
            return False
        if lst.st_mode & 0o170000 == 0o120000 and (lst.st_uid not in owners or (last and own_last)):
            return False
        if st.st_mode & 0o170000 != 0o040000 or st.st_uid not in owners:
            return False
        if last and own_last:
            if st.st_uid != uid or st.st_mode & 0o022:
                return False
        elif st.st_mode & 0o022 and not st.st_mode & 0o1000:
            return False
    return True


def owned_dir(path: str) -> bool:
    """True when `path` is a directory of ours that no other user can change,
    nor any directory above it (:func:`_safe_chain`): files in it cannot be
    renamed, replaced or linked by another user. Root running with a user's
    HOME (``sudo -E``) gets False for that user's cache."""
    return _safe_chain(path, own_last=True)


def may_create(path: str) -> bool:
    """True when the nearest existing ancestor of `path`, and every directory
    above it, is one no other user can change (:func:`_safe_chain`; sticky
    directories such as /tmp allowed): what we create under it stays ours."""
    here = os.path.normpath(path)
    while True:
        parent = os.path.dirname(here) or "/"
        if os.path.lexists(here) or here == parent:
            break
        here = parent
    if os.path.lexists(here) and here == os.path.normpath(path):
        return owned_dir(here)
    return _safe_chain(here, own_last=False)


#: the largest facts file read (a real one is a few KiB)
MAX_FACTS_FILE = 8 << 20


def read_fd(fd: int, limit: int) -> bytes | None:
    """The rest of open file `fd`, or None when it holds more than `limit`
    bytes (read in 64 KiB chunks, never more than `limit` + 64 KiB)."""
    chunks, size = [], 0
    while size <= limit:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks) if size <= limit else None


def read_regular(path: str, limit: int = MAX_FACTS_FILE) -> bytes:
    """The bytes of the facts file `path`, read once, bounded, without
    blocking on a FIFO (``O_NONBLOCK``), checked with fstat on the open
    descriptor (so what is checked is what is read): a regular file owned by
    root, or by the caller when the caller is not root, and not writable by
    group or others. Links are followed (a site's facts file may be one):
    the file they end at is the one checked. Root never takes a facts file
    another user wrote (``IMAGEFIT_FACTS`` under ``sudo -E``, a class facts
    file in a user's directory).

    Raises:
        OSError: cannot be opened or read.
        ValueError: not a regular file, not owned by root (or the caller),
            writable by group or others, or larger than `limit` bytes (one line).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o170000 != 0o100000:
            raise ValueError("not a regular file")
        euid = os.geteuid()
        if st.st_uid not in ((0,) if euid == 0 else (0, euid)):
            owner = "root" if euid == 0 else f"root or uid {euid}"
            raise ValueError(f"owned by uid {st.st_uid}, not {owner}: not used")
        if st.st_mode & 0o022:
            raise ValueError("writable by group or others: not used")
        data = read_fd(fd, limit)
        if data is None:
            raise ValueError(f"larger than {limit >> 20} MiB")
        return data
    finally:
        os.close(fd)


def file_fingerprint(data: bytes) -> str:
    """The fingerprint of a facts file's bytes (``file-`` and 32 hex characters)."""
    return "file-" + sha256_hex(data)[:32]


def read_private(path: str, limit: int) -> bytes | None:
    """At most `limit` bytes of a private file of ours, or None: absent, a
    link (symbolic, or a second name), FIFO or device (never followed, never
    opened blocking), not ours, open to others (mode beyond 0700), or larger
    than `limit`.
    The caller checks the directory (:func:`owned_dir`)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (
            st.st_mode & 0o170000 != 0o100000
            or st.st_uid != os.geteuid()
            or st.st_mode & 0o077  # ours alone: not even readable by others
            or st.st_nlink > 1
            or st.st_size > limit
        ):
            return None
        return read_fd(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def _identity_path(environ, fingerprint: str) -> str:
    return os.path.join(facts_cache_dir(environ), f"class-{fingerprint}")


def cached_identity(environ, fingerprint: str) -> str | None:
    """The class identity recorded for facts `fingerprint` (see
    :func:`live_fingerprint`), or None: the hot path's way to the decision key
    without probing. Used only from a directory of ours (:func:`owned_dir`),
    a regular file owned by us with one link and not writable by others,
    read with ``O_NOFOLLOW|O_NONBLOCK``, whose first field is `fingerprint`
    (a record renamed to another fingerprint's name is not that one's)."""
    directory = facts_cache_dir(environ)
    data = read_private(_identity_path(environ, fingerprint), 256)
    if data is None:
        return None
    text = data.decode("utf-8", "replace")  # not "ascii": see fingerprint()
    fields = text.split()
    if len(fields) != 2 or fields[0] != fingerprint or not owned_dir(directory):
        return None
    identity = fields[1]
    ok = identity.startswith("class-") and len(identity) == 38
    return identity if ok and set(identity[6:]) <= set("0123456789abcdef") else None


def record_identity(environ, fingerprint: str, identity: str) -> None:
    """Record `identity` for facts `fingerprint` (a private file, written
    atomically, in a directory of ours); a directory that cannot be written or
    is not ours is only slower."""
    directory = facts_cache_dir(environ)
    if not os.path.lexists(directory):
        if not may_create(directory):
            return  # under another user's directory (root with a user's HOME): not ours to fill
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError:
            return
    if not owned_dir(directory):
        return
    path = _identity_path(environ, fingerprint)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            data = f"{fingerprint} {identity}\n".encode()
            if os.write(fd, data) != len(data):  # a full disk: no partial record
                raise OSError("short write")
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
