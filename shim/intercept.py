"""Rewrite an intercepted podman command: image operands to digests, plus the
login-container recipe. The cold path (imports oras, pydantic, archspec through
:mod:`shim.resolve`); :mod:`shim.main` imports it only for run/create/pull.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from shim import login, reference
from shim.argv import Invocation
from shim.config import Settings
from shim.errors import InvalidReference, Refusal, RegistryError, ShimError

#: Transports podman accepts before an image name (containers/image
#: transports/alltransports); only ``docker://`` names a registry.
TRANSPORTS = (
    "containers-storage:", "dir:", "docker-archive:", "docker-daemon:", "oci:", "oci-archive:",
    "ostree:", "sif:", "tarball:",
)  # fmt: skip

#: Flags that change which platform the user asked for: honoured by passing through.
PLATFORM_FLAGS = ("platform", "arch", "os", "variant")
#: Root flags and environment that make podman a remote client: the container
#: runs on another machine, whose facts this host's are not.
REMOTE_FLAGS = ("remote", "url", "connection", "host", "identity")
REMOTE_ENV = ("CONTAINER_HOST", "CONTAINER_CONNECTION")


def _passes_through(inv: Invocation, environ: Mapping[str, str]) -> bool:
    """Commands whose image the shim must not resolve: help, --rootfs, a
    platform the user chose, ``pull --all-tags``, remote podman."""
    if (
        inv.enabled("help")
        or inv.enabled("help", global_level=True)
        or inv.enabled("rootfs")
        or inv.enabled("all-tags")
        or inv.has(*PLATFORM_FLAGS)
    ):
        return True
    if inv.enabled("remote", global_level=True) or any(
        n in inv.global_flags for n in REMOTE_FLAGS if n != "remote"
    ):
        return True
    return any(environ.get(n) for n in REMOTE_ENV)


def warn(message: str) -> None:
    """One human-readable line on stderr."""
    print(f"imagefit: {message}", file=sys.stderr)


def registry_operand(operand: str) -> tuple[str, reference.Reference] | None:
    """(prefix, reference) for an operand that names a registry image the shim
    may resolve, or None for anything it must leave alone (other transports,
    image IDs, short names, local ``localhost/`` images, invalid names)."""
    prefix = ""
    if operand.startswith("docker://"):
        prefix, operand = "docker://", operand[len("docker://") :]
        # containers/image docker transport: docker://NAME is docker.io/library/NAME,
        # no short-name search (checked with podman 4.3.1)
    elif operand.startswith(TRANSPORTS) or reference.could_be_image_id(operand):
        return None
    name = operand.partition("@")[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    domain, _, qualified = reference.split_domain(name[:colon] if colon > slash else name)
    if (not qualified and not prefix) or domain == "localhost":
        return None  # short names and local images: never resolved (cheap check, no regex)
    try:
        return prefix, reference.parse(operand)
    except InvalidReference:
        return None


def _tls_verify(inv: Invocation) -> bool | None:
    value = inv.last("tls-verify")
    if "tls-verify" not in inv.flags:
        return None
    return value is None or value.lower() not in ("false", "0", "f")


def rewrite(
    runtime: str,
    inv: Invocation,
    settings: Settings,
    environ: Mapping[str, str],
) -> list[str]:
    """The final argv (without argv[0]) for an intercepted invocation.

    Selected builds replace their operand with ``name@sha256:...``; a
    pass-through decision leaves the operand; resolution failures follow
    ``settings.on_error`` (warn and leave the command unchanged, or raise).

    Raises:
        Refusal: compatibility data says no build runs here (exit 125).
        ShimError: a resolution failure with ``on_error = "refuse"``.
    """
    args = list(inv.args)
    operands = []
    if inv.images and not _passes_through(inv, environ):
        operands = [
            (p, found) for p in inv.images if (found := registry_operand(args[p])) is not None
        ]
    selected, extra = [], []
    if operands:  # the cold path: heavy imports only from here on
        selected, extra = _resolve_operands(args, operands, inv, settings, environ)
    if inv.verb in ("run", "create") and inv.images and not _passes_through(inv, environ):
        apply = settings.login == "always"
        if settings.login == "auto" and selected:
            from scoring.vocabulary import CONTAINER_KIND

            kinds = {c.annotations.get(CONTAINER_KIND, "").lower() for c in selected}
            apply = "application" not in kinds
        if apply:
            login_flags = login.podman_flags(
                inv.flags, rootless=os.geteuid() != 0, environ_userns=environ.get("PODMAN_USERNS")
            )
            extra = extra + login_flags
    if extra and inv.insert_at is not None:
        args[inv.insert_at : inv.insert_at] = extra
    return args


def policy_of(settings: Settings, repository: str):
    """The scoring Policy the config gives `repository`, or None."""
    entry = settings.policy_for(repository)
    if entry is None:
        return None
    from scoring.policy import Policy

    return Policy(pin=entry["pin"], prefer=entry["prefer"], avoid=entry["avoid"])


def _resolve_operands(
    args: list[str], operands, inv: Invocation, settings: Settings, environ
) -> list:
    """Resolve each registry operand; rewrite `args` in place for selected
    builds. Returns the chosen candidates.

    Raises:
        Refusal: no build runs here. ShimError: failure with on_error=refuse.
    """
    import socket

    from hostfacts import HostFactsError, host_facts
    from scoring import Outcome
    from shim.resolve import insecurity, resolve

    selected, flags = [], []
    for position, (prefix, ref) in operands:
        why_insecure = insecurity(ref, environ, settings.insecure_registries, _tls_verify(inv))
        try:
            facts = host_facts(environ, cpu_target=settings.cpu_target_for(socket.gethostname()))
            resolution = resolve(
                ref,
                facts,
                environ=environ,
                insecure=why_insecure is not None,
                timeout=settings.registry_timeout,
                authfile=inv.last("authfile"),
                nfd_artifacts=settings.nfd_artifacts,
                policy=policy_of(settings, ref.name),
            )
        except (RegistryError, HostFactsError) as exc:
            if settings.on_error == "refuse":
                raise ShimError(f"cannot resolve {ref}: {exc}") from None
            warn(f"cannot resolve {ref} ({exc}); running the command unchanged")
            continue
        decision = resolution.decision
        if decision.outcome == Outcome.REFUSED:
            lines = [f"{ref}: {decision.reason}"]
            lines += [f"  {v.build}: {v.why_not}" for v in decision.verdicts]
            closest = next((v for v in decision.verdicts if v.candidate == decision.closest), None)
            if closest is not None:
                lacks = "; ".join(c.detail for c in closest.checks if not c.passed)
                lines.append(f"closest: {closest.build}, which lacks: {lacks}")
            raise Refusal("\n".join(lines))
        if decision.outcome == Outcome.SELECTED and decision.chosen is not None:
            args[position] = prefix + str(ref.with_digest(decision.chosen.digest))
            selected.append(decision.chosen)
            if why_insecure == "imagefit config" and "--tls-verify=false" not in flags:
                flags.append("--tls-verify=false")
    return selected, flags
