"""Charliecloud (0.31 and later): ``ch-image pull IMAGE_REF [DEST_REF]``.

Only ``ch-image pull`` is intercepted. ``ch-run IMAGE`` runs an image
already unpacked in ch-image's storage (or a directory, or a SquashFS
file), never a registry reference, and runs as the caller by design: the
shim need not be in front of it. ``ch-image build`` (its Dockerfile's
``FROM``), ``push``, ``import`` and every other subcommand pass through.

Source operand (Charliecloud lib/image.py ``GRAMMAR_IMAGE_REF``,
``Reference.parse``/``from_tree``/``defaults_add``): ``%`` and ``+`` read
as ``/`` and ``:`` (its file-name form); ``[HOST[:PORT]/][PATH/]NAME``
then a tag **or** ``@sha256:HEX`` (not both); the first component is a
host only when it has a ``.`` or a port (``localhost/x`` is Docker Hub's
``localhost/x``: left alone, as is an upper-case first component, which
the Docker grammar would read as a host). A name without a host is
``$CH_REGY_DEFAULT_HOST[:$CH_REGY_DEFAULT_PORT]/$CH_REGY_PATH_PREFIX/...``
when that variable is set, else Docker Hub (``registry-1.docker.io``,
``library/`` for one component). ``registry-1.docker.io/NAME`` written out
is left alone (ch-image adds ``library/``, the Docker grammar does not).

Pinned pull (pull.py ``Image_Puller.fatman_load``): ch-image fetches the
reference's manifest; for a digest of one build it gets a manifest, not an
index, and without ``--arch=yolo`` warns "image is architecture-unaware"
and goes on only when the requested architecture is amd64 (anything else
is a fatal error). So the shim writes::

    ch-image [GLOBAL] pull [OPTS] --arch=yolo HOST/PATH@sha256:DIGEST IMAGE_REF

``--arch=yolo`` where it wins (:func:`shim.argv.charliecloud.arch_position`),
the chosen build's digest as the source and the user's own ``IMAGE_REF``
as ``DEST_REF`` (ch-image stores a pull under its destination's name,
pull.py ``main``: without it the image would be stored under the digest,
and ``ch-run IMAGE_REF`` would not find it). A ``DEST_REF`` the user gave
is kept. Unpinned, ch-image refuses an index with two builds of one
architecture and variant ("manifest list: duplicate architecture").

Architecture (charliecloud.py ``init``, ``ARCH_MAP``): ``-a/--arch ARCH``
(after the subcommand word it wins over one before it) is compared by
ch-image as written, ``ARCH[/VARIANT]`` in registry terms; ``host`` is the
default. A known architecture is a constraint on the choice
(:mod:`shim.personality.platforms`); another architecture than this
machine's, ``yolo`` (take whatever the registry gives) or a spelling
ch-image would not find (``x86_64``) leaves the command alone.

TLS: ch-image speaks HTTPS only (registry.py ``_url_of``) and verifies
certificates unless ``--tls-no-verify`` is given (before or after the
subcommand): the shim verifies exactly then too (registries.conf and
imagefit's ``insecure_registries`` do not apply: ch-image reads neither,
and the shim never adds ``--tls-no-verify`` to a user's command).
Credentials: in ch-image's authenticated mode (``--auth``, or
``$CH_IMAGE_AUTH=yes``) ``$CH_IMAGE_USERNAME``/``$CH_IMAGE_PASSWORD``
(registry.py ``Credentials.get``); otherwise the shim's usual credential
files. ``--parse-only`` (nothing is pulled) and ``-h/--help``,
``--version``, ``--dependencies`` pass through.

Standard library only.
"""

from __future__ import annotations

if False:  # for type checkers only: importing collections costs every shimmed command ~1.3 ms
    from collections.abc import Mapping

from shim import reference
from shim.argv import Invocation, charliecloud
from shim.errors import InvalidReference
from shim.personality.base import Personality, Plan, Resolved

#: the registry ch-image reads a name without a host from (image.py ``defaults_add``)
HUB_API = "registry-1.docker.io"
#: ``--arch`` value that makes ch-image take the manifest it is given as it is
YOLO = "yolo"


def _ch_text(text: str) -> str:
    """The reference as ch-image reads it: its file-name form ``%``/``+`` as ``/``/``:``."""
    return text.replace("%", "/").replace("+", ":")


