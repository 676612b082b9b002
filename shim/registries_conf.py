"""What podman's registries.conf says about a registry: is it insecure?

Follows containers-registries.conf(5) (containers/image
docs/containers-registries.conf.5.md, pkg/sysregistriesv2): the file is
``$CONTAINERS_REGISTRIES_CONF`` if set, else ``$HOME/.config/containers/registries.conf``
if it exists, else ``/etc/containers/registries.conf``; drop-ins in the
matching ``registries.conf.d`` directories are read after it, in name order.
A ``[[registry]]`` table applies to references under its ``prefix`` (default:
its ``location``); the longest matching prefix wins. The v1 form
``[registries.insecure] registries = [...]`` is read too.
Short-name resolution is not handled here.
"""

from __future__ import annotations

import os

if False:  # for type checkers only: importing collections costs every shimmed command ~1.3 ms
    from collections.abc import Mapping


def config_files(environ: Mapping[str, str]) -> list[str]:
    """registries.conf files podman reads, in order."""
    import glob  # not at the top: glob imports re, and this module is on the shim's path

    explicit = environ.get("CONTAINERS_REGISTRIES_CONF")
    if explicit:
        return [explicit]
    home = environ.get("HOME") or os.path.expanduser("~")
    user = os.path.join(home, ".config", "containers", "registries.conf")
    main = user if os.path.exists(user) else "/etc/containers/registries.conf"
    dropins = sorted(glob.glob("/etc/containers/registries.conf.d/*.conf"))
    dropins += sorted(
        glob.glob(os.path.join(home, ".config", "containers", "registries.conf.d", "*.conf"))
    )
    return [main, *dropins]


def _matches(prefix: str, name: str) -> bool:
    if prefix.startswith("*."):
        host = name.split("/", 1)[0]
        return host.endswith(prefix[1:])
    return name == prefix or name.startswith(prefix.rstrip("/") + "/")


def _documents(environ: Mapping[str, str]) -> list[dict]:
    import tomllib

    from shim.untrusted import read_bounded

    docs = []
    for path in config_files(environ):
        try:
            docs.append(tomllib.loads(read_bounded(path).decode("utf-8")))
        except (OSError, ValueError):  # TOMLDecodeError, UnicodeDecodeError
            continue
    return docs


def short_name_settings(environ: Mapping[str, str]) -> tuple[list[str], dict[str, str], str]:
    """(unqualified-search-registries, aliases, short-name-mode) as podman
    merges them: later files (drop-ins) replace the search list and mode and
    add or replace aliases; recorded aliases
    (``$HOME/.cache/containers/short-name-aliases.conf``) come last."""
    search: list[str] = []
    aliases: dict[str, str] = {}
    mode = "permissive"
    home = environ.get("HOME") or os.path.expanduser("~")
    docs = _documents(environ)
    recorded = os.path.join(home, ".cache", "containers", "short-name-aliases.conf")
    try:
        import tomllib

        from shim.untrusted import read_bounded

        recorded_doc = tomllib.loads(read_bounded(recorded).decode("utf-8"))
        docs.append({"aliases": recorded_doc.get("aliases", {})})
    except (OSError, ValueError, AttributeError):
        pass
    for data in docs:
        value = data.get("unqualified-search-registries")
        if isinstance(value, list):
            search = [v for v in value if isinstance(v, str)]
        value = data.get("short-name-mode")
        if isinstance(value, str):
            mode = value
        value = data.get("aliases")
        if isinstance(value, dict):
            aliases.update(
                {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}
            )
    return search, aliases, mode


