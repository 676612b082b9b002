"""GPU access for the chosen build (issue 13 item 3), through the installed shim.

When imagefit chose a build that requires an NVIDIA or AMD GPU, the command
that starts the container gets the runtime's GPU options (podman: the CDI
device ``nvidia.com/gpu=all``; docker ``--gpus=all``; apptainer/singularity
``--nv``/``--rocm``; AMD device nodes and groups), unless the user gave a
device/GPU option, hid the GPUs, or turned it off (``gpu_access = "never"``,
``IMAGEFIT_GPU_ACCESS``). Sarus gets nothing (its hooks do it).

Real registry (tests/support/registry.py) with an index of a CPU, a CUDA and
a ROCm build; host facts files with an H100, an MI250X (gfx90a) or no GPU
(tests/test_e2e_scoring.py ``host``); the shim installed by ``imagefit
install`` in front of recording stand-ins (tests/support/standin.py, via
tests/test_requested_platform.py ``run``). A CDI spec is written into
``/var/run/cdi`` (podman 4.3 reads only ``/etc/cdi`` and ``/var/run/cdi``:
container-device-interface pkg/cdi/spec-dirs.go; its containers.conf has no
``cdi_spec_dirs``) under a unique name and removed afterwards. Real podman
4.3 shows the CDI device reaching the container.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from hostfacts.model import AmdFacts, AmdGpu
from shim import gpu_access
from tests.conftest import world_readable_tmp
from tests.support import oci
from tests.test_e2e_podman import shim_run
from tests.test_e2e_scoring import OK, ZEN4, h100, host
from tests.test_hot_path import NEVER, imported, launcher_argv
from tests.test_requested_platform import run

if os.uname().machine != "x86_64":
    pytest.skip("the host architecture these cases assume is x86_64", allow_module_level=True)

P = "org.supercontainers."
TARGET = P + "hardware.cpu.target.microarch"
RUNTIMES = ("podman", "docker", "apptainer", "singularity", "sarus")
CDI_DEVICE = "--device=nvidia.com/gpu=all"
PROBE_PATH = "/imagefit-gpu-probe"
PROBE_TEXT = "imagefit-gpu-probe-ok"


def _b(name: str, **annotations: str) -> dict:
    return {"name": name, "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {TARGET: "x86_64", **annotations}}  # fmt: skip


BUILDS = [
    _b("cpu"),
    _b(
        "cuda",
        **{
            P + "hardware.gpu.vendor": "nvidia",
            P + "hardware.gpu.cuda.version": ">=12.0",
            P + "hardware.gpu.compute_capabilities": "9.0",
        },
    ),  # fmt: skip
    _b("rocm", **{P + "hardware.gpu.vendor": "amd", P + "hardware.gpu.amd.gfx": "gfx90a"}),
]


@pytest.fixture(scope="module")
def app(registry, tmp_path_factory):
    return oci.build_and_push(registry.host, "hpc/gpu-app", "1", BUILDS,
                              layout_dir=tmp_path_factory.mktemp("gpu-app"))  # fmt: skip


@pytest.fixture(scope="module")
def facts():
    """Facts files: {"cpu": no GPU, "nvidia": an H100, "amd": an MI250X}."""
    out = world_readable_tmp("imagefit-gpu-facts-")
    mi250x = AmdFacts(probe=OK, driver_version="6.7.0",
                      devices=(AmdGpu(node=1, gfx_target="gfx90a", gfx_target_version=90010),))  # fmt: skip
    amd = host(ZEN4, "gpu-mi250x")
    made = {
        "cpu": host(ZEN4, "gpu-cpu"),
        "nvidia": host(ZEN4, "gpu-h100", gpu=h100()),
        "amd": amd.model_copy(update={"gpu": amd.gpu.model_copy(update={"amd": mi250x})}),
    }
    files = {}
    for name, facts in made.items():
        path = out / f"{name}.json"
        path.write_text(facts.model_dump_json(indent=2))
        path.chmod(0o644)
        files[name] = str(path)
    yield files
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def shim_dir(imagefit_cmd):
    """PREFIX/bin with the shim linked as every runtime."""
    prefix = world_readable_tmp("imagefit-gpu-prefix-")
    runtimes = [a for r in RUNTIMES for a in ("--runtime", r)]
    subprocess.run([*imagefit_cmd, "install", "--prefix", str(prefix), *runtimes],
                   check=True, capture_output=True, text=True)  # fmt: skip
    yield prefix / "bin"
    shutil.rmtree(prefix, ignore_errors=True)


def _no_system_gpu_config():
    for directory in (*gpu_access.CDI_DIRS, *gpu_access.HOOK_DIRS):
        if os.path.isdir(directory) and any(
            not n.startswith("imagefit-test-") for n in os.listdir(directory)
        ):
            pytest.skip(f"{directory} holds this machine's own CDI specs or hooks")


@pytest.fixture
def cdi_spec():
    """A CDI spec in /var/run/cdi: kind nvidia.com/gpu, a device ``all``
    whose only edit mounts a probe file at /imagefit-gpu-probe (read-only)."""
    if os.geteuid() != 0:
        pytest.skip("writing /var/run/cdi needs root")
    _no_system_gpu_config()
    probe_dir = world_readable_tmp("imagefit-gpu-probe-")
    probe = probe_dir / "probe"
    probe.write_text(PROBE_TEXT + "\n")
    probe.chmod(0o644)
    spec = {
        "cdiVersion": "0.5.0",
        "kind": "nvidia.com/gpu",
        "devices": [{"name": "all", "containerEdits": {"mounts": [
            {"hostPath": str(probe), "containerPath": PROBE_PATH, "options": ["ro", "bind"]}]}}],
    }  # fmt: skip
    try:
        with installed_cdi_spec(spec) as path:
            yield path
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)


@contextlib.contextmanager
def installed_cdi_spec(spec: dict):
    """`spec` as a YAML file of a unique name in /var/run/cdi (podman 4.3
    reads /etc/cdi and /var/run/cdi only), removed afterwards with the
    directory when it made it. Needs root and a machine without CDI specs or
    NVIDIA hooks of its own (else the test is skipped)."""
    if os.geteuid() != 0:
        pytest.skip("writing /var/run/cdi needs root")
    _no_system_gpu_config()
    import yaml

    directory = Path("/var/run/cdi")
    made = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"imagefit-test-{secrets.token_hex(6)}.yaml"
    path.write_text(yaml.safe_dump(spec))
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        if made:
            try:
                directory.rmdir()
            except OSError:
                pass


@pytest.fixture
def nvidia_hook(tmp_path):
    """An NVIDIA OCI hook in /etc/containers/oci/hooks.d whose program is a
    harmless script and whose condition (an annotation no container has)
    never holds, so no podman run on this machine executes it."""
    if os.geteuid() != 0:
        pytest.skip("writing /etc/containers/oci/hooks.d needs root")
    _no_system_gpu_config()
    program = world_readable_tmp("imagefit-hook-") / "nvidia-container-runtime-hook"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    directory = Path("/etc/containers/oci/hooks.d")
    made = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"imagefit-test-{secrets.token_hex(6)}.json"
    path.write_text(json.dumps({
        "version": "1.0.0", "hook": {"path": str(program), "args": [program.name, "prestart"]},
        "when": {"annotations": {"^imagefit-test-never$": "^never$"}}, "stages": ["prestart"],
    }))  # fmt: skip
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        if made:
            try:
                directory.rmdir()
            except OSError:
                pass
        shutil.rmtree(program.parent, ignore_errors=True)


def calls(tmp_path, runtime) -> list[list[str]]:
    log = tmp_path / "real" / f"{runtime}.calls.jsonl"
    return [json.loads(line)["argv"] for line in log.read_text().splitlines()]


def shim(shim_dir, runtime, args, facts, tmp_path, call=-1, **env):
    """The argv the real `runtime` received for its main command (the last
    call by default: Sarus runs after its pull), and the shim's stderr. The registry is insecure by
    registries.conf (the runtime's own knowledge: no TLS option added)."""
    conf = tmp_path / "insecure-registries.conf"
    host = next(a for a in args if "/hpc/gpu-app" in a).removeprefix("docker://").split("/")[0]
    conf.write_text(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n')
    env = {"CONTAINERS_REGISTRIES_CONF": str(conf), **env}
    done, _first = run(shim_dir, runtime, args, facts, tmp_path, IMAGEFIT_LOGIN="never", **env)
    assert done.returncode == 0, done.stderr
    return calls(tmp_path, runtime)[call], done.stderr


def pinned(app, build: str) -> str:
    return f"{app.repository}@{app.manifests[build]}"


def operand(runtime: str, ref: str) -> str:
    return f"docker://{ref}" if runtime in ("apptainer", "singularity") else ref


# (runtime, facts, user words before the image, environment, build, words imagefit adds)
NVIDIA = [
    ("podman", "nvidia", [], {}, "cuda", [CDI_DEVICE]),
    ("podman", "nvidia", ["--device", "/dev/fuse"], {}, "cuda", []),
    ("podman", "nvidia", ["--gpus", "all"], {}, "cuda", []),
    ("podman", "nvidia", [], {"CUDA_VISIBLE_DEVICES": "0"}, "cuda",
     [CDI_DEVICE, "--env=CUDA_VISIBLE_DEVICES"]),
    ("podman", "nvidia", ["-e", "CUDA_VISIBLE_DEVICES=0"], {"CUDA_VISIBLE_DEVICES": "0"}, "cuda",
     [CDI_DEVICE]),
    ("podman", "nvidia", [], {"IMAGEFIT_GPU_ACCESS": "never"}, "cuda", []),
    ("podman", "nvidia", [], {"IMAGEFIT_GPU_ACCESS": "auto"}, "cuda", [CDI_DEVICE]),
    ("podman", "cpu", [], {}, "cpu", []),
    ("docker", "nvidia", [], {}, "cuda", ["--gpus=all"]),
    ("docker", "nvidia", [], {"CUDA_VISIBLE_DEVICES": "0", "NVIDIA_VISIBLE_DEVICES": "0"}, "cuda",
     ["--gpus=device=0", "--env=CUDA_VISIBLE_DEVICES"]),  # the job's GPU, not all of them
    ("docker", "nvidia", ["--gpus", "device=0"], {}, "cuda", []),
    ("docker", "nvidia", ["--device", "/dev/fuse"], {}, "cuda", []),
    ("docker", "nvidia", [], {"IMAGEFIT_GPU_ACCESS": "never"}, "cuda", []),
    ("docker", "cpu", [], {}, "cpu", []),
    ("apptainer", "nvidia", [], {}, "cuda", ["--nv"]),
    ("apptainer", "nvidia", ["--nv"], {}, "cuda", []),
    ("apptainer", "nvidia", ["--nvccli"], {}, "cuda", []),
    ("apptainer", "nvidia", ["--rocm"], {}, "cuda", []),
    ("apptainer", "nvidia", [], {"APPTAINER_NV": "1"}, "cuda", []),
    ("apptainer", "nvidia", ["--contain"], {}, "cuda", ["--nv"]),
    ("apptainer", "nvidia", [], {"IMAGEFIT_GPU_ACCESS": "never"}, "cuda", []),
    ("apptainer", "cpu", [], {}, "cpu", []),
    ("singularity", "nvidia", [], {}, "cuda", ["--nv"]),
    ("singularity", "nvidia", [], {"SINGULARITY_NV": "true"}, "cuda", []),
    ("singularity", "cpu", [], {}, "cpu", []),
    ("sarus", "nvidia", [], {}, "cuda", []),
    ("sarus", "cpu", [], {}, "cpu", []),
]  # fmt: skip


def _id(case) -> str:
    runtime, facts, words, env, _build, _added = case
    return "-".join([runtime, facts, *words, *(f"{k}={v}" for k, v in env.items())])


@pytest.mark.parametrize(("runtime", "node", "words", "env", "build", "added"), NVIDIA,
                         ids=[_id(c) for c in NVIDIA])  # fmt: skip
def test_exact_argv_per_runtime(
    shim_dir, app, facts, cdi_spec, tmp_path, runtime, node, words, env, build, added
):
    verb = ["run"]
    argv, _stderr = shim(shim_dir, runtime, [*verb, *words, operand(runtime, app.ref), "true"],
                         facts[node], tmp_path, **env)  # fmt: skip
    assert argv == [*verb, *added, *words, operand(runtime, pinned(app, build)), "true"], _stderr


AMD_CASES = [
    ("podman", [], None),
    ("podman", ["--group-add", "video"], ["--device=/dev/kfd", "--device=/dev/dri"]),
    ("podman", ["--device", "/dev/kfd"], []),
    ("docker", [], None),
    ("apptainer", [], ["--rocm"]),
    ("apptainer", ["--rocm"], []),
    ("singularity", [], ["--rocm"]),
    ("sarus", [], []),
]


@pytest.mark.parametrize(("runtime", "words", "added"), AMD_CASES,
                         ids=[f"{r}-{' '.join(w)}" for r, w, _ in AMD_CASES])  # fmt: skip
def test_amd_build_gets_its_devices(shim_dir, app, facts, tmp_path, runtime, words, added):
    if added is None:  # rootful podman and docker: the groups owning the device nodes
        groups = [f"--group-add={g}" for g in gpu_access.amd_groups()]
        added = ["--device=/dev/kfd", "--device=/dev/dri", *groups]
    argv, _ = shim(shim_dir, runtime, ["run", *words, operand(runtime, app.ref), "true"],
                   facts["amd"], tmp_path)  # fmt: skip
    assert argv == ["run", *added, *words, operand(runtime, pinned(app, "rocm")), "true"]


@pytest.mark.parametrize(
    ("runtime", "verb", "added"),
    [("podman", ["create"], [CDI_DEVICE]), ("docker", ["create"], ["--gpus=all"]),
     ("apptainer", ["exec"], ["--nv"]), ("apptainer", ["shell"], ["--nv"]),
     ("apptainer", ["instance", "start"], ["--nv"])],
)  # fmt: skip
def test_every_verb_that_starts_a_container(
    shim_dir, app, facts, cdi_spec, tmp_path, runtime, verb, added
):
    image = operand(runtime, app.ref)
    tail = ["inst1"] if verb == ["instance", "start"] else ["true"]
    if verb == ["shell"]:
        tail = []
    argv, _ = shim(shim_dir, runtime, [*verb, image, *tail], facts["nvidia"], tmp_path)
    assert argv == [*verb, *added, operand(runtime, pinned(app, "cuda")), *tail]


@pytest.mark.parametrize("runtime", ["podman", "apptainer"])
def test_a_pull_gets_no_gpu_options(shim_dir, app, facts, cdi_spec, tmp_path, runtime):
    args = ["pull", operand(runtime, app.ref)] if runtime == "podman" else [
        "pull", "app.sif", operand(runtime, app.ref)]  # fmt: skip
    first, _ = shim(shim_dir, runtime, args, facts["nvidia"], tmp_path, call=0)
    assert pinned(app, "cuda") in " ".join(first)
    assert not any(w in first for w in (CDI_DEVICE, "--nv", "--gpus=all"))


@pytest.mark.parametrize("value", ["NONE", "", "void"])
@pytest.mark.parametrize("runtime", ["podman", "docker", "apptainer"])
def test_hidden_gpus_get_no_gpu_options(shim_dir, app, facts, cdi_spec, tmp_path, runtime, value):
    """``NVIDIA_VISIBLE_DEVICES=none`` (or ``CUDA_VISIBLE_DEVICES=""``): the
    job has no GPU; whichever build was chosen, no GPU option is added."""
    name = "CUDA_VISIBLE_DEVICES" if value == "" else "NVIDIA_VISIBLE_DEVICES"
    argv, _ = shim(shim_dir, runtime, ["run", operand(runtime, app.ref), "true"],
                   facts["nvidia"], tmp_path, **{name: value})  # fmt: skip
    assert not any(w in argv for w in (CDI_DEVICE, "--nv", "--gpus=all")), argv
    assert not any(w.startswith("--env=") for w in argv), argv


def test_a_container_env_hiding_the_gpus_gets_no_gpu_options(
    shim_dir, app, facts, cdi_spec, tmp_path
):
    """The container's variable is the job's: no GPU in it, so the CPU build
    (before: the CUDA build, chosen for the caller's GPUs), and no GPU option."""
    args = ["run", "-e", "NVIDIA_VISIBLE_DEVICES=none", app.ref, "true"]
    argv, _ = shim(shim_dir, "podman", args, facts["nvidia"], tmp_path)
    assert argv == ["run", "-e", "NVIDIA_VISIBLE_DEVICES=none", pinned(app, "cpu"), "true"]


@pytest.mark.parametrize("runtime", ["podman", "docker", "apptainer", "singularity"])
def test_a_cache_hit_adds_the_same_options_without_the_registry(
    shim_dir, app, facts, cdi_spec, tmp_path, runtime
):
    args = ["run", operand(runtime, app.ref), "true"]
    first, _ = shim(shim_dir, runtime, args, facts["nvidia"], tmp_path)
    dead = tmp_path / "dead-registries.conf"  # the registry moved to a closed port
    dead.write_text(f'[[registry]]\nprefix = "{app.ref.split("/")[0]}"\n'
                    f'location = "127.0.0.1:9"\ninsecure = true\n')  # fmt: skip
    second, stderr = shim(shim_dir, runtime, args, facts["nvidia"], tmp_path,
                          CONTAINERS_REGISTRIES_CONF=str(dead))  # fmt: skip
    assert second == first and pinned(app, "cuda") in " ".join(second), stderr
    assert any(w in second for w in (CDI_DEVICE, "--nv", "--gpus=all")), second
    assert stderr == ""


def test_the_site_config_turns_it_off_and_a_bad_value_is_one_line(
    shim_dir, app, facts, cdi_spec, tmp_path
):
    site = tmp_path / "site.toml"
    site.write_text('gpu_access = "never"\n')
    site.chmod(0o644)
    args = ["run", app.ref, "true"]
    argv, _ = shim(shim_dir, "podman", args, facts["nvidia"], tmp_path,
                   IMAGEFIT_SITE_CONFIG=str(site))  # fmt: skip
    assert argv == ["run", pinned(app, "cuda"), "true"]
    argv, _ = shim(shim_dir, "podman", args, facts["nvidia"], tmp_path,
                   IMAGEFIT_SITE_CONFIG=str(site), IMAGEFIT_GPU_ACCESS="auto")  # fmt: skip
    assert argv == ["run", CDI_DEVICE, pinned(app, "cuda"), "true"]  # the variable wins
    site.write_text('gpu_access = "sometimes"\n')
    for env in ({"IMAGEFIT_SITE_CONFIG": str(site)}, {"IMAGEFIT_GPU_ACCESS": "yes"}):
        done, argv = run(shim_dir, "podman", args, facts["nvidia"], tmp_path, **env)
        assert done.returncode == 125 and argv is None, done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("imagefit: ")
        assert "gpu_access must be one of auto, never" in done.stderr


def test_podman_without_cdi_spec_or_hook_warns_once_with_the_fix(shim_dir, app, facts, tmp_path):
    _no_system_gpu_config()
    for directory in gpu_access.CDI_DIRS:
        if os.path.isdir(directory) and os.listdir(directory):
            pytest.skip(f"{directory} is not empty")
    argv, stderr = shim(shim_dir, "podman", ["run", app.ref, "true"], facts["nvidia"], tmp_path)
    assert argv == ["run", pinned(app, "cuda"), "true"]
    assert stderr.count("\n") == 1 and gpu_access.CDI_FIX in stderr, stderr


def test_podman_with_the_nvidia_hook_adds_only_the_visible_devices(
    shim_dir, app, facts, nvidia_hook, tmp_path
):
    argv, stderr = shim(shim_dir, "podman", ["run", app.ref, "true"], facts["nvidia"], tmp_path,
                        NVIDIA_VISIBLE_DEVICES="0")  # fmt: skip
    assert argv == ["run", "--env=NVIDIA_VISIBLE_DEVICES", pinned(app, "cuda"), "true"]
    assert stderr == ""


def test_a_hit_with_a_cdi_spec_imports_no_parser(shim_bin, app, facts, cdi_spec, tmp_path):
    """The CDI check on a decision-cache hit reads no spec: no json, yaml or re."""
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "IMAGEFIT_SITE_CONFIG": "/nonexistent.toml",
           "IMAGEFIT_PODMAN": "/bin/true", "IMAGEFIT_FACTS": facts["nvidia"],
           "CONTAINERS_REGISTRIES_CONF": str(tmp_path / "registries.conf")}  # fmt: skip
    (tmp_path / "registries.conf").write_text("")
    argv = launcher_argv(shim_bin / "podman", "run", "--tls-verify=false", app.ref, "true")
    for _ in range(2):  # a miss (the CDI spec is parsed once), then a hit
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
    modules = imported(done)
    assert "shim.gpu_access" in modules
    assert [m for m in modules if m in ("yaml", "json", "re", *NEVER)] == [], modules
    # the answer is kept per node (a home shared by a cluster's nodes keeps each one's)
    kept = sorted(p.name for p in (tmp_path / "cache" / "imagefit").glob("gpu-access*"))
    assert kept == [f"gpu-access.{os.uname().nodename}"]


# -- real podman 4.3 ----------------------------------------------------------------------


def test_real_podman_gets_the_cdi_device_for_a_gpu_build_only(
    shim_bin, podman_env, app, facts, cdi_spec
):
    script = f"cat {PROBE_PATH} 2>/dev/null || echo absent; whichbuild"
    args = ["run", "--rm", "--network=none", "--tls-verify=false", app.ref, "sh", "-c", script]
    gpu = shim_run(shim_bin, podman_env, args, facts=facts["nvidia"])
    assert gpu.returncode == 0, gpu.stderr
    assert gpu.stdout.split() == [PROBE_TEXT, "cuda"], gpu.stdout
    cpu = shim_run(shim_bin, podman_env, args, facts=facts["cpu"])
    assert cpu.returncode == 0, cpu.stderr
    assert cpu.stdout.split() == ["absent", "cpu"], cpu.stdout


@pytest.mark.parametrize(
    ("annotations", "features", "vendor"),
    [
        ({}, [], ""),
        ({TARGET: "zen4"}, ["cpu:zen4"], ""),
        ({P + "hardware.gpu.vendor": "nvidia"}, [], "nvidia"),
        ({P + "hardware.gpu.cuda.version": ">=12.0"}, [], "nvidia"),
        ({P + "hardware.gpu.compute_capabilities": "8.0+"}, [], "nvidia"),
        ({P + "hardware.gpu.vendor": "amd"}, [], "amd"),
        ({P + "hardware.gpu.amd.gfx": "gfx942"}, [], "amd"),
        ({P + "hardware.gpu.vendor": "none"}, [], ""),
        ({}, ["nv-compute-capability-9-0"], "nvidia"),
        ({}, ["nvidia-12-4"], "nvidia"),
    ],
)
def test_the_builds_gpu_vendor_from_annotations_and_feature_tokens(annotations, features, vendor):
    from scoring import parse_index

    platform = {"architecture": "amd64", "os": "linux", "features": features}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": "sha256:" + "a" * 64, "size": 1, "platform": platform,
                            "annotations": annotations}]}  # fmt: skip
    assert gpu_access.build_vendor(parse_index(index)[0]) == vendor


def test_cdi_spec_and_hook_recognition():
    def cdi_spec_all(document) -> bool:  # a spec podman's CDI mode counts (gpu_access._scan)
        return "all" in gpu_access.cdi_gpu_names(document)

    assert cdi_spec_all({"kind": "nvidia.com/gpu", "devices": [{"name": "all"}]})
    assert not cdi_spec_all({"kind": "nvidia.com/gpu", "devices": [{"name": "0"}]})
    assert not cdi_spec_all({"kind": "amd.com/gpu", "devices": [{"name": "all"}]})
    assert not cdi_spec_all(["kind", "nvidia.com/gpu"])
    assert not cdi_spec_all({"kind": "nvidia.com/gpu", "devices": "all"})
    assert gpu_access.nvidia_hook({"hook": {"path": "/usr/bin/nvidia-container-runtime-hook"}})
    assert gpu_access.nvidia_hook({"hook": {"path": "/usr/bin/nvidia-container-toolkit"}})
    assert not gpu_access.nvidia_hook({"hook": {"path": "/usr/bin/other-hook"}})
    assert not gpu_access.nvidia_hook({"hook": "nvidia-container-toolkit"})
