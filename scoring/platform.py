"""The platform filter: os, architecture and ``variant`` ladders.

Normalisation and ladders follow containerd/platforms (platforms.go
``Normalize``; compare.go ``Only``): ``x86_64`` is ``amd64`` and amd64 ``v1``
is no variant; ``aarch64`` is ``arm64`` and arm64 ``v8``/``v8.0`` are no
variant. A host at amd64 level N runs vN, ..., v2, v1; an arm64 v9.y host runs
v9.y ... v9.1, v9, then v8.(y+5, at most 9) ... v8.1, v8. Unlike stock
containerd and podman, the host's own level comes from host facts (archspec's
generic level), so an amd64/v3 build is chosen on a v3 host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hostfacts import HostFacts
from scoring.index import Platform
from scoring.model import Check

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}
_ARM_LEVEL = re.compile(r"^armv(\d+)\.(\d+)a$")


def normalize_architecture(architecture: str) -> str:
    """OCI (GOARCH) name for an architecture: ``x86_64`` -> ``amd64``..."""
    arch = architecture.lower()
    return _ARCH_ALIASES.get(arch, arch)


def normalize_variant(architecture: str, variant: str | None) -> str | None:
    """Canonical variant, or None for the architecture's baseline.

    ``amd64``: ``v1`` -> None. ``arm64``: ``v8``/``v8.0`` -> None, ``v9.0`` -> ``v9``.
    """
    if not variant:
        return None
    arch = normalize_architecture(architecture)
    v = variant.lower()
    if arch == "amd64" and v == "v1":
        return None
    if arch == "arm64":
        if v in ("v8", "v8.0"):
            return None
        if v.endswith(".0"):
            return v[:-2]
    return v


@dataclass(frozen=True)
class HostPlatform:
    """The platforms this host runs, as OCI names.

    Attributes:
        os: GOOS name (``linux``).
        architecture: GOARCH name (``amd64``, ``arm64``, ``ppc64le``...).
        variants: variants the host runs, most preferred first; ``None`` is
            the baseline (no variant).
    """

    os: str
    architecture: str
    variants: tuple[str | None, ...]

    def __str__(self) -> str:
        best = self.variants[0]
        return f"{self.os}/{self.architecture}" + (f"/{best}" if best else "")


def _arm64_ladder(generic: str) -> tuple[str | None, ...]:
    match = _ARM_LEVEL.match(generic)
    major, minor = (int(match[1]), int(match[2])) if match else (8, 0)
    ladder: list[str | None] = []
    if major >= 9:
        ladder += [f"v9.{m}" for m in range(minor, 0, -1)] + ["v9"]
        minor = min(minor + 5, 9)
    ladder += [f"v8.{m}" for m in range(minor, 0, -1)]
    return (*ladder, None)


def host_platform(facts: HostFacts) -> HostPlatform:
    """The OCI platform ladder of a host.

    amd64 level N comes from the generic level ``x86_64_vN``; arm64 from
    ``armvX.Ya``; ppc64le POWER generation G accepts ``powerG`` down to ``power8``.
    """
    from archspec.cpu import TARGETS

    cpu = facts.cpu
    arch = normalize_architecture(cpu.architecture)
    variants: tuple[str | None, ...] = (None,)
    if arch == "amd64":
        level = int(cpu.generic.rsplit("_v", 1)[1]) if "_v" in cpu.generic else 1
        variants = (*(f"v{n}" for n in range(level, 1, -1)), None)
    elif arch == "arm64":
        variants = _arm64_ladder(cpu.generic)
    elif arch == "ppc64le":
        target = TARGETS.get(cpu.target)
        generation = target.generation if target is not None else 0
        variants = (*(f"power{g}" for g in range(generation, 7, -1)), None)
    return HostPlatform(os=facts.os, architecture=arch, variants=variants)


def variant_target(platform: Platform) -> str | None:
    """The archspec generic target a platform variant stands for
    (amd64/v3 -> ``x86_64_v3``, arm64/v9 -> ``armv9.0a``, ppc64le/power9 ->
    ``power9le``), or None when it has no variant or no such target."""
    from archspec.cpu import TARGETS

    arch = normalize_architecture(platform.architecture)
    variant = normalize_variant(arch, platform.variant)
    if variant is None:
        return None
    name = None
    if arch == "amd64":
        name = f"x86_64_{variant}"
    elif arch == "arm64":
        major, _, minor = variant[1:].partition(".")
        name = f"armv{major}.{minor or 0}a"
    elif arch == "ppc64le":
        name = f"{variant}le"
    return name if name in TARGETS else None


def check_platform(platform: Platform | None, host: HostPlatform) -> Check:
    """Does the host run this platform? One Check named ``platform``."""
    if platform is None:
        return Check(name="platform", passed=False, detail="descriptor has no platform")
    arch = normalize_architecture(platform.architecture)
    variant = normalize_variant(arch, platform.variant)
    shown = f"{platform.os}/{arch}" + (f"/{variant}" if variant else "")
    if platform.os != host.os or arch != host.architecture:
        return Check(
            name="platform",
            passed=False,
            detail=f"{shown} does not run on a {host.os}/{host.architecture} host",
        )
    if variant not in host.variants:
        return Check(
            name="platform",
            passed=False,
            detail=f"{shown} needs a newer CPU level than this host's {host}",
        )
    if platform.os_features:
        return Check(
            name="platform",
            passed=False,
            detail=f"{shown} requires os.features {list(platform.os_features)} this host does not offer",
        )
    return Check(name="platform", passed=True, detail=f"{shown} runs on {host}")


def check_requested(platform: Platform | None, requested: tuple[str, str, str | None]) -> Check:
    """Is this the platform the user asked for (``--platform``/``--arch``/``--variant``)?
    One Check named ``requested-platform``; the variant is compared only when given."""
    os_, arch, variant = requested
    arch = normalize_architecture(arch)
    want = f"{os_}/{arch}" + (f"/{variant}" if variant else "")
    if platform is None:
        return Check(
            name="requested-platform", passed=False, detail=f"not the platform asked for ({want})"
        )
    have_arch = normalize_architecture(platform.architecture)
    ok = platform.os == os_ and have_arch == arch
    if ok and variant is not None:
        ok = normalize_variant(arch, platform.variant) == normalize_variant(arch, variant)
    detail = f"the platform asked for ({want})" if ok else f"not the platform asked for ({want})"
    return Check(name="requested-platform", passed=ok, detail=detail)
