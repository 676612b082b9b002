"""The GPUs of the container, as the command line gives them (issue 13's
leftovers: a command line's visible-device variables and GPU options narrow
the choice; podman's CDI gets the job's GPUs, not all of them).

The container's visible-device variables are the job's: what the command
line sets (podman/docker ``-e NAME=VALUE``, apptainer ``--env``,
``APPTAINERENV_NAME``; ``--cleanenv``/``--containall`` drop the caller's),
over the caller's. The GPUs the user gives the container (podman ``--device
nvidia.com/gpu=N``, docker ``--gpus device=N`` / ``--gpus 2``) are its
``NVIDIA_VISIBLE_DEVICES``. The build must fit those GPUs, and podman's CDI
device options name the job's GPUs (``nvidia.com/gpu=1``) where the CDI spec
names them.

Through the installed shim in front of recording stand-ins (the argv each
runtime received), facts files (an A100 at index 0 and an H100 at index 1),
and a CDI spec in /var/run/cdi naming ``all``, ``0`` and ``1``, as
``nvidia-ctk cdi generate`` writes by default (``--device-name-strategy=index``).
"""

from __future__ import annotations

import os

import pytest

from tests.test_gpu_access import installed_cdi_spec, shim_dir  # noqa: F401
from tests.test_gpu_ranking import H100_UUID, facts, indexes  # noqa: F401
from tests.test_requested_platform import run

if os.uname().machine != "x86_64":
    pytest.skip("the host architecture these cases assume is x86_64", allow_module_level=True)

ALL = "--device=nvidia.com/gpu=all"


@pytest.fixture
def cdi_by_index():
    """A CDI spec in /var/run/cdi, kind nvidia.com/gpu, devices ``all``,
    ``0`` and ``1`` (each with an empty edit: these tests read argv only)."""
    spec = {
        "cdiVersion": "0.5.0",
        "kind": "nvidia.com/gpu",
        "devices": [
            {"name": n, "containerEdits": {"env": [f"IMAGEFIT_TEST_GPU={n}"]}}
            for n in ("0", "1", "all")
        ],
    }
    with installed_cdi_spec(spec) as path:
        yield path


def _run(shim_dir, indexes, facts, tmp_path, runtime, words, env):
    """(the build the runtime ran, the words imagefit added before the user's, stderr)."""
    pushed = indexes["mixed"]
    ref = pushed.ref
    operand = f"docker://{ref}" if runtime == "apptainer" else ref
    conf = tmp_path / "insecure-registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{ref.split("/")[0]}"\ninsecure = true\n')
    done, argv = run(shim_dir, runtime, ["run", *words, operand, "true"], facts["mixed"], tmp_path,
                     IMAGEFIT_LOGIN="never", CONTAINERS_REGISTRIES_CONF=str(conf), **env)  # fmt: skip
    assert done.returncode == 0 and argv is not None, done.stderr
    assert "Traceback" not in done.stderr
    built = [b for b in pushed.manifests if any(pushed.manifests[b] in a for a in argv)]
    assert len(built) == 1, argv
    image = next(i for i, a in enumerate(argv) if pushed.manifests[built[0]] in a)
    assert argv[image + 1 :] == ["true"], argv
    before = argv[1:image]
    # the user's words come last, unchanged; what precedes them imagefit added
    assert before[len(before) - len(words) :] == words, argv
    return built[0], before[: len(before) - len(words)], done.stderr


