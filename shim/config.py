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
    gpu_access = "auto"        # or "never": give a chosen GPU build its GPU (--nv, CDI, --gpus)
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
    audit_log = "syslog"       # or "syslog:/run/alt/log" or a root-only file; default: none
    audit_facility = "authpriv"  # syslog facility: auth, authpriv, user, daemon, local0..local7
    consistency = "node"       # or "job": one build for every node class of a Slurm job
    [node_classes.zen4]        # a named node class (site config; order matters)
    facts = "/site/imagefit/classes/zen4.json"  # `imagefit facts --json --output` on one node
    hosts = ["a*", "nid00[0-3]*"]               # fnmatch globs on the short hostname
    [[policy]]                 # per image (glob on the repository, first match wins):
    image = "registry.example.org/apps/*"
    node_class = "zen*"        # only on nodes of these classes (glob on class names)
    pin = "zen3"               # the only build to run: a build label, NFD set tag or digest
    prefer = ["cuda12", "zen4"]  # ranked first, earlier stronger
    avoid = ["x86_64"]         # ranked last
    lock = true                # site config only: no user entry or IMAGEFIT_PIN overrides it

Policy precedence (first match wins): locked site entries, then
``IMAGEFIT_PIN``, then user entries, then the other site entries. A node's
class is the first ``[node_classes]`` table whose ``hosts`` match its short
hostname; site classes come before user classes, and a user class cannot
reuse a site class's name.

Environment: ``IMAGEFIT_ON_ERROR``, ``IMAGEFIT_LOGIN`` (``0``/``1`` for one
command, or auto/always/never), ``IMAGEFIT_REGISTRY_TIMEOUT``,
``IMAGEFIT_<RUNTIME>`` (e.g. ``IMAGEFIT_PODMAN=/usr/bin/podman``),
``IMAGEFIT_CONSISTENCY`` (node/job), ``IMAGEFIT_GPU_ACCESS`` (auto/never), ``IMAGEFIT_PIN`` (a build label or
digest for one command), ``IMAGEFIT_NODE_CLASS`` (``NAME[,NAME...]``: pull
for those classes).

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
#: shim.gpu_access.MODES (that module is imported only when a build was chosen)
GPU_ACCESS = ("auto", "never")
RUNTIMES = ("podman", "docker", "apptainer", "singularity", "sarus", "enroot", "ch-image")
CONSISTENCY = ("node", "job")
#: characters of a node class name (IMAGEFIT_NODE_CLASS separates names with commas)
#: syslog facilities audit_facility may name, with their codes (RFC 5424 section 6.2.1,
#: glibc <syslog.h>: LOG_AUTHPRIV is 10 << 3)
FACILITIES = {
    "auth": 4, "authpriv": 10, "user": 1, "daemon": 3,
    **{f"local{n}": 16 + n for n in range(8)},
}  # fmt: skip
CLASS_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def split_image(text: str) -> tuple[str, str | None, str | None]:
    """``(domain/path, tag or None, digest or None)`` of a reference or a
    ``[[policy]] image`` pattern: ``@`` starts the digest, and a ``:`` after
    the last ``/`` the tag (``host:5000/app`` has none). String operations
    only (the hot path computes the policy of every resolved command)."""
    name, at, digest = text.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, (digest if at else None)


def image_pattern_problem(image: str) -> str | None:
    """Why a ``[[policy]] image`` cannot match anything, or None: an empty
    repository, tag or digest, or a digest no reference can carry
    (:func:`shim.reference._digest_error`: sha256 of 64 or sha512 of 128
    lowercase hex digits, as go-digest validates)."""
    name, tag, digest = split_image(image)
    if not name or name.endswith("/"):
        return "names no repository"
    if tag is not None and not tag:
        return "has an empty tag (write repo:TAG, or repo alone for every tag)"
    if digest is not None:
        from shim.reference import _digest_error  # the digests a reference may carry

        why = _digest_error(digest)
        if why:
            return f"has no valid digest after @ ({why}; write repo@sha256:<64 hex>)"
    return None


