"""Author tools through the installed ``imagefit``, against the real registry
(Distribution 2.8) and the real podman: ``index create`` (flags, YAML, TOML,
dry run, cross-repository mount, cross-registry copy, refusals), ``attach``
(NFD artifacts found by explain and by shim.artifacts), ``lint`` (a clean
index and each finding) and ``conform`` (good and bad images), and the
commands docs/author.md shows."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from shim.artifacts import NFD_ARTIFACT_TYPE, fetch_nfd_specs
from shim.registry import RegistryClient, referrers_tag
from tests.conftest import REPO, world_readable_tmp
from tests.support import oci
from tests.support.registry import LocalRegistry

P = "org.supercontainers."
TARGET = P + "hardware.cpu.target.microarch"
DOCS = REPO / "docs" / "author.md"
AVX512_SPEC = """\
version: v1alpha1
compatibilities:
- tag: avx512
  weight: 5
  description: the AVX-512 code path
  rules:
  - name: cpu
    matchFeatures:
    - feature: cpu.cpuid
      matchExpressions: {AVX512F: {op: Exists}}
"""
X86_SPEC = """\
version: v1alpha1
compatibilities:
- tag: x86
  rules:
  - name: arch
    matchFeatures:
    - feature: archspec.cpu
      matchExpressions: {architecture: {op: In, value: [x86_64]}}
