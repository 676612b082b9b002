"""Short names (``gromacs:2024``) resolved the way podman resolves them, or
not at all.

containers-registries.conf(5) ("Short-Name Aliasing"; containers/image
pkg/shortnames): an alias for the name wins (tag or digest re-appended);
otherwise the name is tried against each ``unqualified-search-registries``
entry in order. The shim resolves a short name only when that gives exactly
one registry reference (an alias, or a single search registry) and
``short-name-mode`` is not ``disabled``; with several search registries
podman's own answer depends on which registry has the image (and, in
enforcing mode, on a prompt), so the shim leaves the command alone rather
than risk a different registry than podman would use. Standard library only.
"""

from __future__ import annotations

if False:  # for type checkers only: importing collections costs every shimmed command ~1.3 ms
    from collections.abc import Mapping

from shim import reference
from shim.errors import InvalidReference
from shim.registries_conf import short_name_settings


def resolve_short_name(
    text: str, environ: Mapping[str, str]
) -> tuple[str, reference.Reference] | None:
    """("", the qualified reference) for a short name podman would resolve to
    exactly one registry, else None. `text` is ``name[:tag][@digest]``."""
    name, at, digest = text.partition("@")
    tag = ""
    if ":" in name:
        name, tag = name.rsplit(":", 1)
    if "/" in name and reference.split_domain(name)[2]:
        return None  # qualified already: not a short name
    search, aliases, mode = short_name_settings(environ)
    if mode == "disabled" and not aliases:
        return None
    suffix = (f":{tag}" if tag else "") + (f"@{digest}" if at else "")
    if name in aliases:
        target = aliases[name]
    elif len(search) == 1:
        target = f"{search[0]}/{name}"
    else:
        return None
    try:
        ref = reference.parse(target + suffix)
    except InvalidReference:
        return None
    return ("", ref) if ref.qualified and ref.domain != "localhost" else None