class Settings:
    """Effective settings (see the module docstring for each key).
    ``sources`` names the files that were read, ``warnings`` the files ignored.
    A plain class: ``dataclasses`` would cost the hot path ~10 ms of imports."""

    __slots__ = (
        "on_error",
        "login",
        "gpu_access",
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
        "audit_facility",
        "consistency",
        "node_classes",
        "pin",
        "node_class_request",
        "sources",
        "warnings",
    )

    def __init__(
        self,
        on_error: str = "passthrough",
        login: str = "auto",
        gpu_access: str = "auto",
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
        audit_facility: str = "authpriv",
        consistency: str = "node",
        node_classes: tuple[tuple[str, str, tuple[str, ...]], ...] = (),
        pin: str | None = None,
        node_class_request: tuple[str, ...] = (),
        sources: tuple[str, ...] = (),
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.on_error = on_error
        self.login = login
        self.gpu_access = gpu_access
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
        self.audit_facility = audit_facility
        self.consistency = consistency
        self.node_classes = node_classes
        self.pin = pin
        self.node_class_request = node_class_request
        self.sources = sources
        self.warnings = warnings

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Settings({fields})"

    def policy_for(self, repository: str, node_class: str | None = None) -> dict | None:
        """The policy entry that applies to `repository` on a node of class
        `node_class` (None: a node in no class), as a dict with image,
        node_class, pin, prefer, avoid, lock and source
        (``site``/``user``/``environment``); or None.

        `repository` is ``domain/path``, or the whole reference
        (``domain/path:tag``, ``domain/path@digest``, both) so that entries
        naming a tag or digest can match (:func:`split_image`): an entry's
        ``image`` is a glob on ``domain/path``, optionally with ``:TAG`` (a
        glob on the reference's tag: a reference without a tag does not
        match) or ``@DIGEST`` (the reference's own digest, exactly).

        Precedence: locked site entries, then ``IMAGEFIT_PIN``, then the other
        entries (user before site); within each, the first whose ``image``
        glob matches the repository and whose ``node_class`` glob (if any)
        matches `node_class` wins."""
        if not self.policies and self.pin is None:
            return None
        from shim.wildcard import match as fnmatchcase  # fnmatch's semantics, no re import

        name, tag, digest = split_image(repository)

        def applies(p: dict) -> bool:
            scope = p["node_class"]
            glob, want_tag, want_digest = split_image(p["image"])
            return (
                fnmatchcase(name, glob)
                and (want_tag is None or (tag is not None and fnmatchcase(tag, want_tag)))
                and (want_digest is None or digest == want_digest)
                and (scope is None or (node_class is not None and fnmatchcase(node_class, scope)))
            )

        locked = next((p for p in self.policies if p["lock"] and applies(p)), None)
        if locked is not None:
            return locked
        if self.pin is not None:
            return {
                "image": repository, "node_class": None, "pin": self.pin, "prefer": (),
                "avoid": (), "lock": False, "source": "environment",
            }  # fmt: skip
        return next((p for p in self.policies if applies(p)), None)

    def node_class_for(self, hostname: str) -> str | None:
        """The name of the first ``[node_classes]`` class whose ``hosts`` globs
        match `hostname`'s short name, or None."""
        if not self.node_classes:
            return None
        from shim.wildcard import match as fnmatchcase  # fnmatch's semantics, no re import

        short = hostname.split(".", 1)[0]
        return next(
            (name for name, _, hosts in self.node_classes
             if any(fnmatchcase(short, glob) for glob in hosts)),
            None,
        )  # fmt: skip

    def class_facts(self, name: str) -> str:
        """The facts file of node class `name`.

        Raises:
            ConfigError: no such class.
        """
        for known, facts, _ in self.node_classes:
            if known == name:
                return facts
        names = ", ".join(n for n, _, _ in self.node_classes) or "none"
        raise ConfigError(f"unknown node class {name!r} (configured: {names})")

    def cpu_target_for(self, hostname: str) -> str | None:
        """The archspec target the site sets for `hostname`'s node class, or None."""
        if not self.cpu_targets:
            return None
        from shim.wildcard import match as fnmatchcase  # fnmatch's semantics, no re import

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


def check_path(where: str, key: str, value: object, alternatives: str = "") -> str:
    """`value` when it is an absolute path the kernel can take: a string
    starting with ``/``, with no NUL byte (a C string ends there: path
    resolution, path_resolution(7), never sees what follows) and encodable
    to the file system encoding (:func:`os.fsencode`), at most PATH_MAX
    (4096) bytes.

    Raises:
        ConfigError: one line naming `where` (a file or variable) and `key`;
            the value is shown with its control characters escaped.
    """
    why = None
    if not isinstance(value, str) or not value.startswith("/"):
        why = "must be an absolute path" + alternatives
    elif "\x00" in value:
        why = "must not contain a NUL byte"
    else:
        try:
            if len(os.fsencode(value)) >= 4096:
                why = "is longer than PATH_MAX (4096 bytes)"
        except UnicodeError:
            why = "holds characters no file name can hold"
    if why is None:
        return value  # type: ignore[return-value]
    shown = ascii(value)[:120] if isinstance(value, str) else type(value).__name__
    raise ConfigError(f"{where}: {key} {why} (got {shown})")


def _check(path: str, key: str, value: object) -> object:
    if key in ("on_error", "login", "gpu_access"):
        allowed = {"on_error": ON_ERROR, "login": LOGIN, "gpu_access": GPU_ACCESS}[key]
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
    elif key == "decision_cache_dir":
        value = check_path(path, key, value)
    elif key == "audit_log":
        if isinstance(value, str) and value.startswith("syslog:"):
            check_path(path, key, value[len("syslog:") :])
        elif value != "syslog":
            value = check_path(
                path, key, value, ' or "syslog" or "syslog:" followed by a socket\'s absolute path'
            )
    elif key == "audit_facility":
        if value not in FACILITIES:
            raise ConfigError(
                f"{path}: audit_facility must be one of {', '.join(FACILITIES)}, not {value!r}"
            )
    elif key == "cache_trusted_uids":
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(f"{path}: cache_trusted_uids must be a list of uids")
        value = tuple(value)
    elif key == "consistency":
        if value not in CONSISTENCY:
            raise ConfigError(
                f"{path}: consistency must be one of {', '.join(CONSISTENCY)}, not {value!r}"
            )
    elif key == "node_classes":
        value = _node_classes(path, value)
    elif key == "nfd_artifacts":
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: nfd_artifacts must be true or false")
    elif key == "policy":
        if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
            raise ConfigError(f"{path}: policy must be a list of [[policy]] tables")
        entries = []
        for entry in value:
            unknown = set(entry) - {"image", "pin", "prefer", "avoid", "node_class", "lock"}
            if unknown or not isinstance(entry.get("image"), str):
                raise ConfigError(
                    f"{path}: [[policy]] takes image (a glob), node_class, pin, prefer, avoid, lock"
                )
            problem = image_pattern_problem(entry["image"])
            if problem:
                raise ConfigError(f"{path}: [[policy]] image {entry['image']!r}: {problem}")
            scope, lock = entry.get("node_class"), entry.get("lock", False)
            if scope is not None and (not isinstance(scope, str) or not scope):
                raise ConfigError(f"{path}: [[policy]] node_class is a glob on node class names")
            if not isinstance(lock, bool):
                raise ConfigError(f"{path}: [[policy]] lock must be true or false")
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
                    "node_class": scope,
                    "pin": pin,
                    "prefer": tuple(lists[0]),
                    "avoid": tuple(lists[1]),
                    "lock": lock,
                    "source": "",  # set by load(): site or user
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
        for name, runtime in value.items():
            check_path(path, f"[runtimes] {name}", runtime)
    else:
        raise ConfigError(f"{path}: unknown key {key!r}")
    return value


def _node_classes(path: str, value: object) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """``[node_classes.NAME]`` tables as (name, facts file, host globs), in file order."""
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: node_classes must be tables [node_classes.NAME]")
    classes = []
    for name, table in value.items():
        if not name or not set(name) <= CLASS_NAME_CHARS:
            raise ConfigError(
                f"{path}: node class name {name!r} may hold only letters, digits, '_', '.', '-'"
            )
        if not isinstance(table, dict) or set(table) - {"facts", "hosts"}:
            raise ConfigError(f"{path}: [node_classes.{name}] takes facts and hosts")
        facts, hosts = table.get("facts"), table.get("hosts", [])
        if not isinstance(facts, str) or not os.path.isabs(facts):
            raise ConfigError(f"{path}: [node_classes.{name}] facts must be an absolute path")
        check_path(path, f"[node_classes.{name}] facts", facts)
        if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
            raise ConfigError(f"{path}: [node_classes.{name}] hosts must be a list of globs")
        classes.append((name, facts, tuple(hosts)))
    return tuple(classes)


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
    from hostfacts.fingerprint import may_create, owned_dir, read_private

    directory = os.path.dirname(cache)
    cached = read_private(cache, 1 << 20)  # no link, FIFO or device; ours, private
    if cached is not None and owned_dir(directory):
        try:
            cached_signature, data = marshal.loads(cached)
            if tuple(cached_signature) == signature and isinstance(data, dict):
                return data
        except (ValueError, EOFError, TypeError):
            pass
    import tomllib

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: TOMLDecodeError, not UTF-8
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    # the parse cache lives only in a directory of ours no other user can change
    # (root running with a user's HOME keeps none there)
    if not (owned_dir(directory) or (not os.path.lexists(directory) and may_create(directory))):
        return data
    tmp = None
    try:
        import secrets

        os.makedirs(directory, mode=0o700, exist_ok=True)
        name = os.path.join(directory, f".tmp-{secrets.token_hex(8)}")
        fd = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        tmp = name  # ours from here: removed if anything below fails
        try:
            view = memoryview(marshal.dumps((signature, data)))
            while view:  # a short write (a full disk) raises on the next one: ENOSPC
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, cache)
    except (OSError, ValueError):
        if tmp is not None:  # a full disk leaves no temporary file behind
            try:
                os.unlink(tmp)
            except OSError:
                pass
        # a cache that cannot be written is only slower
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
    classes: list[tuple[str, str, tuple[str, ...]]] = []
    sources: list[str] = []
    warnings: list[str] = []
    for number, path in enumerate(config_paths(environ, euid)):
        if not os.path.exists(path):
            continue
        reason = untrusted_reason(path, euid)
        if reason:
            warnings.append(f"ignoring config {path}: {reason}")
            continue
        origin = "site" if number == 0 else "user"
        data = _read_toml(path, environ)
        for key, value in data.items():
            checked = _check(path, key, value)
            if key == "runtimes":
                runtimes.update(checked)  # type: ignore[arg-type]
            elif key == "cpu_targets":
                cpu_targets[:0] = checked  # type: ignore[misc]  # later files take precedence
            elif key == "policy":
                entries = [{**p, "source": origin} for p in checked]  # type: ignore[union-attr]
                if origin == "user" and any(p["lock"] for p in entries):
                    raise ConfigError(f"{path}: [[policy]] lock is a site setting")
                policies[:0] = entries  # user entries before site ones
            elif key == "node_classes":
                taken = {name for name, _, _ in classes}
                for item in checked:  # type: ignore[union-attr]
                    if item[0] in taken:
                        warnings.append(
                            f"ignoring node class {item[0]!r} in {path}: the site defines it"
                        )
                    else:
                        classes.append(item)
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
    env_gpu = environ.get("IMAGEFIT_GPU_ACCESS")
    if env_gpu:
        values["gpu_access"] = _check("IMAGEFIT_GPU_ACCESS", "gpu_access", env_gpu)
    env_timeout = environ.get("IMAGEFIT_REGISTRY_TIMEOUT")
    if env_timeout:
        try:
            seconds = float(env_timeout)
        except ValueError:
            raise ConfigError("IMAGEFIT_REGISTRY_TIMEOUT must be a number of seconds") from None
        values["registry_timeout"] = _check(
            "IMAGEFIT_REGISTRY_TIMEOUT", "registry_timeout", seconds
        )
    env_consistency = environ.get("IMAGEFIT_CONSISTENCY")
    if env_consistency:
        values["consistency"] = _check("IMAGEFIT_CONSISTENCY", "consistency", env_consistency)
    env_pin = environ.get("IMAGEFIT_PIN")
    if env_pin is not None and env_pin.strip():
        pin = env_pin.strip()
        if len(pin) > 200 or not pin.isprintable():
            raise ConfigError(
                "IMAGEFIT_PIN must be one build label or digest (printable, at most 200 characters)"
            )
        values["pin"] = pin
    requested = environ.get("IMAGEFIT_NODE_CLASS")
    if requested is not None and requested.strip():
        names = tuple(dict.fromkeys(n.strip() for n in requested.split(",") if n.strip()))
        if not names or not all(set(n) <= CLASS_NAME_CHARS for n in names):
            raise ConfigError(
                "IMAGEFIT_NODE_CLASS must be NAME[,NAME...] of configured node classes"
            )
        values["node_class_request"] = names
    for name in RUNTIMES:
        path = environ.get(f"IMAGEFIT_{name.upper()}")
        if path:
            if not os.path.isabs(path):
                raise ConfigError(f"IMAGEFIT_{name.upper()} must be an absolute path")
            runtimes[name] = check_path(f"IMAGEFIT_{name.upper()}", "the runtime", path)
    return Settings(
        **values,  # type: ignore[arg-type]
        runtimes=runtimes,
        cpu_targets=tuple(cpu_targets),
        policies=tuple(policies),
        node_classes=tuple(classes),
        sources=tuple(sources),
        warnings=tuple(warnings),
    )
