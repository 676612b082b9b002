"""Runtime personalities: what the shim does differently as podman, docker,
apptainer/singularity, Sarus or enroot. Standard library only.

A personality knows its runtime's grammar (:mod:`shim.argv`), which operands
name registry images, how a pinned reference is written, which flags and
environment make the shim stand aside, and the login-container recipe.
:mod:`shim.intercept` does the rest (resolution, policy, fail-open) the same
way for all of them.
"""

from __future__ import annotations

from shim.personality.base import Personality, Plan, Resolved

_MODULES = {
    "podman": "shim.personality.podman",
    "docker": "shim.personality.docker",
    "apptainer": "shim.personality.apptainer",
    "singularity": "shim.personality.apptainer",
    "sarus": "shim.personality.sarus",
    "enroot": "shim.personality.enroot",
    "ch-image": "shim.personality.charliecloud",
}


def get(name: str) -> Personality | None:
    """The personality for runtime `name` (the shim's argv[0] name), or None
    for a name the shim does not interpret (pass everything through)."""
    module = _MODULES.get(name)
    if module is None:
        return None
    try:
        # __import__, not importlib.import_module: the importlib package (and
        # the warnings module it loads) is not needed on every command
        return __import__(module, fromlist=["personality"]).personality(name)
    except ModuleNotFoundError:
        return None


__all__ = ["Personality", "Plan", "Resolved", "get"]