def insecure(name: str, environ: Mapping[str, str]) -> bool:
    """True if registries.conf marks the registry of repository `name`
    (``host[:port]/path``) insecure (plain HTTP allowed, no TLS verification)."""
    import tomllib

    best: tuple[int, bool] | None = None
    legacy: set[str] = set()
    from shim.untrusted import read_bounded

    for path in config_files(environ):
        try:
            data = tomllib.loads(read_bounded(path).decode("utf-8"))
        except (OSError, ValueError):  # TOMLDecodeError, UnicodeDecodeError
            continue
        for table in data.get("registry", []) if isinstance(data.get("registry"), list) else []:
            if not isinstance(table, dict):
                continue
            prefix = table.get("prefix") or table.get("location")
            if isinstance(prefix, str) and prefix and _matches(prefix, name):
                if best is None or len(prefix) >= best[0]:
                    best = (len(prefix), bool(table.get("insecure", False)))
        v1 = data.get("registries", {})
        if isinstance(v1, dict):
            hosts = v1.get("insecure", {}).get("registries", [])
            if isinstance(hosts, list):
                legacy.update(h for h in hosts if isinstance(h, str))
    if best is not None and best[1]:
        return True
    return name.split("/", 1)[0] in legacy


# -- pull sources: mirrors and location remapping ---------------------------------
#
# containers/image pkg/sysregistriesv2/system_registries_v2.go is the reference
# for everything below (PullSourcesFromReference, Endpoint.rewriteReference,
# refMatchingPrefix, refMatchingSubdomainPrefix, FindRegistry,
# postProcessRegistries, V1RegistriesConf.ConvertToV2, loadConfigFile,
# parsedConfig.updateWithConfigurationFrom, newConfigWrapperWithHomeDir), with
# docker/docker_image_src.go (newImageSource: each pull source in order, the
# first that serves the manifest wins) and docker/docker_client.go
# (newDockerClient: a source whose own registry entry is ``blocked`` fails).
# The behaviour is re-stated here in Python, not translated.

#: containers/image's built-in system file and drop-in directory.
SYSTEM_FILE = "/etc/containers/registries.conf"
SYSTEM_DROPIN_DIR = "/etc/containers/registries.conf.d"

MIRROR_ALL = "all"
MIRROR_BY_DIGEST_ONLY = "digest-only"
MIRROR_BY_TAG_ONLY = "tag-only"


class RegistriesConfError(ValueError):
    """registries.conf holds something containers/image refuses (podman
    refuses to pull then too). The message is one line and names the file."""


class Source:
    """One place to pull a reference from, in podman's order.

    Attributes:
        domain: the endpoint's registry host[:port] (the mirror's, or the
            registry's location after remapping).
        path: the repository path at that endpoint (rewritten by ``prefix``
            -> ``location``).
        insecure: the endpoint's own ``insecure`` flag in registries.conf.
        mirror: True for a ``[[registry.mirror]]``, False for the registry
            itself (remapped or not).
        blocked: the ``prefix`` of the ``blocked = true`` entry that applies to
            this endpoint's repository, or None.
    """

    __slots__ = ("domain", "path", "insecure", "mirror", "blocked")

    def __init__(
        self,
        domain: str,
        path: str,
        insecure: bool = False,
        mirror: bool = False,
        blocked: str | None = None,
    ) -> None:
        self.domain = domain
        self.path = path
        self.insecure = insecure
        self.mirror = mirror
        self.blocked = blocked

    @property
    def name(self) -> str:
        """``domain/path``: the repository at this endpoint."""
        return f"{self.domain}/{self.path}"

    def _key(self) -> tuple:
        return (self.domain, self.path, self.insecure, self.mirror, self.blocked)

    def __eq__(self, other: object) -> bool:
        return self._key() == other._key() if isinstance(other, Source) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Source(domain={self.domain!r}, path={self.path!r}, insecure={self.insecure!r}, "
            f"mirror={self.mirror!r}, blocked={self.blocked!r})"
        )


class _Endpoint:
    __slots__ = ("location", "insecure", "pull_from_mirror")

    def __init__(self, location: str, insecure: bool, pull_from_mirror: str = "") -> None:
        self.location = location
        self.insecure = insecure
        self.pull_from_mirror = pull_from_mirror


class _Registry:
    __slots__ = ("prefix", "endpoint", "mirrors", "blocked", "mirror_by_digest_only")

    def __init__(self, prefix, endpoint, mirrors, blocked, mirror_by_digest_only) -> None:
        self.prefix = prefix
        self.endpoint = endpoint
        self.mirrors = mirrors
        self.blocked = blocked
        self.mirror_by_digest_only = mirror_by_digest_only


