"""Plan an intercepted command: image operands to digests, plus the runtime's
login-container recipe, the same way for every runtime personality
(:mod:`shim.personality`). Heavy imports (requests, pydantic, archspec through
:mod:`shim.resolve`) happen only once an operand must be resolved.
"""

from __future__ import annotations

import os
import sys

if False:  # for type checkers only: importing collections costs every shimmed command ~1.3 ms
    from collections.abc import Mapping

from shim.argv import Invocation
from shim.config import Settings
from shim.errors import Refusal, ShimError
from shim.personality import Personality, Plan, Resolved

#: scoring.vocabulary.CONTAINER_KIND, spelled out: importing scoring would load
#: pydantic on the hot path (tests/test_hot_path.py checks they agree).
CONTAINER_KIND = "org.supercontainers.container.kind"


#: Characters of one warning shown at most (a message may quote a registry's words).
WARN_LIMIT = 2000


def warn(message: str) -> None:
    """One human-readable line on stderr: `message` with control characters
    shown escaped and cut to :data:`WARN_LIMIT` characters
    (:func:`shim.untrusted.terminal_safe`), whatever a registry put in it."""
    from shim.untrusted import terminal_safe

    print(f"imagefit: {terminal_safe(message, WARN_LIMIT)}", file=sys.stderr)


def unexpected(exc: BaseException) -> str:
    """One line naming an exception the shim did not expect (a bug, or data
    beyond what a parser handles): its type, its message and where it was
    raised (the innermost frame of the traceback, file and line), so that
    the report is useful without a traceback. Terminal-safe, cut."""
    from shim.untrusted import terminal_safe

    where = ""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        path = tb.tb_frame.f_code.co_filename
        parts = path.replace("\\", "/").split("/")
        where = f" at {'/'.join(parts[-2:])}:{tb.tb_lineno}"
    text = " ".join(str(exc).split()) or "(no message)"
    return terminal_safe(f"unexpected {type(exc).__name__}{where}: {text}", 400)


def registry_operand(operand: str):
    """(prefix, reference) for a REF given to ``imagefit explain``/``check``:
    a fully qualified registry reference, optionally ``docker://``."""
    from shim.personality.base import qualified_reference, split_transport

    found = split_transport(operand, ("docker://",))
    prefix, text = found if found else ("", operand)
    ref = qualified_reference(text, allow_short=bool(prefix))
    return (prefix, ref) if ref is not None else None


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

    The boundary: an exception other than a ShimError raised while resolving
    (any type, from any module: a parser meeting data beyond its bounds, a
    bug) is one failed resolution like a registry error: one warning line
    (:func:`unexpected`) and the command unchanged, or with ``on_error =
    "refuse"`` a ShimError. BaseExceptions that are not Exceptions
    (KeyboardInterrupt, SystemExit) pass through.

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
        original = list(args)
        try:
            resolved, insecure_by_config = _resolve_operands(
                personality, args, operands, inv, settings, environ
            )
        except ShimError:
            raise
        except Exception as exc:  # the boundary: see the docstring
            images = " ".join(str(ref) for _p, (_prefix, ref) in operands)
            if settings.audit_log:
                from shim import audit

                audit.record(
                    settings.audit_log, facility=settings.audit_facility,
                    runtime=personality.name, reference=images, index_digest=None, chosen=None,
                    outcome="error", reason=unexpected(exc), cache="miss", duration_ms=None,
                )  # fmt: skip
            if settings.on_error == "refuse":
                raise ShimError(f"cannot resolve {images}: {unexpected(exc)}") from None
            warn(f"cannot resolve {images} ({unexpected(exc)}); running the command unchanged")
            args, resolved, insecure_by_config = original, [], False
    apply_login = False
    if inv.verb in personality.login_verbs and not standing_aside:
        apply_login = settings.login == "always"
        if settings.login == "auto" and resolved:
            kinds = {r.annotations.get(CONTAINER_KIND, "").strip().lower() for r in resolved}
            apply_login = "application" not in kinds
    if not resolved and not apply_login:
        return Plan(args)
    done = personality.finish(
        args,
        inv,
        resolved,
        login=apply_login,
        insecure_by_config=insecure_by_config,
        environ=environ,
        euid=euid,
    )
    vendor = _gpu_vendor(personality, inv, resolved, settings)
    if vendor and inv.insert_at is not None:
        done.args[inv.insert_at : inv.insert_at] = personality.gpu_flags(inv, vendor, environ, euid)
    return done


def _gpu_vendor(
    personality: Personality, inv: Invocation, resolved: list[Resolved], settings: Settings
) -> str:
    """The GPU vendor whose device the container must get (""; none): the
    build chosen for the image this command starts requires one, the verb
    starts a container (``Personality.gpu_verbs``) and ``gpu_access`` is
    ``auto``. From the decision (:attr:`Resolved.gpu`): a cache hit knows it."""
    if settings.gpu_access != "auto" or inv.verb not in personality.gpu_verbs or not inv.images:
        return ""
    image = inv.images[0]
    return next((r.gpu for r in resolved if r.position == image), "")


