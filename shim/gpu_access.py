"""GPU access for the build imagefit chose (``gpu_access = "auto"``).

When the chosen build requires an NVIDIA or AMD GPU, the runtime must be
told to give the container that GPU: podman (CDI ``--device
nvidia.com/gpu=all``, or nothing when the NVIDIA OCI hook does it), docker
(``--gpus all``), apptainer/singularity (``--nv``/``--rocm``), the AMD
device nodes for podman/docker. Each personality says which words
(``Personality.gpu_flags``); this module holds what they share: the build's
GPU vendor (:func:`build_vendor`, cold), whether the user hid every GPU
(:func:`hidden`), which mechanism podman has for NVIDIA on this node
(:func:`podman_nvidia`) and the AMD device groups (:func:`amd_groups`).

Standard library only on the hot path (a decision-cache hit adds the same
flags): :func:`podman_nvidia` reads the CDI spec and hook directories only
when their listing changed since the last time on this node, and then
imports ``json``/``yaml`` (the answer is kept in
``$XDG_CACHE_HOME/imagefit/gpu-access.<node>``, marshal, private to the user).

Sources: container-device-interface pkg/cdi/spec-dirs.go (``DefaultSpecDirs``
= ``/etc/cdi``, ``/var/run/cdi``; files ending ``.json`` or ``.yaml``,
subdirectories skipped), read by podman 4.3's default CDI registry
(libpod/container_internal_linux.go ``generateSpec``:
``cdi.GetRegistry(cdi.WithAutoRefresh(false))``; containers.conf's
``cdi_spec_dirs`` came later, so 4.3 has no other directories); podman's
OCI hook directories (pkg/hooks: ``/usr/share/containers/oci/hooks.d`` then
``/etc/containers/oci/hooks.d``, ``*.json`` in the hooks 1.0.0 schema).
"""

from __future__ import annotations

import os

if False:  # for type checkers only: importing collections costs every shimmed command ~1.3 ms
    from collections.abc import Mapping

NVIDIA = "nvidia"
AMD = "amd"
#: the access modes of the ``gpu_access`` key and ``IMAGEFIT_GPU_ACCESS``
MODES = ("auto", "never")
#: CDI spec directories podman 4.3 reads, lowest priority first
CDI_DIRS = ("/etc/cdi", "/var/run/cdi")
#: podman's OCI hook directories (containers/podman pkg/hooks)
HOOK_DIRS = ("/usr/share/containers/oci/hooks.d", "/etc/containers/oci/hooks.d")
CDI_KIND = "nvidia.com/gpu"
CDI_DEVICE = CDI_KIND + "=all"
#: programs of an NVIDIA OCI hook (nvidia-container-toolkit's oci-nvidia-hook.json)
HOOK_PROGRAMS = ("nvidia-container-runtime-hook", "nvidia-container-toolkit")
#: the command that writes the CDI spec podman needs (NVIDIA Container Toolkit)
CDI_FIX = "nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"
#: a spec or hook file read at most (bytes); files per directory looked at at most
FILE_LIMIT = 1 << 20
MAX_FILES = 256
#: the variables that name the devices a job may use, per vendor; a value of
#: "", "none" or "void" means no device (NVIDIA Container Toolkit's
#: NVIDIA_VISIBLE_DEVICES values; CUDA and ROCm read an empty list as none)
VISIBLE = {
    NVIDIA: ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"),
    AMD: ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"),
}
NO_DEVICE = ("", "none", "void")
#: AMD device nodes (ROCm: the KFD compute interface and the DRM render nodes)
AMD_DEVICES = ("/dev/kfd", "/dev/dri")


def build_vendor(candidate) -> str:
    """``"nvidia"``, ``"amd"`` or ``""``: the GPU the build `candidate`
    (a scoring Candidate) requires, from its annotations
    (:func:`scoring.vocabulary.requires_gpu`: ``hardware.gpu.vendor``, the
    CUDA version, compute capabilities, gfx targets) or its
    ``platform.features`` tokens (:func:`scoring.tokens.names_gpu`: NVIDIA).
    Cold path (imports scoring)."""
    from scoring import vocabulary as v
    from scoring.tokens import names_gpu

    annotations = dict(candidate.annotations or {})
    vendor = annotations.get(v.GPU_VENDOR, "").strip().lower()
    if v.requires_gpu(annotations):
        if vendor == AMD or (vendor != NVIDIA and annotations.get(v.AMD_GFX, "").strip()):
            return AMD
        return NVIDIA
    features = tuple(candidate.platform.features) if candidate.platform else ()
    return NVIDIA if names_gpu(features) else ""


