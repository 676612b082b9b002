"""A real docker daemon (Debian's ``docker.io``) of the tests' own.

``LocalDockerd(base_dir)`` runs ``/usr/sbin/dockerd`` with everything under
*base_dir*: its socket (``docker.sock``, group root, mode 0660), ``--data-root``,
``--exec-root`` (where dockerd starts its own containerd), pidfile, log and an
empty ``--config-file`` (the host's ``/etc/docker/daemon.json`` is not read).
Like :class:`tests.support.registry.LocalRegistry` it lives with the test
session (SIGTERM if pytest dies), and leaves the host as it was:

- no ``docker0`` bridge, no iptables rules, no masquerading and no change of
  ``net.ipv4.ip_forward`` (``--bridge=none --iptables=false --ip-masq=false
  --ip-forward=false``): podman's networks on the same machine keep working;
  containers run with ``--network=none`` (or ``host``);
- cgroups: dockerd's default without systemd, the ``cgroupfs`` driver, works
  on these machines (cgroup v1 hierarchies, checked with 20.10.24);
- registries: the daemon treats ``127.0.0.0/8`` as insecure by default (moby
  registry/config.go: "Localhost is by default considered as an insecure
  registry", the CIDR added to ``InsecureRegistryCIDRs``), so the plain-HTTP
  test registry on loopback needs no ``insecure-registries`` entry.

What outlives it (dockerd 20.10 has no flag for these): its trust key
``/etc/docker/key.json``, an empty ``/run/docker/plugins`` and the empty
``docker`` parent cgroups.

Use :attr:`env` for the client (``DOCKER_HOST`` and a private
``DOCKER_CONFIG``) and :meth:`granted_to` to let one ordinary user reach the
socket for a while (a root-equivalent grant, hence scoped).
"""

from __future__ import annotations

import contextlib
import grp
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest

from tests.support.fixtures import _mounts_under, missing_tool
from tests.support.registry import _die_with_parent

DOCKERD = "/usr/sbin/dockerd"
#: Debian's client, the one that matches the daemon (a newer one may sit in /usr/local/bin)
DOCKER = "/usr/bin/docker"
#: flags that keep dockerd off the host's network set-up
QUIET_NETWORK = ("--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false")


class DockerdError(RuntimeError):
    """dockerd could not be started; the message carries its log."""


class LocalDockerd:
    """A running dockerd whose state lives under ``base_dir``.

    Attributes:
        host: the endpoint, ``unix://BASE/docker.sock``.
        env: the client's environment additions (``DOCKER_HOST``, ``DOCKER_CONFIG``).
    """

    def __init__(self, base_dir: str | os.PathLike, *, startup_timeout: float = 60.0) -> None:
        self.base = Path(base_dir)
        self.socket_path = self.base / "docker.sock"
        self.log_path = self.base / "dockerd.log"
        self.host = f"unix://{self.socket_path}"
        self.client_config = self.base / "client"
        self.env = {"DOCKER_HOST": self.host, "DOCKER_CONFIG": str(self.client_config)}
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen | None = None
        self._log = None

    def argv(self) -> list[str]:
        b = self.base
        return [
            DOCKERD, "--host", self.host, "--group", "root",
            "--data-root", str(b / "data"), "--exec-root", str(b / "exec"),
            "--pidfile", str(b / "dockerd.pid"), "--config-file", str(b / "daemon.json"),
            *QUIET_NETWORK,
        ]  # fmt: skip

    def start(self) -> Self:
        """Start dockerd and wait until it answers; raises DockerdError."""
        self.base.mkdir(parents=True, exist_ok=True)
        self.client_config.mkdir(exist_ok=True)
        (self.base / "daemon.json").write_text("{}\n")
        self._log = open(self.log_path, "ab", buffering=0)  # noqa: SIM115 (lives with the process)
        self._proc = subprocess.Popen(
            self.argv(), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=self.base, start_new_session=True, preexec_fn=_die_with_parent,  # noqa: PLW1509
        )  # fmt: skip
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._proc.poll() is not None:
                raise DockerdError(
                    f"dockerd exited with {self._proc.returncode}:\n{self.log_text()}"
                )
            if self.docker("version", check=False).returncode == 0:
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise DockerdError(
                    f"dockerd not ready after {self.startup_timeout}s:\n{self.log_text()}"
                )
            time.sleep(0.2)

    def docker(self, *args: str, check: bool = True, timeout: float = 120):
        """Run Debian's docker client against this daemon; a CompletedProcess (text)."""
        return subprocess.run(
            [DOCKER, *args], env={**os.environ, **self.env}, capture_output=True, text=True,
            check=check, timeout=timeout,
        )  # fmt: skip

    def version(self) -> str:
        """The daemon's version, e.g. ``20.10.24+dfsg1``."""
        return self.docker("version", "--format", "{{.Server.Version}}").stdout.strip()

    @contextlib.contextmanager
    def granted_to(self, gid: int) -> Iterator[None]:
        """Let group `gid` use the socket while the block runs (the socket's
        group, mode 0660), then give it back to root. Anyone who can use a
        rootful daemon's socket is root on this host: keep the block short."""
        os.chown(self.socket_path, -1, gid)
        try:
            yield
        finally:
            os.chown(self.socket_path, -1, grp.getgrnam("root").gr_gid)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM dockerd (it stops its containers and containerd), unmount
        what it left under ``base_dir`` (its network namespace file), remove it."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        for mnt in sorted(_mounts_under(self.base), key=len, reverse=True):
            subprocess.run(["umount", "-l", mnt], check=False, capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def dockerd() -> Iterator[LocalDockerd]:
    """A running :class:`LocalDockerd` for the whole session, in a
    world-traversable directory (an ordinary user may be granted its socket).
    Without dockerd: fail, or skip with IMAGEFIT_TESTS_ALLOW_SKIP=1
    (:func:`tests.support.fixtures.missing_tool`)."""
    if not os.access(DOCKERD, os.X_OK) or not os.access(DOCKER, os.X_OK):
        missing_tool(f"{DOCKERD} or {DOCKER} missing (Debian's docker.io)")
    if os.geteuid() != 0:
        pytest.skip("dockerd is started as root")
    base = Path(tempfile.mkdtemp(prefix="imagefit-docker-"))
    base.chmod(0o755)
    daemon = LocalDockerd(base)
    try:
        daemon.start()
    except DockerdError as exc:
        pytest.fail(str(exc))
    try:
        yield daemon
    finally:
        daemon.stop()
