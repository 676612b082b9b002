"""Every `imagefit` command line shown in README.md and docs/ is read by the
real CLI parser, and those that need no registry are run through the
installed command. (The author guide's commands are run end to end against
the test registry by tests/test_author.py; explain/check/podman flows by the
e2e tests.)"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
IMAGEFIT = str(Path(sys.executable).parent / "imagefit")
PLACEHOLDERS = {
    "REGISTRY": "127.0.0.1:9",
    "REF": "127.0.0.1:9/a/b:1",
    "ARCH": "x86_64",
    "HOST": "127.0.0.1:9",
}


def _command_lines() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        blocks = re.findall(r"```[a-z]*\n(.*?)```", doc.read_text(), re.S)
        for block in blocks:
            text = block.replace("\\\n", " ")
            for line in text.splitlines():
                line = line.split(" #")[0].strip().split("&&")[-1].strip()
                words = line.split()
                if not words or Path(words[0]).name != "imagefit" or "|" in line:
                    continue
                found.append((doc.name, line.split(">")[0].strip()))
    return found


COMMANDS = _command_lines()


def _argv(line: str, tmp_path: Path) -> list[str]:
    line = re.sub(r"\[[^\]]*\]", "", line)  # optional parts in usage notation
    words = shlex.split(line)[1:]
    out = []
    for w in words:
        for name, value in PLACEHOLDERS.items():
            w = w.replace(name, value)
        if w in ("FILE", "DIR"):
            w = str(tmp_path)
        out.append(w)
    return out


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 15, COMMANDS


@pytest.mark.parametrize(("doc", "line"), COMMANDS, ids=[f"{d}: {c}" for d, c in COMMANDS])
def test_every_documented_command_line_parses(doc, line, tmp_path):
    from shim.cli import _parser

    args = _parser().parse_args(
        _argv(line, tmp_path)
    )  # SystemExit(2) on a documented line that does not parse
    assert args.func is not None


LOCAL = [(d, c) for d, c in COMMANDS if c.split()[1] in ("facts", "doctor", "demo") and "--cpuinfo" not in c
         and "--root" not in c]  # fmt: skip


@pytest.mark.parametrize(("doc", "line"), LOCAL, ids=[f"{d}: {c}" for d, c in LOCAL])
def test_documented_commands_that_need_no_registry_run(doc, line, tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "IMAGEFIT_SITE_CONFIG": str(tmp_path / "none.toml")}  # fmt: skip
    env.pop("IMAGEFIT_FACTS", None)
    done = subprocess.run(
        [IMAGEFIT, *_argv(line, tmp_path)], env=env, capture_output=True, text=True, timeout=120,
        cwd=tmp_path,
    )  # fmt: skip
    # doctor exits 1 here (the shim is not first on this PATH): a finding, not a failure
    assert done.returncode in ((0, 1) if "doctor" in line else (0,)), done.stderr
    assert "Traceback" not in done.stderr
    if "--output" in line:  # written to a file (relative: in the test's directory)
        written = tmp_path / line.split("--output", 1)[1].split()[0]
        assert written.read_text().strip(), line
    else:
        assert done.stdout.strip()


def test_documented_install_user_runs(tmp_path):
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "SHELL": "/bin/bash",
    }
    done = subprocess.run([IMAGEFIT, "install", "--user", "--runtime", "podman"], env=env, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "imagefit" / "bin" / "podman").is_symlink()
