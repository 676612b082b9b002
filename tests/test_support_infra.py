"""The test infrastructure itself works against real tools.

A real Distribution registry on loopback, real OCI images built in Python,
skopeo pushing them with their digests kept, and real podman pulling and
running them by digest.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import socket
import subprocess
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support import oci
from tests.support.fixtures import podman_env, registry  # noqa: F401
from tests.support.registry import LocalRegistry, can_make_htpasswd

BUILDS = [
    {
        "name": "generic",
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"org.imagefit.test.level": "x86_64", "org.imagefit.test.note": "baseline"},
    },
    {
        "name": "v3",
        "platform": {"architecture": "amd64", "os": "linux", "variant": "v3"},
        "annotations": None,
    },
    {
        "name": "arm",
        "platform": {"architecture": "arm64", "os": "linux"},
        "annotations": None,
    },
]


@pytest.fixture(scope="module")
def pushed(registry, tmp_path_factory):  # noqa: F811
    return oci.build_and_push(
        registry.host,
        "imagefit/infra",
        "multi",
        BUILDS,
        layout_dir=tmp_path_factory.mktemp("layout"),
    )


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _port_open(host: str) -> bool:
    addr, port = host.rsplit(":", 1)
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((addr, int(port))) == 0


# -- registry ---------------------------------------------------------------


def test_registry_lifecycle(tmp_path):
    with LocalRegistry(tmp_path / "reg") as reg:
        assert reg.host.startswith("127.0.0.1:")
        assert reg.url == f"http://{reg.host}"
        with urllib.request.urlopen(f"{reg.url}/v2/", timeout=5) as resp:
            assert resp.status == 200
        assert reg.requests() == [("GET", "/v2/", 200)]  # readiness probes left out
        assert (tmp_path / "reg" / "config.yml").exists()
        host, pid = reg.host, reg.pid
    assert not reg.running()
    assert not _port_open(host)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_registry_start_failure_reports_log(tmp_path):
    reg = LocalRegistry(tmp_path / "reg", start=False, startup_timeout=2)
    reg.binary = "/bin/false"
    with pytest.raises(Exception, match="exited with 1"):
        reg.start()
    assert not reg.running()


@pytest.mark.skipif(not can_make_htpasswd(), reason="no bcrypt, htpasswd or crypt($2b$)")
def test_auth_registry(tmp_path):
    with LocalRegistry(tmp_path / "reg", auth=("alice", "s3cret pw")) as reg:
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(f"{reg.url}/v2/", timeout=5)
        exc.value.close()
        assert exc.value.code == 401
        assert exc.value.headers["WWW-Authenticate"].startswith("Basic ")

        req = urllib.request.Request(f"{reg.url}/v2/", headers=reg.basic_auth_header())
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200

        wrong = base64.b64encode(b"alice:wrong").decode()
        req = urllib.request.Request(f"{reg.url}/v2/", headers={"Authorization": f"Basic {wrong}"})
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=5)
        exc.value.close()
        assert exc.value.code == 401

        # skopeo pushes with credentials, and not without.
        build = [dict(BUILDS[0])]
        res = oci.build_and_push(
            reg.host,
            "private/img",
            "t",
            build,
            layout_dir=tmp_path / "layout",
            creds="alice:s3cret pw",
        )
        with pytest.raises(oci.SkopeoError):
            oci.inspect_raw(res.ref)
        assert _sha(oci.inspect_raw(res.ref, creds="alice:s3cret pw")) == res.index_digest
        statuses = {s for _m, _p, s in reg.requests()}
        assert 401 in statuses and 201 in statuses


# -- OCI images ---------------------------------------------------------------


def test_images_are_deterministic_and_share_the_base_layer(tmp_path):
    d1 = oci.build_image(tmp_path / "a", "one", entrypoint=["/bin/sh"], cmd=["-c", "id"])
    d2 = oci.build_image(tmp_path / "b", "one", entrypoint=["/bin/sh"], cmd=["-c", "id"])
    assert d1 == d2
    assert d1["mediaType"] == oci.MEDIA_TYPE_MANIFEST
    other = oci.build_image(tmp_path / "a", "two")
    m1 = oci.read_json_blob(tmp_path / "a", d1["digest"])
    m2 = oci.read_json_blob(tmp_path / "a", other["digest"])
    assert m1["layers"][0] == m2["layers"][0]  # shared base blob
    assert m1["layers"][1] != m2["layers"][1]
    assert all(layer["mediaType"] == oci.MEDIA_TYPE_LAYER_GZIP for layer in m1["layers"])

    cfg = oci.read_json_blob(tmp_path / "a", m1["config"]["digest"])
    assert cfg["architecture"] == "amd64" and cfg["os"] == "linux" and "variant" not in cfg
    assert cfg["config"]["Env"] == ["PATH=/opt/app/bin:/usr/bin:/bin"]
    assert cfg["config"]["Entrypoint"] == ["/bin/sh"] and cfg["config"]["Cmd"] == ["-c", "id"]
    assert "Entrypoint" not in oci.read_json_blob(tmp_path / "a", m2["config"]["digest"])["config"]

    members = {}
    for layer, diff_id in zip(m1["layers"], cfg["rootfs"]["diff_ids"], strict=True):
        gz = oci.read_blob(tmp_path / "a", layer["digest"])
        assert _sha(gz) == layer["digest"] and len(gz) == layer["size"]
        assert gz[4:8] == b"\0\0\0\0"  # gzip mtime 0
        raw = gzip.decompress(gz)
        assert _sha(raw) == diff_id
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            infos = tar.getmembers()
            names = [i.name for i in infos]
            assert names == sorted(names)
            assert all(i.uid == 0 and i.gid == 0 for i in infos)
            for i in infos:
                members[i.name] = (i, tar.extractfile(i).read() if i.isfile() else None)
    assert members["bin/busybox"][1] == Path(oci.BUSYBOX).read_bytes()
    for applet in ("sh", "cat", "id", "echo", "env", "false", "ls"):
        assert members[f"bin/{applet}"][0].linkname == "/bin/busybox"
    assert members["usr/bin/env"][0].linkname == "/bin/busybox"
    assert members["tmp"][0].mode == 0o1777
    assert members["etc/profile"][1] == b"export PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
    assert members["etc/imagefit-build"][1] == b"one\n"
    assert members["opt/app/bin/whichbuild"][0].mode == 0o755


def test_index_pushed_byte_for_byte(pushed, registry):  # noqa: F811
    raw = oci.inspect_raw(pushed.ref)
    assert raw == pushed.index_bytes
    assert _sha(raw) == pushed.index_digest
    assert oci.inspect_raw(f"{pushed.repository}@{pushed.index_digest}") == raw
    assert oci.layout_index_bytes(pushed.layout_dir) == raw

    index = json.loads(raw)
    assert index["mediaType"] == oci.MEDIA_TYPE_INDEX and index["schemaVersion"] == 2
    assert [m["digest"] for m in index["manifests"]] == [
        pushed.manifests[b["name"]] for b in BUILDS
    ]
    assert [m["platform"] for m in index["manifests"]] == [b["platform"] for b in BUILDS]
    assert index["manifests"][0]["annotations"] == BUILDS[0]["annotations"]
    assert "annotations" not in index["manifests"][1]
    assert len(set(pushed.manifests.values())) == 3

    for name, digest in pushed.manifests.items():
        manifest_raw = oci.inspect_raw(pushed.digest_ref(name))
        assert _sha(manifest_raw) == digest
        manifest = json.loads(manifest_raw)
        assert manifest["mediaType"] == oci.MEDIA_TYPE_MANIFEST
        # the config blob is served too and carries the platform
        url = f"{registry.url}/v2/imagefit/infra/blobs/{manifest['config']['digest']}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            cfg = json.loads(resp.read())
        build = next(b for b in BUILDS if b["name"] == name)
        assert cfg["architecture"] == build["platform"]["architecture"]
        assert cfg.get("variant") == build["platform"].get("variant")


# -- podman -------------------------------------------------------------------


def _podman(podman_env, *args, check=True):  # noqa: F811
    argv, env = podman_env
    proc = subprocess.run(
        [*argv, *args], env=env, check=False, capture_output=True, text=True, timeout=120
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
    return proc


def test_podman_runs_amd64_by_digest(pushed, podman_env):  # noqa: F811
    ref = pushed.digest_ref("generic")
    out = _podman(
        podman_env,
        "run",
        "--rm",
        "--network=none",
        "--tls-verify=false",
        "--entrypoint=",
        ref,
        "/opt/app/bin/whichbuild",
    )
    assert out.stdout == "generic\n"
    # config Env PATH is used as is; a login shell's /etc/profile resets it
    out = _podman(
        podman_env,
        "run",
        "--rm",
        "--network=none",
        ref,
        "sh",
        "-c",
        'echo "$PATH"; whichbuild; cat /etc/imagefit-build; id -u',
    )
    assert out.stdout == "/opt/app/bin:/usr/bin:/bin\ngeneric\ngeneric\n0\n"
    out = _podman(podman_env, "run", "--rm", "--network=none", ref, "sh", "-lc", 'echo "$PATH"')
    assert out.stdout == "/usr/sbin:/usr/bin:/sbin:/bin\n"
    images = _podman(podman_env, "images", "--digests", "--format", "{{.Digest}}").stdout.split()
    assert images == [pushed.manifests["generic"]]


def test_podman_quirks_with_variants(pushed, podman_env):  # noqa: F811
    # By digest, podman 4.3 takes an amd64 manifest whose config says
    # variant v3 without complaint.
    out = _podman(
        podman_env,
        "run",
        "--rm",
        "--network=none",
        "--tls-verify=false",
        pushed.digest_ref("v3"),
        "whichbuild",
    )
    assert out.stdout == "v3\n"
    assert "WARNING" not in out.stderr
    # By tag, it picks the amd64 entry without a variant.
    out = _podman(
        podman_env, "run", "--rm", "--network=none", "--tls-verify=false", pushed.ref, "whichbuild"
    )
    assert out.stdout == "generic\n"


def test_podman_refuses_index_with_only_amd64_v3(registry, podman_env, tmp_path):  # noqa: F811
    res = oci.build_and_push(
        registry.host,
        "imagefit/onlyv3",
        "t",
        [BUILDS[1], BUILDS[2]],
        layout_dir=tmp_path / "layout",
    )
    out = _podman(podman_env, "pull", "--tls-verify=false", res.ref, check=False)
    assert out.returncode != 0
    assert 'no image found in image index for architecture amd64, variant ""' in out.stderr
