"""enroot (NVIDIA/enroot 3.1 to 4.1): ``import``, ``load`` and ``digest``.

Intercepted: ``enroot import [options] docker://URI`` (a registry image
converted to a squashfs file), ``enroot load [options] docker://URI`` (the
same, unpacked as a container root filesystem) and ``enroot digest
docker://URI`` (the digest of the manifest enroot would import: pyxis's
``importers/caching_importer.sh`` names its cache by it and imports
``URI@DIGEST``). The grammar is :mod:`shim.argv.enroot` (``enroot.in``),
the URI :mod:`shim.argv.enroot_uri` (``src/docker.sh``
``docker::_parse_uri``). Left alone: ``dockerd://`` and ``podman://`` (a
local daemon's images), a URI enroot refuses, ``--help``, and every other
command: ``create`` and ``start`` take a squashfs file or a container
name, never a registry image.

enroot itself takes the first manifest of the index whose
``platform.architecture`` is the requested one (``--arch``, by default
``uname -m``; ``docker::_download``): no variant, no GPU, no CUDA. The shim
chooses the build instead and pins it: the URI keeps the user's spelling up
to the image and gets ``:sha256:HEX`` in place of its tag
(:meth:`~shim.argv.enroot_uri.EnrootURI.pinned`: the digest spelling every
enroot release reads). ``--arch`` is the requested platform (enroot's
``common::debarch``: ``x86_64``, ``aarch64``, ``ppc64le``; anything else is
enroot's own error, and another machine's architecture its own choice).

enroot names its output after the URI when the user names none
(``URI.sqsh`` for ``import``, ``URI`` for ``load``): a pinned URI would
change that name, so the shim adds ``--output NAME.sqsh`` (``--name NAME``)
with the name enroot derives from the URI as the user wrote it
(``docker::import``/``docker::load``, enroot 4: ``nvidia+pytorch+24.05``).

Registry access, as enroot's: plain HTTP only when ``ENROOT_ALLOW_HTTP`` is
set to a true value in the environment or the site's ``enroot.conf``
(:func:`site_environ`; ``enroot.in`` ``config::fini`` unsets ``n``, ``no``,
``false``...); a registry insecure only by
registries.conf or imagefit's ``insecure_registries`` is resolved with one
warning that enroot will not reach it without ``ENROOT_ALLOW_HTTP``.
Credentials: ``$ENROOT_CONFIG_PATH/.credentials`` (default
``$XDG_CONFIG_HOME/enroot``, ``~/.config/enroot``), netrc lines
``machine HOST login USER password PASS`` read as ``docker::_parse_uri``
and ``docker::_authenticate`` do (:func:`netrc_login`); never logged. The
``ENROOT_*`` environment is passed to enroot untouched.

No login recipe: ``enroot start`` runs the container as the caller with the
image's ``/etc/rc``; the shim does not intercept it.

Standard library only.
"""

from __future__ import annotations

if False:  # for type checkers only: importing collections costs every shimmed command ~1.3 ms
    from collections.abc import Mapping

import os
import sys

from shim import reference
from shim.argv import Invocation, enroot_uri
from shim.argv import enroot as grammar
from shim.errors import InvalidReference
from shim.personality.base import Personality, Plan, Resolved

#: enroot's ``common::debarch``: the only ``--arch`` values it accepts.
DEBARCH = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le"}
#: ``config::fini``: ENROOT_* values enroot reads as "unset".
_FALSE = frozenset({"n", "no", "N", "No", "NO", "f", "false", "F", "False", "FALSE"})
#: The most of a credentials file read (a netrc file is a few lines).
_CREDENTIALS_LIMIT = 1 << 20


#: enroot's system configuration (``enroot.in``: ``config::init
#: "@sysconfdir@/enroot.conf"``, then its ``.d/*.conf`` drop-ins; Debian and
#: RPM packages build with sysconfdir /etc/enroot)
SYSCONF = "/etc/enroot/enroot.conf"
#: the keys of the site's configuration the shim needs
_SITE_KEYS = ("ENROOT_ALLOW_HTTP", "ENROOT_CONFIG_PATH")
#: a value the shim cannot read without a shell (quotes, ``$(...)``): unknown
UNKNOWN = "\0unknown"
_IFS = " \t="  # config::load's ``IFS=$' \t='``
_SITE_LIMIT = 1 << 20


