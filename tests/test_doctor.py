"""``imagefit doctor`` as a node health check: every finding is a problem
(exit 1, one line under ``problems``) or a note (information, exit 0), and
nothing doctor names as wrong leaves it "healthy".

Through the installed ``imagefit`` (next to this Python), as root and as an
ordinary user (``runuser``), with the shim installed by ``imagefit install
--prefix`` in front of a stand-in podman that answers ``--version``, the site
config, HOME and XDG directories in a temporary directory. Each case was
"healthy", exit 0 before (a warning at most, or nothing at all).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import world_readable_tmp

BIN = Path(sys.executable).parent
IMAGEFIT = BIN / "imagefit"
TEST_USER = os.environ.get("IMAGEFIT_TEST_USER", "alice")
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (runuser, chown)")


class Node:
    """A node's installation in a temporary directory."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.user = pwd.getpwnam(TEST_USER)
        self.real = base / "real"
        self.real.mkdir(mode=0o755)
        podman = self.real / "podman"
        podman.write_text("#!/bin/sh\necho 'podman version 9.9.9'\n")
        podman.chmod(0o755)
        done = subprocess.run(
            [IMAGEFIT, "install", "--prefix", base / "shim", "--runtime", "podman"],
            env={"PATH": f"{self.real}:{SYSTEM_PATH}", "HOME": str(base)},
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        self.path = f"{base / 'shim/bin'}:{self.real}:{SYSTEM_PATH}"
        self.site = base / "site.toml"
        for name, uid in (("root-home", 0), ("user-home", self.user.pw_uid)):
            home = base / name
            home.mkdir(mode=0o755)
            os.chown(home, uid, uid)

    def write_site(self, text: str) -> None:
        self.site.write_text(text)
        self.site.chmod(0o644)

    def doctor(self, *args: str, user: bool = False, **extra: str):
        """(exit status, the --json report, the text report)."""
        home = self.base / ("user-home" if user else "root-home")
        who = TEST_USER if user else "root"  # as a login sets them (ch-image --version needs USER)
        env = {"HOME": str(home), "PATH": self.path, "LANG": "C.UTF-8", "USER": who, "LOGNAME": who,
               "IMAGEFIT_SITE_CONFIG": str(self.site), **extra}  # fmt: skip
        results = []
        for fmt in (["--json"], []):
            argv = [str(IMAGEFIT), "doctor", *fmt, *args]
            if user:
                argv = ["runuser", "-u", TEST_USER, "--", "env", "-i",
                        *(f"{k}={v}" for k, v in env.items()), *argv]  # fmt: skip
            done = subprocess.run(
                argv, env=None if user else env, capture_output=True, text=True,
                timeout=120, cwd="/", check=False,
            )  # fmt: skip
            assert done.returncode in (0, 1), done.stderr
            assert "Traceback" not in done.stderr
            results.append(done)
        json_run, text_run = results
        assert json_run.returncode == text_run.returncode
        return json_run.returncode, json.loads(json_run.stdout), text_run.stdout


@pytest.fixture
def node():
    base = world_readable_tmp("imagefit-doctor-")
    try:
        yield Node(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _consistent(status: int, report: dict, text: str) -> None:
    """The contract of doctor --json: stable keys, exit 0 exactly when healthy,
    healthy exactly when there is no problem, the text says the same."""
    assert {"schema_version", "healthy", "problems", "notes"} <= set(report)
    assert report["schema_version"] == 2
    assert report["healthy"] is (report["problems"] == []) is (status == 0)
    head = "healthy" if report["healthy"] else f"{len(report['problems'])} problem(s)"
    assert text.startswith(f"imagefit doctor: {head}\n")
    for title in ("problems", "notes"):
        if report[title]:
            section = text.split(f"\n{title}:\n", 1)[1].split("\n\n")[0].splitlines()
            assert section == [f"  - {line}" for line in report[title]]
        else:
            assert f"\n{title}:\n" not in text
    assert all("\n" not in line for line in report["problems"] + report["notes"])


def test_a_plain_installation_is_healthy_for_root_and_a_user(node):
    for user in (False, True):
        status, report, text = node.doctor(user=user)
        _consistent(status, report, text)
        assert report["problems"] == [] and report["notes"] == [], report["problems"]


def test_a_shared_cache_directory_the_user_cannot_write_is_a_problem(node):
    shared = node.base / "shared"
    shared.mkdir(mode=0o755)  # root's, not sticky: usable, but only root writes
    node.write_site(f'decision_cache_dir = "{shared}"\n')
    status, report, text = node.doctor()
    _consistent(status, report, text)
    assert status == 0, report["problems"]  # root can write it
    status, report, text = node.doctor(user=True)
    _consistent(status, report, text)
    assert status == 1 and report["problems"] == [
        f"shared cache directory {shared} (decision_cache_dir) is not writable by uid "
        f"{node.user.pw_uid}: what this user decides is neither cached nor shared (each such "
        "command resolves again): make it mode 1777, or decide as a trusted uid"
    ]
    assert report["cluster"]["shared_cache"]["writable"] is False
    shared.chmod(0o1777)
    status, report, _ = node.doctor(user=True)
    assert status == 0, report["problems"]


def test_a_config_warning_is_a_problem(node):
    facts = node.base / "class.json"
    done = subprocess.run([IMAGEFIT, "facts", "--json", "--output", facts],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    facts.chmod(0o644)
    node_class = f'[node_classes.big]\nfacts = "{facts}"\nhosts = ["nothere*"]\n'
    node.write_site(node_class)
    user_config = node.base / "user-home/.config/imagefit/config.toml"
    user_config.parent.mkdir(parents=True)
    user_config.write_text(node_class)
    for path in (user_config.parent.parent, user_config.parent, user_config):
        os.chown(path, node.user.pw_uid, node.user.pw_gid)
    status, report, text = node.doctor(user=True)
    _consistent(status, report, text)
    assert status == 1 and report["problems"] == [
        f"config: ignoring node class 'big' in {user_config}: the site defines it"
    ]


def test_a_runtimes_path_that_is_not_executable_is_a_problem(node):
    apptainer = node.real / "apptainer"
    apptainer.write_text("#!/bin/sh\n")
    apptainer.chmod(0o644)  # not executable (for root too: no x bit at all)
    node.write_site(f'[runtimes]\napptainer = "{apptainer}"\n')
    status, report, text = node.doctor()
    _consistent(status, report, text)
    message = f"configured apptainer {apptainer} is not an executable runtime"
    assert status == 1 and report["problems"] == [
        f"[runtimes] apptainer = '{apptainer}': {message}: every shimmed `apptainer` exits 125; "
        "point it at the real runtime or remove the entry"
    ]
    row = next(r for r in report["runtimes"] if r["name"] == "apptainer")
    assert (row["status"], row["real_configured"], row["real_error"]) == (
        "absent", str(apptainer), message)  # fmt: skip
    apptainer.chmod(0o755)
    status, report, _ = node.doctor()
    assert status == 0, report["problems"]


def test_a_facts_file_that_records_no_probes_is_a_problem(node, cpuinfo_dir):
    recorded, unrecorded = node.base / "node.json", node.base / "cpuinfo.json"
    for argv, path in (([], recorded), (["--cpuinfo", str(cpuinfo_dir / "linux-rhel7-zen")], unrecorded)):  # fmt: skip
        done = subprocess.run([IMAGEFIT, "facts", "--json", *argv, "--output", path],
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
    # facts written on this node: every probe recorded, healthy
    status, report, text = node.doctor(IMAGEFIT_FACTS=str(recorded))
    _consistent(status, report, text)
    assert status == 0 and report["facts"]["source"] == f"IMAGEFIT_FACTS={recorded}"
    # facts made from a /proc/cpuinfo dump: no probe recorded
    status, report, text = node.doctor(IMAGEFIT_FACTS=str(unrecorded))
    _consistent(status, report, text)
    assert {p["status"] for p in report["facts"]["probes"].values()} == {"unknown"}
    assert status == 1 and report["problems"] == [
        f"facts come from IMAGEFIT_FACTS={unrecorded}, which does not record cpu, nvidia, amd, "
        "mpi, system, interconnect (probe status unknown): the shim decides as if this host had "
        f"none; write the file on the node with `imagefit facts --json --output {unrecorded}`"
    ]


def test_variables_chosen_on_purpose_are_notes_and_a_leaked_marker_a_problem(node):
    status, report, text = node.doctor(IMAGEFIT_DISABLE="1", IMAGEFIT_DRY_RUN="1")
    _consistent(status, report, text)
    assert status == 0 and report["notes"] == [
        "IMAGEFIT_DISABLE=1: the shim passes every command through untouched",
        "IMAGEFIT_DRY_RUN=1: the shim prints the argv and runs nothing",
    ]
    status, report, text = node.doctor(IMAGEFIT_ACTIVE="1")
    _consistent(status, report, text)
    assert status == 1 and report["problems"] == [
        "IMAGEFIT_ACTIVE is set (the shim sets it only for the runtime it runs): "
        "every shim started from here passes through; unset it"
    ]


def test_a_real_runtime_that_cannot_answer_is_a_problem(node):
    (node.real / "podman").write_text("#!/bin/sh\nexit 3\n")
    status, report, text = node.doctor()
    _consistent(status, report, text)
    assert status == 1 and report["problems"] == [
        f"podman: `{node.real / 'podman'} --version` exited with 3: "
        "the shim runs it for every `podman` command"
    ]


def test_a_failing_runtime_no_shim_fronts_is_no_finding(node):
    """A real runtime on PATH that no shim stands in front of (here a
    ``sarus`` whose --version fails) is not imagefit's to run: no problem, no
    note, the node stays healthy; its row says ``not-shimmed``, version null."""
    sarus = node.real / "sarus"
    sarus.write_text("#!/bin/sh\nexit 3\n")
    sarus.chmod(0o755)
    status, report, text = node.doctor()
    _consistent(status, report, text)
    assert status == 0, report["problems"]
    assert not [f for f in report["problems"] + report["notes"] if "sarus" in f]
    (row,) = [r for r in report["runtimes"] if r["name"] == "sarus"]
    assert (row["status"], row["real"], row["version"]) == ("not-shimmed", str(sarus), None)
