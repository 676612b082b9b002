"""A build context for ``imagefit index build`` with no network: the C kernels
of tests/benchmarks/kernels.c compiled on this host per archspec target with
archspec's flags, and a Containerfile that copies the target's binary in.

There is no compiler inside a busybox image and nothing to pull one from, so
the compile runs here, with the same flags ``imagefit index build`` passes
as ``IMAGEFIT_CFLAGS`` (``optimization_flags`` of the installed gcc), and the
Containerfile's build refuses a binary compiled with other flags than the
ones it is given (``RUN test "$(cat .../cflags)" = "$IMAGEFIT_CFLAGS"``).
The base image is ``podman import``-ed from the busybox root file system
of tests.support.oci (:func:`import_base`).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from tests.support import oci

SOURCE = Path(__file__).resolve().parents[1] / "benchmarks" / "kernels.c"
BASE = "localhost/imagefit-test/busybox:1"
CONTAINERFILE = """\
FROM {base}
ARG IMAGEFIT_TARGET
ARG IMAGEFIT_CFLAGS
ARG AUTHOR_NOTE=none
COPY bin/${{IMAGEFIT_TARGET}}/ /opt/kernels/
RUN test "$(cat /opt/kernels/cflags)" = "$IMAGEFIT_CFLAGS" && \\
    printf '%s\\n' "$IMAGEFIT_TARGET" > /etc/imagefit-build && \\
    printf '%s\\n' "$AUTHOR_NOTE" > /etc/imagefit-note
ENV PATH=/opt/kernels:/usr/bin:/bin
"""


def gcc_version(gcc: str = "gcc") -> str:
    """``gcc -dumpfullversion``: ``12.2.0``."""
    return subprocess.run(
        [gcc, "-dumpfullversion"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()


def target_flags(target: str, version: str) -> str:
    """archspec's flags for `target` with gcc@`version`, one space apart (as
    ``imagefit index build`` passes them). Raises
    archspec.cpu.UnsupportedMicroarchitecture with archspec's reason."""
    from archspec.cpu import TARGETS

    return " ".join(TARGETS[target].optimization_flags("gcc", version).split())


def write_context(
    context: Path, targets: list[str], version: str, gcc: str = "gcc"
) -> tuple[dict[str, str], dict[str, str]]:
    """Compile the kernels for each target into CONTEXT/bin/TARGET/kernels
    (``-O3 FLAGS -static``, its flags in CONTEXT/bin/TARGET/cflags) and write
    CONTEXT/Containerfile. Returns ({target: flags} compiled, {target:
    archspec's reason} skipped)."""
    from archspec.cpu import UnsupportedMicroarchitecture

    built, skipped = {}, {}
    (context / "bin").mkdir(parents=True, exist_ok=True)
    for target in targets:
        try:
            flags = target_flags(target, version)
        except UnsupportedMicroarchitecture as exc:
            skipped[target] = " ".join(str(exc).split())
            continue
        out = context / "bin" / target
        out.mkdir(exist_ok=True)
        subprocess.run(
            [gcc, "-O3", *flags.split(), "-static", f'-DBUILD_TARGET="{target}"',
             f'-DBUILD_CFLAGS="{flags}"', "-o", str(out / "kernels"), str(SOURCE)],
            check=True, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        (out / "cflags").write_text(flags + "\n")
        built[target] = flags
    (context / "Containerfile").write_text(CONTAINERFILE.format(base=BASE))
    return built, skipped


def import_base(podman_argv: list[str], env: dict[str, str]) -> str:
    """``podman import`` the busybox root file system as :data:`BASE`."""
    tar, _gz = oci.base_layer()
    fd, path = tempfile.mkstemp(prefix="imagefit-rootfs-", suffix=".tar")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(tar)
        done = subprocess.run([*podman_argv, "import", path, BASE], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"podman import failed ({done.returncode}): {done.stderr.strip()}")
    finally:
        os.unlink(path)
    return BASE
