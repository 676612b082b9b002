"""Sarus (eth-cscs/sarus 1.5 and later): ``run`` and ``pull``.

Image operand: ``REPOSITORY[:TAG][@DIGEST]``, read the way Sarus does
(src/cli/Utility.cpp ``parseImageReference``, Docker's reference grammar):
a first component with ``.`` or ``:``, ``localhost`` or upper case is the
registry, otherwise the image is on Docker Hub (``docker.io``, with
``library/`` for one-component names; Sarus 1.5.1 made docker.io the
default). Sarus has no search registries and no image IDs, so short names
are resolved for ``run`` too. Left alone: ``load/...`` (images stored by
``sarus load``, whose "server" is the word ``load``), a word starting with
``-`` (a bare ``--`` is the image for Sarus, see :mod:`shim.argv.sarus`) and
anything that is not a valid reference.

Pinned operand: ``registry/repo@sha256:...`` (pulling, running and removing
by digest: Sarus 1.5.0; with ``tag@digest`` Sarus ignores the tag, and the
shim writes no tag).

``sarus run`` only runs images already in the local repository, so a
resolved ``run`` gets a pre-step, ``sarus [GLOBAL] pull PINNED`` (the user's
global ``--debug``/``--verbose`` words kept; no ``run`` option applies to
``pull``). It always pulls: Sarus >= 1.5 skips the download when the image
is already local and up to date, so a repeated run costs one ``sarus pull``
process and one manifest request; knowing "already local" otherwise means
parsing ``sarus images --digests`` (a Sarus process anyway, and not an
interface) or Sarus's repository metadata (internal), or keeping a record
of our own that ``sarus rmi`` silently falsifies. The price: with the
registry unreachable, a run whose decision came from imagefit's cache fails
at the pull even when the image is local. ``sarus pull IMG`` is only
rewritten.

The shim stands aside for ``--centralized-repository`` (run or pull): that
repository is filled by administrators for every node class, not with the
build that fits the node where the command happens to run, and a user
cannot pull into it. ``pull --containers-storage`` reads a local
containers/storage store, not a registry: left alone too.

Login recipe (``run``): ``--entrypoint ""`` right after ``run`` (Sarus
splits ``--entrypoint`` on whitespace and an empty value clears the image
ENTRYPOINT; ``--entrypoint=`` would be boost's "empty adjacent parameter"
error), and ``/bin/sh -c OUTER sh`` (:data:`shim.login.ENTRYPOINT`) right
after the image, before the user's command and arguments. A user
``--entrypoint`` (any spelling) means no recipe at all: their entrypoint runs
their arguments. Sarus always runs the container as the caller.

TLS and credentials: Sarus has no command-line switch for either. Since 1.5
it pulls through Skopeo, which reads containers-registries.conf(5) for
insecure registries (sarus.json ``insecureRegistries`` is gone) and the
containers auth files when ``--login`` was not used: the shim reads the same
files (:mod:`shim.registries_conf`, :mod:`shim.auth`). A registry insecure
only by imagefit's ``insecure_registries`` is resolved, with one warning
that Sarus's pull will not know it. ``pull --login``/``--password-stdin``
credentials are typed into Sarus, never seen by the shim: a private image
the shim cannot read fails open (the command runs unchanged).

Standard library only.
"""

from __future__ import annotations

if False:  # for type checkers only: importing collections costs every shimmed command ~1.3 ms
    from collections.abc import Mapping

import sys

from shim import login as login_recipe
from shim import reference
from shim.argv import Invocation, sarus
from shim.errors import InvalidReference
from shim.personality.base import Personality, Plan, Resolved

#: Sarus reads these words as a server too (Utility.cpp ``isDomainLike``):
#: images stored by ``sarus load`` live under ``load/``.
LOADED = "load"


class Sarus(Personality):
    grammar = sarus
    login_verbs = frozenset({"run"})
    tls_flag = None

    def operand(self, text: str, inv: Invocation, environ: Mapping[str, str]):
        if not text or text.startswith("-"):
            return None
        first, slash, _ = text.partition("/")
        if slash and first == LOADED:
            return None
        try:
            return "", reference.parse(text)
        except InvalidReference:
            return None

    def passes_through(self, inv: Invocation, environ: Mapping[str, str]) -> bool:
        return inv.has("centralized-repository", "containers-storage")

    def finish(
        self, args, inv, resolved: list[Resolved], *, login, insecure_by_config, environ, euid
    ) -> Plan:
        before: list[list[str]] = []
        if resolved and insecure_by_config:
            domain = resolved[0].ref.domain
            print(
                f"imagefit: {domain} is insecure only by imagefit's insecure_registries; "
                "Sarus pulls through Skopeo, which needs it marked insecure in "
                "registries.conf",
                file=sys.stderr,
            )
        if inv.verb == "run" and inv.insert_at is not None:
            if resolved:
                globals_ = list(inv.args[: inv.insert_at - 1])
                before.append([*globals_, "pull", args[resolved[0].position]])
            if login and inv.images and "entrypoint" not in inv.flags:
                after_image = inv.images[0] + 1
                args[after_image:after_image] = login_recipe.ENTRYPOINT
                args[inv.insert_at : inv.insert_at] = ["--entrypoint", ""]
        return Plan(args, before)


def personality(name: str) -> Sarus:
    return Sarus(name)