def pull_config_files(environ: Mapping[str, str]) -> tuple[str, bool, list[str]]:
    """(main file, whether it was named explicitly, drop-ins in order) as
    containers/image finds them for podman (newConfigWrapperWithHomeDir;
    podman's libimage takes the main file from ``$CONTAINERS_REGISTRIES_CONF``,
    else ``$REGISTRIES_CONFIG_PATH``).

    Unlike :func:`config_files`, a file named by the environment still gets
    the drop-ins of ``/etc/containers/registries.conf.d`` and
    ``~/.config/containers/registries.conf.d`` (podman 4.3 reads them: checked
    here); a per-user ``~/.config/containers/registries.conf`` replaces the
    system file and the system drop-in directory. Within a directory, files
    ending in ``.conf`` in name order."""
    home = environ.get("HOME") or os.path.expanduser("~")
    user_file = os.path.join(home, ".config", "containers", "registries.conf")
    user_dir = os.path.join(home, ".config", "containers", "registries.conf.d")
    explicit = environ.get("CONTAINERS_REGISTRIES_CONF") or environ.get("REGISTRIES_CONFIG_PATH")
    if explicit:
        main, dirs = explicit, [SYSTEM_DROPIN_DIR, user_dir]
    elif os.path.exists(user_file):
        main, dirs = user_file, [user_dir]
    else:
        main, dirs = SYSTEM_FILE, [SYSTEM_DROPIN_DIR, user_dir]
    dropins: list[str] = []
    for directory in dirs:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        dropins += [
            os.path.join(directory, n)
            for n in names
            if n.endswith(".conf") and not os.path.isdir(os.path.join(directory, n))
        ]
    return main, bool(explicit), dropins


