"""The login-container recipe: the user's command runs through a login shell,
as the caller, with the image's own PATH kept.

podman (containers/podman pkg/specgen/generate/oci.go ``makeCommand``): a
user ``--entrypoint`` replaces the image ENTRYPOINT and drops its CMD; a value
starting with ``[`` is a JSON array. ``--userns=keep-id`` runs rootless
containers as the caller's UID/GID with a passwd entry and HOME
(docs/source/markdown/options/userns.container.md).

The entrypoint is ``/bin/sh -c SCRIPT sh CMD...``: SCRIPT saves the image's
PATH, then ``exec /bin/sh -l -c '...; exec "$@"' sh "$@"``: a login shell
(it reads /etc/profile and ~/.profile) that puts the image's PATH back in
front of whatever /etc/profile set, then execs the user's command with its
arguments untouched. With no command, the login shell execs ``/bin/sh -i``
(``/bin/sh`` reading commands from stdin when stdin is not a terminal): an
interactive shell in the login environment. Standard library only.
"""

from __future__ import annotations

if False:  # for type checkers only: importing collections costs every shimmed command ~1.3 ms
    from collections.abc import Mapping

#: Run by the login shell: the image's PATH, then the directories of the profile's
#: PATH not already in it (each once, in order), then "$@" (or a shell).
INNER = (
    "IFS=:; set -f; IMAGEFIT_P=; "
    'for IMAGEFIT_D in $IMAGEFIT_IMAGE_PATH${PATH:+:$PATH}; do case ":$IMAGEFIT_P:" in '
    '*":$IMAGEFIT_D:"*) ;; *) IMAGEFIT_P="${IMAGEFIT_P:+$IMAGEFIT_P:}$IMAGEFIT_D";; esac; done; '
    'export PATH="$IMAGEFIT_P"; set +f; unset IFS IMAGEFIT_P IMAGEFIT_D IMAGEFIT_IMAGE_PATH; '
    '[ "$#" -gt 0 ] || if [ -t 0 ]; then set -- /bin/sh -i; else set -- /bin/sh; fi; exec "$@"'
)
#: Run by /bin/sh -c as the entrypoint: keep the image PATH, start the login shell.
OUTER = 'IMAGEFIT_IMAGE_PATH="$PATH" exec /bin/sh -l -c \'' + INNER + '\' sh "$@"'

ENTRYPOINT = ["/bin/sh", "-c", OUTER, "sh"]


_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _json_string(text: str) -> str:
    """A JSON string literal exactly as json.dumps writes it (ensure_ascii):
    the json module would import re on the hot path; tests check they agree."""
    out = ['"']
    for c in text:
        code = ord(c)
        if c in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[c])
        elif 0x20 <= code <= 0x7E:
            out.append(c)
        elif code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    out.append('"')
    return "".join(out)


#: ENTRYPOINT as podman's ``--entrypoint`` JSON array (== json.dumps(ENTRYPOINT)).
ENTRYPOINT_JSON = "[" + ", ".join(_json_string(part) for part in ENTRYPOINT) + "]"


#: HOME when the caller's home cannot be named in a mount (not absolute, ``/``,
#: or holding ``:``, ``,`` or a control character).
FALLBACK_HOME = "/tmp"
#: HOME for root when its home is not mounted: root's home in (almost) every image
ROOT_HOME = "/root"


def caller_home(environ: Mapping[str, str], euid: int) -> str | None:
    """The caller's home: ``$HOME``, else the passwd entry of `euid`, else None."""
    if environ.get("HOME"):
        return environ["HOME"]
    import pwd

    try:
        return pwd.getpwuid(euid).pw_dir or None
    except KeyError:
        return None


def sets_home(flags: dict[str, list[str | None]]) -> bool:
    """The user set HOME: ``-e HOME``/``-e HOME=...`` or a HOME line in an
    ``--env-file`` (podman and docker read these the same way)."""
    if any((v or "").partition("=")[0] == "HOME" for v in flags.get("env", [])):
        return True
    for path in flags.get("env-file", []):
        from shim.untrusted import read_bounded  # a FIFO or a device: skipped, never waited on

        try:
            lines = read_bounded(path or "").decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            line = line.lstrip()
            if line and not line.startswith("#") and line.partition("=")[0].rstrip() == "HOME":
                return True
    return False


def mounts(flags: dict[str, list[str | None]]) -> list[tuple[str | None, str]]:
    """``(source or None, destination)`` of every mount the user gave:
    ``-v/--volume SRC:DST[:OPTS]`` (or ``DST``), ``--tmpfs DST[:OPTS]``,
    ``--mount type=...,source|src=...,destination|dst|target=...`` (podman's
    and docker's spellings; values unquoted). Paths normalised; a mount
    without a destination is left out."""
    import os.path

    found: list[tuple[str | None, str]] = []
    for value in flags.get("volume", []):
        parts = (value or "").split(":")
        src, dst = (parts[0], parts[1]) if len(parts) > 1 else (None, parts[0])
        found.append((src, dst))
    for value in flags.get("tmpfs", []):
        found.append((None, (value or "").split(":")[0]))
    for value in flags.get("mount", []):
        keys: dict[str, str] = {}
        for item in (value or "").split(","):
            key, _, val = item.partition("=")
            keys[key.strip().strip('"').lower()] = val.strip().strip('"')
        dst = keys.get("destination") or keys.get("dst") or keys.get("target") or ""
        found.append((keys.get("source") or keys.get("src") or None, dst))
    return [
        (os.path.normpath(s) if s and s.startswith("/") else s, os.path.normpath(d))
        for s, d in found
        if d.startswith("/")
    ]