# (runtime, the user's words, the caller's environment, the build, the words imagefit adds)
CASES = [
    # podman: both GPUs -> the build with code for both; CDI all
    ("podman", [], {}, "sm80_90", [ALL]),
    # the container's variable (the command line's) is the job's, over the caller's
    ("podman", ["-e", "CUDA_VISIBLE_DEVICES=1"], {}, "sm90", [ALL]),
    ("podman", ["--env=CUDA_VISIBLE_DEVICES=0"], {"CUDA_VISIBLE_DEVICES": "1"}, "sm80", [ALL]),
    ("podman", ["-e", "CUDA_VISIBLE_DEVICES"], {"CUDA_VISIBLE_DEVICES": "1"}, "sm90", [ALL]),
    # NVIDIA_VISIBLE_DEVICES: the CDI devices of the job's GPUs, never all of them
    ("podman", [], {"NVIDIA_VISIBLE_DEVICES": "1"}, "sm90",
     ["--device=nvidia.com/gpu=1", "--env=NVIDIA_VISIBLE_DEVICES"]),
    ("podman", [], {"NVIDIA_VISIBLE_DEVICES": "1,0"}, "sm80_90",
     ["--device=nvidia.com/gpu=1", "--device=nvidia.com/gpu=0", "--env=NVIDIA_VISIBLE_DEVICES"]),
    ("podman", ["-e", "NVIDIA_VISIBLE_DEVICES=0"], {"NVIDIA_VISIBLE_DEVICES": "1"}, "sm80",
     ["--device=nvidia.com/gpu=0"]),
    ("podman", [], {"NVIDIA_VISIBLE_DEVICES": "all"}, "sm80_90", [ALL, "--env=NVIDIA_VISIBLE_DEVICES"]),
    # the user's own CDI device: the build fits that GPU, nothing is added
    ("podman", ["--device", "nvidia.com/gpu=1"], {}, "sm90", []),
    ("podman", ["--device=nvidia.com/gpu=0", "--device=nvidia.com/gpu=1"], {}, "sm80_90", []),
    ("podman", ["--device", "nvidia.com/gpu=all"], {}, "sm80_90", []),
    ("podman", ["--device", "/dev/fuse"], {}, "sm80_90", []),  # not a GPU: the node's GPUs
    # --device is a list (StringSlice: one CSV record)
    ("podman", ["--device=nvidia.com/gpu=0,nvidia.com/gpu=1"], {}, "sm80_90", []),
    # after the user's own devices imagefit hands on nothing: the caller's
    # variables reach the container only when the user passes them
    ("podman", ["--device=nvidia.com/gpu=1"], {"CUDA_VISIBLE_DEVICES": "1"}, "sm90", []),
    ("podman", ["--device", "nvidia.com/gpu=0"], {"CUDA_VISIBLE_DEVICES": "1"}, "sm80", []),
    ("podman", ["--device", "/dev/fuse"], {"CUDA_VISIBLE_DEVICES": "1"}, "sm80_90", []),
    ("podman", ["-e", "CUDA_VISIBLE_DEVICES", "--device", "nvidia.com/gpu=all"],
     {"CUDA_VISIBLE_DEVICES": "1"}, "sm90", []),
    ("podman", ["-e", "CUDA*", "--device", "nvidia.com/gpu=all"], {"CUDA_VISIBLE_DEVICES": "1"}, "sm90", []),
    ("podman", ["--env-host", "--device", "nvidia.com/gpu=all"], {"CUDA_VISIBLE_DEVICES": "1"}, "sm90", []),
    # docker (the real daemon's grammar): --gpus is the container's NVIDIA_VISIBLE_DEVICES
    ("docker", [], {}, "sm80_90", ["--gpus=all"]),
    ("docker", ["-e", "CUDA_VISIBLE_DEVICES=1"], {}, "sm90", ["--gpus=all"]),
    ("docker", ["--gpus", "device=1"], {}, "sm90", []),
    ("docker", ["--gpus", '"device=1,0"'], {}, "sm80_90", []),
    ("docker", ["--gpus", "1"], {}, "sm80", []),  # a count of 1: dockerd gives GPU 0
    ("docker", ["--gpus", "count=2"], {}, "sm80_90", []),
    ("docker", ["--gpus=all"], {"NVIDIA_VISIBLE_DEVICES": "1"}, "sm80_90", []),  # dockerd's wins
    ("docker", ["--gpus", "device=1", "-e", "NVIDIA_VISIBLE_DEVICES=0"], {}, "sm90", []),
    ("docker", ["--gpus", "device=1"], {"CUDA_VISIBLE_DEVICES": "1"}, "sm90", []),  # not handed on
    ("docker", ["--gpus", "capabilities=compute"], {"CUDA_VISIBLE_DEVICES": "1"}, "sm80", []),  # count 1
    ("docker", ["--gpus", "0"], {}, "cpu", []),  # a count of 0: NVIDIA_VISIBLE_DEVICES=void
    ("docker", ["--gpus", "-1"], {}, "sm80_90", []),  # Atoi's -1: every GPU
    ("docker", ["--gpus", "+1"], {}, "sm80", []),
    ("docker", ["--gpus", "driver=cdi,device=nvidia.com/gpu=1"], {}, "sm90", []),
    ("docker", ["--gpus", "device=0", "--gpus", "device=1"], {}, "sm90", []),  # the last one wins
    ("docker", ["--gpus", "device=1\ndevice=0"], {}, "sm90", []),  # one CSV record: the first line
    # apptainer: --env, APPTAINERENV_, and a clean environment
    ("apptainer", ["--env", "CUDA_VISIBLE_DEVICES=1"], {}, "sm90", ["--nv"]),
    ("apptainer", ["--env", "A=b,CUDA_VISIBLE_DEVICES=0"], {"CUDA_VISIBLE_DEVICES": "1"}, "sm80", ["--nv"]),
    ("apptainer", [], {"APPTAINERENV_CUDA_VISIBLE_DEVICES": "0"}, "sm80", ["--nv"]),
    ("apptainer", [], {"SINGULARITYENV_CUDA_VISIBLE_DEVICES": "1"}, "sm90", ["--nv"]),
    ("apptainer", [], {"CUDA_VISIBLE_DEVICES": "1"}, "sm90", ["--nv"]),
    # --cleanenv: the caller's variable does not reach the container, which sees both GPUs
    ("apptainer", ["--cleanenv"], {"CUDA_VISIBLE_DEVICES": "1"}, "sm80_90", ["--nv"]),
    ("apptainer", [], {"APPTAINER_CLEANENV": "1", "CUDA_VISIBLE_DEVICES": "1"}, "sm80_90", ["--nv"]),
    ("apptainer", ["--containall"], {"CUDA_VISIBLE_DEVICES": "0"}, "sm80_90", ["--nv"]),
    ("apptainer", ["--cleanenv"], {"APPTAINERENV_CUDA_VISIBLE_DEVICES": "1"}, "sm90", ["--nv"]),
    ("apptainer", ["--cleanenv", "--env", "CUDA_VISIBLE_DEVICES="], {}, "cpu", []),
    # --env as pflag's stringToString: one "=" is one pair, else a CSV record of pairs
    ("apptainer", ["--env", "CUDA_VISIBLE_DEVICES=0,1"], {}, "sm80_90", ["--nv"]),
    ("apptainer", ["--env", 'A=b,"CUDA_VISIBLE_DEVICES=1"'], {}, "sm90", ["--nv"]),
    # --compat is --containall, which is a clean environment; the flag wins over the variable
    ("apptainer", ["--compat"], {"CUDA_VISIBLE_DEVICES": "1"}, "sm80_90", ["--nv"]),
    ("apptainer", [], {"APPTAINER_COMPAT": "1", "CUDA_VISIBLE_DEVICES": "1"}, "sm80_90", ["--nv"]),
    ("apptainer", ["--cleanenv=false"], {"APPTAINER_CLEANENV": "1", "CUDA_VISIBLE_DEVICES": "1"},
     "sm90", ["--nv"]),
    # --nv binds every NVIDIA device whatever NVIDIA_VISIBLE_DEVICES lists; "void" still hides them
    ("apptainer", ["--env", "NVIDIA_VISIBLE_DEVICES=0"], {}, "sm80_90", ["--nv"]),
    ("apptainer", [], {"NVIDIA_VISIBLE_DEVICES": "0"}, "sm80_90", ["--nv"]),
    ("apptainer", [], {"NVIDIA_VISIBLE_DEVICES": "void"}, "cpu", []),
    ("apptainer", ["--nvccli"], {"NVIDIA_VISIBLE_DEVICES": "1"}, "sm90", []),  # nvidia-container-cli reads it
]  # fmt: skip