def _location(value: object, path: str, what: str) -> str:
    """parseLocation: trailing ``/`` dropped; no URI scheme."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RegistriesConfError(f"{path}: {what} must be a string")
    trimmed = value.rstrip("/")
    if trimmed.startswith(("http://", "https://")):
        raise RegistriesConfError(
            f"{path}: invalid location {value!r}: URI schemes are not supported"
        )
    return trimmed


def _flag(table: dict, key: str, path: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise RegistriesConfError(f"{path}: {key} must be true or false")
    return value


def _v1_set(data: dict) -> bool:
    v1 = data.get("registries")
    return isinstance(v1, dict) and any(
        isinstance(v1.get(k), dict) and "registries" in v1[k]
        for k in ("search", "insecure", "block")
    )


def _v2_set(data: dict) -> bool:
    return any(
        data.get(k) not in (None, "")
        for k in (
            "registry",
            "unqualified-search-registries",
            "credential-helpers",
            "short-name-mode",
            "additional-layer-store-auth-helper",
            "aliases",
        )
    )


def _v1_registries(data: dict, path: str) -> list[_Registry]:
    """ConvertToV2: one entry per host of ``[registries.block]`` and
    ``[registries.insecure]``, prefix = location = the host."""
    found: dict[str, _Registry] = {}
    v1 = data["registries"]
    for kind in ("block", "insecure"):
        hosts = v1.get(kind, {}).get("registries", []) if isinstance(v1.get(kind), dict) else []
        if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
            raise RegistriesConfError(
                f"{path}: registries.{kind}.registries must be a list of strings"
            )
        for host in hosts:
            location = _location(host, path, "a registry")
            reg = found.setdefault(
                location, _Registry(location, _Endpoint(location, False), [], False, False)
            )
            if kind == "block":
                reg.blocked = True
            else:
                reg.endpoint.insecure = True
    return list(found.values())


def _v2_registries(data: dict, path: str) -> list[_Registry]:
    """The ``[[registry]]`` tables, checked as postProcessRegistries checks them."""
    tables = data.get("registry", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise RegistriesConfError(f"{path}: [[registry]] must be an array of tables")
    regs = []
    for table in tables:
        location = _location(table.get("location"), path, "location")
        prefix = _location(table.get("prefix"), path, "prefix")
        if not prefix:
            if not location:
                raise RegistriesConfError(f"{path}: a [[registry]] has neither location nor prefix")
            prefix = location
        elif not location and not prefix.startswith("*."):
            raise RegistriesConfError(
                f"{path}: [[registry]] prefix {prefix!r} has no location and is not *.example.com"
            )
        if prefix.startswith("*.") and any(c in prefix for c in "/@:"):
            raise RegistriesConfError(
                f"{path}: wildcarded prefix {prefix!r} must be of the form *.example.com"
            )
        if table.get("pull-from-mirror"):
            raise RegistriesConfError(
                f"{path}: pull-from-mirror must not be set for a non-mirror registry {prefix!r}"
            )
        by_digest = _flag(table, "mirror-by-digest-only", path)
        mirrors = []
        listed = table.get("mirror", [])
        if not isinstance(listed, list) or not all(isinstance(m, dict) for m in listed):
            raise RegistriesConfError(f"{path}: [[registry.mirror]] must be an array of tables")
        for item in listed:
            where = _location(item.get("location"), path, "mirror location")
            if not where:
                raise RegistriesConfError(f"{path}: a mirror of {prefix!r} has no location")
            mode = item.get("pull-from-mirror") or ""
            if mode and by_digest:
                raise RegistriesConfError(
                    f"{path}: {prefix!r} sets mirror-by-digest-only and its mirror {where!r} "
                    "pull-from-mirror: use one"
                )
            if mode not in ("", MIRROR_ALL, MIRROR_BY_DIGEST_ONLY, MIRROR_BY_TAG_ONLY):
                raise RegistriesConfError(
                    f"{path}: unsupported pull-from-mirror value {mode!r} for mirror {where!r}"
                )
            mirrors.append(_Endpoint(where, _flag(item, "insecure", path), mode))
        regs.append(
            _Registry(
                prefix,
                _Endpoint(location, _flag(table, "insecure", path)),
                mirrors,
                _flag(table, "blocked", path),
                by_digest,
            )
        )
    by_location: dict[str, tuple[bool, bool]] = {}
    for reg in regs:
        key = reg.endpoint.location or reg.prefix
        flags = (reg.endpoint.insecure, reg.blocked)
        if by_location.setdefault(key, flags) != flags:
            what = "insecure" if by_location[key][0] != flags[0] else "blocked"
            raise RegistriesConfError(
                f"{path}: registry {key!r} is defined several times with conflicting {what!r}"
            )
    return regs


def _load(path: str, dropin: bool) -> dict[str, _Registry] | None:
    """The registries of one file by prefix (the first entry of a prefix wins
    within a file), or None when the file does not exist.

    Raises:
        RegistriesConfError: unreadable TOML, v1 in a drop-in, v1 and v2
            mixed, or an entry containers/image refuses.
    """
    import tomllib

    from shim.untrusted import read_bounded

    try:
        data = tomllib.loads(read_bounded(path).decode("utf-8"))
    except FileNotFoundError:
        return None
    except OSError as exc:  # unreadable, not a regular file (a FIFO, a device), too large
        raise RegistriesConfError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RegistriesConfError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegistriesConfError(f"{path}: {exc}") from None
    if _v1_set(data):
        if dropin:
            raise RegistriesConfError(f"{path}: a drop-in must be in the v2 format, not v1")
        if _v2_set(data):
            raise RegistriesConfError(f"{path}: mixes the v1 and v2 formats")
        regs = _v1_registries(data, path)
    else:
        regs = _v2_registries(data, path)
    unique: dict[str, _Registry] = {}
    for reg in regs:
        unique.setdefault(reg.prefix, reg)
    return unique


def _registries(environ: Mapping[str, str]) -> list[_Registry]:
    """All registries, merged: a drop-in replaces whole entries of the same
    prefix; sorted by prefix (as containers/image keeps them)."""
    main, _explicit, dropins = pull_config_files(environ)
    merged = _load(main, False) or {}
    for path in dropins:
        merged.update(_load(path, True) or {})
    return [merged[p] for p in sorted(merged)]


def _ref_matching_prefix(ref: str, prefix: str) -> int:
    """refMatchingPrefix: the length of `ref` that `prefix` matches, or -1.

    A plain prefix matches the whole `ref` or a part followed by ``/``, ``:``
    or ``@`` (so ``example.com`` also matches ``example.com:5000/x``: a quirk
    containers/image keeps and says not to rely on; reproduced here because
    podman does it). ``*.example.com`` matches any subdomain of example.com
    (never example.com itself), up to the end of the host name."""
    if prefix.startswith("*."):
        suffix = prefix[1:]
        index = ref.find(suffix)
        if index < 0 or "/" in ref[:index]:
            return -1
        index += len(suffix)
        return index if index == len(ref) or ref[index] in ":/@" else -1
    if ref == prefix:
        return len(prefix)
    if len(ref) > len(prefix) and ref.startswith(prefix) and ref[len(prefix)] in ":/@":
        return len(prefix)
    return -1


def _find(registries: list[_Registry], name: str) -> _Registry | None:
    """FindRegistry: the entry with the longest matching prefix (the first in
    prefix order among equally long ones)."""
    best, length = None, 0
    for reg in registries:
        if _ref_matching_prefix(name, reg.prefix) != -1 and len(reg.prefix) > length:
            best, length = reg, len(reg.prefix)
    return best


def _rewrite(name: str, reg: _Registry, endpoint: _Endpoint) -> tuple[str, str]:
    """rewriteReference: (domain, path) of `name` at `endpoint`: its location
    followed by what the registry's prefix did not match."""
    from shim.reference import parse

    matched = _ref_matching_prefix(name, reg.prefix)
    if not endpoint.location:
        rewritten = name  # only a *.example.com prefix may leave location empty
    else:
        rewritten = endpoint.location + name[matched:]
    try:
        ref = parse(rewritten)
    except ValueError:
        ref = None
    if ref is None or ref.tag or ref.digest or not ref.qualified or ref.name != rewritten:
        raise RegistriesConfError(
            f"registries.conf: {reg.prefix!r} -> {endpoint.location!r} rewrites {name} "
            f"to {rewritten!r}, not a valid repository name"
        )
    return ref.domain, ref.path