def _exported(key: str) -> bool:
    """The keys ``config::load`` exports (and later lines can expand)."""
    if key.startswith(("MELLANOX_", "NVIDIA_")) or key in (
        "SSL_CERT_DIR", "SSL_CERT_FILE", "all_proxy", "no_proxy", "http_proxy", "https_proxy",
    ):  # fmt: skip
        return True
    rest = key[len("ENROOT_") :] if key.startswith("ENROOT_") else ""
    return bool(rest) and all("A" <= c <= "Z" or c == "_" for c in rest)


def _site_file(path: str) -> list[str]:
    """The complete lines of a site configuration file (``while read``
    drops an unterminated last line), or [] when it is missing, a FIFO or
    device, larger than 1 MiB, not root's or writable by a group or others,
    or reached through a directory (its own or a link's target's) another
    user could change: another user's word is never taken for the site's.
    The checks are made on the descriptor that is read."""
    from hostfacts.fingerprint import _safe_chain

    real = os.path.realpath(path)
    if not (
        _safe_chain(os.path.dirname(path), False) and _safe_chain(os.path.dirname(real), False)
    ):
        return []
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return []
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o170000 != 0o100000 or st.st_uid != 0 or st.st_mode & 0o022:
            return []
        if st.st_size > _SITE_LIMIT:
            return []
        data = os.read(fd, _SITE_LIMIT + 1)
    except OSError:
        return []
    finally:
        os.close(fd)
    if len(data) > _SITE_LIMIT:
        return []
    return [line.decode("utf-8", "surrogateescape") for line in data.split(b"\n")[:-1]]


def _split(line: str) -> tuple[str, str]:
    """(key, value) as ``IFS=$' \t=' read -r key value`` splits a line: the
    key up to the first delimiter; then spaces/tabs around at most one
    ``=``; the rest with trailing spaces/tabs removed, and a single trailing
    ``=`` after a one-field rest dropped (bash: ``K no=`` is ``no``)."""
    text = line.lstrip(" \t")
    i = 0
    while i < len(text) and text[i] not in _IFS:
        i += 1
    key, rest = text[:i], text[i:].lstrip(" \t")
    if rest.startswith("="):
        rest = rest[1:].lstrip(" \t")
    rest = rest.rstrip(" \t")
    if rest.endswith("="):
        single = rest[:-1].rstrip(" \t")
        if not any(c in _IFS for c in single):
            rest = single
    return key, rest


def _expand(value: str, state: Mapping[str, str]) -> str | None:
    """``$(eval echo "${value}")`` where no shell is needed: words of plain
    text and ``$NAME``/``${NAME}`` (from `state`: the environment and what
    earlier lines exported); a name unset there empties the whole value
    (enroot runs ``set -u``: the substitution fails, its output is empty);
    echo's leading ``-n``/``-e``/``-E`` words are its options; words are
    joined by one space. None for anything else (quotes, ``$(...)``,
    backquotes, ``${NAME:-...}``, backslashes, globs, ``~``, ``#``, a value
    of a name itself unknown): the shim never runs a shell."""
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c in "\"'`\\*?[]{}()|;&<>~#\n":
            return None
        if c != "$":
            out.append(c)
            i += 1
            continue
        if value.startswith("${", i):
            end = value.find("}", i)
            if end < 0:
                return None
            name, i = value[i + 2 : end], end + 1
        else:
            j = i + 1
            while j < len(value) and value[j].isascii() and (value[j].isalnum() or value[j] == "_"):
                j += 1
            name, i = value[i + 1 : j], j
        if not name or not name.isascii() or not (name[0].isalpha() or name[0] == "_"):
            return None
        if not name.replace("_", "a").isalnum():
            return None
        if name not in state:
            return ""
        if state[name] == UNKNOWN:
            return None
        out.append(state[name])
    words = "".join(out).split()
    while words and len(words[0]) > 1 and words[0][0] == "-" and set(words[0][1:]) <= set("neE"):
        words.pop(0)
    return " ".join(words)


_SITE_LINES: dict[str, list[tuple[str, str]]] = {}


