"""Edge cases of GPU access, visible-device strings, enroot URIs and ch-image
references, found by an adversarial review.

Each test is one finding, driven through the installed shim where a run is
involved (fixtures of tests/test_gpu_access.py: real registry, facts files,
recording stand-ins, a CDI spec in /var/run/cdi).
"""

from __future__ import annotations

import pytest

from shim.argv import enroot_uri
from tests import test_gpu_access as ga
from tests.support import oci
from tests.test_gpu_access import CDI_DEVICE, _b, calls, operand, pinned, shim
from tests.test_requested_platform import run

P = "org.supercontainers."
# the fixtures of tests/test_gpu_access.py (registry index, facts files, installed shim, CDI spec)
app, facts, shim_dir, cdi_spec = ga.app, ga.facts, ga.shim_dir, ga.cdi_spec


@pytest.fixture(scope="module")
def blank_gfx(registry, tmp_path_factory):
    """A registry author's index: a CPU build with an empty gfx annotation
    (scoring reads it as no AMD requirement) and a CUDA build that also
    carries one."""
    builds = [
        _b("cpu", **{P + "hardware.gpu.amd.gfx": ""}),
        _b("cuda", **{P + "hardware.gpu.cuda.version": ">=12.0",
                      P + "hardware.gpu.compute_capabilities": "9.0",
                      P + "hardware.gpu.amd.gfx": " "}),
    ]  # fmt: skip
    return oci.build_and_push(registry.host, "hpc/blank-gfx", "1", builds,
                              layout_dir=tmp_path_factory.mktemp("blank-gfx"))  # fmt: skip


def _shim(shim_dir, runtime, index, facts, tmp_path):
    """shim() of tests/test_gpu_access.py for another repository: (argv, stderr)."""
    conf = tmp_path / "insecure-registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{index.ref.split("/")[0]}"\ninsecure = true\n')
    done, _ = run(shim_dir, runtime, ["run", index.ref, "true"], facts, tmp_path,
                  IMAGEFIT_LOGIN="never", CONTAINERS_REGISTRIES_CONF=str(conf))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return calls(tmp_path, runtime)[-1], done.stderr


@pytest.mark.parametrize("runtime", ["podman", "docker"])
def test_a_blank_gfx_annotation_adds_no_amd_devices_to_a_cpu_build(
    shim_dir, blank_gfx, facts, tmp_path, runtime
):
    """The build was chosen on a node without GPUs as needing none; adding
    --device=/dev/kfd makes podman/docker fail (no such device)."""
    argv, err = _shim(shim_dir, runtime, blank_gfx, facts["cpu"], tmp_path)
    assert argv == ["run", pinned(blank_gfx, "cpu"), "true"], err


def test_a_cuda_build_with_a_blank_gfx_annotation_gets_the_nvidia_device(
    shim_dir, blank_gfx, facts, cdi_spec, tmp_path
):
    argv, err = _shim(shim_dir, "podman", blank_gfx, facts["nvidia"], tmp_path)
    assert argv == ["run", CDI_DEVICE, pinned(blank_gfx, "cuda"), "true"], err


@pytest.mark.parametrize("name", ["CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"])
def test_a_visible_index_of_thousands_of_digits_is_no_device(
    shim_dir, app, facts, cdi_spec, tmp_path, name
):
    """An index past the end hides the GPU (CUDA); 5000 digits must not make
    the resolution fail ("unexpected ValueError" from int(), run unchanged)."""
    argv, err = shim(shim_dir, "podman", ["run", app.ref, "true"], facts["nvidia"], tmp_path,
                     **{name: "9" * 5000})  # fmt: skip
    assert "unexpected" not in err
    assert argv == ["run", pinned(app, "cpu"), "true"], err