def hidden(
    vendor: str, environ: Mapping[str, str], given: Mapping[str, str | None] | None = None
) -> bool:
    """True when the user said the job has no `vendor` GPU: one of its
    visible-device variables (:data:`VISIBLE`) is ``""``, ``none`` or
    ``void``, in what the command line sets in the container (`given`,
    ``-e NAME=VALUE``: it wins) or else in the shim's environment."""
    given = given or {}
    for name in VISIBLE.get(vendor, ()):
        value = given.get(name)
        if value is None:
            value = environ.get(name)
        if value is not None and value.strip().lower() in NO_DEVICE:
            return True
    return False


def env_words(
    vendor: str, environ: Mapping[str, str], given: Mapping[str, str | None]
) -> list[str]:
    """``--env=NAME`` for each visible-device variable of `vendor` set in the
    shim's environment and not named by the command line (`given`): the
    container gets the caller's value unchanged (podman and docker pass
    none of the caller's variables otherwise; the NVIDIA hook reads
    ``NVIDIA_VISIBLE_DEVICES`` from the container's environment)."""
    return [f"--env={n}" for n in VISIBLE.get(vendor, ()) if n in environ and n not in given]


def amd_groups() -> list[str]:
    """The host groups (numeric ids, as strings) that own the AMD device
    nodes (``/dev/kfd``, ``/dev/dri/renderD*``): a container user in them may
    open the GPU. ``["video"]`` when none can be read."""
    gids: list[str] = []
    paths = [AMD_DEVICES[0]]
    try:
        paths += [
            os.path.join(AMD_DEVICES[1], n)
            for n in sorted(os.listdir(AMD_DEVICES[1]))
            if n.startswith("renderD")
        ]
    except OSError:
        pass
    for path in paths:
        try:
            gid = os.stat(path).st_gid
        except OSError:
            continue
        if gid != 0 and str(gid) not in gids:
            gids.append(str(gid))
    return gids or ["video"]


# -- podman: CDI spec or OCI hook -------------------------------------------------


