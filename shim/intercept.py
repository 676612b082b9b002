"""Plan an intercepted command: image operands to digests, plus the runtime's
login-container recipe, the same way for every runtime personality
(:mod:`shim.personality`). Heavy imports (oras, pydantic, archspec through
:mod:`shim.resolve`) happen only once an operand must be resolved.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from shim.argv import Invocation
from shim.config import Settings
from shim.errors import Refusal, RegistryError, ShimError
from shim.personality import Personality, Plan, Resolved


def warn(message: str) -> None:
    """One human-readable line on stderr."""
    print(f"imagefit: {message}", file=sys.stderr)


def registry_operand(operand: str):
    """(prefix, reference) for a REF given to ``imagefit explain``/``check``:
    a fully qualified registry reference, optionally ``docker://``."""
    from shim.personality.base import qualified_reference, split_transport

    found = split_transport(operand, ("docker://",))
    prefix, text = found if found else ("", operand)
    ref = qualified_reference(text, allow_short=bool(prefix))
    return (prefix, ref) if ref is not None else None


def policy_of(settings: Settings, repository: str):
    """The scoring Policy the config gives `repository`, or None."""
    entry = settings.policy_for(repository)
    if entry is None:
        return None
    from scoring.policy import Policy

    return Policy(pin=entry["pin"], prefer=entry["prefer"], avoid=entry["avoid"])


def plan(
    personality: Personality,
    inv: Invocation,
    settings: Settings,
    environ: Mapping[str, str],
    euid: int | None = None,
) -> Plan:
    """What to run for an intercepted invocation.

    Selected builds replace their operand (``personality.pin``); a
    pass-through decision leaves the operand; resolution failures follow
    ``settings.on_error`` (warn and leave the command unchanged, or raise).
    The login recipe applies to the personality's login verbs when a build
    was resolved from compatibility data (``login = "auto"``, unless the
    build is annotated an application container), always (``"always"``) or
    never.

    Raises:
        Refusal: compatibility data says no build runs here (exit 125).
        ShimError: a resolution failure with ``on_error = "refuse"``.
    """
    euid = os.geteuid() if euid is None else euid
    args = list(inv.args)
    standing_aside = (
        not inv.images
        or personality.passes_through(inv, environ)
        or _emulated(personality, inv, environ)
    )
    operands = []
    if not standing_aside:
        operands = [
            (p, found)
            for p in inv.images
            if (found := personality.operand(args[p], inv, environ)) is not None
        ]
    resolved: list[Resolved] = []
    insecure_by_config = False
    if operands:  # the cold path: heavy imports only from here on
        resolved, insecure_by_config = _resolve_operands(
            personality, args, operands, inv, settings, environ
        )
    apply_login = False
    if inv.verb in personality.login_verbs and not standing_aside:
        apply_login = settings.login == "always"
        if settings.login == "auto" and resolved:
            from scoring.vocabulary import CONTAINER_KIND

            kinds = {r.annotations.get(CONTAINER_KIND, "").strip().lower() for r in resolved}
            apply_login = "application" not in kinds
    if not resolved and not apply_login:
        return Plan(args)
    return personality.finish(
        args,
        inv,
        resolved,
        login=apply_login,
        insecure_by_config=insecure_by_config,
        environ=environ,
        euid=euid,
    )


_MACHINES = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le", "riscv64": "riscv64"}


def _emulated(personality: Personality, inv: Invocation, environ: Mapping[str, str]) -> bool:
    """The user asked for another OS or architecture than this machine's
    (emulation): the runtime's own choice applies. Decided from ``uname``,
    before any heavy import."""
    requested = personality.requested_platform(inv, environ)
    if requested is None:
        return False
    machine = os.uname().machine
    arch = requested[1]
    return requested[0] != "linux" or (bool(arch) and arch != _MACHINES.get(machine, machine))


def _refusal(ref, decision) -> Refusal:
    lines = [f"{ref}: {decision.reason}"]
    lines += [f"  {v.build}: {v.why_not}" for v in decision.verdicts]
    closest = next((v for v in decision.verdicts if v.candidate == decision.closest), None)
    if closest is not None:
        lacks = "; ".join(c.detail for c in closest.checks if not c.passed)
        lines.append(f"closest: {closest.build}, which lacks: {lacks}")
    return Refusal("\n".join(lines))


def _resolve_operands(
    personality: Personality,
    args: list[str],
    operands,
    inv: Invocation,
    settings: Settings,
    environ,
) -> tuple[list[Resolved], bool]:
    """Resolve each registry operand; rewrite `args` in place for selected
    builds. Returns (what was resolved, whether a rewritten image's registry
    is insecure only by imagefit's config, so the runtime must be told).

    Raises:
        Refusal: no build runs here. ShimError: failure with on_error=refuse.
    """
    import socket

    from hostfacts import HostFactsError, host_facts
    from scoring import Outcome
    from scoring.platform import host_platform
    from shim.resolve import insecurity, resolve

    resolved: list[Resolved] = []
    by_config = False
    requested = personality.requested_platform(inv, environ)
    for position, (prefix, ref) in operands:
        why_insecure = insecurity(
            ref, environ, settings.insecure_registries, personality.tls_verify(inv, environ)
        )
        try:
            facts = host_facts(environ, cpu_target=settings.cpu_target_for(socket.gethostname()))
            wanted = None
            if requested is not None:
                host = host_platform(facts)
                wanted = (requested[0], requested[1] or host.architecture, requested[2])
                if wanted[:2] != (host.os, host.architecture):
                    continue  # another platform (emulation): the runtime's own choice applies
            resolution = resolve(
                ref,
                facts,
                environ=environ,
                insecure=why_insecure is not None,
                timeout=settings.registry_timeout,
                authfile=personality.authfile(inv, environ),
                credentials=personality.credentials(inv, environ),
                nfd_artifacts=settings.nfd_artifacts,
                policy=policy_of(settings, ref.name),
                requested_platform=wanted,
            )
        except (RegistryError, HostFactsError) as exc:
            if settings.on_error == "refuse":
                raise ShimError(f"cannot resolve {ref}: {exc}") from None
            warn(f"cannot resolve {ref} ({exc}); running the command unchanged")
            continue
        decision = resolution.decision
        if decision.outcome == Outcome.REFUSED:
            raise _refusal(ref, decision)
        if decision.outcome == Outcome.SELECTED and decision.chosen is not None:
            args[position] = personality.pin(prefix, ref, decision.chosen.digest)
            resolved.append(
                Resolved(
                    position, prefix, ref, decision.chosen.digest, dict(decision.chosen.annotations)
                )
            )
            by_config = by_config or why_insecure == "imagefit config"
    return resolved, by_config
