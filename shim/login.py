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

#: Run by the login shell: restore the image PATH ahead of the profile's, run "$@".
INNER = (
    'PATH="$IMAGEFIT_IMAGE_PATH${PATH:+:$PATH}"; unset IMAGEFIT_IMAGE_PATH; '
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


def podman_flags(
    flags: dict[str, list[str | None]], *, rootless: bool, environ_userns: str | None
) -> list[str]:
    """Flags to insert after ``podman run``/``create`` for a login container.

    Args:
        flags: the flags the user gave (canonical long names).
        rootless: podman runs rootless (the caller is not root).
        environ_userns: ``$PODMAN_USERNS`` (the user's default --userns), or None.

    Returns:
        ``--entrypoint=<json>`` unless the user set an entrypoint, and
        ``--userns=keep-id`` when rootless unless the user chose ``--userns``,
        ``--user`` or ``$PODMAN_USERNS``.
    """
    out: list[str] = []
    if "entrypoint" not in flags:
        out.append("--entrypoint=" + ENTRYPOINT_JSON)
    if rootless and not environ_userns and "userns" not in flags and "user" not in flags:
        out.append("--userns=keep-id")
    return out