"""


def imagefit(cmd, *args, env=None, cwd=None, timeout=300):
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


def push_image(host: str, ref: str, name: str, tmp: Path, **kwargs) -> str:
    """One single-manifest image (busybox base) pushed as host/ref; its digest."""
    layout = tmp / re.sub(r"[^a-z0-9]", "-", ref)
    desc = oci.build_image(layout, name, **kwargs)
    return push_manifest_layout(host, ref, layout, desc)


def push_manifest_layout(host: str, ref: str, layout: Path, desc: dict) -> str:
    top = {"schemaVersion": 2, "mediaType": oci.MEDIA_TYPE_INDEX, "manifests": [desc]}
    (layout / "index.json").write_bytes(oci.canonical_json(top))
    oci.push_layout(layout, f"{host}/{ref}")
    return desc["digest"]


def custom_image(layout: Path, layers: list[tuple[bytes, bytes]], config: dict) -> dict:
    """An image of the given (tar, gzip) layers and container config."""
    descs = [oci.write_blob(layout, gz, oci.MEDIA_TYPE_LAYER_GZIP) for _tar, gz in layers]
    image = {"architecture": "amd64", "os": "linux", "config": config,
             "rootfs": {"type": "layers", "diff_ids": [oci.sha256_digest(t) for t, _gz in layers]}}  # fmt: skip
    cdesc = oci.write_blob(layout, oci.canonical_json(image), oci.MEDIA_TYPE_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.MEDIA_TYPE_MANIFEST,
        "config": cdesc,
        "layers": descs,
    }
    return oci.write_blob(layout, oci.canonical_json(manifest), oci.MEDIA_TYPE_MANIFEST)


def client(registry) -> RegistryClient:
    return RegistryClient(registry.host, insecure=True, timeout=30)


def index_of(registry, repo: str, tag: str) -> tuple[dict, str]:
    found = client(registry).get_manifest(repo, tag)
    return json.loads(found.body), found.digest


# -- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def images(registry, tmp_path_factory):
    """Single-arch builds, each in a repository of its own (zen4 in the index's)."""
    tmp = tmp_path_factory.mktemp("author-images")
    h = registry.host
    return {
        "x86_64": push_image(h, "author/gen:1", "x86_64", tmp),
        "haswell": push_image(h, "author/hsw:1", "haswell", tmp),
        "zen4": push_image(h, "author/app:zen4", "zen4", tmp),
        "neoverse_v2": push_image(h, "author/arm:1", "neoverse_v2", tmp, architecture="arm64"),
        "gpu": push_image(h, "author/filed:gpu-build", "gpu", tmp),
    }


@pytest.fixture(scope="module")
def facts_files(imagefit_cmd, cpuinfo_dir):
    """Facts per node class from archspec's cpuinfo dumps; ``haswell-gpu``
    adds an NVIDIA H100 (sm 9.0, CUDA 12.4) to the haswell node."""
    out = world_readable_tmp("imagefit-author-facts-")
    files = {}
    for dump in ("linux-rocky8.5-zen4", "linux-rhel7-haswell", "linux-rhel7-ivybridge"):
        done = imagefit(
            imagefit_cmd,
            "facts",
            "--json",
            "--cpuinfo",
            str(cpuinfo_dir / dump),
            "--machine",
            "x86_64",
        )
        assert done.returncode == 0, done.stderr
        path = out / f"{dump}.json"
        path.write_text(done.stdout)
        files[dump.rsplit("-", 1)[1]] = str(path)
    facts = json.loads(Path(files["haswell"]).read_text())
    facts["gpu"]["nvidia"] = {
        "probe": {"status": "ok"}, "driver_version": "550.54.15", "cuda_driver_version": "12.4",
        "devices": [{"index": 0, "name": "NVIDIA H100", "compute_capability": "9.0"}],
    }  # fmt: skip
    (out / "haswell-gpu.json").write_text(json.dumps(facts))
    files["haswell-gpu"] = str(out / "haswell-gpu.json")
    yield files
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def created(registry, images, imagefit_cmd):
    """``imagefit index create`` from flags: builds from three other
    repositories (mounted) and one in place; the registry's log of it."""
    h = registry.host
    since = registry.log_offset()
    done = imagefit(
        imagefit_cmd, "index", "create", f"{h}/author/app:1", "--tls-verify", "false",
        "--build", f"{h}/author/hsw:1=haswell",
        "--build", f"{h}/author/arm:1=neoverse_v2",
        "--build", ":zen4=zen4",
        "--build", f"{h}/author/gen:1=x86_64",
        "--annotation", "org.opencontainers.image.source=https://example.org/app",
    )  # fmt: skip
    return done, registry.requests(since=since)


def explain(imagefit_cmd, ref, facts):
    done = imagefit(
        imagefit_cmd, "explain", ref, "--json", "--tls-verify", "false", "--facts", facts
    )
    assert done.returncode in (0, 125), done.stderr
    return json.loads(done.stdout)


# -- index create ------------------------------------------------------------------


def test_index_create_from_flags_orders_annotates_and_pushes(registry, images, created):
    done, _log = created
    assert done.returncode == 0, done.stderr
    index, digest = index_of(registry, "author/app", "1")
    assert done.stdout.splitlines()[-1] == f"pushed {registry.host}/author/app:1 {digest}"
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert index["annotations"] == {"org.opencontainers.image.source": "https://example.org/app"}
    entries = [(m["annotations"][TARGET], m["digest"], m["platform"]) for m in index["manifests"]]
    # most generic first: archspec depth x86_64 0, zen4 7, haswell 9 = neoverse_v2 9 (given order)
    assert entries == [
        ("x86_64", images["x86_64"], {"architecture": "amd64", "os": "linux"}),
        ("zen4", images["zen4"], {"architecture": "amd64", "os": "linux", "variant": "v4"}),
        ("haswell", images["haswell"], {"architecture": "amd64", "os": "linux", "variant": "v3"}),
        (
            "neoverse_v2",
            images["neoverse_v2"],
            {"architecture": "arm64", "os": "linux", "variant": "v9"},
        ),
    ]
    sizes = {m["digest"]: m["size"] for m in index["manifests"]}
    for m in index["manifests"]:  # each build's manifest is in the index's repository, same bytes
        assert (
            len(client(registry).get_manifest("author/app", m["digest"]).body) == sizes[m["digest"]]
        )


def test_builds_of_other_repositories_are_mounted_not_copied(created):
    _done, log = created
    mounts = [(p, s) for m, p, s in log if m == "POST" and "mount=" in p]
    sources = {re.search(r"from=([^&]+)", p)[1] for p, _s in mounts}
    assert sources == {"author%2Fhsw", "author%2Farm", "author%2Fgen"}
    assert all(s == 201 for _p, s in mounts)  # Distribution 2.8 mounts across repositories
    assert not [p for m, p, _s in log if m == "PUT" and "/blobs/uploads/" in p]  # no blob copied
    assert len([p for m, p, _s in log if m == "GET" and "/blobs/" in p]) == 4  # the 4 configs only


@pytest.mark.parametrize(
    ("node", "expected"), [("zen4", "zen4"), ("haswell", "haswell"), ("ivybridge", "x86_64")]
)
def test_explain_picks_the_right_build_of_the_new_index(
    registry, images, created, imagefit_cmd, facts_files, node, expected
):
    assert created[0].returncode == 0
    decision = explain(imagefit_cmd, f"{registry.host}/author/app:1", facts_files[node])
    assert decision["outcome"] == "selected"
    assert decision["chosen"]["build"] == expected
    assert decision["chosen"]["digest"] == images[expected]


def test_the_shim_agrees_and_runs_the_build(
    registry, images, created, shim_bin, podman_env, facts_files
):
    argv, env = podman_env
    env = {**env, "PATH": f"{shim_bin}:{env['PATH']}", "IMAGEFIT_FACTS": facts_files["zen4"]}
    ref = f"{registry.host}/author/app:1"
    args = [
        str(shim_bin / "podman"),
        *argv[1:],
        "run",
        "--rm",
        "--network=none",
        "--tls-verify=false",
        ref,
        "whichbuild",
    ]
    dry = subprocess.run(args, env={**env, "IMAGEFIT_DRY_RUN": "1"}, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert f"{registry.host}/author/app@{images['zen4']}" in json.loads(dry.stdout)
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "zen4"  # the mounted blobs make a pullable image


def test_index_create_from_a_yaml_file(registry, images, imagefit_cmd, facts_files, tmp_path):
    h = registry.host
    spec = tmp_path / "app.yaml"
    spec.write_text(f"""\
name: {h}/author/filed:2
annotations:
  org.opencontainers.image.description: GROMACS 2024, three builds
builds:
- ref: {h}/author/hsw:1
  target: haswell
- ref: ":gpu-build"
  target: x86_64_v3
  annotations:
    gpu.vendor: nvidia
    cuda.version: ">=12.2"
    compute_capabilities: "8.0,9.0"
    weight: 1
- ref: {h}/author/gen@{images["x86_64"]}
  target: x86_64
""")
    done = imagefit(imagefit_cmd, "index", "create", "--from", str(spec), "--tls-verify", "false")
    assert done.returncode == 0, done.stderr
    index, _digest = index_of(registry, "author/filed", "2")
    assert index["annotations"] == {
        "org.opencontainers.image.description": "GROMACS 2024, three builds"
    }
    assert [m["annotations"][TARGET] for m in index["manifests"]] == [
        "x86_64",
        "x86_64_v3",
        "haswell",
    ]
    gpu = index["manifests"][1]
    assert gpu["platform"] == {"architecture": "amd64", "os": "linux", "variant": "v3"}
    assert gpu["annotations"] == {
        TARGET: "x86_64_v3", P + "hardware.gpu.vendor": "nvidia", P + "hardware.gpu.cuda.version": ">=12.2",
        P + "hardware.gpu.compute_capabilities": "8.0,9.0", P + "weight": "1",
    }  # fmt: skip
    ref = f"{h}/author/filed:2"
    assert (
        explain(imagefit_cmd, ref, facts_files["haswell"])["chosen"]["digest"] == images["haswell"]
    )
    assert (
        explain(imagefit_cmd, ref, facts_files["haswell-gpu"])["chosen"]["digest"] == images["gpu"]
    )
    assert explain(imagefit_cmd, ref, facts_files["zen4"])["chosen"]["digest"] == images["x86_64"]


def test_index_create_dry_run_from_toml_pushes_nothing(registry, images, imagefit_cmd, tmp_path):
    h = registry.host
    spec = tmp_path / "app.toml"
    spec.write_text(f"""\
name = "{h}/author/dry:1"

[[builds]]
ref = "{h}/author/hsw:1"
target = "haswell"
annotations = {{ "mpi.abi" = "mpich", "mpi.version" = ">=4.1,<5" }}

[[builds]]
ref = "{h}/author/gen:1"
target = "x86_64"
""")
    since = registry.log_offset()
    done = imagefit(
        imagefit_cmd, "index", "create", "--from", str(spec), "--dry-run", "--tls-verify", "false"
    )
    assert done.returncode == 0, done.stderr
    index = json.loads(done.stdout)
    assert [m["digest"] for m in index["manifests"]] == [images["x86_64"], images["haswell"]]
    assert index["manifests"][1]["annotations"] == {
        TARGET: "haswell",
        P + "mpi.abi": "mpich",
        P + "mpi.version": ">=4.1,<5",
    }
    assert {m for m, _p, _s in registry.requests(since=since)} <= {"GET", "HEAD"}
    assert client(registry).find_manifest("author/dry", "1") is None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        ("{h}/author/hsw:1=haswel", "unknown CPU target 'haswel' (not an archspec name; did you mean haswell?)"),
        ("{h}/author/hsw:1=haswell,gpu.vendor=intel", "invalid annotation org.supercontainers.hardware.gpu.vendor: 'intel' is not nvidia, amd or none"),
        ("{h}/author/hsw:1=haswell,mpi.version=>=5,<4", "org.supercontainers.mpi.version: no version satisfies '>=5,<4'"),
        ("{h}/author/hsw:1=haswell,gpu.vendr=nvidia", "unknown key 'gpu.vendr' (did you mean org.supercontainers.hardware.gpu.vendor?)"),
        ("{h}/author/hsw:1=neoverse_v2", "CPU target neoverse_v2 is for aarch64; the image is amd64"),
        ("{h}/author/hsw:1=haswell,fabric=ethernet", "unknown fabric 'ethernet'"),
    ],
)  # fmt: skip
def test_index_create_refuses_bad_builds_with_one_line(
    registry, images, imagefit_cmd, build, message
):
    since = registry.log_offset()
    done = imagefit(imagefit_cmd, "index", "create", f"{registry.host}/author/refused:1", "--tls-verify", "false",
                    "--build", build.format(h=registry.host))  # fmt: skip
    assert done.returncode == 125
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagefit: ") and message in lines[0], (
        done.stderr
    )
    assert {m for m, _p, _s in registry.requests(since=since)} <= {"GET", "HEAD"}


