"""What pyxis hands enroot, fed to the installed shim.

pyxis (NVIDIA/pyxis, a Slurm SPANK plugin) is not packaged here, so this
test rebuilds, from its source, the command line and the environment with
which pyxis runs enroot in slurmstepd, and runs the shim (installed as
``enroot``) with exactly those, in front of the recording stand-in:

* the URI (pyxis_slurmstepd.c ``enroot_container_create``): the
  ``--container-image`` value as given when it starts with ``docker://`` or
  ``dockerd://``, else ``docker://`` + the value;
* the argv: ``enroot import --output RUNTIME_PATH/UID/JOBID.STEPID.squashfs
  URI`` (``xasprintf(&context.container.squashfs_path, "%s/%u/%u.%u.squashfs"``),
  or with ``use_enroot_load=1`` ``enroot load --name pyxis_JOBID.STEPID URI``;
* the binary: ``execvpe("enroot", ...)`` (enroot.c ``enroot_exec``): a PATH
  search, in the PATH of slurmstepd, the only variable ``slurm_clear_env``
  keeps; the job's own PATH is on pyxis's deny list;
* the environment (pyxis_slurmstepd.c ``enroot_set_env``): the job's
  environment minus ``enroot_deny_env`` (PATH, LD_LIBRARY_PATH, LD_PRELOAD,
  SLURM_PROCID, SLURM_LOCALID, SLURM_TASK_PID, PMIX_RANK, PMI_FD,
  ENROOT_{LIBRARY,SYSCONF,RUNTIME,CACHE,DATA,TEMP}_PATH, ENROOT_ZSTD_OPTIONS,
  ENROOT_TRANSFER_RETRIES, ENROOT_CONNECT_TIMEOUT, ENROOT_MAX_CONNECTIONS,
  ENROOT_ALLOW_HTTP), then SLURM_JOB_UID/GID, PYXIS_RUNTIME_PATH and
  PYXIS_VERSION; stdin is /dev/null.

What is not tested here: Slurm and pyxis themselves (the SPANK plugin is
not built), the uid switch (``setreuid`` to the job's user).
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests import test_enroot_standin as standin_tests
from tests.support.standin import path_with
from tests.test_enroot_standin import EXPECTED, REPO, EnrootStandIn

#: the fixtures of tests/test_enroot_standin.py: the installed shim, the index, facts files
enroot_shim = standin_tests.enroot_shim
app = standin_tests.app
facts_files = standin_tests.facts_files

#: pyxis_slurmstepd.c ``enroot_deny_env``
DENY = (
    "PATH=", "LD_LIBRARY_PATH=", "LD_PRELOAD=", "SLURM_PROCID=", "SLURM_LOCALID=",
    "SLURM_TASK_PID=", "PMIX_RANK=", "PMI_FD=", "ENROOT_LIBRARY_PATH=", "ENROOT_SYSCONF_PATH=",
    "ENROOT_RUNTIME_PATH=", "ENROOT_CACHE_PATH=", "ENROOT_DATA_PATH=", "ENROOT_TEMP_PATH=",
    "ENROOT_ZSTD_OPTIONS=", "ENROOT_TRANSFER_RETRIES=", "ENROOT_CONNECT_TIMEOUT=",
    "ENROOT_MAX_CONNECTIONS=", "ENROOT_ALLOW_HTTP=",
)  # fmt: skip
RUNTIME_PATH = "/run/pyxis"  # config.c: the default runtime_path
JOB, STEP = 4242, 0


def pyxis_uri(image: str) -> str:
    """``enroot_container_create``: the enroot URI of ``--container-image``."""
    return image if image.startswith(("docker://", "dockerd://")) else "docker://" + image


def pyxis_environ(stepd_path: str, job_env: dict[str, str], uid: int, gid: int) -> dict[str, str]:
    """``enroot_set_env``: slurmstepd's PATH, the job's environment minus the
    deny list, the job's credentials and pyxis's own variables."""
    env = {"PATH": stepd_path}
    for key, value in job_env.items():
        if not any(f"{key}=".startswith(d) for d in DENY):
            env[key] = value
    env.update({"SLURM_JOB_UID": str(uid), "SLURM_JOB_GID": str(gid),
                "PYXIS_RUNTIME_PATH": RUNTIME_PATH, "PYXIS_VERSION": "0.24.0"})  # fmt: skip
    return env


def pyxis_argv(uri: str, *, load: bool) -> list[str]:
    if load:
        return ["load", "--name", f"pyxis_{JOB}.{STEP}", uri]
    return ["import", "--output", f"{RUNTIME_PATH}/{os.getuid()}/{JOB}.{STEP}.squashfs", uri]


@pytest.fixture
def site_config(app, tmp_path) -> str:
    """imagefit's site config marking the plain-HTTP test registry insecure:
    pyxis drops the job's ENROOT_ALLOW_HTTP (a site sets it in enroot.conf)."""
    path = tmp_path / "site" / "config.toml"
    path.parent.mkdir(mode=0o755)
    path.write_text(f'insecure_registries = ["{app.repository.split("/", 1)[0]}"]\n')
    path.chmod(0o644)
    return str(path)


