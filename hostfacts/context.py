"""What every probe reads from: a root directory, an environment, a time limit.

Probes never touch ``/`` or ``os.environ`` directly: they go through a
:class:`ProbeContext`, so tests (and ``imagefit facts --root DIR``) feed them
a copied or fake tree, a fake environment and a fake NVML module. Commands and
library calls probe the live machine, so they run only when ``live`` (the
root is ``/``); on a copied tree those facts are reported ``unknown``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hostfacts.model import Evidence


class ProbeContext:
    """Inputs of one probe run.

    Args:
        root: directory holding the tree to read (``/`` for this host).
        environ: environment to read (PATH, LD_LIBRARY_PATH, CUDA_VISIBLE_DEVICES...).
        timeout: seconds each probe may take (commands get what is left).
        nvml: a pynvml-like module to use instead of importing ``pynvml`` (tests).
        allow_commands: run commands and load libraries even when ``root`` is
            not ``/`` (tests that fake both a tree and executables).
    """

    def __init__(
        self,
        root: str | Path = "/",
        environ: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        nvml: Any = None,
        allow_commands: bool | None = None,
    ) -> None:
        self.root = Path(root)
        self.environ = dict(os.environ if environ is None else environ)
        self.timeout = timeout
        self.nvml = nvml
        self.live = self.root.resolve() == Path("/")
        self.allow_commands = self.live if allow_commands is None else allow_commands

    def path(self, absolute: str) -> Path:
        """Where host path `absolute` (e.g. '/proc/cpuinfo') is under the root."""
        return self.root / absolute.lstrip("/")

    def resolve(self, absolute: str) -> Path | None:
        """Where host path `absolute` really is under the root, or None if absent.

        Symlinks are followed as on the host: an absolute target starts again
        at the root, '..' stops at the root, so a copied tree never leads to
        this machine's files (``/etc/os-release -> /usr/lib/os-release``
        reads the tree's). At most 40 links are followed (the kernel's limit).
        """
        pending = [part for part in absolute.split("/") if part]
        done: list[str] = []
        links = 0
        while pending:
            name = pending.pop(0)
            if name == ".":
                continue
            if name == "..":
                if done:
                    done.pop()
                continue
            candidate = self.root.joinpath(*done, name)
            if candidate.is_symlink():
                links += 1
                try:
                    target = os.readlink(candidate)
                except OSError:
                    return None
                if links > 40:
                    return None
                if target.startswith("/"):
                    done = []
                pending = [part for part in target.split("/") if part] + pending
                continue
            if not os.path.lexists(candidate):
                return None
            done.append(name)
        return self.root.joinpath(*done)

    def read_text(self, absolute: str, limit: int = 1 << 20) -> str | None:
        """Contents of host file `absolute` (at most `limit` bytes), or None if unreadable."""
        where = self.path(absolute) if self.live else self.resolve(absolute)
        if where is None:
            return None
        try:
            with open(where, "rb") as fh:
                return fh.read(limit).decode("utf-8", errors="replace")
        except OSError:
            return None

    def listdir(self, absolute: str) -> list[str]:
        """Sorted entries of host directory `absolute`, or [] if unreadable."""
        where = self.path(absolute) if self.live else self.resolve(absolute)
        if where is None:
            return []
        try:
            return sorted(os.listdir(where))
        except OSError:
            return []

    def which(self, name: str) -> str | None:
        """`name` resolved on the context's PATH (only when commands may run)."""
        if not self.allow_commands:
            return None
        return shutil.which(name, path=self.environ.get("PATH", os.defpath))

    def run(
        self, argv: Sequence[str], timeout: float | None = None
    ) -> tuple[subprocess.CompletedProcess | None, Evidence]:
        """Run a command with the context's environment and a timeout.

        Returns:
            (completed process or None when it could not run or timed out,
            Evidence naming the command and what happened). Never raises.
        """
        shown = " ".join(argv)
        if not self.allow_commands:
            return None, Evidence(kind="command", source=shown, detail="not run: not the live root")
        try:
            done = subprocess.run(
                list(argv),
                env=self.environ,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout or self.timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None, Evidence(
                kind="command",
                source=shown,
                detail=f"timed out after {timeout or self.timeout:g} s",
            )
        except OSError as exc:
            return None, Evidence(
                kind="command", source=shown, detail=f"cannot run: {exc.strerror or exc}"
            )
        first = (done.stdout.strip().splitlines() or done.stderr.strip().splitlines() or [""])[0]
        return done, Evidence(
            kind="command", source=shown, detail=f"exit {done.returncode}: {first[:160]}"
        )


def file_evidence(ctx: ProbeContext, absolute: str, detail: str = "") -> Evidence:
    """Evidence for a file read through `ctx` (the host path, as the user knows it)."""
    where = absolute if ctx.live else f"{ctx.root}{absolute}"
    return Evidence(kind="file", source=where, detail=detail)