def test_index_create_copies_builds_from_another_registry(
    registry, imagefit_cmd, facts_files, tmp_path
):
    with LocalRegistry(tmp_path / "other") as other:
        digest = push_image(other.host, "vendor/zen4:1", "zen4", tmp_path)
        done = imagefit(imagefit_cmd, "index", "create", f"{registry.host}/author/copied:1", "--tls-verify", "false",
                        "--build", f"{other.host}/vendor/zen4:1=zen4")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "copied" in done.stdout.splitlines()[0]
    decision = explain(imagefit_cmd, f"{registry.host}/author/copied:1", facts_files["zen4"])
    assert decision["chosen"]["digest"] == digest


def test_a_build_named_by_a_multi_arch_index_is_its_manifest_of_the_target_architecture(
    registry, imagefit_cmd, tmp_path
):
    builds = [
        {"name": "amd", "platform": {"architecture": "amd64", "os": "linux"}, "annotations": None},
        {"name": "arm", "platform": {"architecture": "arm64", "os": "linux"}, "annotations": None},
    ]
    multi = oci.build_and_push(registry.host, "author/multi", "1", builds, layout_dir=tmp_path)
    done = imagefit(imagefit_cmd, "index", "create", f"{registry.host}/author/multi:annotated",
                    "--build", f"{multi.ref}=neoverse_n1", "--build", f"{multi.ref}=x86_64",
                    "--dry-run", "--tls-verify", "false")  # fmt: skip
    assert done.returncode == 0, done.stderr
    index = json.loads(done.stdout)
    assert [(m["digest"], m["platform"]) for m in index["manifests"]] == [
        (multi.manifests["amd"], {"architecture": "amd64", "os": "linux"}),
        (multi.manifests["arm"], {"architecture": "arm64", "os": "linux", "variant": "v8.2"}),
    ]


