"""What the author commands share: references, registry clients, one-line errors."""

from __future__ import annotations

import os
from collections.abc import Mapping

from shim.errors import ShimError
from shim.reference import Reference

#: Seconds for all the registry requests of one author command (pushing layers
#: takes longer than the shim's resolution budget).
DEFAULT_TIMEOUT = 300.0
#: an author's spec file (index create, attach) read at most, bytes
SPEC_FILE_LIMIT = 4 * 1024 * 1024


class AuthorError(ShimError):
    """An author command refuses its input (exit 125, one line)."""


def parse_reference(text: str, what: str = "reference") -> Reference:
    """A fully qualified registry reference (``host[:port]/repo[:tag|@digest]``).

    Raises:
        AuthorError: not a valid or not a fully qualified reference.
    """
    from shim.personality.base import qualified_reference
    from shim.reference import parse

    try:
        ref = parse(text)
    except ShimError as exc:
        raise AuthorError(f"{what} {text!r}: {exc}") from None
    if qualified_reference(text, allow_short=False) is None:
        raise AuthorError(
            f"{what} {text!r} is not a fully qualified registry reference (host/repository[:tag])"
        )
    return ref


class Registries:
    """Registry clients by host, made as ``imagefit explain`` makes them:
    credentials as podman finds them, TLS verification as podman would do it
    (``--tls-verify``, registries.conf ``insecure``, imagefit's
    ``insecure_registries``), one deadline for the whole command."""

    def __init__(
        self,
        *,
        tls_verify: bool | None,
        authfile: str | None,
        timeout: float = DEFAULT_TIMEOUT,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.tls_verify = tls_verify
        self.authfile = authfile
        self.timeout = timeout
        self.environ = os.environ if environ is None else environ
        self._clients: dict[str, object] = {}
        self._insecure_registries: tuple[str, ...] | None = None

    def client(self, ref: Reference):
        """The client of `ref`'s registry (the first reference of a host
        chooses its credentials)."""
        from shim import auth
        from shim.insecure import registry_is_insecure
        from shim.registry import RegistryClient

        found = self._clients.get(ref.domain)
        if found is None:
            if self._insecure_registries is None:
                from shim import config

                self._insecure_registries = config.load().insecure_registries
            insecure = registry_is_insecure(
                ref, self.environ, self._insecure_registries, self.tls_verify
            )
            creds = auth.credentials(ref.domain, ref.path, self.environ, self.authfile)
            found = RegistryClient(
                ref.domain, insecure=insecure, credentials=creds, timeout=self.timeout
            )
            self._clients[ref.domain] = found
        return found


def real_runtime(runtime: str) -> str:
    """The real runtime's path for ``--runtime NAME|PATH``, never the shim
    (:func:`shim.locate.find_runtime`).

    Raises:
        RuntimeNotFound: nothing but the shim on PATH, or PATH not executable.
    """
    import sys

    from shim.locate import find_runtime

    configured = runtime if os.sep in runtime else None
    name = os.path.basename(runtime) if configured else runtime
    return find_runtime(name, os.environ, sys.argv[0], configured)


def tls_option(value: str | None) -> bool | None:
    """``--tls-verify true|false`` as a bool (None: not given)."""
    return None if value is None else value == "true"


def short_digest(digest: str) -> str:
    """``sha256:0123456789ab``: enough to tell builds apart in one line."""
    return digest[:19]
