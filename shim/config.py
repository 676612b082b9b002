"""imagefit's configuration: site file, user file, then ``IMAGEFIT_*`` variables.

Files (TOML, read with tomllib): the site file ``/etc/imagefit/config.toml``
(``IMAGEFIT_SITE_CONFIG`` overrides the path, for tests and modules), then the
user file ``$XDG_CONFIG_HOME/imagefit/config.toml`` (default
``~/.config/imagefit/config.toml``), later values overriding earlier ones. A
file that is not trusted (:mod:`shim.trust`) is ignored with a warning; when
the shim runs as root the user file is not read at all. Unknown keys are an
error (a typo must not silently change behaviour).

Keys::

    on_error = "passthrough"   # or "refuse": what a failed resolution does
    login = "auto"             # or "always" / "never": the login-container recipe
    registry_timeout = 5.0     # seconds, total, for one resolution's registry I/O
    insecure_registries = []   # hosts reached over plain HTTP / without TLS checks
    [runtimes]                 # absolute paths of the real runtimes
    podman = "/usr/bin/podman"
    [cpu_targets]              # node classes whose archspec target is overridden:
    "nid0*" = "zen3"           # hostname glob (fnmatch) = archspec target; first match wins
    nfd_artifacts = true       # look for NFD compatibility artifacts (referrers)
    decision_cache_ttl = 600   # seconds a decision is used without asking the registry
    decision_cache_dir = "/lustre/imagefit/decisions"  # shared by all nodes (default: per user)
    cache_trusted_uids = []    # other owners whose shared cache entries are trusted
    audit_log = "/var/log/imagefit/audit.jsonl"        # or "syslog"; default: none
    [[policy]]                 # per image (glob on the repository, first match wins):
    image = "registry.example.org/apps/*"
    pin = "zen3"               # the only build to run: a build label, NFD set tag or digest
    prefer = ["cuda12", "zen4"]  # ranked first, earlier stronger
    avoid = ["x86_64"]         # ranked last

Environment: ``IMAGEFIT_ON_ERROR``, ``IMAGEFIT_LOGIN`` (``0``/``1`` for one
command, or auto/always/never), ``IMAGEFIT_REGISTRY_TIMEOUT``,
``IMAGEFIT_<RUNTIME>`` (e.g. ``IMAGEFIT_PODMAN=/usr/bin/podman``).

Standard library only (read on every invocation, the hot path included).
"""

from __future__ import annotations

import os

if False:  # for type checkers only: importing collections costs every shimmed command ~1.3 ms
    from collections.abc import Mapping

from shim.errors import ConfigError
from shim.trust import untrusted_reason

SITE_CONFIG = "/etc/imagefit/config.toml"
ON_ERROR = ("passthrough", "refuse")
LOGIN = ("auto", "always", "never")
RUNTIMES = ("podman", "docker", "apptainer", "singularity", "sarus")