def test_a_blob_the_source_lacks_is_uploaded_to_the_session_the_mount_opened(registry, images):
    c = client(registry)
    data = b"a blob only this test has\n"
    digest = oci.sha256_digest(data)
    location = c.mount_blob("author/mounted", digest, "author/gen")
    assert location is not None  # 202: Distribution 2.8 opened an upload instead
    c.put_blob("author/mounted", digest, data, location=location)
    assert c.blob_exists("author/mounted", digest)
    assert c.mount_blob("author/mounted2", digest, "author/mounted") is None  # now it mounts


# -- attach ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nfd_index(registry, images, imagefit_cmd):
    h = registry.host
    done = imagefit(imagefit_cmd, "index", "create", f"{h}/author/nfd:1", "--tls-verify", "false",
                    "--build", f"{h}/author/gen:1=x86_64", "--build", f"{h}/author/hsw:1=haswell",
                    "--build", f"{h}/author/app:zen4=zen4")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return index_of(registry, "author/nfd", "1")


def test_attach_to_a_build_then_explain_shows_the_nfd_set(
    registry, images, nfd_index, imagefit_cmd, facts_files, tmp_path
):
    _index, index_digest = nfd_index
    spec = tmp_path / "avx512.yaml"
    spec.write_text(AVX512_SPEC)
    ref = f"{registry.host}/author/nfd:1"
    done = imagefit(imagefit_cmd, "attach", ref, "--nfd", str(spec), "--build", "zen4",
                    "--created", "2024-05-01T12:00:00Z", "--tls-verify", "false")  # fmt: skip
    assert done.returncode == 0, done.stderr
    artifact = re.match(r"attached (sha256:[0-9a-f]{64}) to build zen4 ", done.stdout)[1]
    assert (
        f"(referrers tag {referrers_tag(images['zen4'])})" in done.stdout
    )  # Distribution 2.8: no OCI-Subject
    specs = fetch_nfd_specs(client(registry), "author/nfd", [images["zen4"], index_digest])
    assert [(s.digest, s.created, s.media_type) for s in specs[images["zen4"]]] == [
        (
            artifact,
            "2024-05-01T12:00:00Z",
            "application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml",
        )
    ]
    assert specs[images["zen4"]][0].document["compatibilities"][0]["tag"] == "avx512"
    assert specs[index_digest] == []
    decision = explain(imagefit_cmd, ref, facts_files["zen4"])
    zen4 = next(c for c in decision["candidates"] if c["digest"] == images["zen4"])
    nfd = [s for s in zen4["sets"] if s["source"] == f"nfd:{artifact}"]
    assert [(s["tag"], s["weight"], s["is_match"]) for s in nfd] == [("avx512", 5, True)]
    assert decision["chosen"]["digest"] == images["zen4"] and zen4["score"]["weight"] == 5
    manifest = json.loads(client(registry).get_manifest("author/nfd", artifact).body)
    assert manifest["artifactType"] == NFD_ARTIFACT_TYPE
    assert manifest["subject"]["digest"] == images["zen4"]
    assert manifest["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": oci.sha256_digest(b"{}"),
        "size": 2,
    }


