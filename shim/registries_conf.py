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

    docs = []
    for path in config_files(environ):
        try:
            with open(path, "rb") as fh:
                docs.append(tomllib.load(fh))
        except (OSError, tomllib.TOMLDecodeError):
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

        with open(recorded, "rb") as fh:
            docs.append({"aliases": tomllib.load(fh).get("aliases", {})})
    except (OSError, ValueError):
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
    for path in config_files(environ):
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError):
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
