"""`imagefit facts --cpuinfo FILE` refuses a file that is not a /proc/cpuinfo
of the machine (issue 12, item 4a): before, ``--cpuinfo /etc/passwd --machine
x86_64`` answered ``x86_64`` with no flags, exit 0, because archspec answers
the bare family for any text (archspec/cpu/detect.py ``proc_cpuinfo`` reads
``flags``/``Features``/``cpu``/``uarch`` from the first processor block and
falls back to ``generic``). Through the installed ``imagefit``."""

from __future__ import annotations

import json
import subprocess

import pytest


def facts(imagefit_cmd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*imagefit_cmd, "facts", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("name", "content", "machine", "wanted"),
    [
        ("passwd", "root:x:0:0:root:/root:/bin/sh\nalice:x:1234:1234::/home/alice:/bin/sh\n", "x86_64", "'flags'"),
        ("empty", "", "x86_64", "'flags'"),
        ("blank-flags", "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t:\n", "x86_64", "'flags'"),
        ("passwd-arm", "root:x:0:0:root:/root:/bin/sh\n", "aarch64", "'Features' or 'CPU implementer'"),
        ("passwd-power", "root:x:0:0:root:/root:/bin/sh\n", "ppc64le", "'cpu'"),
        ("passwd-riscv", "root:x:0:0:root:/root:/bin/sh\n", "riscv64", "'uarch' or 'isa'"),
    ],
)  # fmt: skip
def test_a_file_that_is_no_cpuinfo_is_refused(
    imagefit_cmd, tmp_path, name, content, machine, wanted
):
    path = tmp_path / name
    path.write_text(content)
    for extra in ([], ["--json"]):
        done = facts(imagefit_cmd, "--cpuinfo", str(path), "--machine", machine, *extra)
        assert done.returncode == 125, done.stdout + done.stderr
        assert done.stdout == ""
        assert done.stderr.splitlines() == [
            f"imagefit: {path} is not a /proc/cpuinfo of an {machine} host: its first "
            f"processor block has no {wanted} line"
        ]


def test_a_windows_cpuid_dump_is_refused(imagefit_cmd, cpuinfo_dir):
    dump = cpuinfo_dir / "windows-cpuid-broadwell"
    done = facts(imagefit_cmd, "--cpuinfo", str(dump), "--machine", "x86_64")
    assert done.returncode == 125 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "is not a /proc/cpuinfo" in done.stderr
    without = facts(imagefit_cmd, "--cpuinfo", str(dump))  # no machine: cannot tell
    assert without.returncode == 125 and len(without.stderr.splitlines()) == 1


def test_etc_passwd_without_machine_is_refused(imagefit_cmd):
    done = facts(imagefit_cmd, "--cpuinfo", "/etc/passwd")
    assert done.returncode == 125 and done.stdout == "" and len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("dump", "machine", "target"),
    [
        ("linux-rocky8.5-zen4", "x86_64", "zen4"),
        ("linux-rhel9-neoverse_v2", "aarch64", "neoverse_v2"),
        ("linux-rhel8-power9", "ppc64le", "power9le"),
        ("linux-sifive-u74mc", "riscv64", "u74mc"),
    ],
)
def test_real_dumps_still_answer(imagefit_cmd, cpuinfo_dir, dump, machine, target):
    done = facts(imagefit_cmd, "--json", "--cpuinfo", str(cpuinfo_dir / dump), "--machine", machine)
    assert done.returncode == 0, done.stderr
    cpu = json.loads(done.stdout)["cpu"]
    assert cpu["target"] == target
    if machine in ("x86_64", "aarch64"):
        assert cpu["flags"], cpu