def test_attach_to_the_index_by_default_and_the_newest_counts(
    registry, images, nfd_index, imagefit_cmd, facts_files, tmp_path
):
    _index, index_digest = nfd_index
    ref = f"{registry.host}/author/nfd:1"
    old, new = tmp_path / "old.yaml", tmp_path / "x86.yaml"
    old.write_text(AVX512_SPEC.replace("avx512", "older"))
    new.write_text(X86_SPEC)
    for path, created in ((new, "2025-01-02T00:00:00Z"), (old, "2024-01-01T00:00:00Z")):
        done = imagefit(
            imagefit_cmd,
            "attach",
            ref,
            "--nfd",
            str(path),
            "--created",
            created,
            "--tls-verify",
            "false",
        )
        assert done.returncode == 0, done.stderr
        assert " to the index " in done.stdout
    tag = client(registry).get_manifest("author/nfd", referrers_tag(index_digest))
    assert len(json.loads(tag.body)["manifests"]) == 2
    specs = fetch_nfd_specs(client(registry), "author/nfd", [index_digest])[index_digest]
    assert [s.document["compatibilities"][0]["tag"] for s in specs] == ["x86"]
    decision = explain(imagefit_cmd, ref, facts_files["haswell"])
    haswell = next(c for c in decision["candidates"] if c["digest"] == images["haswell"])
    tags = [s["tag"] for s in haswell["sets"] if s["source"].startswith("nfd:")]
    assert "x86" in tags and "older" not in tags
    assert decision["chosen"]["digest"] == images["haswell"]


def test_attach_to_a_build_named_by_a_digest_prefix(
    registry, images, nfd_index, imagefit_cmd, tmp_path
):
    spec = tmp_path / "x86.yaml"
    spec.write_text(X86_SPEC.replace("tag: x86", "tag: haswell-x86"))
    prefix = images["haswell"].removeprefix("sha256:")[:16]
    done = imagefit(imagefit_cmd, "attach", f"{registry.host}/author/nfd:1", "--nfd", str(spec),
                    "--build", prefix, "--tls-verify", "false")  # fmt: skip
    assert done.returncode == 0, done.stderr
    artifact = re.match(r"attached (sha256:[0-9a-f]{64}) to build ", done.stdout)[1]
    manifest = json.loads(client(registry).get_manifest("author/nfd", artifact).body)
    assert manifest["subject"]["digest"] == images["haswell"]


