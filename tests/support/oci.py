"""Build real, tiny OCI images in Python (no podman storage) and push them.

Each image has two gzip layers:

* a base layer shared by every build (its bytes are deterministic, so the
  same blob is reused): ``/bin/busybox`` (copied from the host's
  busybox-static) with applet symlinks, ``/etc/passwd``, ``/etc/group``,
  ``/tmp`` (1777) and an ``/etc/profile`` that resets ``PATH`` as many distro
  images do;
* a per-build layer: ``/etc/imagefit-build`` (the build name and a newline)
  and ``/opt/app/bin/whichbuild``, a script that prints it.

``build_image`` writes one image into an OCI image layout, ``write_index``
writes an image index over several of them, ``push_layout`` pushes the whole
index with skopeo keeping its digests, and ``build_and_push`` does all three.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

BUSYBOX = "/bin/busybox"
BUSYBOX_APPLETS = ("sh", "cat", "id", "echo", "env", "false", "ls")
PROFILE = b"export PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
WHICHBUILD = b"#!/bin/sh\ncat /etc/imagefit-build\n"
FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z
CREATED = "2000-01-01T00:00:00Z"

_INDEX_REF_ANNOTATION = "org.opencontainers.image.ref.name"


class SkopeoError(RuntimeError):
    """skopeo failed; the message carries its stderr."""


# -- low-level helpers ------------------------------------------------------


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _blob_path(layout_dir: Path, digest: str) -> Path:
    algo, _, hexpart = digest.partition(":")
    return Path(layout_dir) / "blobs" / algo / hexpart


def init_layout(layout_dir: str | os.PathLike) -> Path:
    """Create (if needed) an OCI image layout directory."""
    layout = Path(layout_dir)
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    marker = layout / "oci-layout"
    if not marker.exists():
        marker.write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    return layout


def write_blob(layout_dir: str | os.PathLike, data: bytes, media_type: str) -> dict:
    """Store *data* as a blob and return its descriptor."""
    layout = init_layout(layout_dir)
    digest = sha256_digest(data)
    path = _blob_path(layout, digest)
    if not path.exists():
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def read_blob(layout_dir: str | os.PathLike, digest: str) -> bytes:
    """The exact bytes of a blob (manifest, index, config or layer)."""
    return _blob_path(Path(layout_dir), digest).read_bytes()


def read_json_blob(layout_dir: str | os.PathLike, digest: str):
    return json.loads(read_blob(layout_dir, digest))


# -- deterministic layers -----------------------------------------------------


def _tarinfo(
    name: str, kind: bytes, mode: int, size: int = 0, linkname: str = ""
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = linkname
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _make_layer(entries: list[tuple[str, str, int, bytes | str | None]]) -> tuple[bytes, bytes]:
    """entries: (path, kind in {'dir','file','symlink'}, mode, data/linkname).

    Returns (uncompressed tar, gzip bytes), both deterministic.
    """
    kinds = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "symlink": tarfile.SYMTYPE}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, kind, mode, payload in sorted(entries, key=lambda e: e[0]):
            if kind == "file":
                data = payload if isinstance(payload, bytes) else b""
                tar.addfile(_tarinfo(path, kinds[kind], mode, len(data)), io.BytesIO(data))
            elif kind == "symlink":
                tar.addfile(_tarinfo(path, kinds[kind], mode, linkname=str(payload)))
            else:
                tar.addfile(_tarinfo(path, kinds[kind], mode))
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=6) as f:
        f.write(tar_bytes)
    return tar_bytes, gz.getvalue()


_base_cache: dict[tuple, tuple[bytes, bytes]] = {}


def base_layer(busybox: str = BUSYBOX) -> tuple[bytes, bytes]:
    """(uncompressed tar, gzip) of the shared base layer (cached per process)."""
    st = os.stat(busybox)
    key = (os.path.realpath(busybox), st.st_size, st.st_mtime_ns)
    if key not in _base_cache:
        with open(busybox, "rb") as f:
            busybox_bytes = f.read()
        entries = [
            ("bin", "dir", 0o755, None),
            ("bin/busybox", "file", 0o755, busybox_bytes),
            ("etc", "dir", 0o755, None),
            ("etc/passwd", "file", 0o644, b"root:x:0:0:root:/root:/bin/sh\n"),
            ("etc/group", "file", 0o644, b"root:x:0:\n"),
            ("etc/profile", "file", 0o644, PROFILE),
            ("root", "dir", 0o700, None),
            ("tmp", "dir", 0o1777, None),
            ("usr", "dir", 0o755, None),
            ("usr/bin", "dir", 0o755, None),
            ("usr/bin/env", "symlink", 0o777, "/bin/busybox"),
        ]
        entries += [(f"bin/{a}", "symlink", 0o777, "/bin/busybox") for a in BUSYBOX_APPLETS]
        _base_cache[key] = _make_layer(entries)
    return _base_cache[key]


def build_layer(build_name: str) -> tuple[bytes, bytes]:
    """(uncompressed tar, gzip) of the per-build layer."""
    return _make_layer(
        [
            ("etc", "dir", 0o755, None),
            ("etc/imagefit-build", "file", 0o644, (build_name + "\n").encode()),
            ("opt", "dir", 0o755, None),
            ("opt/app", "dir", 0o755, None),
            ("opt/app/bin", "dir", 0o755, None),
            ("opt/app/bin/whichbuild", "file", 0o755, WHICHBUILD),
        ]
    )


# -- images and indexes -------------------------------------------------------


def build_image(
    layout_dir: str | os.PathLike,
    build_name: str,
    *,
    entrypoint: list[str] | None = None,
    cmd: list[str] | None = None,
    env_path: str = "/opt/app/bin:/usr/bin:/bin",
    architecture: str = "amd64",
    variant: str | None = None,
    os: str = "linux",  # mirrors the OCI field name
    busybox: str = BUSYBOX,
) -> dict:
    """Write one image (2 layers, config, manifest) into an OCI layout.

    Returns the manifest descriptor ``{mediaType, digest, size}``.  The
    busybox binary is whatever the host has (amd64 here), whatever
    *architecture* says: the field only labels the image.
    """
    layout = init_layout(layout_dir)
    layers = [base_layer(busybox), build_layer(build_name)]
    layer_descs = [write_blob(layout, gz, MEDIA_TYPE_LAYER_GZIP) for _tar, gz in layers]
    diff_ids = [sha256_digest(tar) for tar, _gz in layers]

    container_config: dict = {"Env": [f"PATH={env_path}"], "WorkingDir": "/"}
    if entrypoint is not None:
        container_config["Entrypoint"] = list(entrypoint)
    if cmd is not None:
        container_config["Cmd"] = list(cmd)
    config: dict = {
        "created": CREATED,
        "architecture": architecture,
        "os": os,
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": CREATED, "created_by": "imagefit tests: busybox base"},
            {"created": CREATED, "created_by": f"imagefit tests: build {build_name}"},
        ],
    }
    if variant:
        config["variant"] = variant
    config_desc = write_blob(layout, canonical_json(config), MEDIA_TYPE_CONFIG)

    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": config_desc,
        "layers": layer_descs,
    }
    return write_blob(layout, canonical_json(manifest), MEDIA_TYPE_MANIFEST)


def write_index(
    layout_dir: str | os.PathLike,
    entries: list[tuple[dict, dict, dict | None]],
    *,
    ref_name: str | None = None,
    annotations: dict | None = None,
) -> dict:
    """Write an image index over *entries* and point the layout at it.

    *entries* are ``(manifest descriptor, platform, annotations or None)``,
    kept in the given order.  The index is stored as a blob, and the layout's
    top-level ``index.json`` gets a single descriptor pointing at it (so
    ``skopeo copy --all oci:DIR ...`` copies the whole index).  Returns the
    index descriptor; the exact bytes are ``read_blob(layout, desc["digest"])``
    or :func:`layout_index_bytes`.
    """
    layout = init_layout(layout_dir)
    manifests = []
    for desc, platform, entry_annotations in entries:
        item = {
            "mediaType": desc.get("mediaType", MEDIA_TYPE_MANIFEST),
            "digest": desc["digest"],
            "size": desc["size"],
            "platform": dict(platform),
        }
        if entry_annotations:
            item["annotations"] = dict(entry_annotations)
        manifests.append(item)
    index: dict = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": manifests}
    if annotations:
        index["annotations"] = dict(annotations)
    index_desc = write_blob(layout, canonical_json(index), MEDIA_TYPE_INDEX)

    top_entry = dict(index_desc)
    if ref_name:
        top_entry["annotations"] = {_INDEX_REF_ANNOTATION: ref_name}
    top = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": [top_entry]}
    (layout / "index.json").write_bytes(canonical_json(top))
    return index_desc


def layout_index_bytes(layout_dir: str | os.PathLike) -> bytes:
    """Bytes of the image index that the layout's index.json points at."""
    top = json.loads((Path(layout_dir) / "index.json").read_bytes())
    return read_blob(layout_dir, top["manifests"][0]["digest"])