class Settings:
    """Effective settings (see the module docstring for each key).
    ``sources`` names the files that were read, ``warnings`` the files ignored.
    A plain class: ``dataclasses`` would cost the hot path ~10 ms of imports."""

    __slots__ = (
        "on_error",
        "login",
        "registry_timeout",
        "insecure_registries",
        "runtimes",
        "cpu_targets",
        "nfd_artifacts",
        "policies",
        "decision_cache_ttl",
        "decision_cache_dir",
        "cache_trusted_uids",
        "audit_log",
        "sources",
        "warnings",
    )

    def __init__(
        self,
        on_error: str = "passthrough",
        login: str = "auto",
        registry_timeout: float = 5.0,
        insecure_registries: tuple[str, ...] = (),
        runtimes: Mapping[str, str] | None = None,
        cpu_targets: tuple[tuple[str, str], ...] = (),
        nfd_artifacts: bool = True,
        policies: tuple[dict, ...] = (),
        decision_cache_ttl: float = 600.0,
        decision_cache_dir: str | None = None,
        cache_trusted_uids: tuple[int, ...] = (),
        audit_log: str | None = None,
        sources: tuple[str, ...] = (),
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.on_error = on_error
        self.login = login
        self.registry_timeout = registry_timeout
        self.insecure_registries = insecure_registries
        self.runtimes = dict(runtimes or {})
        self.cpu_targets = cpu_targets
        self.nfd_artifacts = nfd_artifacts
        self.policies = policies
        self.decision_cache_ttl = decision_cache_ttl
        self.decision_cache_dir = decision_cache_dir
        self.cache_trusted_uids = cache_trusted_uids
        self.audit_log = audit_log
        self.sources = sources
        self.warnings = warnings

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Settings({fields})"

    def policy_for(self, repository: str) -> dict | None:
        """The first ``[[policy]]`` entry whose ``image`` glob matches
        `repository` (``domain/path``), as a dict with pin/prefer/avoid; or None."""
        if not self.policies:
            return None  # and no fnmatch import (it imports re): the hot path
        from fnmatch import fnmatchcase

        return next((p for p in self.policies if fnmatchcase(repository, p["image"])), None)

    def cpu_target_for(self, hostname: str) -> str | None:
        """The archspec target the site sets for `hostname`'s node class, or None."""
        if not self.cpu_targets:
            return None  # and no fnmatch import (it imports re): the hot path
        from fnmatch import fnmatchcase

        return next(
            (target for glob, target in self.cpu_targets if fnmatchcase(hostname, glob)), None
        )


def config_paths(environ: Mapping[str, str], euid: int) -> list[str]:
    """The config files to read, in precedence order (later wins)."""
    paths = [environ.get("IMAGEFIT_SITE_CONFIG") or SITE_CONFIG]
    if euid != 0:
        xdg = environ.get("XDG_CONFIG_HOME") or os.path.join(
            environ.get("HOME") or os.path.expanduser("~"), ".config"
        )
        paths.append(os.path.join(xdg, "imagefit", "config.toml"))
    return paths


def _check(path: str, key: str, value: object) -> object:
    if key in ("on_error", "login"):
        allowed = ON_ERROR if key == "on_error" else LOGIN
        if value not in allowed:
            raise ConfigError(f"{path}: {key} must be one of {', '.join(allowed)}, not {value!r}")
    elif key == "registry_timeout":
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 600:
            raise ConfigError(f"{path}: registry_timeout must be a number of seconds in (0, 600]")
        value = float(value)
    elif key == "insecure_registries":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}: insecure_registries must be a list of host names")
        value = tuple(value)
    elif key == "decision_cache_ttl":
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not 0 <= value <= 30 * 86400
        ):
            raise ConfigError(
                f"{path}: decision_cache_ttl must be a number of seconds (0 disables the cache)"
            )
        value = float(value)
    elif key in ("decision_cache_dir", "audit_log"):
        if not isinstance(value, str) or not (
            os.path.isabs(value) or value == "syslog" and key == "audit_log"
        ):
            raise ConfigError(
                f"{path}: {key} must be an absolute path"
                + (' or "syslog"' if key == "audit_log" else "")
            )
    elif key == "cache_trusted_uids":
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(f"{path}: cache_trusted_uids must be a list of uids")
        value = tuple(value)
    elif key == "nfd_artifacts":
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: nfd_artifacts must be true or false")
    elif key == "policy":
        if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
            raise ConfigError(f"{path}: policy must be a list of [[policy]] tables")
        entries = []
        for entry in value:
            unknown = set(entry) - {"image", "pin", "prefer", "avoid"}
            if unknown or not isinstance(entry.get("image"), str):
                raise ConfigError(f"{path}: [[policy]] takes image (a glob), pin, prefer, avoid")
            pin = entry.get("pin")
            lists = [entry.get(k, []) for k in ("prefer", "avoid")]
            if (pin is not None and not isinstance(pin, str)) or not all(
                isinstance(v, list) and all(isinstance(i, str) for i in v) for v in lists
            ):
                raise ConfigError(
                    f"{path}: [[policy]] pin is a string, prefer and avoid lists of strings"
                )
            entries.append(
                {
                    "image": entry["image"],
                    "pin": pin,
                    "prefer": tuple(lists[0]),
                    "avoid": tuple(lists[1]),
                }
            )
        value = tuple(entries)
    elif key == "cpu_targets":
        if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
            raise ConfigError(f"{path}: [cpu_targets] maps hostname globs to archspec target names")
        value = tuple(value.items())
    elif key == "runtimes":
        if not isinstance(value, dict) or not all(
            k in RUNTIMES and isinstance(v, str) and os.path.isabs(v) for k, v in value.items()
        ):
            raise ConfigError(f"{path}: [runtimes] maps {', '.join(RUNTIMES)} to absolute paths")
    else:
        raise ConfigError(f"{path}: unknown key {key!r}")
    return value