def _id(case) -> str:
    runtime, words, env, _build, _added = case
    return "-".join([runtime, *words, *(f"{k}={v}" for k, v in env.items())]).replace("\n", "\\n")


@pytest.mark.parametrize(("runtime", "words", "env", "build", "added"), CASES,
                         ids=[_id(c) for c in CASES])  # fmt: skip
def test_the_containers_gpus_choose_the_build_and_get_the_options(
    shim_dir,
    indexes,
    facts,
    cdi_by_index,
    tmp_path,
    runtime,
    words,
    env,
    build,
    added,
):
    got, before, stderr = _run(shim_dir, indexes, facts, tmp_path, runtime, words, env)
    assert (got, before) == (build, added), stderr
    assert stderr == "", stderr


def test_a_gpus_count_past_any_number_is_no_error(shim_dir, indexes, facts, cdi_by_index, tmp_path):
    """5,000 digits (past Python's int() limit, and docker's): read as no
    GPUs of the user's, no 'unexpected' error; docker itself rejects it."""
    got, before, stderr = _run(shim_dir, indexes, facts, tmp_path, "docker",
                               ["--gpus", "9" * 5000], {"CUDA_VISIBLE_DEVICES": "1"})  # fmt: skip
    assert (got, before, stderr) == ("sm80_90", [], "")


