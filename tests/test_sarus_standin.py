"""End to end for Sarus: the installed shim (``imagefit install --runtime
sarus``) in front of a recording stand-in ``sarus`` (Sarus cannot be installed
here), a real registry holding a real annotated index, host facts from
archspec's /proc/cpuinfo dumps, and the plain-HTTP registry made reachable by
imagefit's ``insecure_registries`` in a root-owned site config.

The stand-in records the exact argv of every call (and ``IMAGEFIT_ACTIVE``),
prints ``<command>-stdout`` on its stdout, and exits with a status chosen per
command (``pull`` / anything else), or kills itself with a signal on
``pull``, so that the pre-step and the run can be told apart.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import shim.login
from tests.conftest import world_readable_tmp
from tests.support import oci
from tests.support.standin import StandIn, path_with

TARGET_KEY = "org.supercontainers.hardware.cpu.target.microarch"
SH = ["/bin/sh", "-c", shim.login.OUTER, "sh"]

#: A stand-in whose behaviour depends on the Sarus command it is given.
SCRIPT = """#!{python}
import json, os, signal, sys
with open({log!r}, "a", encoding="utf-8") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "name": os.path.basename(sys.argv[0]),
                          "active": os.environ.get("IMAGEFIT_ACTIVE")}}) + "\\n")
command = next((w for w in sys.argv[1:] if not w.startswith("-")), "")
print(command + "-stdout", flush=True)
if command == "pull" and {pull_signal}:
    os.kill(os.getpid(), {pull_signal})
sys.exit({pull_status} if command == "pull" else {status})
"""


class SarusStandIn(StandIn):
    """The recording stand-in, with its own exit status for ``pull``."""

    def __init__(
        self, directory: Path, *, status: int = 0, pull_status: int = 0, pull_signal: int = 0
    ) -> None:
        super().__init__(directory, "sarus", status)
        self.path.write_text(
            SCRIPT.format(
                python=sys.executable,
                log=str(self.log),
                status=status,
                pull_status=pull_status,
                pull_signal=pull_signal,
            )
        )


def _build(name: str, variant: str | None = None) -> dict:
    platform = {"architecture": "amd64", "os": "linux"}
    if variant:
        platform["variant"] = variant
    return {"name": name, "platform": platform, "annotations": {TARGET_KEY: name}}


@pytest.fixture(scope="module")
def sarus_shim(imagefit_cmd) -> Path:
    """The shim linked as ``sarus`` by ``imagefit install``, as a site would."""
    prefix = world_readable_tmp("imagefit-sarus-prefix-")
    done = subprocess.run(
        [*imagefit_cmd, "install", "--prefix", str(prefix), "--runtime", "sarus"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    link = prefix / "bin" / "sarus"
    assert os.path.islink(link), done.stdout
    yield link
    shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture(scope="module")
def app(registry, tmp_path_factory):
    builds = [
        _build("x86_64"),
        _build("x86_64_v3", "v3"),
        _build("haswell", "v3"),
        _build("zen4", "v4"),
    ]
    return oci.build_and_push(
        registry.host,
        "hpc/sarus-app",
        "2024",
        builds,
        layout_dir=tmp_path_factory.mktemp("sarus-app"),
    )


@pytest.fixture(scope="module")
def facts_files(imagefit_cmd, cpuinfo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("sarus-facts")
    files = {}
    for dump in ("linux-rocky8.5-zen4", "linux-rhel7-haswell"):
        done = subprocess.run(
            [*imagefit_cmd, "facts", "--json", "--cpuinfo", str(cpuinfo_dir / dump), "--machine", "x86_64"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        path = out / f"{dump}.json"
        path.write_text(done.stdout)
        files[dump.rsplit("-", 1)[1]] = str(path)
    return files


@pytest.fixture
def site_config(registry, tmp_path) -> str:
    """A site config (root-owned when the tests run as root, 0644) that makes
    the plain-HTTP test registry reachable through imagefit's own setting."""
    path = tmp_path / "site" / "config.toml"
    path.parent.mkdir(mode=0o755)
    path.write_text(f'insecure_registries = ["{registry.host}"]\n')
    path.chmod(0o644)
    return str(path)


