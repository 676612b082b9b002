"""The guided tour docs/admin.md tells a newcomer to run works and shows
what it says it shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_cluster_demo_shows_every_behaviour():
    done = subprocess.run([sys.executable, "-m", "tests.cluster_demo"], cwd=REPO, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "  -> index requests at the registry: 1" in out
    for host, build in (("a001", "zen4"), ("s004", "sapphirerapids"), ("h002", "haswell")):
        assert f"  {host}: {build}" in out, out
    assert "node class zen3 needs build zen3" in out and "(exit 125)" in out
    assert "[z001]$ podman run" in out and "\n  zen3\n" in out
    assert "  a001: x86_64_v4\n  s001: x86_64_v4" in out
    assert "imagefit doctor: healthy" in out and "this node (s001): spr" in out
    assert out.rstrip().endswith("(cluster stopped)")