def test_a_gpu_the_cdi_spec_does_not_name_is_one_warning_and_no_gpu_option(
    shim_dir,
    indexes,
    facts,
    cdi_by_index,
    tmp_path,
):
    """The spec names GPUs by index; the job's by UUID: ``all`` would give the
    container the other GPU too, so nothing is added and the user is told how."""
    got, before, stderr = _run(shim_dir, indexes, facts, tmp_path, "podman", [],
                               {"NVIDIA_VISIBLE_DEVICES": H100_UUID})  # fmt: skip
    assert (got, before) == ("sm90", [])
    assert stderr.count("\n") == 1 and stderr.startswith("imagefit: "), stderr
    assert f"NVIDIA_VISIBLE_DEVICES='{H100_UUID}' names a GPU no CDI spec names" in stderr
    assert "(they name 0, 1, all)" in stderr and "--device=nvidia.com/gpu=NAME" in stderr


def test_the_decision_cache_keys_on_the_command_lines_variables(
    shim_dir,
    indexes,
    facts,
    cdi_by_index,
    tmp_path,
):
    """One cache, one caller's environment: the command line's variable alone
    differs, and each command gets its own GPUs' build (never the cached one
    of another), again on a cache hit."""
    runs = [["-e", "CUDA_VISIBLE_DEVICES=0"], ["-e", "CUDA_VISIBLE_DEVICES=1"], [],
            ["--device", "nvidia.com/gpu=1"]] * 2  # fmt: skip
    got = [_run(shim_dir, indexes, facts, tmp_path, "podman", w, {})[0] for w in runs]
    assert got == ["sm80", "sm90", "sm80_90", "sm90"] * 2
    entries = list((tmp_path / "cache" / "imagefit" / "decisions").glob("*.entry"))
    assert len(entries) == 4, entries  # one per set of the container's variables


@pytest.mark.parametrize(
    ("runtime", "words"),
    [
        ("podman", ["-e", "CUDA_VISIBLE_DEVICES=1", "--device", "nvidia.com/gpu=1"]),
        ("podman", []),
        ("docker", ["--gpus", '"device=1,0"', "-e", "CUDA_VISIBLE_DEVICES=0"]),
    ],
)
def test_a_hit_reads_the_containers_gpus_with_the_standard_library_only(
    shim_dir,
    indexes,
    facts,
    cdi_by_index,
    tmp_path,
    runtime,
    words,
):
    """The command line's GPUs are read on every command (they are part of
    the decision's key): on a decision-cache hit that takes no ``re``, ``csv``
    or ``json`` (docker's ``--gpus`` is a CSV record: read by hand)."""
    import subprocess

    from tests.test_hot_path import NEVER, imported, launcher_argv

    (tmp_path / "registries.conf").write_text("")
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "IMAGEFIT_SITE_CONFIG": "/nonexistent.toml",
           f"IMAGEFIT_{runtime.upper()}": "/bin/true", "IMAGEFIT_FACTS": facts["mixed"],
           "CONTAINERS_REGISTRIES_CONF": str(tmp_path / "registries.conf"),
           "DOCKER_CONFIG": str(tmp_path / "docker")}  # fmt: skip
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "daemon.json").write_text("")
    ref = indexes["mixed"].ref
    tls = ["--tls-verify=false"] if runtime == "podman" else []
    argv = launcher_argv(shim_dir / runtime, "run", *tls, *words, ref, "true")
    for _ in range(2):  # a miss, then a hit
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
    modules = imported(done)
    assert "shim.decisions" in modules
    assert [m for m in modules if m in ("csv", "json", "yaml", *NEVER)] == [], modules
