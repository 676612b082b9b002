"""End to end for apptainer and singularity: the installed shim (``imagefit
install --runtime apptainer --runtime singularity``) in front of recording
stand-ins named ``apptainer`` and ``singularity`` (neither can be installed on
the test machines), a real registry holding a real annotated index, and host
facts from archspec's /proc/cpuinfo dumps. The plain-HTTP registry is reached
the way an apptainer user reaches one: ``APPTAINER_NOHTTPS=1`` or
``--no-https``.

The stand-in records the exact argv it received and ``IMAGEFIT_ACTIVE``, and
exits with a chosen status.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import shim.login
from tests.conftest import world_readable_tmp
from tests.support import oci
from tests.support.standin import StandIn, path_with

TARGET_KEY = "org.supercontainers.hardware.cpu.target.microarch"
#: What the login recipe puts after the image: exec IMG /bin/sh -c OUTER sh CMD...
L = ["/bin/sh", "-c", shim.login.OUTER, "sh"]
NAMES = ("apptainer", "singularity")


def _build(name: str, arch: str = "amd64", variant: str | None = None) -> dict:
    platform = {"architecture": arch, "os": "linux"}
    if variant:
        platform["variant"] = variant
    return {"name": name, "platform": platform, "annotations": {TARGET_KEY: name}}


@pytest.fixture(scope="module")
def shim_dir(imagefit_cmd) -> Path:
    """PREFIX/bin with the shim linked as apptainer and singularity."""
    prefix = world_readable_tmp("imagefit-apptainer-prefix-")
    done = subprocess.run(
        [*imagefit_cmd, "install", "--prefix", str(prefix),
         "--runtime", "apptainer", "--runtime", "singularity"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    for name in NAMES:
        assert os.path.islink(prefix / "bin" / name), done.stdout
    yield prefix / "bin"
    shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture(scope="module")
def app(registry, tmp_path_factory):
    builds = [
        _build("x86_64"),
        _build("x86_64_v3", variant="v3"),
        _build("haswell", variant="v3"),
        _build("zen4", variant="v4"),
        _build("neoverse_v2", arch="arm64", variant="v9"),
    ]
    return oci.build_and_push(
        registry.host, "hpc/apptainer-app", "2024", builds,
        layout_dir=tmp_path_factory.mktemp("apptainer-app"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def plain(registry, tmp_path_factory):
    """An index with no compatibility data: the shim leaves the command alone."""
    builds = [
        {"name": "plain-amd64", "platform": {"architecture": "amd64", "os": "linux"}, "annotations": None},
        {"name": "plain-arm64", "platform": {"architecture": "arm64", "os": "linux"}, "annotations": None},
    ]  # fmt: skip
    return oci.build_and_push(
        registry.host, "hpc/apptainer-plain", "1", builds,
        layout_dir=tmp_path_factory.mktemp("apptainer-plain"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def facts_files(imagefit_cmd, cpuinfo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("apptainer-facts")
    files = {}
    for dump, machine in [
        ("linux-rocky8.5-zen4", "x86_64"),
        ("linux-rhel7-haswell", "x86_64"),
        ("linux-rhel8-power9", "ppc64le"),
    ]:
        done = subprocess.run(
            [*imagefit_cmd, "facts", "--json", "--cpuinfo", str(cpuinfo_dir / dump), "--machine", machine],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        path = out / f"{dump}.json"
        path.write_text(done.stdout)
        files[dump.rsplit("-", 1)[1]] = str(path)
    return files


def run_shim(shim_dir, name, standin, args, *, facts, tmp_path, nohttps=True, extra=None):
    registries_conf = tmp_path / "registries.conf"
    registries_conf.write_text("")
    env = {
        "PATH": path_with(shim_dir, standin.path.parent),
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "IMAGEFIT_FACTS": facts,
        "IMAGEFIT_SITE_CONFIG": str(tmp_path / "no-site-config.toml"),
        "CONTAINERS_REGISTRIES_CONF": str(registries_conf),
        **({"APPTAINER_NOHTTPS": "1"} if nohttps else {}),
        **(extra or {}),
    }
    return subprocess.run(
        [str(shim_dir / name), *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("node", ["zen4", "haswell"])
def test_exec_runs_the_best_build_as_a_login_container(
    shim_dir, app, facts_files, tmp_path, name, node
):
    standin = StandIn(tmp_path / "bin", name)
    image = f"docker://{app.ref}"
    done = run_shim(
        shim_dir, name, standin,
        ["-s", "exec", "-B", "/scratch", "--nv", image, "whichbuild", "--all", image],
        facts=facts_files[node], tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert standin.calls() == [
        {
            "argv": [
                "-s", "exec", "-B", "/scratch", "--nv", f"docker://{app.digest_ref(node)}",
                *L, "whichbuild", "--all", image,
            ],
            "name": name,
            "active": "1",
        }
    ]  # fmt: skip
    assert done.stderr == ""


@pytest.mark.parametrize("name", NAMES)
def test_run_and_shell_become_exec_of_a_login_shell(shim_dir, app, facts_files, tmp_path, name):
    standin = StandIn(tmp_path / "bin", name)
    image = f"docker://{app.ref}"
    pinned = f"docker://{app.digest_ref('zen4')}"
    for args in (["run", image], ["shell", image], ["run", "--cleanenv", image, "gmx", "-v"]):
        done = run_shim(shim_dir, name, standin, args, facts=facts_files["zen4"], tmp_path=tmp_path)
        assert done.returncode == 0, done.stderr
    assert standin.argvs() == [
        ["exec", pinned, *L],
        ["exec", pinned, *L],
        ["exec", "--cleanenv", pinned, *L, "gmx", "-v"],
    ]


@pytest.mark.parametrize("name", NAMES)
def test_pull_keeps_the_file_name_the_tag_would_give(shim_dir, app, facts_files, tmp_path, name):
    standin = StandIn(tmp_path / "bin", name)
    image = f"docker://{app.ref}"
    pinned = f"docker://{app.digest_ref('haswell')}"
    for args in (["pull", "--no-https", image], ["pull", "--dir", "/sifs", "out.sif", image]):
        done = run_shim(
            shim_dir, name, standin, args,
            facts=facts_files["haswell"], tmp_path=tmp_path, nohttps=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert standin.argvs() == [
        ["pull", "--no-https", "apptainer-app_2024.sif", pinned],
        ["pull", "--dir", "/sifs", "out.sif", pinned],
    ]


def test_build_and_instance_start_are_pinned_only(shim_dir, app, facts_files, tmp_path):
    standin = StandIn(tmp_path / "bin", "apptainer")
    image = f"docker://{app.ref}"
    pinned = f"docker://{app.digest_ref('zen4')}"
    for args in (
        ["build", "--sandbox", "app/", image],
        ["instance", "start", "-B", "/a", image, "web", "--port", "8080"],
    ):
        done = run_shim(
            shim_dir, "apptainer", standin, args, facts=facts_files["zen4"], tmp_path=tmp_path
        )
        assert done.returncode == 0, done.stderr
    assert standin.argvs() == [
        ["build", "--sandbox", "app/", pinned],
        ["instance", "start", "-B", "/a", pinned, "web", "--port", "8080"],
    ]


@pytest.mark.parametrize("name", NAMES)
def test_the_exit_status_propagates(shim_dir, app, facts_files, tmp_path, name):
    standin = StandIn(tmp_path / "bin", name, status=3)
    done = run_shim(
        shim_dir, name, standin, ["exec", f"docker://{app.ref}", "false"],
        facts=facts_files["zen4"], tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 3
    assert standin.argvs() == [["exec", f"docker://{app.digest_ref('zen4')}", *L, "false"]]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "args",
    [
        ["exec", "--containall", "{image}", "ls", "-l"],
        ["-d", "shell", "{image}"],
        ["pull", "--force", "{image}"],
        ["pull", "oras://{ref}"],
        ["exec", "app.sif", "ls"],
        ["version"],
    ],
    ids=lambda a: " ".join(a),
)
def test_dry_run_prints_exactly_what_the_runtime_receives(
    shim_dir, app, facts_files, tmp_path, name, args
):
    args = [a.format(image=f"docker://{app.ref}", ref=app.ref) for a in args]
    standin = StandIn(tmp_path / "bin", name)
    dry = run_shim(
        shim_dir, name, standin, args, facts=facts_files["zen4"], tmp_path=tmp_path,
        extra={"IMAGEFIT_DRY_RUN": "1"},
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert standin.calls() == []
    printed = json.loads(dry.stdout)
    done = run_shim(shim_dir, name, standin, args, facts=facts_files["zen4"], tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert printed == [str(standin.path), *standin.argvs()[0]]
    if any(a.startswith(("docker://", "oras://")) for a in args):
        assert printed[1:] != args  # rewritten
    else:
        assert printed[1:] == args


def test_oras_pull_keeps_its_transport_and_name(shim_dir, app, facts_files, tmp_path):
    standin = StandIn(tmp_path / "bin", "singularity")
    done = run_shim(
        shim_dir, "singularity", standin, ["pull", f"oras://{app.ref}"],
        facts=facts_files["zen4"], tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert standin.argvs() == [
        ["pull", "apptainer-app_2024.sif", f"oras://{app.digest_ref('zen4')}"]
    ]


def test_index_without_compatibility_data_passes_through_untouched(
    shim_dir, plain, facts_files, tmp_path
):
    standin = StandIn(tmp_path / "bin", "apptainer")
    for args in (["run", f"docker://{plain.ref}"], ["pull", f"docker://{plain.ref}"]):
        done = run_shim(
            shim_dir, "apptainer", standin, args, facts=facts_files["zen4"], tmp_path=tmp_path
        )
        assert done.returncode == 0, done.stderr
        assert standin.argvs()[-1] == args
    assert done.stderr == ""


def test_plain_http_registry_without_no_https_fails_open(shim_dir, app, facts_files, tmp_path):
    """Without APPTAINER_NOHTTPS / --no-https the shim, like apptainer, speaks
    HTTPS only: the local plain-HTTP registry does not answer, so the command
    runs unchanged after one warning."""
    standin = StandIn(tmp_path / "bin", "apptainer")
    args = ["exec", f"docker://{app.ref}", "true"]
    done = run_shim(
        shim_dir, "apptainer", standin, args,
        facts=facts_files["zen4"], tmp_path=tmp_path, nohttps=False,
    )  # fmt: skip
    assert done.returncode == 0
    assert standin.argvs() == [args]
    warning = done.stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith(f"imagefit: cannot resolve {app.ref}")


@pytest.mark.parametrize("name", NAMES)
def test_singularity_prefixed_variable_reaches_the_registry(
    shim_dir, app, facts_files, tmp_path, name
):
    standin = StandIn(tmp_path / "bin", name)
    done = run_shim(
        shim_dir, name, standin, ["exec", f"docker://{app.ref}", "true"],
        facts=facts_files["zen4"], tmp_path=tmp_path, nohttps=False,
        extra={"SINGULARITY_NO_HTTPS": "true"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert standin.argvs() == [["exec", f"docker://{app.digest_ref('zen4')}", *L, "true"]]


def test_no_fitting_build_is_refused_without_running_the_runtime(
    shim_dir, app, facts_files, tmp_path
):
    standin = StandIn(tmp_path / "bin", "apptainer")
    done = run_shim(
        shim_dir, "apptainer", standin, ["exec", f"docker://{app.ref}", "true"],
        facts=facts_files["power9"], tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 125
    assert standin.calls() == []
    assert done.stderr.startswith(f"imagefit: {app.ref}: none of the")


def test_disable_and_reentry_pass_through(shim_dir, app, facts_files, tmp_path):
    standin = StandIn(tmp_path / "bin", "apptainer")
    args = ["run", f"docker://{app.ref}"]
    for extra in ({"IMAGEFIT_DISABLE": "1"}, {"IMAGEFIT_ACTIVE": "1"}):
        done = run_shim(
            shim_dir, "apptainer", standin, args,
            facts=facts_files["zen4"], tmp_path=tmp_path, extra=extra,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert standin.argvs() == [args, args]