def _parse_cache_path(path: str, environ: Mapping[str, str]) -> str:
    base = environ.get("XDG_CACHE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".cache"
    )
    return os.path.join(
        base, "imagefit", "config", path.replace("%", "%25").replace("/", "%2F") + ".marshal"
    )


def _read_toml(path: str, environ: Mapping[str, str]) -> dict:
    """The TOML document at `path`, parsed with tomllib, or taken from the
    user's parse cache when the file is unchanged (same device, inode, size and
    mtime in ns). tomllib's import alone (re, typing, string) costs ~9 ms on
    every shimmed command; the cache is the standard library's marshal of the
    parsed dict, owned by and private to the user.

    Raises:
        ConfigError: unreadable or invalid TOML.
    """
    import marshal

    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    cache = _parse_cache_path(path, environ)
    try:
        fd = os.open(cache, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            cst = os.fstat(fd)
            if cst.st_uid == os.geteuid() and not cst.st_mode & 0o077:
                cached_signature, data = marshal.loads(os.read(fd, 1 << 20))
                if tuple(cached_signature) == signature and isinstance(data, dict):
                    return data
        finally:
            os.close(fd)
    except (OSError, ValueError, EOFError, TypeError):
        pass
    import tomllib

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: TOMLDecodeError, not UTF-8
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    try:
        os.makedirs(os.path.dirname(cache), mode=0o700, exist_ok=True)
        tmp = f"{cache}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, marshal.dumps((signature, data)))
        finally:
            os.close(fd)
        os.replace(tmp, cache)
    except (OSError, ValueError):
        pass  # a cache that cannot be written is only slower
    return data


def load(environ: Mapping[str, str] | None = None, euid: int | None = None) -> Settings:
    """Read the effective settings.

    Raises:
        ConfigError: a trusted file that is not valid TOML or holds an unknown
            key or a bad value, or a bad ``IMAGEFIT_*`` value.
    """
    environ = os.environ if environ is None else environ
    euid = os.geteuid() if euid is None else euid
    values: dict[str, object] = {}
    runtimes: dict[str, str] = {}
    cpu_targets: list[tuple[str, str]] = []
    policies: list[dict] = []
    sources: list[str] = []
    warnings: list[str] = []
    for path in config_paths(environ, euid):
        if not os.path.exists(path):
            continue
        reason = untrusted_reason(path, euid)
        if reason:
            warnings.append(f"ignoring config {path}: {reason}")
            continue
        data = _read_toml(path, environ)
        for key, value in data.items():
            checked = _check(path, key, value)
            if key == "runtimes":
                runtimes.update(checked)  # type: ignore[arg-type]
            elif key == "cpu_targets":
                cpu_targets[:0] = checked  # type: ignore[misc]  # later files take precedence
            elif key == "policy":
                policies[:0] = checked  # type: ignore[misc]  # user entries before site ones
            else:
                values[key] = checked
        sources.append(path)
    env_error = environ.get("IMAGEFIT_ON_ERROR")
    if env_error:
        values["on_error"] = _check("IMAGEFIT_ON_ERROR", "on_error", env_error)
    env_login = environ.get("IMAGEFIT_LOGIN")
    if env_login:
        env_login = {"0": "never", "1": "always"}.get(env_login, env_login)
        values["login"] = _check("IMAGEFIT_LOGIN", "login", env_login)
    env_timeout = environ.get("IMAGEFIT_REGISTRY_TIMEOUT")
    if env_timeout:
        try:
            seconds = float(env_timeout)
        except ValueError:
            raise ConfigError("IMAGEFIT_REGISTRY_TIMEOUT must be a number of seconds") from None
        values["registry_timeout"] = _check(
            "IMAGEFIT_REGISTRY_TIMEOUT", "registry_timeout", seconds
        )
    for name in RUNTIMES:
        path = environ.get(f"IMAGEFIT_{name.upper()}")
        if path:
            if not os.path.isabs(path):
                raise ConfigError(f"IMAGEFIT_{name.upper()} must be an absolute path")
            runtimes[name] = path
    return Settings(
        **values,  # type: ignore[arg-type]
        runtimes=runtimes,
        cpu_targets=tuple(cpu_targets),
        policies=tuple(policies),
        sources=tuple(sources),
        warnings=tuple(warnings),
    )