def _site_lines() -> list[tuple[str, str]]:
    """The (key, value) lines of the site's configuration files that
    ``config::load`` exports, in enroot's order: read once per process (a
    command asks for them several times), keyed on :data:`SYSCONF`."""
    if SYSCONF in _SITE_LINES:
        return _SITE_LINES[SYSCONF]
    paths = [SYSCONF]
    try:
        paths += sorted(
            os.path.join(SYSCONF + ".d", n)
            for n in os.listdir(SYSCONF + ".d")
            if n.endswith(".conf") and not n.startswith(".")
        )[:1024]
    except OSError:
        pass
    lines = [kv for path in paths for kv in map(_split, _site_file(path)) if _exported(kv[0])]
    _SITE_LINES[SYSCONF] = lines
    return lines


def site_environ(environ: Mapping[str, str]) -> Mapping[str, str]:
    """`environ` with what the site's ``enroot.conf`` and its
    ``enroot.conf.d/*.conf`` drop-ins (name order, no dotfiles: bash's glob)
    set for :data:`_SITE_KEYS`, as ``config::init`` reads them: line by line
    (:func:`_split`, :func:`_expand`), each exported key kept at its first
    non-empty value, the environment's non-empty value first of all
    (``config::export``: ``${!1:-$2}``). A value the shim cannot read is
    :data:`UNKNOWN` (then HTTP counts as not allowed, and no credentials
    file is read). Only root's files count (:func:`_site_file`)."""
    if all(environ.get(k) for k in _SITE_KEYS):
        return environ
    state = dict(environ)
    changed = False
    for key, value in _site_lines():
        if state.get(key):
            continue
        expanded = _expand(value, state)
        state[key] = UNKNOWN if expanded is None else expanded
        changed = changed or key in _SITE_KEYS
    if not changed:
        return environ
    return {**environ, **{k: state[k] for k in _SITE_KEYS if k in state}}


def enabled(environ: Mapping[str, str], name: str) -> bool:
    """True when ENROOT_* variable `name` is set to a value enroot keeps
    (``enroot.in``: ``config::export`` turns "" into the default, then
    ``config::fini`` unsets ``^(no?|N[oO]?|[fF](alse)?|FALSE)$``); a value
    the shim could not read (:data:`UNKNOWN`) is not."""
    value = environ.get(name, "")
    return bool(value) and value not in _FALSE and value != UNKNOWN


def credentials_file(environ: Mapping[str, str]) -> str | None:
    """``$ENROOT_CONFIG_PATH/.credentials`` with enroot's defaults
    (``enroot.in``: ``ENROOT_CONFIG_PATH=${XDG_CONFIG_HOME}/enroot``,
    ``XDG_CONFIG_HOME=${HOME}/.config``); `environ` as
    :func:`site_environ` gives it, so the site's ``enroot.conf`` counts.
    None where the path is not known (a site value the shim could not read,
    a NUL byte): no credentials rather than another file's."""
    config = environ.get("ENROOT_CONFIG_PATH")
    if config == UNKNOWN or "\0" in (config or ""):
        return None
    if not config:
        xdg = environ.get("XDG_CONFIG_HOME")
        if not xdg:
            xdg = os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".config")
        config = os.path.join(xdg, "enroot")
    return os.path.join(config, ".credentials")


def _read_lines(path: str) -> list[str]:
    """The lines of a regular file of at most :data:`_CREDENTIALS_LIMIT`
    bytes, or [] (missing, unreadable, a FIFO or device: never waited on;
    :func:`shim.untrusted.read_bounded`)."""
    from shim.untrusted import read_bounded

    try:
        data = read_bounded(path, _CREDENTIALS_LIMIT)
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()


def _password(fields: list[str], environ: Mapping[str, str]) -> str | None:
    """The password of one netrc line's fields (from the 6th on, as
    ``common::evalnetrc`` hands it to the shell). A value starting with
    ``$`` is shell-expanded by enroot: the shim expands a lone ``$NAME`` or
    ``${NAME}`` from the environment and gives up (None) on anything else
    (``$(command)``): it never runs a shell."""
    text = " ".join(fields[5:])
    if not text.startswith("$"):
        return text
    name = text[2:-1] if text.startswith("${") and text.endswith("}") else text[1:]
    if name and (name[0].isalpha() or name[0] == "_") and name.replace("_", "a").isalnum():
        return environ.get(name, "")
    return None