def job_environment(tmp_path, facts: str, site: str, standin) -> dict[str, str]:
    registries_conf = tmp_path / "registries.conf"
    registries_conf.write_text("")
    return {
        "HOME": str(tmp_path),
        "USER": "alice",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "IMAGEFIT_FACTS": facts,
        "IMAGEFIT_SITE_CONFIG": site,
        "CONTAINERS_REGISTRIES_CONF": str(registries_conf),
        "SLURM_JOB_ID": str(JOB),
        "SLURM_STEP_ID": str(STEP),
        "SLURM_PROCID": "0",  # denied
        "LD_PRELOAD": "/nonexistent/libx.so",  # denied
        "ENROOT_ALLOW_HTTP": "y",  # denied: enroot.conf's value applies
        "ENROOT_MOUNT_HOME": "y",
        "PATH": "/usr/bin:/bin",  # denied: slurmstepd's PATH finds enroot
    }


def run_as_pyxis(shim, argv, env):
    """fork + execvpe("enroot") in `env`, stdin /dev/null, as enroot_exec does."""
    return subprocess.run(
        ["enroot", *argv], executable=None, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("image_form", "load"),
    [("HOST#REPO:2024", False), ("docker://HOST#REPO:2024", False), ("HOST#REPO:2024", True),
     ("HOST/REPO:2024", False)],
)  # fmt: skip
@pytest.mark.parametrize("node", ["h100", "t4"])
def test_srun_container_image_reaches_the_shim_and_gets_the_nodes_build(
    enroot_shim, app, facts_files, site_config, tmp_path, image_form, load, node
):
    host = app.repository.split("/", 1)[0]
    image = image_form.replace("HOST", host).replace("REPO", REPO)
    standin = EnrootStandIn(tmp_path / "real-bin")
    stepd_path = path_with(enroot_shim.parent, standin.path.parent).split(os.pathsep)
    # slurmstepd's PATH: the shim, the real enroot, then the system
    stepd_path = os.pathsep.join(stepd_path[:2] + ["/usr/bin", "/bin"])
    env = pyxis_environ(stepd_path, job_environment(tmp_path, facts_files[node], site_config, standin),
                        os.getuid(), os.getgid())  # fmt: skip
    uri = pyxis_uri(image)
    done = run_as_pyxis(enroot_shim, pyxis_argv(uri, load=load), env)
    assert done.returncode == 0, done.stderr
    pinned = uri.rsplit(":", 1)[0] + ":" + app.manifests[EXPECTED[node]]
    [call] = standin.calls()
    assert call["argv"] == pyxis_argv(pinned, load=load)
    assert call["active"] == "1"
    assert call["env"] == {
        "ENROOT_MOUNT_HOME": "y",
        "SLURM_JOB_ID": str(JOB), "SLURM_STEP_ID": str(STEP),
        "SLURM_JOB_UID": str(os.getuid()), "SLURM_JOB_GID": str(os.getgid()),
        "PYXIS_RUNTIME_PATH": RUNTIME_PATH, "PYXIS_VERSION": "0.24.0",
    }  # fmt: skip
    # enroot itself needs ENROOT_ALLOW_HTTP (enroot.conf) for this plain-HTTP registry
    assert "ENROOT_ALLOW_HTTP" in done.stderr


def test_the_jobs_path_does_not_matter_only_slurmstepds(
    enroot_shim, app, facts_files, site_config, tmp_path
):
    """A user putting the shim first on their own PATH does not reach pyxis:
    pyxis denies the job's PATH and searches slurmstepd's."""
    standin = EnrootStandIn(tmp_path / "real-bin")
    job = job_environment(tmp_path, facts_files["h100"], site_config, standin)
    job["PATH"] = path_with(enroot_shim.parent, standin.path.parent)
    env = pyxis_environ(f"{standin.path.parent}:/usr/bin:/bin", job, os.getuid(), os.getgid())
    uri = pyxis_uri(f"{app.repository.split('/', 1)[0]}#{REPO}:2024")
    done = run_as_pyxis(enroot_shim, pyxis_argv(uri, load=False), env)
    assert done.returncode == 0, done.stderr
    assert standin.argvs() == [pyxis_argv(uri, load=False)]
    assert standin.calls()[0]["active"] is None  # the shim never ran


def test_pyxis_dockerd_images_pass_through(enroot_shim, facts_files, site_config, tmp_path):
    standin = EnrootStandIn(tmp_path / "real-bin")
    job = job_environment(tmp_path, facts_files["h100"], site_config, standin)
    env = pyxis_environ(path_with(enroot_shim.parent, standin.path.parent), job, 0, 0)
    argv = pyxis_argv(pyxis_uri("dockerd://hpc/app:1"), load=False)
    done = run_as_pyxis(enroot_shim, argv, env)
    assert done.returncode == 0, done.stderr
    assert standin.argvs() == [argv]