def _usable(path: str | None) -> bool:
    return (
        bool(path)
        and path.startswith("/")
        and path.strip("/") != ""
        and not any(c in path for c in ":,")
        and all(" " <= c != "\x7f" for c in path)
    )


def home_flags(
    flags: dict[str, list[str | None]],
    environ: Mapping[str, str],
    euid: int,
    egid: int,
    *,
    podman: bool,
) -> list[str]:
    """HOME for a login container that runs as the caller: a directory the
    caller can write, never ``/``.

    - The user set HOME (:func:`sets_home`): nothing.
    - The caller's home (:func:`caller_home`) or a directory above it is a
      mount destination (:func:`mounts`; any kind: the user chose what is
      there): ``--env=HOME=<home>``.
    - The caller's home is mounted elsewhere (``-v $HOME:/home/me``):
      ``--env=HOME=<that destination>``.
    - The caller is root: ``--env=HOME=/root``, no mount (root can write
      anywhere in its container; a tmpfs would hide what the image keeps in
      ``/root``).
    - Otherwise an empty tmpfs at the caller's home path, private to the
      caller and gone with the container (as apptainer's ``--contain``):
      ``--env=HOME=<home>`` and ``--tmpfs=<home>:rw,exec,mode=0700,U``
      (podman: ``U`` chowns it to the container's user, checked with podman
      4.3.1 rootful and rootless with keep-id) or
      ``...,mode=0700,uid=UID,gid=GID`` (docker: moby/sys mount/flags.go
      ``validFlags``; podman refuses ``uid=``).
    - A home that cannot be named in a mount (:data:`FALLBACK_HOME`):
      ``--env=HOME=/tmp``.

    podman sets HOME from the passwd entry it writes (``/`` for keep-id in
    4.x), docker ``/`` for a uid without one: hence ``--env`` in every case.
    """
    if sets_home(flags):
        return []
    home = caller_home(environ, euid)
    if not _usable(home):
        return [f"--env=HOME={FALLBACK_HOME}"]
    import os.path

    home = os.path.normpath(home)
    found = mounts(flags)
    if any(d == home or home.startswith(d.rstrip("/") + "/") for _s, d in found if d != "/"):
        return [f"--env=HOME={home}"]
    elsewhere = [d for s, d in found if s == home and d != "/" and _usable(d)]
    if elsewhere:
        return [f"--env=HOME={elsewhere[-1]}"]
    if euid == 0:
        # root may write anywhere in its container, and an image keeps things
        # under /root (conda, pip --user, caches) that a tmpfs would hide:
        # root's home in the image, as podman itself sets it from the image's
        # passwd entry
        return [f"--env=HOME={ROOT_HOME}"]
    owner = "U" if podman else f"uid={euid},gid={egid}"
    return [f"--env=HOME={home}", f"--tmpfs={home}:rw,exec,mode=0700,{owner}"]


def keep_id(flags: dict[str, list[str | None]], environ_userns: str | None) -> bool:
    """The user chose ``--userns=keep-id[:...]`` (flag, else ``$PODMAN_USERNS``)."""
    values = flags.get("userns")
    chosen = values[-1] if values else environ_userns
    return (chosen or "").partition(":")[0] == "keep-id"


def podman_flags(
    flags: dict[str, list[str | None]],
    *,
    rootless: bool,
    environ_userns: str | None,
    environ: Mapping[str, str] | None = None,
    euid: int | None = None,
    egid: int | None = None,
) -> list[str]:
    """Flags to insert after ``podman run``/``create`` for a login container.

    Args:
        flags: the flags the user gave (canonical long names).
        rootless: podman runs rootless (the caller is not root).
        environ_userns: ``$PODMAN_USERNS`` (the user's default --userns), or None.
        environ, euid, egid: the caller's environment and ids, for HOME
            (:func:`home_flags`); without `environ`, no HOME flags.

    Returns:
        ``--entrypoint=<json>`` unless the user set an entrypoint;
        ``--userns=keep-id`` when rootless unless the user chose ``--userns``,
        ``--user`` or ``$PODMAN_USERNS``; then HOME (:func:`home_flags`) when
        the container runs as the caller: no ``--user``, and root, or keep-id
        (ours or the user's).
    """
    out: list[str] = []
    if "entrypoint" not in flags:
        out.append("--entrypoint=" + ENTRYPOINT_JSON)
    ours = rootless and not environ_userns and "userns" not in flags and "user" not in flags
    if ours:
        out.append("--userns=keep-id")
    as_caller = "user" not in flags and (not rootless or ours or keep_id(flags, environ_userns))
    if environ is not None and as_caller:
        out += home_flags(flags, environ, euid or 0, egid or 0, podman=True)
    return out


def wants_cmd(inv, verbs) -> bool:
    """True for a podman/docker `inv` (:class:`shim.argv.Invocation`) of one
    of `verbs` whose login recipe would run the image's Cmd: our entrypoint
    (no ``--entrypoint``), no command after the image, no ``-t/--tty``."""
    return (
        inv.verb in verbs
        and bool(inv.images)
        and inv.images[0] == len(inv.args) - 1
        and "entrypoint" not in inv.flags
        and not inv.enabled("tty")
    )


def with_cmd(args: list[str], image: int, cmd: list[str] | None, tty: bool) -> list[str]:
    """The image's own ``Cmd`` to run through the login shell when the user
    gave no command (`image` is the last word of `args`) and no TTY; else
    nothing (an interactive login shell then starts, as with no Cmd)."""
    if cmd and not tty and image == len(args) - 1:
        return list(cmd)
    return []
