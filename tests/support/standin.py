"""Recording stand-ins for runtimes that cannot be installed here (apptainer,
singularity, Sarus; docker's daemon): an executable that appends the exact
argv it received (and the environment marker) as one JSON line to a log, and
exits with a chosen status. Tests assert the exact argv."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

SCRIPT = """#!{python}
import json, os, sys
with open({log!r}, "a", encoding="utf-8") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "name": os.path.basename(sys.argv[0]),
                          "active": os.environ.get("IMAGEFIT_ACTIVE")}}) + "\\n")
sys.exit({status})
"""


class StandIn:
    """A stand-in runtime `name` in `directory` (put that directory on PATH
    after the shim's)."""

    def __init__(self, directory: Path, name: str, status: int = 0) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / name
        self.log = directory / f"{name}.calls.jsonl"
        self.path.write_text(SCRIPT.format(python=sys.executable, log=str(self.log), status=status))
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        if self.log.exists():
            self.log.unlink()

    def calls(self) -> list[dict]:
        """Every call so far: {"argv": [...], "name": str, "active": str | None}."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def argvs(self) -> list[list[str]]:
        return [c["argv"] for c in self.calls()]


def path_with(*directories: Path) -> str:
    """A PATH with `directories` first, then this process's PATH."""
    return os.pathsep.join([*map(str, directories), os.environ.get("PATH", "")])
