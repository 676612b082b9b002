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


# -- artifacts with a subject (NFD image compatibility) ------------------------

MEDIA_TYPE_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
NFD_ARTIFACT_TYPE = "application/vnd.nfd.image-compatibility.v1alpha1"
NFD_SPEC_YAML = "application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml"
NFD_SPEC_JSON = "application/vnd.nfd.image-compatibility.spec.v1alpha1+json"
CREATED_ANNOTATION = "org.opencontainers.image.created"


class RegistryHTTPError(RuntimeError):
    """A registry request made by the test helpers failed."""


def _registry_request(
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: dict | None = None,
    creds: str | None = None,
    ok: tuple[int, ...] = (200, 201, 202),
    missing_ok: bool = False,
):
    """(status, headers, body) of one plain-HTTP registry request (urllib)."""
    import base64
    import urllib.error
    import urllib.request

    all_headers = dict(headers or {})
    if creds:
        all_headers["Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode()
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, resp_headers, body = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        status, resp_headers, body = exc.code, exc.headers, exc.read()
        exc.close()
    if status in ok or (missing_ok and status == 404):
        return status, resp_headers, body
    raise RegistryHTTPError(f"{method} {url}: HTTP {status}: {body[:300]!r}")


def push_blob(registry_host: str, repo: str, data: bytes, *, creds: str | None = None) -> str:
    """Upload *data* as a blob of *repo* (skipped when the registry has it);
    returns its digest.  A monolithic upload: ``POST /v2/<name>/blobs/uploads/``
    then ``PUT <location>?digest=<digest>`` (distribution-spec "Pushing a blob
    monolithically")."""
    from urllib.parse import urljoin

    base = f"http://{registry_host}"
    digest = sha256_digest(data)
    status, _h, _b = _registry_request(
        "HEAD", f"{base}/v2/{repo}/blobs/{digest}", creds=creds, missing_ok=True
    )
    if status == 200:
        return digest
    _s, headers, _b = _registry_request(
        "POST", f"{base}/v2/{repo}/blobs/uploads/", data=b"", creds=creds, ok=(202,)
    )
    location = urljoin(base + "/", headers["Location"])
    sep = "&" if "?" in location else "?"
    _registry_request(
        "PUT",
        f"{location}{sep}digest={digest}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        creds=creds,
        ok=(201,),
    )
    return digest


def push_manifest(
    registry_host: str,
    repo: str,
    body: bytes,
    media_type: str,
    *,
    reference: str | None = None,
    creds: str | None = None,
):
    """PUT a manifest (by digest unless *reference* names a tag); returns the
    response headers (``OCI-Subject`` tells whether the registry processed a
    ``subject``)."""
    reference = reference or sha256_digest(body)
    _s, headers, _b = _registry_request(
        "PUT",
        f"http://{registry_host}/v2/{repo}/manifests/{reference}",
        data=body,
        headers={"Content-Type": media_type},
        creds=creds,
        ok=(201,),
    )
    announced = headers.get("Docker-Content-Digest")
    if announced and announced != sha256_digest(body):
        raise RegistryHTTPError(f"registry stored {announced}, pushed {sha256_digest(body)}")
    return headers


def referrers_tag(digest: str) -> str:
    """``sha256-<hex>``: the referrers tag schema for a sha256 digest."""
    algorithm, _, encoded = digest.partition(":")
    if algorithm != "sha256":
        raise ValueError(f"only sha256 digests here: {digest}")
    return f"{algorithm}-{encoded}"


def subject_descriptor(pushed: PushedIndex, name: str | None = None) -> dict:
    """The descriptor ``{mediaType, digest, size}`` of the pushed index
    (*name* None) or of one build's manifest (needs ``pushed.layout_dir``)."""
    if name is None:
        return {
            "mediaType": MEDIA_TYPE_INDEX,
            "digest": pushed.index_digest,
            "size": len(pushed.index_bytes),
        }
    if pushed.layout_dir is None:
        raise ValueError("build_and_push(..., layout_dir=...) keeps the manifests' sizes")
    digest = pushed.manifests[name]
    return {
        "mediaType": MEDIA_TYPE_MANIFEST,
        "digest": digest,
        "size": len(read_blob(pushed.layout_dir, digest)),
    }


def update_referrers_tag(
    registry_host: str,
    repo: str,
    subject_digest: str,
    descriptor: dict,
    *,
    creds: str | None = None,
) -> str:
    """Append *descriptor* to the referrers tag index of *subject_digest*, as
    distribution-spec "Pushing Manifests with Subject" asks of a client whose
    registry did not answer ``OCI-Subject``: pull the tag (404: start from an
    empty index; not an index: fail), skip a duplicate, append, push it back.
    Returns the new index digest (unchanged when the entry was there)."""
    tag = referrers_tag(subject_digest)
    url = f"http://{registry_host}/v2/{repo}/manifests/{tag}"
    status, headers, body = _registry_request(
        "GET", url, headers={"Accept": MEDIA_TYPE_INDEX}, creds=creds, missing_ok=True
    )
    if status == 404:
        index = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": []}
    else:
        index = json.loads(body)
        media_type = index.get("mediaType") or headers.get("Content-Type", "")
        if not media_type.startswith(MEDIA_TYPE_INDEX) or not isinstance(
            index.get("manifests"), list
        ):
            raise RegistryHTTPError(f"{tag} holds a {media_type}, not a referrers index")
    if any(m.get("digest") == descriptor["digest"] for m in index["manifests"]):
        return sha256_digest(body)
    index["manifests"].append(descriptor)
    data = canonical_json(index)
    push_manifest(registry_host, repo, data, MEDIA_TYPE_INDEX, reference=tag, creds=creds)
    return sha256_digest(data)


def push_artifact(
    registry_host: str,
    repo: str,
    subject_descriptor: dict,
    spec_bytes: bytes,
    *,
    created: str | None = None,
    media_type: str = NFD_SPEC_YAML,
    artifact_type: str = NFD_ARTIFACT_TYPE,
    use_tag_fallback: bool = True,
    annotations: dict | None = None,
    creds: str | None = None,
) -> str:
    """Attach an artifact to *subject_descriptor* as ``oras attach`` does and
    return the artifact manifest's digest.

    Pushes the spec blob, the empty config (``application/vnd.oci.empty.v1+json``,
    ``{}``) and an OCI image manifest ``{artifactType, config: empty,
    layers: [spec], subject, annotations: {org.opencontainers.image.created}}``
    by digest.  With *use_tag_fallback*, when the registry does not answer
    ``OCI-Subject`` (Distribution 2.8 never does), also appends the artifact
    to the referrers tag index ``sha256-<hex of subject>`` (see
    :func:`update_referrers_tag`) with ``artifactType`` and the annotations.
    """
    spec_digest = push_blob(registry_host, repo, spec_bytes, creds=creds)
    config_digest = push_blob(registry_host, repo, EMPTY_JSON, creds=creds)
    all_annotations = dict(annotations or {})
    if created is not None:
        all_annotations[CREATED_ANNOTATION] = created
    manifest: dict = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": MEDIA_TYPE_EMPTY, "digest": config_digest, "size": 2},
        "layers": [{"mediaType": media_type, "digest": spec_digest, "size": len(spec_bytes)}],
        "subject": {k: subject_descriptor[k] for k in ("mediaType", "digest", "size")},
    }
    if all_annotations:
        manifest["annotations"] = all_annotations
    body = canonical_json(manifest)
    digest = sha256_digest(body)
    headers = push_manifest(registry_host, repo, body, MEDIA_TYPE_MANIFEST, creds=creds)
    if use_tag_fallback and not headers.get("OCI-Subject"):
        descriptor = {
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": digest,
            "size": len(body),
            "artifactType": artifact_type,
        }
        if all_annotations:
            descriptor["annotations"] = all_annotations
        update_referrers_tag(
            registry_host, repo, subject_descriptor["digest"], descriptor, creds=creds
        )
    return digest