# -- pushing ----------------------------------------------------------------


def _skopeo(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["skopeo", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise SkopeoError(
            f"skopeo {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr.strip()}"
        )
    return proc


def push_layout(
    layout_dir: str | os.PathLike,
    dest_ref: str,
    tls_verify: bool = False,
    *,
    creds: str | None = None,
) -> None:
    """``skopeo copy --all --preserve-digests oci:LAYOUT docker://DEST``.

    *dest_ref* is ``host:port/repo:tag`` (no transport).  *creds* is
    ``user:password`` for an auth-enabled registry.
    """
    args = [
        "copy",
        "--all",
        "--preserve-digests",
        "--quiet",
        f"--dest-tls-verify={'true' if tls_verify else 'false'}",
    ]
    if creds:
        args.append(f"--dest-creds={creds}")
    args += [f"oci:{Path(layout_dir)}", f"docker://{dest_ref}"]
    _skopeo(args)


def inspect_raw(ref: str, tls_verify: bool = False, *, creds: str | None = None) -> bytes:
    """``skopeo inspect --raw docker://REF``: the exact manifest/index bytes."""
    args = ["inspect", "--raw", f"--tls-verify={'true' if tls_verify else 'false'}"]
    if creds:
        args.append(f"--creds={creds}")
    args.append(f"docker://{ref}")
    proc = subprocess.run(
        ["skopeo", *args],
        check=False,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise SkopeoError(
            f"skopeo {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stderr.decode(errors='replace').strip()}"
        )
    return proc.stdout


@dataclass
class PushedIndex:
    """What :func:`build_and_push` published."""

    ref: str  # host/repo:tag
    repository: str  # host/repo
    index_digest: str
    index_bytes: bytes
    manifests: dict[str, str] = field(default_factory=dict)  # build name -> digest
    layout_dir: Path | None = None

    def digest_ref(self, name_or_digest: str) -> str:
        """``host/repo@sha256:...`` for a build name or a digest."""
        digest = self.manifests.get(name_or_digest, name_or_digest)
        return f"{self.repository}@{digest}"


def build_and_push(
    registry_host: str,
    repo: str,
    tag: str,
    builds: list[dict],
    *,
    layout_dir: str | os.PathLike | None = None,
    creds: str | None = None,
    verify: bool = True,
) -> PushedIndex:
    """Build each of *builds*, write their index and push it as repo:tag.

    Each build is ``{"name": ..., "platform": {"architecture", "os",
    "variant"?}, "annotations": {...} or None, "entrypoint"?, "cmd"?,
    "env_path"?}``.  The image config's architecture/os/variant follow the
    platform.  *layout_dir* should be a pytest tmp dir; without one a
    temporary directory is used and removed.  With *verify*, the pushed
    index is read back and must have the same digest.
    """
    if layout_dir is None:
        with tempfile.TemporaryDirectory(prefix="imagefit-oci-") as tmp:
            result = build_and_push(
                registry_host, repo, tag, builds, layout_dir=tmp, creds=creds, verify=verify
            )
            result.layout_dir = None
            return result

    names = [b["name"] for b in builds]
    if len(set(names)) != len(names):
        raise ValueError(f"build names must be unique: {names}")
    layout = init_layout(layout_dir)
    entries = []
    digests: dict[str, str] = {}
    for b in builds:
        platform = dict(b.get("platform") or {"architecture": "amd64", "os": "linux"})
        platform.setdefault("os", "linux")
        kwargs = {}
        if "env_path" in b:
            kwargs["env_path"] = b["env_path"]
        desc = build_image(
            layout,
            b["name"],
            entrypoint=b.get("entrypoint"),
            cmd=b.get("cmd"),
            architecture=platform["architecture"],
            variant=platform.get("variant"),
            os=platform["os"],
            **kwargs,
        )
        digests[b["name"]] = desc["digest"]
        entries.append((desc, platform, b.get("annotations")))
    index_desc = write_index(layout, entries, ref_name=tag)
    index_bytes = read_blob(layout, index_desc["digest"])
    repository = f"{registry_host}/{repo}"
    ref = f"{repository}:{tag}"
    push_layout(layout, ref, creds=creds)
    if verify:
        pushed = inspect_raw(ref, creds=creds)
        if sha256_digest(pushed) != index_desc["digest"]:
            raise SkopeoError(
                f"pushed index digest {sha256_digest(pushed)} != built "
                f"{index_desc['digest']} for {ref}"
            )
    return PushedIndex(
        ref=ref,
        repository=repository,
        index_digest=index_desc["digest"],
        index_bytes=index_bytes,
        manifests=digests,
        layout_dir=layout,
    )
