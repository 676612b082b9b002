"""The platform filter: os, architecture and ``variant`` ladders.

Normalisation and ladders follow containerd/platforms (platforms.go
``Normalize``; compare.go ``Only``): ``x86_64`` is ``amd64`` and amd64 ``v1``
is no variant; ``aarch64`` is ``arm64`` and arm64 ``v8``/``v8.0`` are no
variant. A host at amd64 level N runs vN, ..., v2, v1; an arm64 v9.y host runs
v9.y ... v9.1, v9, then v8.(y+5, at most 9) ... v8.1, v8. Unlike stock
containerd and podman, the host's own level comes from host facts (archspec's
generic level), so an amd64/v3 build is chosen on a v3 host.

:func:`normalize` is the one place names are normalised (database.go
``normalizeArch``/``normalizeOS``), for descriptors and for what a user asks
for alike (the shim's ``--platform`` parsers leave names as written).
A platform the user asks for limits the builds to those ``Only`` accepts for
it, and to CPU targets at or below its level (:func:`check_requested`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hostfacts import HostFacts
from scoring.index import Platform
from scoring.model import Check

_ARM_LEVEL = re.compile(r"^armv(\d+)\.(\d+)a$")


def normalize(os_: str, architecture: str, variant: str | None) -> tuple[str, str, str | None]:
    """The one normalisation of a platform's names, for index descriptors, host
    facts and what a user asks for alike (containerd/platforms database.go
    ``normalizeOS``, ``normalizeArch``; platforms.go ``Normalize``).

    Args:
        os_: an OS name, any case (``Linux``, ``macos``); "" stays "" (the
            caller's default).
        architecture: any case: ``x86_64``/``x86-64`` -> ``amd64``,
            ``aarch64`` -> ``arm64``, ``i386`` -> ``386`` (its variant dropped),
            ``armhf`` -> ``arm`` v7, ``armel`` -> ``arm`` v6; "" stays "".
        variant: lower-cased; amd64 ``v1`` -> None; arm64 ``8``/``v8``/``v8.0``
            -> None, ``9``/``9.0``/``v9.0`` -> ``v9``; arm ""/``7`` -> ``v7``,
            ``5``/``6``/``8`` -> ``vN``; "" -> None.

    Returns:
        (os, architecture, variant or None), None standing for the
        architecture's baseline (containerd's ""), except for arm, whose
        baseline containerd spells ``v7``.
    """
    os_ = os_.lower()
    if os_ == "macos":
        os_ = "darwin"
    arch, v = architecture.lower(), (variant or "").lower()
    if arch == "i386":
        arch, v = "386", ""
    elif arch in ("x86_64", "x86-64", "amd64"):
        arch = "amd64"
        v = "" if v == "v1" else v
    elif arch in ("aarch64", "arm64"):
        arch = "arm64"
        if v in ("8", "v8", "v8.0"):
            v = ""
        elif v in ("9", "9.0", "v9.0"):
            v = "v9"
    elif arch == "armhf":
        arch, v = "arm", "v7"
    elif arch == "armel":
        arch, v = "arm", "v6"
    elif arch == "arm":
        if v in ("", "7"):
            v = "v7"
        elif v in ("5", "6", "8"):
            v = "v" + v
    return os_, arch, (v or None)


def normalize_architecture(architecture: str) -> str:
    """OCI (GOARCH) name for an architecture: ``x86_64`` -> ``amd64``
    (:func:`normalize`)."""
    return normalize("", architecture, None)[1]


def normalize_variant(architecture: str, variant: str | None) -> str | None:
    """Canonical variant, or None for the architecture's baseline (:func:`normalize`).

    ``amd64``: ``v1`` -> None. ``arm64``: ``v8``/``v8.0`` -> None, ``v9.0`` -> ``v9``.
    """
    if not variant:
        return None
    return normalize("", architecture, variant)[2]


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


#: containerd/platforms compare.go ``arm64variantToVersion``: an arm64
#: variant -> the (major, highest minor) pairs it runs, best first.
_ARM64_VERSIONS = {
    **{f"v8.{m}": ((8, m),) for m in range(10)},
    "v8": ((8, 0),),
    **{f"v9.{m}": ((9, m), (8, min(m + 5, 9))) for m in range(8)},
    "v9": ((9, 0), (8, 5)),
}


def requested_variants(architecture: str, variant: str | None) -> tuple[str | None, ...]:
    """The variants of `architecture` that a request for
    ``architecture/variant`` accepts, best first, normalised (None: the
    baseline): containerd/platforms compare.go ``Only`` (``platformVector``,
    then ``Ordered``'s exact, normalised match of each).

    - amd64 ``vN`` (N > 1): vN, ..., v2, baseline; no variant: the baseline
      only; any other variant: itself only. (``Only`` also matches 386: a
      386 build never runs on an amd64 host here, see :func:`check_platform`.)
    - arm64 (no variant is v8): v9.y runs v9.y ... v9, then v8.(y+5, at most
      9) ... v8; v8.y runs v8.y ... v8; an unknown variant matches nothing.
      (``Only`` adds 32-bit arm, which no arm64 host here runs.)
    - arm ``vN`` (N > 5): vN ... v5; anything else: itself only.
    - every other architecture: the variant itself only.
    """
    _, arch, v = normalize("", architecture, variant)
    if arch == "amd64":
        level = v[1:] if v and v.startswith("v") else ""
        if level.isdigit() and int(level) > 1:
            return (*(f"v{n}" for n in range(int(level), 1, -1)), None)
        return (v,)
    if arch == "arm64":
        versions = _ARM64_VERSIONS.get(v or "v8")
        if versions is None:
            return ()
        ladder = [
            normalize("", "arm64", f"v{major}" + (f".{minor}" if minor else ""))[2]
            for major, top in versions
            for minor in range(top, -1, -1)
        ]
        return tuple(ladder)
    if arch == "arm":
        level = v[1:] if v and v.startswith("v") else ""
        if level.isdigit() and int(level) > 5:
            return tuple(f"v{n}" for n in range(int(level), 4, -1))
    return (v,)


def target_variant(architecture: str, target: str | None) -> tuple[bool, str | None]:
    """The platform variant a CPU target's code needs on `architecture`:
    (True, variant or None for the baseline) from archspec's generic level of
    the target (``zen4`` -> amd64 ``v4``, ``haswell`` -> ``v3``,
    ``neoverse_v2`` -> arm64 ``v9``, ``a64fx`` -> ``v8.2``, ``power9le`` ->
    ppc64le ``power9``); (False, None) when the target is unknown, of another
    architecture, or None."""
    from archspec.cpu import TARGETS

    uarch = TARGETS.get(target) if target else None
    if uarch is None:
        return False, None
    arch = normalize_architecture(architecture)
    generic = uarch.generic.name
    if arch == "amd64" and uarch.family.name == "x86_64":
        return True, normalize_variant(
            arch, generic.rpartition("_")[2] if "_v" in generic else None
        )
    if arch == "arm64" and uarch.family.name == "aarch64":
        match = _ARM_LEVEL.match(generic)
        return True, normalize_variant(arch, f"v{match[1]}.{match[2]}" if match else None)
    if arch == "ppc64le" and uarch.family.name == "ppc64le":
        generation = getattr(uarch, "generation", 0) or 0
        return True, (f"power{generation}" if generation >= 8 else None)
    return False, None


def _shown(os_: str, arch: str, variant: str | None) -> str:
    return f"{os_}/{arch}" + (f"/{variant}" if variant else "")


def requested_text(requested: tuple[str, str, str | None], host: HostPlatform) -> str:
    """A request as ``os/arch[/variant]``, normalised, the host's architecture
    standing in for "" (``linux/amd64/v3``)."""
    os_, arch, variant = normalize(*requested)
    return _shown(os_, arch or host.architecture, variant)


def check_requested(
    platform: Platform | None,
    requested: tuple[str, str, str | None],
    host: HostPlatform,
    target: str | None = None,
) -> Check:
    """Is this build one the runtime itself would take for the platform the
    user asked for (``--platform``/``--os``/``--arch``/``--variant``,
    apptainer's ``--arch``)? One Check named ``requested-platform``.

    Args:
        platform: the descriptor's platform.
        requested: (os, architecture, variant or None) as the command line
            gave them, any spelling (:func:`normalize`); architecture "" is
            the host's.
        host: this host's platform (its architecture stands in for "").
        target: the build's CPU target (annotation or ``cpu:`` token), if any.

    Rules (containerd/platforms compare.go ``Only``; docs/compatibility.md
    "Requested platforms"):
        - the OS must be the one asked for;
        - a request that names neither architecture nor variant (``--os
          linux``) says nothing more;
        - else the architecture must be the one asked for and the build's
          variant one of :func:`requested_variants`; and a build whose CPU
          target needs a higher level (:func:`target_variant`: ``zen4`` needs
          amd64 v4) than those is not one either (it is as much above the
          request as a v4 variant would be).
    """
    os_, arch, variant = normalize(*requested)
    want = requested_text(requested, host)
    if platform is None:
        return Check(
            name="requested-platform", passed=False, detail=f"not the platform asked for ({want})"
        )
    have_os, have_arch, have_variant = normalize(
        platform.os, platform.architecture, platform.variant
    )
    have = _shown(have_os, have_arch, have_variant)
    if have_os != os_:
        return Check(
            name="requested-platform",
            passed=False,
            detail=f"{have} is not the platform asked for ({want})",
        )
    if not arch and variant is None:
        return Check(name="requested-platform", passed=True, detail=f"the OS asked for ({os_})")
    arch = arch or host.architecture
    accepted = requested_variants(arch, variant)
    if have_arch != arch or have_variant not in accepted:
        return Check(
            name="requested-platform",
            passed=False,
            detail=f"{have} is not the platform asked for ({want})",
        )
    known, needs = target_variant(arch, target)
    if known and needs not in accepted:
        return Check(
            name="requested-platform",
            passed=False,
            detail=f"{target} code needs {_shown(os_, arch, needs)}, above the platform asked for ({want})",
        )
    return Check(
        name="requested-platform", passed=True, detail=f"{have} is the platform asked for ({want})"
    )