def _default_host(environ: Mapping[str, str]) -> str | None:
    """``$CH_REGY_DEFAULT_HOST[:PORT]/PREFIX`` as a name prefix for a name
    without a host, "" for Docker Hub, None when ch-image would fail on it
    (a port that is not a number)."""
    host = environ.get("CH_REGY_DEFAULT_HOST")
    if host is None:
        return ""
    port = environ.get("CH_REGY_DEFAULT_PORT", "443")
    if not port.isdigit() or not port.isascii() or len(port.lstrip("0")) > 5:
        return None  # no port (and never int() of thousands of digits)
    prefix = environ.get("CH_REGY_PATH_PREFIX")
    out = host if int(port) == 443 else f"{host}:{int(port)}"
    return f"{out}/{prefix}" if prefix is not None else out


def reference_of(text: str, environ: Mapping[str, str]) -> reference.Reference | None:
    """The registry reference ``ch-image pull`` reads in `text`, normalised
    as the shim's (:func:`shim.reference.parse`), or None when the shim
    must leave it alone (see the module docstring)."""
    text = _ch_text(text)
    name, at, digest = text.partition("@")
    if at and ":" in name[name.rfind("/") + 1 :]:
        return None  # a tag and a digest: ch-image's grammar refuses it
    if at and not digest.startswith("sha256:"):
        return None
    first, slash, _ = name.partition("/")
    host = slash and ("." in first or ":" in first)
    if not host:
        if slash and (first == "localhost" or first.lower() != first):
            return None  # read as a path component by ch-image, a host by Docker's grammar
        prefix = _default_host(environ)
        if prefix is None:
            return None
        if prefix:
            text = f"{prefix}/{text}"
    elif first == HUB_API:
        return None
    try:
        return reference.parse(text)
    except InvalidReference:
        return None


class Charliecloud(Personality):
    grammar = charliecloud
    login_verbs: frozenset[str] = frozenset()
    tls_flag = None

    def operand(self, text: str, inv: Invocation, environ: Mapping[str, str]):
        if not text or text.startswith("-"):
            return None
        ref = reference_of(text, environ)
        return ("", ref) if ref is not None else None

    def passes_through(self, inv: Invocation, environ: Mapping[str, str]) -> bool:
        return "parse-only" in inv.flags

    def _given(self, inv: Invocation, name: str) -> list:
        return inv.flags.get(name) or inv.global_flags.get(name) or []

    def tls_verify(self, inv: Invocation, environ: Mapping[str, str]) -> bool | None:
        """False with ``--tls-no-verify`` (either side of ``pull``), else True:
        ch-image verifies certificates unless told, whatever other files say."""
        return not self._given(inv, "tls-no-verify")

    def credentials(self, inv: Invocation, environ: Mapping[str, str]) -> tuple[str, str] | None:
        """``$CH_IMAGE_USERNAME``/``$CH_IMAGE_PASSWORD`` in authenticated
        mode (``--auth``, else ``$CH_IMAGE_AUTH=yes``; charliecloud.py
        ``init``), when both are set."""
        auth = bool(self._given(inv, "auth")) or environ.get("CH_IMAGE_AUTH") == "yes"
        user, password = environ.get("CH_IMAGE_USERNAME"), environ.get("CH_IMAGE_PASSWORD")
        if auth and user is not None and password is not None:
            return user, password
        return None

    def requested_platform(self, inv: Invocation, environ: Mapping[str, str]):
        """``-a/--arch ARCH[/VARIANT]`` (the last after ``pull``, else the last
        before it) as ``("linux", ARCH, VARIANT)``; None for ``host``;
        :data:`~shim.personality.platforms.UNREADABLE` for ``yolo`` and for
        an architecture ch-image would not find as written."""
        from shim.personality import platforms

        given = self._given(inv, "arch")
        value = given[-1] if given else "host"
        if value == "host":
            return None
        arch, slash, variant = value.partition("/")
        if arch not in platforms.KNOWN_ARCH or "/" in variant or (slash and not variant):
            return platforms.UNREADABLE
        return "linux", arch, (variant or None)

    def pin(self, prefix: str, ref: reference.Reference, digest: str) -> str:
        """``HOST[:PORT]/PATH@sha256:...`` with the host written out (Docker
        Hub as ``registry-1.docker.io``, the host ch-image uses for it)."""
        domain = HUB_API if ref.domain == reference.DEFAULT_DOMAIN else ref.domain
        return f"{prefix}{domain}/{ref.path}@{digest}"

    def finish(
        self, args, inv, resolved: list[Resolved], *, login, insecure_by_config, environ, euid
    ) -> Plan:
        if not resolved or inv.verb != "pull":
            return Plan(args)
        source = resolved[0].position
        at = charliecloud.arch_position(inv)  # a position in the user's words
        if inv.output_at is None:  # stored under the user's name, as an unpinned pull
            args.insert(source + 1, inv.args[source])
            at += at > source
        args.insert(at, f"--arch={YOLO}")
        return Plan(args)


def personality(name: str) -> Charliecloud:
    return Charliecloud(name)
