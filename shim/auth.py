"""Registry credentials, found where podman finds them. Never logged.

Order (containers-auth.json(5); containers/image pkg/docker/config/config.go):
``--authfile`` if given, else ``$REGISTRY_AUTH_FILE``, else
``$XDG_RUNTIME_DIR/containers/auth.json``; then
``$XDG_CONFIG_HOME/containers/auth.json`` (``~/.config/containers/auth.json``);
then the Docker config ``$DOCKER_CONFIG/config.json`` (``~/.docker/config.json``)
and the legacy ``~/.dockercfg``. In each file the most specific key wins
(``host/ns/repo``, then ``host/ns``, then ``host``); Docker's legacy
``https://host/v1/`` keys are normalised. The first file with a match wins.
Credential helpers are not run.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

DOCKER_HUB_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io")


def auth_files(environ: Mapping[str, str], authfile: str | None = None) -> list[str]:
    """Credential files to consult, in podman's order."""
    home = environ.get("HOME") or os.path.expanduser("~")
    files = []
    if authfile:
        files.append(authfile)
    elif environ.get("REGISTRY_AUTH_FILE"):
        files.append(environ["REGISTRY_AUTH_FILE"])
    else:
        runtime_dir = environ.get("XDG_RUNTIME_DIR")
        if runtime_dir:
            files.append(os.path.join(runtime_dir, "containers", "auth.json"))
        xdg = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
        files.append(os.path.join(xdg, "containers", "auth.json"))
    docker_config = environ.get("DOCKER_CONFIG") or os.path.join(home, ".docker")
    files.append(os.path.join(docker_config, "config.json"))
    files.append(os.path.join(home, ".dockercfg"))
    return files


def _normalise_key(key: str) -> str:
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
    key = key.rstrip("/")
    if key.endswith("/v1") or key.endswith("/v2"):
        key = key[:-3]
    return "docker.io" if key in DOCKER_HUB_KEYS else key


def _candidates(domain: str, path: str) -> list[str]:
    host = "docker.io" if domain in DOCKER_HUB_KEYS else domain
    parts = path.split("/")
    keys = [f"{host}/{'/'.join(parts[:i])}" for i in range(len(parts), 0, -1)]
    return [*keys, host]


def credentials(
    domain: str, path: str, environ: Mapping[str, str], authfile: str | None = None
) -> tuple[str, str] | None:
    """(username, password) for repository `domain/path`, or None.

    Unreadable or malformed files are skipped, as podman does for missing ones.
    """
    from shim.untrusted import loads_json, read_bounded

    wanted = _candidates(domain, path)
    for file in auth_files(environ, authfile):
        try:  # a FIFO, a device, a huge or deeply nested file: skipped like a missing one
            data = loads_json(read_bounded(file), "credentials file")
        except (OSError, ValueError):
            continue
        auths = data.get("auths", data) if isinstance(data, dict) else {}
        if not isinstance(auths, dict):
            continue
        table = {_normalise_key(k): v for k, v in auths.items() if isinstance(v, dict)}
        for key in wanted:
            entry = table.get(key)
            if not entry or not isinstance(entry.get("auth"), str):
                continue
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                continue
            if user:
                return user, password
    return None
