"""Plan an intercepted command: image operands to digests, plus the runtime's
login-container recipe, the same way for every runtime personality
(:mod:`shim.personality`). Heavy imports (oras, pydantic, archspec through
:mod:`shim.resolve`) happen only once an operand must be resolved.
"""

from __future__ import annotations

import os
import sys

if False:  # for type checkers only: importing collections costs every shimmed command ~1.3 ms
    from collections.abc import Mapping

from shim.argv import Invocation
from shim.config import Settings
from shim.errors import Refusal, RegistryError, ShimError
from shim.personality import Personality, Plan, Resolved

#: scoring.vocabulary.CONTAINER_KIND, spelled out: importing scoring would load
#: pydantic on the hot path (tests/test_hot_path.py checks they agree).
CONTAINER_KIND = "org.supercontainers.container.kind"


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
    """Resolve each registry operand (decision cache first); rewrite `args` in
    place for selected builds. Returns (what was resolved, whether a rewritten
    image's registry is insecure only by imagefit's config, so the runtime
    must be told).

    A cache hit imports nothing heavy (:mod:`shim.decisions`); a miss
    resolves once per key across concurrent shims (single flight).

    Raises:
        Refusal: no build runs here. ShimError: failure with on_error=refuse.
    """
    import time

    from hostfacts.fingerprint import live_fingerprint
    from shim import decisions
    from shim.insecure import insecurity

    hostname = os.uname().nodename  # socket.gethostname(), without importing socket
    cpu_target = settings.cpu_target_for(hostname)
    requested = personality.requested_platform(inv, environ)
    if requested is not None:
        machine = os.uname().machine
        requested = (requested[0], requested[1] or _MACHINES.get(machine, machine), requested[2])
    facts_fp = live_fingerprint(environ, hostname) if settings.decision_cache_ttl > 0 else None
    directory = decisions.cache_dir(settings.decision_cache_dir, environ)
    shared = settings.decision_cache_dir is not None
    trusted = settings.cache_trusted_uids
    resolved: list[Resolved] = []
    by_config = False
    for position, (prefix, ref) in operands:
        start = time.monotonic()
        tls_verify = personality.tls_verify(inv, environ)
        why: list = []

        def why_insecure(ref=ref, tls_verify=tls_verify, why=why) -> str | None:
            # reads registries.conf (tomllib): only on a miss, or for a registry
            # imagefit's own config lists; a cache hit never needs it
            if not why:
                why.append(insecurity(ref, environ, settings.insecure_registries, tls_verify))
            return why[0]

        material = {
            "policy": settings.policy_for(ref.name),
            "cpu_target": cpu_target,
            "nfd": settings.nfd_artifacts,
            "requested": requested,
        }
        key = decisions.key(str(ref), facts_fp, material) if facts_fp else None
        entry = decisions.load(directory, key, trusted) if key else None
        state = "miss"
        if entry is not None and entry.age() <= settings.decision_cache_ttl:
            state = "hit"
        elif entry is not None:
            entry, state = _revalidate(
                entry, ref, personality, inv, settings, environ, why_insecure()
            )
            if entry is not None and state == "revalidated":
                decisions.store(directory, key, entry, shared)
        if entry is None:
            if key is not None:
                with decisions.single_flight(
                    directory, key, settings.registry_timeout + 1, trusted, shared
                ) as flight:
                    entry = flight.entry
                    state = "waited" if entry is not None else "miss"
                    if entry is None:
                        entry = _decide(
                            ref,
                            personality,
                            inv,
                            settings,
                            environ,
                            why_insecure(),
                            cpu_target,
                            requested,
                        )
                        if entry is not None:
                            decisions.store(directory, key, entry, shared)
            else:
                entry = _decide(
                    ref, personality, inv, settings, environ, why_insecure(), cpu_target, requested
                )
        if entry is None:
            _audit(
                settings,
                personality,
                ref,
                None,
                "error",
                "resolution failed; ran unchanged",
                state,
                start,
            )
            continue
        reason = entry.refusal.splitlines()[0] if entry.refusal else ""
        _audit(settings, personality, ref, entry, entry.outcome, reason, state, start)
        if entry.outcome == "refused":
            raise Refusal(entry.refusal)
        if entry.outcome == "selected":
            args[position] = personality.pin(prefix, ref, entry.chosen)
            resolved.append(Resolved(position, prefix, ref, entry.chosen, entry.annotations))
            if tls_verify is None and ref.domain in settings.insecure_registries:
                by_config = by_config or why_insecure() == "imagefit config"
    return resolved, by_config


def _audit(settings, personality, ref, entry, outcome, reason, state, start) -> None:
    if not settings.audit_log:
        return
    import time

    from shim import audit

    audit.record(
        settings.audit_log,
        light=state in ("hit", "waited"),
        runtime=personality.name,
        reference=str(ref),
        index_digest=entry.index_digest if entry else None,
        chosen=entry.chosen if entry else None,
        outcome=outcome,
        reason=reason,
        cache=state,
        duration_ms=round((time.monotonic() - start) * 1000, 1),
    )


def _decide(ref, personality, inv, settings, environ, why_insecure, cpu_target, requested):
    """Resolve `ref` now (the cold path): a decisions.Entry, or None after a
    fail-open warning. Raises ShimError when on_error = "refuse"."""
    from hostfacts import HostFactsError, host_facts
    from scoring import Outcome
    from shim import decisions
    from shim.resolve import resolve

    try:
        facts = host_facts(environ, cpu_target=cpu_target)
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
            requested_platform=requested,
        )
    except (RegistryError, HostFactsError) as exc:
        if settings.on_error == "refuse":
            raise ShimError(f"cannot resolve {ref}: {exc}") from None
        warn(f"cannot resolve {ref} ({exc}); running the command unchanged")
        return None
    decision = resolution.decision
    if decision.outcome == Outcome.REFUSED:
        return decisions.Entry(
            str(ref), resolution.digest, "refused", refusal=str(_refusal(ref, decision))
        )
    if decision.outcome == Outcome.SELECTED and decision.chosen is not None:
        chosen = decision.chosen
        return decisions.Entry(
            str(ref), resolution.digest, "selected", chosen.digest, dict(chosen.annotations)
        )
    return decisions.Entry(str(ref), resolution.digest, "passthrough")


def _revalidate(entry, ref, personality, inv, settings, environ, why_insecure):
    """A stale entry: one HEAD of the tag. Same index digest: (entry, "revalidated");
    another: (None, "miss"); registry unreachable: (entry, "stale") with a warning."""
    import time

    from shim import auth
    from shim.registry import RegistryClient

    try:
        creds = personality.credentials(inv, environ) or auth.credentials(
            ref.domain, ref.path, environ, personality.authfile(inv, environ)
        )
        client = RegistryClient(
            ref.domain,
            insecure=why_insecure is not None,
            credentials=creds,
            timeout=settings.registry_timeout,
        )
        current = client.head_digest(ref.path, ref.reference)
    except RegistryError as exc:
        minutes = entry.age() / 60
        warn(f"cannot check {ref} ({exc}); using the decision made {minutes:.0f} min ago")
        return entry, "stale"
    if current is None or current != entry.index_digest:
        return None, "miss"
    entry.decided_at = time.time()
    return entry, "revalidated"