def pull_sources(name: str, is_digest: bool, environ: Mapping[str, str]) -> list[Source]:
    """Where podman pulls repository `name` (``host[:port]/path``) from, in
    order: the registry's mirrors, then the registry itself at its
    ``location`` (containers/image pkg/sysregistriesv2/system_registries_v2.go,
    ``PullSourcesFromReference``).

    The ``[[registry]]`` entry is the one with the longest ``prefix``
    matching `name` (``*.example.com`` matches subdomains); ``prefix`` is
    replaced by each endpoint's ``location``. Mirrors are skipped for a tag
    (`is_digest` False) when the registry says ``mirror-by-digest-only`` or
    the mirror says ``pull-from-mirror = "digest-only"``, and for a digest
    when the mirror says ``"tag-only"``. A source whose own repository falls
    under a ``blocked = true`` entry carries that entry's prefix in
    ``blocked`` (podman fails that source; a blocked registry with mirrors is
    thus reached only through them). With no matching entry: the registry
    itself, as named.

    Files: :func:`pull_config_files`; the v1 format
    (``[registries.insecure]``, ``[registries.block]``) is read too. A
    missing file is skipped.

    Raises:
        RegistriesConfError: a file containers/image would refuse (one line).
    """
    registries = _registries(environ)
    reg = _find(registries, name)
    if reg is None:
        domain, _, path = name.partition("/")
        return [Source(domain, path)]
    endpoints: list[tuple[_Endpoint, bool]] = []
    for mirror in reg.mirrors:
        if reg.mirror_by_digest_only or mirror.pull_from_mirror == MIRROR_BY_DIGEST_ONLY:
            if not is_digest:
                continue
        elif mirror.pull_from_mirror == MIRROR_BY_TAG_ONLY and is_digest:
            continue
        endpoints.append((mirror, True))
    endpoints.append((reg.endpoint, False))
    sources = []
    for endpoint, is_mirror in endpoints:
        domain, path = _rewrite(name, reg, endpoint)
        own = _find(registries, f"{domain}/{path}")
        blocked = own.prefix if own is not None and own.blocked else None
        sources.append(Source(domain, path, endpoint.insecure, is_mirror, blocked))
    return sources