def _listing() -> tuple:
    """What the answer of :func:`podman_nvidia` depends on: this node's name
    and, for each CDI and hook directory, each candidate file's name, inode,
    size and mtime (ns). Standard library, no file opened."""
    found: list = [os.uname().nodename]
    for directory in (*CDI_DIRS, *HOOK_DIRS):
        suffixes = (".json",) if directory in HOOK_DIRS else (".json", ".yaml")
        try:
            names = sorted(n for n in os.listdir(directory) if n.endswith(suffixes))
        except OSError:
            continue
        for name in names[:MAX_FILES]:
            path = os.path.join(directory, name)
            try:
                st = os.stat(path)  # podman follows links (os.ReadFile)
            except OSError:
                continue
            if st.st_size <= FILE_LIMIT:
                found.append((path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(found)


def _read(path: str) -> bytes | None:
    """At most :data:`FILE_LIMIT` bytes of a regular file (never a FIFO or
    device, never opened blocking: :func:`shim.untrusted.read_bounded`), or
    None."""
    from shim.untrusted import read_bounded

    try:
        return read_bounded(path, FILE_LIMIT)
    except OSError:
        return None


def _document(path: str):
    """The parsed spec or hook file (JSON, or YAML with PyYAML's safe
    loader, as CDI reads YAML), or None when it cannot be read or parsed."""
    data = _read(path)
    if data is None:
        return None
    try:
        if path.endswith(".json"):
            import json

            return json.loads(data)
        import yaml

        return yaml.safe_load(data)
    except Exception:  # noqa: BLE001 - a file podman would also reject: not a match
        return None


def cdi_gpu_names(document) -> tuple[str, ...]:
    """The device names of a CDI spec whose ``kind`` is ``nvidia.com/gpu``
    (``nvidia-ctk cdi generate`` writes ``all`` and one per GPU and MIG
    instance: its NVML index, ``0:1`` pairs, or UUIDs with
    ``--device-name-strategy=uuid``); ``()`` for anything else."""
    if not isinstance(document, dict) or document.get("kind") != CDI_KIND:
        return ()
    devices = document.get("devices")
    if not isinstance(devices, list):
        return ()
    names = (d.get("name") for d in devices[: MAX_FILES * 4] if isinstance(d, dict))
    return tuple(n for n in names if isinstance(n, str) and 0 < len(n) <= 128)


def cdi_devices(visible: str | None, names: tuple[str, ...]) -> list[str] | None:
    """The ``--device`` values that give a container the GPUs the job's
    ``NVIDIA_VISIBLE_DEVICES`` (`visible`) names, from the CDI device
    `names` podman knows: ``["nvidia.com/gpu=all"]`` when it is unset or
    ``all``; ``["nvidia.com/gpu=0", "nvidia.com/gpu=1"]`` for ``0,1`` when
    the specs name each entry; None when an entry is not a device name of
    the specs (``all`` would widen the job's GPUs: CUDA does not read the
    toolkit's variable, the devices a CDI edit adds are what it sees)."""
    value = (visible or "").strip()
    if not value or value.lower() == "all":
        return [CDI_DEVICE]
    entries = [e.strip() for e in value.split(",")]
    if any(e not in names or e == "all" for e in entries):
        return None
    unique = list(dict.fromkeys(entries))
    return [f"{CDI_KIND}={e}" for e in unique]


def nvidia_hook(document) -> bool:
    """True for an OCI hook (hooks 1.0.0: ``{"hook": {"path": ...}}``) whose
    program is the NVIDIA Container Toolkit's."""
    hook = document.get("hook") if isinstance(document, dict) else None
    path = hook.get("path") if isinstance(hook, dict) else None
    return isinstance(path, str) and os.path.basename(path) in HOOK_PROGRAMS


def _scan(listing: tuple) -> tuple[str, tuple[str, ...]]:
    hook = False
    names: dict[str, None] = {}
    for item in listing[1:]:
        path = item[0]
        document = _document(path)
        if os.path.dirname(path) in CDI_DIRS:
            names.update(dict.fromkeys(cdi_gpu_names(document)))
        else:
            hook = hook or nvidia_hook(document)
    if "all" in names:
        return "cdi", tuple(names)
    return ("hook" if hook else ""), ()


def _cache_path(environ: Mapping[str, str]) -> str:
    base = environ.get("XDG_CACHE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".cache"
    )
    # one file per node: a home shared by the nodes of a cluster would otherwise
    # hold one node's listing at a time, and every other node would re-read
    # (and parse) its CDI specs on each command
    node = "".join(
        c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in os.uname().nodename
    )
    return os.path.join(base, "imagefit", f"gpu-access.{node[:64] or 'node'}")


def podman_nvidia(environ: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """How podman gives an NVIDIA GPU on this node, and the CDI device names:
    ``("cdi", NAMES)`` (a CDI spec in :data:`CDI_DIRS` has
    ``nvidia.com/gpu=all``: add ``--device``; NAMES every ``nvidia.com/gpu``
    device the specs define, ``all`` included), ``("hook", ())`` (an NVIDIA
    OCI hook in :data:`HOOK_DIRS`: it injects the GPU, add nothing), or
    ``("", ())`` (neither). The answer is kept per user and node with the
    directory listing it came from and reused while that listing is the same
    (no file read, no json/yaml import). Never raises."""
    import marshal

    listing = _listing()
    if len(listing) == 1:
        return "", ()
    path = _cache_path(environ)
    from hostfacts.fingerprint import may_create, owned_dir, read_private

    directory = os.path.dirname(path)
    cached = read_private(path, 1 << 20)
    if cached is not None and owned_dir(directory):
        try:
            kept, (mode, names) = marshal.loads(cached)
            if (
                kept == listing
                and mode in ("cdi", "hook", "")
                and isinstance(names, tuple)
                and all(isinstance(n, str) for n in names)
            ):
                return mode, names
        except (ValueError, EOFError, TypeError):
            pass
    answer = _scan(listing)
    if owned_dir(directory) or (not os.path.lexists(directory) and may_create(directory)):
        from shim.decisions import write_file

        write_file(directory, os.path.basename(path), marshal.dumps((listing, answer)), False)
    return answer