def netrc_login(uri: enroot_uri.EnrootURI, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(user, password) enroot would use for the registry of `uri`, or None.

    As ``docker::_parse_uri`` and ``docker::_authenticate`` (src/docker.sh):
    the user is the URI's ``USER@``, else the login of the first line
    ``machine REGISTRY login USER ...`` (the port dropped: ``${registry%:*}``);
    its password is that of the line ``machine REGISTRY login USER password
    PASS`` (a line starting with ``machine``). enroot hands the file to curl,
    which sends the entry of the token realm's host; the shim sends the
    registry's entry (sites list both with the same credentials, as enroot's
    doc/cmd/import.md shows for nvcr.io).
    """
    host = uri.registry.rsplit(":", 1)[0] if not uri.registry.endswith("]") else uri.registry
    path = credentials_file(environ)
    lines = [line.split() for line in _read_lines(path)] if path else []
    entries = [
        f for f in lines if len(f) >= 4 and f[0] == "machine" and f[1] == host and f[2] == "login"
    ]
    user = uri.user or (entries[0][3] if entries else "")
    if not user:
        return None
    for fields in entries:
        if fields[3] == user and len(fields) >= 6 and fields[4] == "password":
            password = _password(fields, environ)
            return None if password is None else (user, password)
    return None


class Enroot(Personality):
    grammar = grammar
    login_verbs: frozenset[str] = frozenset()
    tls_flag = None
    #: ``IMAGEFIT_NODE_CLASS=NAME enroot import URI`` on a login node makes a
    #: squashfs of that class's build; ``digest`` names pyxis's cached import
    fetch_verbs = frozenset({"import", "digest"})
    #: pyxis runs import (or load) and digest in every node's job step
    #: (pyxis_slurmstepd.c): with ``consistency = "job"`` the whole job gets one build
    job_verbs = frozenset({"import", "load", "digest"})

    def _uri(self, inv: Invocation) -> enroot_uri.EnrootURI | None:
        return enroot_uri.parse(inv.args[inv.images[0]]) if inv.images else None

    def operand(self, text: str, inv: Invocation, environ: Mapping[str, str]):
        """(head of the URI as written, the registry reference) for a
        ``docker://`` URI enroot reads, else None."""
        uri = enroot_uri.parse(text)
        if uri is None:
            return None
        domain = "docker.io" if uri.registry == enroot_uri.HUB else uri.registry
        if not reference.valid_domain(domain):
            return None
        pinned = reference.is_digest(uri.tag)
        try:  # the path and tag checked as a reference's; the domain is enroot's
            parsed = reference.parse(
                f"registry.invalid/{uri.image}{'@' if pinned else ':'}{uri.tag}"
            )
        except InvalidReference:
            return None
        return uri.head, reference.Reference(domain, parsed.path, parsed.tag, parsed.digest)

    def pin(self, prefix: str, ref: reference.Reference, digest: str) -> str:
        """``HEAD:sha256:HEX``: `prefix` is the URI's head (:meth:`operand`)."""
        return f"{prefix}:{digest}"

    def tls_verify(self, inv: Invocation, environ: Mapping[str, str]) -> bool | None:
        """False (plain HTTP allowed) with ``ENROOT_ALLOW_HTTP``, else no choice."""
        return False if enabled(site_environ(environ), "ENROOT_ALLOW_HTTP") else None

    def credentials(self, inv: Invocation, environ: Mapping[str, str]) -> tuple[str, str] | None:
        uri = self._uri(inv)
        return netrc_login(uri, site_environ(environ)) if uri is not None else None

    def requested_platform(self, inv: Invocation, environ: Mapping[str, str]):
        arch = inv.last("arch")
        if arch is None:
            return None
        from shim.personality import platforms

        return ("linux", DEBARCH[arch], None) if arch in DEBARCH else platforms.UNREADABLE

    def finish(
        self, args, inv, resolved: list[Resolved], *, login, insecure_by_config, environ, euid
    ) -> Plan:
        if not resolved:
            return Plan(args)
        if not enabled(site_environ(environ), "ENROOT_ALLOW_HTTP") and insecure_by_config:
            print(
                f"imagefit: {resolved[0].ref.domain} is insecure only by imagefit's "
                "insecure_registries; enroot reaches a registry over plain HTTP only "
                "with ENROOT_ALLOW_HTTP",
                file=sys.stderr,
            )
        uri = self._uri(inv)
        named = {"import": "output", "load": "name"}.get(inv.verb)
        if named and named not in inv.flags and uri is not None:
            name = uri.default_name() + (".sqsh" if inv.verb == "import" else "")
            args[inv.insert_at : inv.insert_at] = ["--" + named, name]
        return Plan(args)


def personality(name: str) -> Enroot:
    return Enroot(name)