def test_docker_keeps_the_users_nvidia_visible_devices(shim_dir, app, facts, tmp_path):
    """``-e NVIDIA_VISIBLE_DEVICES=0`` is the user's GPU choice (nvidia runtime):
    ``--gpus=all`` makes dockerd append NVIDIA_VISIBLE_DEVICES=all after it
    (moby daemon/nvidia_linux.go setNvidiaGPUs), widening it to every GPU."""
    words = ["-e", "NVIDIA_VISIBLE_DEVICES=0"]
    argv, err = shim(
        shim_dir, "docker", ["run", *words, app.ref, "true"], facts["nvidia"], tmp_path
    )
    assert argv == ["run", *words, pinned(app, "cuda"), "true"], err


def test_docker_does_not_widen_the_jobs_nvidia_visible_devices(shim_dir, app, facts, tmp_path):
    """The build was ranked for GPU 0 only; ``--gpus=all`` gives the container every GPU."""
    argv, err = shim(shim_dir, "docker", ["run", app.ref, "true"], facts["nvidia"], tmp_path,
                     NVIDIA_VISIBLE_DEVICES="0")  # fmt: skip
    assert "--gpus=all" not in argv, err


def test_apptainer_env_option_hiding_the_gpus_gets_no_nv(shim_dir, app, facts, tmp_path):
    """``--env CUDA_VISIBLE_DEVICES=`` hides the GPUs in the container, as
    ``-e`` does for podman/docker (where nothing is added)."""
    words = ["--env", "CUDA_VISIBLE_DEVICES="]
    args = ["run", *words, operand("apptainer", app.ref), "true"]
    argv, err = shim(shim_dir, "apptainer", args, facts["nvidia"], tmp_path)
    assert "--nv" not in argv, err


@pytest.mark.parametrize("uri", ["docker://reg.io/x:1\n", "docker://reg.io#x\n"])
def test_enroot_refuses_a_uri_with_a_trailing_newline(uri):
    """bash's =~ (POSIX ERE) anchors ``$`` at the very end: enroot says
    "Invalid image reference"; Python's ``$`` also matches before a final
    newline, so the shim would pin (and so repair) a line enroot refuses."""
    assert enroot_uri.parse(uri) is None


def test_ch_image_default_port_of_thousands_of_digits_leaves_the_name_alone():
    """``CH_REGY_DEFAULT_PORT`` of 5000 digits: int() raised ValueError and the
    shim said "cannot plan this ch-image command (unexpected ValueError ...)"."""
    from shim.personality.charliecloud import reference_of

    environ = {"CH_REGY_DEFAULT_HOST": "reg.example", "CH_REGY_DEFAULT_PORT": "9" * 5000}
    assert reference_of("foo/bar", environ) is None


@pytest.mark.parametrize(
    "visible, option",
    [
        ("all", "--gpus=all"),
        ("0", "--gpus=device=0"),
        ("0, 1", '--gpus="device=0,1"'),  # docker reads --gpus as one CSV record
        ("GPU-8d1f2a3b-0000-1111-2222-333344445555", "--gpus=device=GPU-8d1f2a3b-0000-1111-2222-333344445555"),
    ],
)  # fmt: skip
def test_docker_gives_the_job_its_own_gpus(shim_dir, app, facts, tmp_path, visible, option):
    """The job's NVIDIA_VISIBLE_DEVICES becomes ``--gpus=device=...``: the
    container gets the job's GPUs, not all (exact argv through the shim)."""
    argv, err = shim(shim_dir, "docker", ["run", app.ref, "true"], facts["nvidia"], tmp_path,
                     NVIDIA_VISIBLE_DEVICES=visible)  # fmt: skip
    assert argv[:2] == ["run", option], err


def test_docker_warns_for_a_gpu_list_it_cannot_hand_on(shim_dir, app, facts, tmp_path):
    argv, err = shim(shim_dir, "docker", ["run", app.ref, "true"], facts["nvidia"], tmp_path,
                     NVIDIA_VISIBLE_DEVICES='GPU-"\x1b[31m')  # fmt: skip
    # a UUID the facts do not list: every GPU counts, the CUDA build is chosen
    assert not any(w.startswith("--gpus") for w in argv)
    assert "cannot be given to docker --gpus exactly" in err and "\x1b" not in err