def run_shim(sarus_shim, standin, args, *, facts, site, tmp_path, extra=None):
    registries_conf = tmp_path / "registries.conf"
    registries_conf.write_text("")
    env = {
        "PATH": path_with(sarus_shim.parent, standin.path.parent),
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "IMAGEFIT_FACTS": facts,
        "IMAGEFIT_SITE_CONFIG": site,
        "CONTAINERS_REGISTRIES_CONF": str(registries_conf),
        **(extra or {}),
    }
    return subprocess.run(
        [str(sarus_shim), *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("node", ["zen4", "haswell"])
def test_run_pulls_the_best_build_then_runs_it_as_a_login_container(
    sarus_shim, app, facts_files, site_config, tmp_path, node
):
    standin = SarusStandIn(tmp_path / "bin")
    pinned = app.digest_ref(node)
    mount = "type=bind,src=/scratch,dst=/scratch"
    done = run_shim(
        sarus_shim, standin,
        ["--verbose", "run", "-t", "--mount", mount, "--mpi", app.ref, "whichbuild", "--all", app.ref],
        facts=facts_files[node], site=site_config, tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert standin.calls() == [
        {"argv": ["--verbose", "pull", pinned], "name": "sarus", "active": "1"},
        {
            "argv": [
                "--verbose", "run", "--entrypoint", "", "-t", "--mount", mount, "--mpi", pinned,
                *SH, "whichbuild", "--all", app.ref,
            ],
            "name": "sarus",
            "active": "1",
        },
    ]  # fmt: skip
    # the pull's output went to stderr: stdout is the container's alone
    assert done.stdout == "run-stdout\n"
    assert "pull-stdout" in done.stderr


def test_pull_is_only_rewritten(sarus_shim, app, facts_files, site_config, tmp_path):
    standin = SarusStandIn(tmp_path / "bin")
    done = run_shim(
        sarus_shim, standin, ["pull", "--temp-dir", "/scratch", app.ref],
        facts=facts_files["zen4"], site=site_config, tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert standin.argvs() == [["pull", "--temp-dir", "/scratch", app.digest_ref("zen4")]]
    assert done.stdout == "pull-stdout\n"  # the user's own pull: its stdout is untouched


def test_a_failing_pull_stops_before_run_with_its_status(
    sarus_shim, app, facts_files, site_config, tmp_path
):
    standin = SarusStandIn(tmp_path / "bin", status=0, pull_status=3)
    done = run_shim(
        sarus_shim, standin, ["run", app.ref, "true"],
        facts=facts_files["zen4"], site=site_config, tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 3
    assert standin.argvs() == [["pull", app.digest_ref("zen4")]]
    assert done.stdout == ""


def test_the_exit_status_of_the_run_propagates(sarus_shim, app, facts_files, site_config, tmp_path):
    standin = SarusStandIn(tmp_path / "bin", status=7)
    done = run_shim(
        sarus_shim, standin, ["run", app.ref, "false"],
        facts=facts_files["zen4"], site=site_config, tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 7
    pinned = app.digest_ref("zen4")
    assert standin.argvs() == [["pull", pinned], ["run", "--entrypoint", "", pinned, *SH, "false"]]


def test_a_pull_killed_by_a_signal_ends_the_shim_with_128_plus_n(
    sarus_shim, app, facts_files, site_config, tmp_path
):
    standin = SarusStandIn(tmp_path / "bin", pull_signal=int(signal.SIGTERM))
    done = run_shim(
        sarus_shim, standin, ["run", app.ref],
        facts=facts_files["zen4"], site=site_config, tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 128 + signal.SIGTERM
    assert standin.argvs() == [["pull", app.digest_ref("zen4")]]


def test_dry_run_prints_the_pre_step_then_the_run(
    sarus_shim, app, facts_files, site_config, tmp_path
):
    standin = SarusStandIn(tmp_path / "bin")
    done = run_shim(
        sarus_shim, standin, ["run", "-t", app.ref, "sh"],
        facts=facts_files["haswell"], site=site_config, tmp_path=tmp_path,
        extra={"IMAGEFIT_DRY_RUN": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pinned = app.digest_ref("haswell")
    real = str(standin.path)
    assert [json.loads(line) for line in done.stdout.splitlines()] == [
        [real, "pull", pinned],
        [real, "run", "--entrypoint", "", "-t", pinned, *SH, "sh"],
    ]
    assert standin.calls() == []


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--", "REF", "ls"],  # a bare "--" is Sarus's image name: not ours to rewrite
        ["run", "--centralized-repository", "REF"],  # the administrators' repository
        ["run", "--no-such-flag", "REF"],  # Sarus refuses it: run unchanged, Sarus says why
        ["images", "--digests"],
    ],
)
def test_lines_the_shim_leaves_alone_reach_sarus_unchanged(
    sarus_shim, app, facts_files, site_config, tmp_path, args
):
    args = [app.ref if a == "REF" else a for a in args]
    standin = SarusStandIn(tmp_path / "bin", status=5)
    done = run_shim(
        sarus_shim, standin, args, facts=facts_files["zen4"], site=site_config, tmp_path=tmp_path
    )
    assert done.returncode == 5
    assert standin.calls() == [{"argv": args, "name": "sarus", "active": "1"}]


def test_a_cached_decision_still_pulls_first(sarus_shim, app, facts_files, site_config, tmp_path):
    standin = SarusStandIn(tmp_path / "bin")
    for _ in range(2):  # the second run is a decision-cache hit: same pre-step, same run
        done = run_shim(
            sarus_shim, standin, ["run", app.ref, "id"],
            facts=facts_files["zen4"], site=site_config, tmp_path=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    pinned = app.digest_ref("zen4")
    once = [["pull", pinned], ["run", "--entrypoint", "", pinned, *SH, "id"]]
    assert standin.argvs() == once + once
