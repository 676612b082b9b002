"""A cluster starting one image cold: registry requests and wall time.

    /opt/imagefit-venv/bin/python -m tests.benchmarks.cluster_bench [--nodes 8,32,128]

For each size N: N shims start at once (``podman run IMG id`` through the
installed shim, dry run: podman's own time is not in it), each a simulated
node of one of three node classes (zen4, sapphirerapids, haswell: facts made from
archspec's real /proc/cpuinfo dumps, given as ``IMAGEFIT_FACTS``), each with
its own node-local cache directory, all sharing one site directory
(``decision_cache_dir``, as on the parallel file system), empty at the start.
The index carries NFD artifacts on every build (the costly case: one
referrers lookup per build). Printed per N: registry requests, index
resolutions (GETs of the tag), distinct choices per class, wall time.
Goal: one index resolution whatever N.

Needs tests/provision.sh (the registry binary, imagefit installed). Starts
its own registry on loopback.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.shim_bench import NAMES, NFD_SPEC, _builds
from tests.support import oci
from tests.support.registry import LocalRegistry

CLASSES = {
    "zen4": "linux-rocky8.5-zen4",
    "sapphirerapids": "linux-unknown-sapphirerapids",
    "haswell": "linux-rhel7-haswell",
}


def _dumps() -> Path:
    import archspec

    return Path(archspec.__file__).parent / "json" / "tests" / "targets"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="8,32,128", help="comma-separated cluster sizes")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.nodes.split(",") if n.strip()]
    work = Path(tempfile.mkdtemp(prefix="imagefit-cluster-bench-"))
    work.chmod(0o755)
    registry = LocalRegistry(work / "registry")
    try:
        pushed = oci.build_and_push(
            registry.host, "bench/cluster", "1", _builds(False), layout_dir=work / "l"
        )
        for name in NAMES:
            oci.push_artifact(registry.host, "bench/cluster", oci.subject_descriptor(pushed, name),
                              NFD_SPEC.format(name=name).encode(), created="2026-12-01T00:00:00Z")  # fmt: skip
        bindir = Path(sys.executable).parent
        subprocess.run([str(bindir / "imagefit"), "install", "--prefix", str(work / "shim"), "--runtime", "podman"],
                       check=True, capture_output=True)  # fmt: skip
        facts = {}
        host = json.loads(subprocess.run([str(bindir / "imagefit"), "facts", "--json"], check=True,
                                         capture_output=True, text=True).stdout)  # fmt: skip
        for cls, dump in CLASSES.items():
            # this host's facts (kernel, glibc...) with the class's CPU, from a real cpuinfo dump
            path = work / f"{cls}.json"
            done = subprocess.run([str(bindir / "imagefit"), "facts", "--json", "--cpuinfo", str(_dumps() / dump)],
                                  check=True, capture_output=True, text=True)  # fmt: skip
            path.write_text(
                json.dumps({**host, "cpu": json.loads(done.stdout)["cpu"], "hostname": cls})
            )
            facts[cls] = str(path)
        shim = str(work / "shim" / "bin" / "podman")
        print(
            f"{len(NAMES)} builds with NFD artifacts; classes {', '.join(CLASSES)}; python {sys.version.split()[0]}"
        )
        for n in sizes:
            shared = work / f"shared-{n}"
            shared.mkdir(mode=0o755)
            site = work / f"site-{n}.toml"
            site.write_text(f'decision_cache_dir = "{shared}"\n')
            site.chmod(0o644)
            classes = list(CLASSES)
            procs = []
            mark = registry.log_offset()
            start = time.perf_counter()
            for i in range(n):
                cls = classes[i % len(classes)]
                node = work / f"node-{n}-{i}"
                env = {"PATH": f"{work / 'shim' / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(node),
                       "XDG_CACHE_HOME": str(node / "cache"), "IMAGEFIT_SITE_CONFIG": str(site),
                       "IMAGEFIT_FACTS": facts[cls], "IMAGEFIT_DRY_RUN": "1"}  # fmt: skip
                procs.append((cls, subprocess.Popen([shim, "run", "--rm", "--tls-verify=false", pushed.ref, "id"],
                                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                    text=True)))  # fmt: skip
            chosen: dict[str, set] = {}
            failed = 0
            for cls, proc in procs:
                out, err = proc.communicate(timeout=600)
                if proc.returncode != 0 or not out.strip():
                    failed += 1
                    if failed == 1:
                        print(f"  first failure ({cls}): {err.strip()[-300:]}")
                    continue
                chosen.setdefault(cls, set()).add(
                    json.loads(out.splitlines()[-1])[-2].rsplit("@", 1)[-1][:19]
                )
            wall = time.perf_counter() - start
            reqs = registry.requests(mark)
            index_gets = [r for r in reqs if r[0] == "GET" and r[1].endswith("/manifests/1")]
            per_class = ", ".join(f"{c}: {len(d)}" for c, d in sorted(chosen.items()))
            print(f"{n} nodes cold: {len(reqs)} registry requests, {len(index_gets)} index resolution(s), "
                  f"distinct choices per class ({per_class}), {failed} failed, wall {wall:.2f} s")  # fmt: skip
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