def test_attach_refuses_an_invalid_spec_with_one_line(registry, nfd_index, imagefit_cmd, tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(AVX512_SPEC.replace("op: Exists", "op: Exist"))
    done = imagefit(
        imagefit_cmd,
        "attach",
        f"{registry.host}/author/nfd:1",
        "--nfd",
        str(spec),
        "--tls-verify",
        "false",
    )
    assert done.returncode == 125
    assert done.stderr.strip().splitlines() == [
        f"imagefit: {spec}: compatibilities[0].rules[0].matchFeatures[0].matchExpressions.AVX512F.op: "
        "unknown op 'Exist' (one of In, NotIn, InRegexp, Exists, DoesNotExist, Gt, Ge, Lt, Le, GtLt, GeLe, IsTrue, IsFalse)"
    ]


# -- lint --------------------------------------------------------------------------


def test_lint_a_clean_index(registry, created, nfd_index, imagefit_cmd):
    for ref in (f"{registry.host}/author/app:1", f"{registry.host}/author/nfd:1"):
        done = imagefit(imagefit_cmd, "lint", ref, "--tls-verify", "false")
        assert (done.returncode, done.stdout) == (0, ""), done.stdout + done.stderr
        assert done.stderr.strip() == f"{ref}: clean"


def _b(name, arch="amd64", variant=None, **annotations):
    platform = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
    return {"name": name, "platform": platform, "annotations": annotations or None}


GEN = _b("gen", **{TARGET: "x86_64"})
LINT_CASES = {
    "unknown-target": ([GEN, _b("hsw", variant="v3", **{TARGET: "haswel"})],
                       "error: #1 haswel: unknown CPU target 'haswel' (not an archspec name; did you mean haswell?)"),
    "wrong-arch": ([GEN, _b("nv2", variant="v9", **{TARGET: "neoverse_v2"})],
                   "error: #1 neoverse_v2: CPU target neoverse_v2 is for aarch64; the platform is linux/amd64/v9"),
    "impossible-range": ([GEN, _b("mpi", variant="v2", **{TARGET: "x86_64_v2", P + "mpi.version": ">=5,<4"})],
                         "error: #1 x86_64_v2: org.supercontainers.mpi.version: no version satisfies '>=5,<4'"),
    "empty-cc": ([GEN, _b("cc", variant="v2", **{TARGET: "x86_64_v2", P + "hardware.gpu.compute_capabilities": ","})],
                 "error: #1 x86_64_v2: invalid annotation org.supercontainers.hardware.gpu.compute_capabilities: ',' names nothing"),
    "unknown-fabric": ([GEN, _b("fab", variant="v2", **{TARGET: "x86_64_v2", P + "network.fabric": "ethernet"})],
                       "error: #1 x86_64_v2+ethernet: invalid annotation org.supercontainers.network.fabric: unknown fabric 'ethernet' (verbs, cxi, efa, opa, tcp)"),
    "invalid-value": ([GEN, _b("w", variant="v2", **{TARGET: "x86_64_v2", P + "weight": "high"})],
                      "error: #1 x86_64_v2: invalid annotation org.supercontainers.weight: 'high' is not an integer"),
    "no-cpu-level": ([GEN, _b("v5", variant="v5")],
                     "error: #1 linux/amd64/v5: no host can run it: linux/amd64/v5 needs a newer CPU level than this host's linux/amd64/v4"),
    "overlap": ([GEN, _b("a", variant="v3", **{TARGET: "haswell"}), _b("b", variant="v3", **{TARGET: "haswell"})],
                "warning: #2 haswell@{b}: fits the same hosts as #1 haswell@{a} (same platform, requirements and weight): only index order decides, so #1 haswell@{a} always wins; drop one, or tell them apart (target, weight)"),
    "unknown-key": ([GEN, _b("typo", variant="v3", **{TARGET: "haswell", P + "hardware.cpu.target.microarh": "zen4"})],
                    "warning: #1 haswell: unknown key org.supercontainers.hardware.cpu.target.microarh (did you mean org.supercontainers.hardware.cpu.target.microarch?): imagefit ignores it"),
    "wrong-prefix": ([GEN, _b("prefix", variant="v3", **{TARGET: "haswell", "oci.opencontainers.image.created": "2024-01-01T00:00:00Z"})],
                     "warning: #1 haswell: oci.opencontainers.image.created has the wrong prefix 'oci.opencontainers.' (did you mean org.opencontainers.image.created?)"),
    "generic-not-first": ([_b("z", variant="v4", **{TARGET: "zen4"}), GEN],
                          "warning: #0 zen4: the first linux/amd64 build, but #1 x86_64 is more generic: runtimes without imagefit take the first match; put the generic build first"),
    "no-data": ([_b("amd"), _b("arm", arch="arm64")],
                "warning: index: no compatibility data: imagefit passes it through, and runtimes take the first platform match"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(LINT_CASES))
def test_lint_reports_each_finding(registry, imagefit_cmd, tmp_path, case):
    builds, expected = LINT_CASES[case]
    pushed = oci.build_and_push(
        registry.host, f"author/lint-{case}", "1", builds, layout_dir=tmp_path
    )
    done = imagefit(imagefit_cmd, "lint", pushed.ref, "--tls-verify", "false")
    assert done.returncode == 1, done.stdout + done.stderr
    # equal labels get 8 hex digits of their digest (scoring.labels)
    expected = expected.format(**{n: d.split(":")[1][:8] for n, d in pushed.manifests.items()})
    assert done.stdout.splitlines() == [expected]
    severity = expected.split(":")[0]
    assert done.stderr.strip() == f"{pushed.ref}: " + (
        "1 error, 0 warnings" if severity == "error" else "0 errors, 1 warning"
    )


def test_lint_takes_arch_and_family_specific_capabilities(registry, imagefit_cmd, tmp_path):
    """``9.0a`` (sm_90a) and ``10.0f`` (sm_100f) first in a build's capabilities:
    a host with that GPU runs it, so no 'no host can run it' error (the
    authoring check once made its test host a device of capability '9.0a')."""
    cuda = {P + "hardware.gpu.vendor": "nvidia"}
    builds = [GEN, _b("a", variant="v2", **{TARGET: "x86_64_v2", **cuda, P + "hardware.gpu.compute_capabilities": "9.0a,8.0"}),
              _b("f", variant="v3", **{TARGET: "haswell", **cuda, P + "hardware.gpu.compute_capabilities": "10.0f"})]  # fmt: skip
    pushed = oci.build_and_push(
        registry.host, "author/lint-arch-cc", "1", builds, layout_dir=tmp_path
    )
    done = imagefit(imagefit_cmd, "lint", pushed.ref, "--tls-verify", "false")
    assert (done.returncode, done.stdout) == (0, ""), done.stdout + done.stderr
    assert done.stderr.strip() == f"{pushed.ref}: clean"


def test_lint_reports_an_nfd_artifact_that_does_not_parse_as_json_too(
    registry, imagefit_cmd, tmp_path
):
    pushed = oci.build_and_push(registry.host, "author/lint-nfd", "1", [GEN], layout_dir=tmp_path)
    bad = AVX512_SPEC.replace("op: Exists", "op: Exists, value: [x]").encode()
    artifact = oci.push_artifact(registry.host, "author/lint-nfd", oci.subject_descriptor(pushed, "gen"), bad,
                                 created="2024-01-01T00:00:00Z")  # fmt: skip
    done = imagefit(imagefit_cmd, "lint", pushed.ref, "--tls-verify", "false", "--json")
    assert done.returncode == 1, done.stderr
    out = json.loads(done.stdout)
    assert out["digest"] == pushed.index_digest
    assert out["findings"] == [{
        "severity": "error", "code": "nfd", "build": "#0 x86_64", "position": 0,
        "message": f"NFD artifact {artifact[:19]}: NFD set 'avx512': rule cpu: cpu.cpuid AVX512F Exists ['x']: "
                   "'value' must be empty for op Exists (have ['x'])",
    }]  # fmt: skip


def test_lint_an_unreachable_registry_is_an_error(imagefit_cmd):
    done = imagefit(
        imagefit_cmd, "lint", "127.0.0.1:9/author/app:1", "--tls-verify", "false", "--timeout", "5"
    )
    assert done.returncode == 125
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


# -- conform -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def conform_images(registry, tmp_path_factory):
    """good: the busybox test image; no-shell: no /bin/sh, USER 1000:1000;
    broken-login: /bin/sh, but /etc/profile fails and /tmp is not writable."""
    tmp = tmp_path_factory.mktemp("author-conform")
    h = registry.host
    push_image(h, "author/good:1", "good", tmp)
    bad = custom_image(tmp / "bad", [oci.build_layer("no-shell")],
                       {"User": "1000:1000", "Env": ["PATH=/opt/app/bin:/usr/bin:/bin"], "Entrypoint": ["/opt/app/bin/whichbuild"]})  # fmt: skip
    push_manifest_layout(h, "author/no-shell:1", tmp / "bad", bad)
    broken = oci._make_layer([("etc", "dir", 0o755, None), ("etc/profile", "file", 0o644, b"exit 3\n"),
                              ("tmp", "dir", 0o755, None)])  # fmt: skip
    desc = custom_image(
        tmp / "broken", [oci.base_layer(), broken], {"Env": ["PATH=/opt/app/bin:/usr/bin:/bin"]}
    )
    push_manifest_layout(h, "author/broken-login:1", tmp / "broken", desc)
    return {name: f"{h}/author/{name}:1" for name in ("good", "no-shell", "broken-login")}


def conform(imagefit_cmd, podman_env, ref, *extra, env=None):
    argv, penv = podman_env
    options = [f"--podman-arg={a}" for a in argv[1:]]
    return imagefit(
        imagefit_cmd, "conform", ref, "--tls-verify", "false", *options, *extra, env=env or penv
    )


def test_conform_passes_a_good_image_with_the_real_podman_behind_a_shim(
    imagefit_cmd, podman_env, conform_images, shim_bin
):
    _argv, env = podman_env
    # the shim first on PATH, in dry-run mode: conform must still run the real podman
    env = {**env, "PATH": f"{shim_bin}:{env['PATH']}", "IMAGEFIT_DRY_RUN": "1"}
    done = conform(imagefit_cmd, podman_env, conform_images["good"], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [ln.split()[:2] for ln in lines[1:7]] == [
        ["PASS", "shell"], ["PASS", "arbitrary-uid"], ["PASS", "writable-tmp"], ["PASS", "login-shell"],
        ["PASS", "user"], ["PASS", "image-path"],
    ]  # fmt: skip
    assert (
        "a plain login shell sets /usr/sbin:/usr/bin:/sbin:/bin" in lines[6]
    )  # the recipe is what keeps it
    assert lines[-1] == "conform: 6 of 6 checks pass"


def test_conform_reports_an_image_without_a_shell_and_with_a_fixed_user(
    imagefit_cmd, podman_env, conform_images
):
    done = conform(imagefit_cmd, podman_env, conform_images["no-shell"], "--json")
    assert done.returncode == 1, done.stderr
    out = json.loads(done.stdout)
    assert out["passed"] is False
    assert [(c["name"], c["status"]) for c in out["checks"]] == [
        ("shell", "fail"), ("arbitrary-uid", "skip"), ("writable-tmp", "skip"), ("login-shell", "skip"),
        ("user", "warn"), ("image-path", "skip"),
    ]  # fmt: skip
    assert out["checks"][4]["detail"].startswith("USER 1000:1000 is fixed")


def test_conform_reports_a_failing_login_shell_and_a_read_only_tmp(
    imagefit_cmd, podman_env, conform_images
):
    done = conform(imagefit_cmd, podman_env, conform_images["broken-login"])
    assert done.returncode == 1, done.stderr
    status = {ln.split()[1]: ln.split()[0] for ln in done.stdout.splitlines()[1:7]}
    assert status == {"shell": "PASS", "arbitrary-uid": "PASS", "writable-tmp": "FAIL", "login-shell": "FAIL",
                      "user": "PASS", "image-path": "FAIL"}  # fmt: skip
    assert "FAIL  login-shell    /bin/sh -l -c true exits 3" in done.stdout


# -- docs/author.md ------------------------------------------------------------------


def _doc_blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOCS.read_text(), flags=re.S)


def test_every_command_in_the_author_guide_runs(
    registry, images, imagefit_cmd, podman_env, tmp_path
):
    """The guide's files (``# NAME`` first line) are written, its ``imagefit``
    commands run in order against the test registry (REGISTRY), with
    ``--tls-verify false`` (plain HTTP) and, for conform, the isolated storage."""
    h = registry.host
    for n in ("x86_64", "haswell", "zen4", "neoverse_v2", "cuda"):
        push_image(
            h,
            f"apps/gromacs-{n}:2024",
            n,
            tmp_path,
            architecture="arm64" if n == "neoverse_v2" else "amd64",
        )
    for block in _doc_blocks("yaml") + _doc_blocks("toml"):
        first, _, body = block.partition("\n")
        if first.startswith("# "):
            (tmp_path / first[2:].strip()).write_text(body.replace("REGISTRY", h))
    commands = [ln.strip() for block in _doc_blocks("sh") for ln in block.replace("\\\n", " ").splitlines()
                if ln.strip().startswith("imagefit ")
                and not ln.strip().startswith("imagefit index build")]  # fmt: skip
    assert len(commands) == 6  # and the index build commands, run by tests/test_index_build.py
    assert {c.split()[1] for c in commands} >= {"index", "attach", "lint", "conform"}
    argv, env = podman_env
    import shlex

    for command in commands:
        words = shlex.split(command.split(" #", 1)[0].replace("REGISTRY", h))
        words += ["--tls-verify", "false"]
        if words[1] == "conform":
            words += [f"--podman-arg={a}" for a in argv[1:]]
        done = imagefit(imagefit_cmd, *words[1:], env=env, cwd=tmp_path)
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"


def test_an_mpi_version_alone_is_satisfiable(registry, images, imagefit_cmd):
    h = registry.host
    done = imagefit(imagefit_cmd, "index", "create", f"{h}/author/mpiver:1", "--build",
                    f"{h}/author/hsw:1=haswell,mpi.version=>=4.1,<5", "--dry-run", "--tls-verify", "false")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["manifests"][0]["annotations"][P + "mpi.version"] == ">=4.1,<5"