_MACHINES = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le", "riscv64": "riscv64"}


def _emulated(personality: Personality, inv: Invocation, environ: Mapping[str, str]) -> bool:
    """The user asked for another OS or architecture than this machine's
    (emulation), or for a platform the runtime itself refuses
    (``linux/amd64/foo/bar``): the runtime's own choice, or its own error,
    applies. Decided from ``uname``, before any heavy import unless the
    request spells a name in a way only normalising can tell
    (:func:`_native_request`)."""
    requested = personality.requested_platform(inv, environ)
    return requested is not None and _native_request(requested) is None


def _native_request(requested: tuple[str, str, str | None]) -> tuple[str, str, str | None] | None:
    """A requested (os, architecture, variant) as this machine's
    ``("linux", its OCI architecture, variant)``, or None when it is not
    for this machine (another OS or architecture) or not a platform
    (:data:`shim.personality.platforms.UNREADABLE`).

    Names written as the host's (``linux``, ``amd64`` on x86_64, or no
    architecture) or as another known OS/GOARCH name are told apart here
    with the standard library only; any other spelling (``x86_64``,
    ``AArch64``, ``armhf``) goes through the one normalisation,
    :func:`scoring.platform.normalize` (importing scoring: cold). The
    variant stays as written: scoring normalises it (``v1`` is the baseline).
    """
    from shim.personality import platforms

    if requested == platforms.UNREADABLE:
        return None
    machine = os.uname().machine
    host = _MACHINES.get(machine, machine)
    os_, arch, variant = requested
    if os_ == "linux" and arch in ("", host):
        return "linux", host, variant
    if (os_ != "linux" and os_ == os_.lower()) or (os_ == "linux" and arch in platforms.KNOWN_ARCH):
        return None
    from scoring.platform import normalize

    os_, arch, variant = normalize(os_, arch, variant)
    return ("linux", host, variant) if os_ == "linux" and arch in ("", host) else None


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
    resolves once per key across concurrent shims on every node (single
    flight), from the site's index store when it holds the reference
    (:mod:`shim.store`). Named node classes on a podman pull add one operand
    per further class's build.

    Raises:
        Refusal: no build runs here. ShimError: failure with on_error=refuse,
            or a build this offline node needs and does not have.
    """
    from shim import decisions
    from shim.choice import Context
    from shim.insecure import insecurity
    from shim.targets import choose_targets

    hostname = os.uname().nodename  # socket.gethostname(), without importing socket
    requested = personality.requested_platform(inv, environ)
    if requested is not None:  # plan() stood aside for one that is not this machine's
        requested = _native_request(requested)
    directory, shared, dir_warning = decisions.usable_dir(
        settings.decision_cache_dir, environ, settings.cache_trusted_uids
    )
    if dir_warning:
        warn(dir_warning)
    fetch = job = None
    if personality.fetch_verbs is not None:
        fetch = inv.verb in personality.fetch_verbs
    if personality.job_verbs is not None:
        job = inv.verb in personality.job_verbs
    targets = choose_targets(
        settings, inv.verb, personality.pulls_many(inv), environ, hostname, warn,
        fetch=fetch, job_scoped=job,
    )  # fmt: skip
    ctx = Context(personality, inv, settings, environ, hostname, requested, directory, shared)
    resolved: list[Resolved] = []
    extra: list[str] = []
    by_config = False
    for position, (prefix, ref) in operands:
        tls_verify = personality.tls_verify(inv, environ)
        why: list = []

        def why_insecure(ref=ref, tls_verify=tls_verify, why=why) -> str | None:
            # reads registries.conf (tomllib): only on a miss, or for a registry
            # imagefit's own config lists; a cache hit never needs it
            if not why:
                why.append(insecurity(ref, environ, settings.insecure_registries, tls_verify))
            return why[0]

        chosen: list = []
        for number, target in enumerate(targets):
            entry = ctx.entry(ref, target, why_insecure)
            if entry is None:
                chosen = []  # failed open (it said so): this operand runs as given
                break
            if entry.outcome == "refused":
                raise Refusal(entry.refusal)
            if entry.outcome == "selected":
                ctx.check_local(ref, entry, target)
                chosen.append(entry)
            if number == 0 and entry.outcome != "selected":
                break
        if not chosen:
            continue
        first = chosen[0]
        args[position] = personality.pin(prefix, ref, first.chosen)
        for other in dict.fromkeys(e.chosen for e in chosen[1:]):
            if other != first.chosen:
                extra.append(personality.pin(prefix, ref, other))
        resolved.append(
            Resolved(position, prefix, ref, first.chosen, first.annotations, first.cmd, first.gpu)
        )
        if tls_verify is None and ref.domain in settings.insecure_registries:
            by_config = by_config or why_insecure() == "imagefit config"
    args.extend(extra)
    return resolved, by_config
