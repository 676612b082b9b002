"""A real CNCF Distribution registry on loopback, for tests.

``LocalRegistry`` runs ``/usr/bin/docker-registry serve CONFIG`` (Debian's
``docker-registry`` package, Distribution 2.8) on a free ``127.0.0.1`` port
with its own config: filesystem storage under a given directory, deletes
enabled, plain HTTP (or, with ``tls=True``, HTTPS with a self-signed
certificate made by ``openssl req``), and optionally htpasswd (basic) auth.  The registry's
stdout/stderr (access log included) go to ``log_path`` so tests can count the
requests a client made (see :meth:`LocalRegistry.requests`).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

REGISTRY_BINARY = "/usr/bin/docker-registry"

_ACCESS_RE = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE|OPTIONS) (\S+) HTTP/[0-9.]+" (\d{3})')


class RegistryError(RuntimeError):
    """The registry could not be configured or started."""


def _die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM the registry if its parent dies
    (pytest killed with SIGKILL), so no registry outlives the test run."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def htpasswd_line(user: str, password: str) -> str:
    """Return an htpasswd line ``user:$2...`` with a bcrypt hash.

    Distribution only accepts bcrypt hashes.  Tries, in order: the ``bcrypt``
    package, ``htpasswd -nbB`` (apache2-utils), then the standard library's
    ``crypt`` module (deprecated, present up to Python 3.12) where the C
    library does bcrypt (libxcrypt on Debian 12 does).  Raises RegistryError
    if none of them can.
    """
    if ":" in user:
        raise ValueError("user name must not contain ':'")
    try:
        import bcrypt  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5))
        return f"{user}:{hashed.decode()}"

    tool = shutil.which("htpasswd")
    if tool:
        out = subprocess.run(
            [tool, "-nbB", "-C", "5", user, password],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if out.startswith(f"{user}:$2"):
            return out

    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # type: ignore[import-not-found]
    except ImportError:
        crypt = None
    if crypt is not None:
        alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        # 22 salt chars; the last one must carry only 2 significant bits.
        salt = "".join(secrets.choice(alphabet) for _ in range(21)) + secrets.choice(".Oeu")
        hashed = crypt.crypt(password, f"$2b$05${salt}")
        if hashed and hashed.startswith("$2b$05$") and len(hashed) == 60:
            return f"{user}:{hashed}"

    raise RegistryError(
        "cannot make a bcrypt htpasswd line: install the 'bcrypt' Python "
        "package or apache2-utils (htpasswd)"
    )


def self_signed_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """(certificate, key) PEM files in `directory`: a self-signed certificate
    for IP address `host` (and ``localhost``), valid two days, made with
    ``openssl req -x509`` (Debian's openssl). The certificate is its own CA:
    a client trusts it with the file as its CA bundle. Raises RegistryError
    without openssl."""
    tool = shutil.which("openssl")
    if tool is None:
        raise RegistryError("openssl not found: apt-get install -y openssl")
    cert, key = directory / "registry.crt", directory / "registry.key"
    done = subprocess.run(
        [tool, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={host}",
         "-addext", f"subjectAltName=IP:{host},DNS:localhost"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        raise RegistryError(f"openssl req failed: {done.stderr.strip()[-500:]}")
    cert.chmod(0o644)
    return cert, key


def can_make_htpasswd() -> bool:
    try:
        htpasswd_line("probe", "probe")
    except RegistryError:
        return False
    return True


class LocalRegistry:
    """A running Distribution registry on ``127.0.0.1:<free port>``.

    ``LocalRegistry(root_dir)`` writes ``config.yml``, ``registry.log`` and
    the storage directory ``data/`` under *root_dir* and starts the server
    (unless ``start=False``).  With ``auth=(user, password)`` it demands
    basic auth.  ``host`` is the local IPv4 address it binds (default
    ``127.0.0.1``; tests/support/cluster.py passes an address of the
    simulated cluster's bridge).  With ``tls=True`` it speaks HTTPS only
    (Distribution's ``http.tls``), with a self-signed certificate for
    ``host`` in :attr:`ca_cert` (a client verifies with it as its CA bundle,
    or skips verification; plain HTTP is refused).  Use as a context
    manager or call :meth:`stop`.
    """

    def __init__(
        self,
        root_dir: str | os.PathLike,
        *,
        auth: tuple[str, str] | None = None,
        binary: str = REGISTRY_BINARY,
        startup_timeout: float = 10.0,
        start: bool = True,
        host: str = "127.0.0.1",
        tls: bool = False,
    ) -> None:
        self.bind_host = host
        self.tls = tls
        #: the certificate (its own CA) when ``tls``, made on first start
        self.ca_cert: Path | None = None
        self._tls_key: Path | None = None
        self.root_dir = Path(root_dir)
        self.root_dir.mkdir(parents=True, exist_ok=True)
        self.storage_dir = self.root_dir / "data"
        self.config_path = self.root_dir / "config.yml"
        self.log_path = self.root_dir / "registry.log"
        self.htpasswd_path = self.root_dir / "htpasswd"
        self.auth = auth
        self.binary = binary
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._log_file = None
        self.ready_offset = 0
        if start:
            self.start()

    # -- addresses -------------------------------------------------------
    @property
    def host(self) -> str:
        if self.port is None:
            raise RegistryError("registry not started")
        return f"{self.bind_host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- config ------------------------------------------------------------
    def _write_config(self, port: int) -> None:
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            "version: 0.1",
            "log:",
            "  level: info",
            "  accesslog:",
            "    disabled: false",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.storage_dir}",
            "  delete:",
            "    enabled: true",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            f"  addr: {self.bind_host}:{port}",
            f"  secret: {secrets.token_hex(16)}",
        ]
        if self.tls:
            if self.ca_cert is None:
                self.ca_cert, self._tls_key = self_signed_certificate(self.root_dir, self.bind_host)
            lines += ["  tls:", f"    certificate: {self.ca_cert}", f"    key: {self._tls_key}"]
        lines += [
            "health:",
            "  storagedriver:",
            "    enabled: false",
        ]
        if self.auth is not None:
            user, password = self.auth
            self.htpasswd_path.write_text(htpasswd_line(user, password) + "\n")
            lines += [
                "auth:",
                "  htpasswd:",
                "    realm: imagefit-test",
                f"    path: {self.htpasswd_path}",
            ]
        self.config_path.write_text("\n".join(lines) + "\n")

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> Self:
        if self.running():
            return self
        if not os.access(self.binary, os.X_OK):
            raise RegistryError(f"{self.binary} not found: apt-get install -y docker-registry")
        last_error = ""
        for _attempt in range(3):  # a free port can be taken in between
            port = _free_port(self.bind_host)
            self._write_config(port)
            self.port = port
            self._log_file = open(self.log_path, "ab", buffering=0)  # noqa: SIM115 (lives with the process)
            self._proc = subprocess.Popen(
                [self.binary, "serve", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                cwd=self.root_dir,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (only calls prctl)
            )
            try:
                self._wait_ready()
                self._settle_probe_log()
                return self
            except RegistryError as exc:
                last_error = str(exc)
                addr_in_use = "address already in use" in self.log_text()
                self.stop()
                if not addr_in_use:
                    break
        raise RegistryError(last_error)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.005
        last = None
        while True:
            if self._proc.poll() is not None:
                raise RegistryError(
                    f"registry exited with {self._proc.returncode} during start;"
                    f" log:\n{self.log_text()}"
                )
            try:
                with urllib.request.urlopen(
                    f"{self.url}/v2/", timeout=1, context=self.ssl_context()
                ) as resp:
                    if resp.status == 200:
                        return
                    last = resp.status
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code == 401 and self.auth is not None:
                    return
                last = exc.code
            except (urllib.error.URLError, ConnectionError, OSError) as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise RegistryError(
                    f"registry at {self.url} not ready after "
                    f"{self.startup_timeout}s (last: {last!r}); log:\n{self.log_text()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _settle_probe_log(self) -> None:
        # The access log line of the last readiness probe may be written just
        # after the probe got its answer: wait for it (briefly) so that
        # ``ready_offset`` lies after it and requests() leaves probes out.
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if any(p == "/v2/" for _m, p, _s in self.requests(since=0)):
                break
            time.sleep(0.002)
        self.ready_offset = self.log_offset()

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- helpers for tests -------------------------------------------------
    def ssl_context(self):
        """An ``ssl.SSLContext`` trusting :attr:`ca_cert` (None without TLS)."""
        if not self.tls:
            return None
        import ssl

        return ssl.create_default_context(cafile=str(self.ca_cert))

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_offset(self) -> int:
        """Current size of the log; pass to :meth:`requests` as ``since``."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def requests(self, since: int | None = None) -> list[tuple[str, str, int]]:
        """(method, path, status) of each request in the access log.

        ``since`` is a byte offset from :meth:`log_offset`, to count only the
        requests made after that point; by default, the requests made after
        the registry became ready (the readiness probes are left out).
        """
        if since is None:
            since = self.ready_offset
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            return []
        return [(m, p, int(s)) for m, p, s in _ACCESS_RE.findall(text)]

    def basic_auth_header(self) -> dict[str, str]:
        if self.auth is None:
            return {}
        token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
