"""Which GPU code of a build runs on every visible GPU, and how well: the
fit and rank of CUDA and ROCm builds. Pure.

NVIDIA (CUDA C Programming Guide, "Binary Compatibility" and "PTX
Compatibility" under "Application Compatibility"): a cubin (SASS) built for
compute capability X.y runs only on devices of compute capability X.z with
z >= y (``sm_80`` code runs on 8.6, never on 9.0); PTX for X.y can be
JIT-compiled by the driver for any device of compute capability >= X.y, at
load time, with code less tuned than native code. A build lists its code in
``org.supercontainers.hardware.gpu.compute_capabilities``: ``8.0,9.0``
(SASS), ``8.0+`` (PTX for 8.0); or in ``nv-compute-capability-X-Y``
``platform.features`` tokens (SASS for X.Y, all tokens together).

Arch- and family-specific code (CUDA Programming Guide, "Compute
Capabilities", "Feature Availability"): ``9.0a`` is code built for
``sm_90a``, whose architecture-specific features (Hopper's wgmma, for one)
run only on a device of exactly compute capability 9.0; ``10.0f`` is code
built for ``sm_100f``, whose family-specific features run on the devices of
that family, the same major with a minor of at least 0 (10.0, 10.3), as SASS
does, except a device NVIDIA left out of the family (:data:`OUTSIDE_FAMILY`).
On its exact device arch-specific code ranks above portable code of the same
capability (it is what the author tuned for that device).

AMD (LLVM AMDGPUUsage, "Processors" and "AMDGPU Generic Processors"): code
for a gfx target runs on that target; code for a generic target
(``gfx9-generic``...) runs on each processor the generic target lists,
with code less tuned than the exact target's (ROCm docs, "Generic code
objects": "the lowest common denominator").

A build fits when its code runs on **every** visible GPU (a job's ranks may
land on any of them; NFD compatibility artifacts keep NFD's any-instance
semantics). Its grade, :attr:`scoring.model.Score.gpu`, is that of its
weakest visible GPU: native code for the device's exact compute capability
or gfx target (:data:`EXACT`) > native code for a lower minor of the same
major, the nearest first, or a generic gfx target (:data:`NATIVE`) > PTX,
the newest the devices can JIT first (:data:`PTX`) > a GPU build that states
no code (:data:`UNSTATED`) > a CPU build (0).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from hostfacts.model import AmdGpu, NvidiaDevice

#: Grades (Score.gpu): tier * 1000 + a tie-break within the tier.
UNSTATED = 1000
PTX = 2000  # + the PTX version as 10 * major + minor (8.0 -> 2080)
NATIVE = 3000  # + the SASS minor (8.6 code on 8.9 -> 3006); a generic gfx target: 3000
EXACT = 4000

#: LLVM AMDGPUUsage, table "AMDGPU Generic Processors": generic target ->
#: the processors its code runs on.
GENERIC_GFX = {
    "gfx9-generic": ("gfx900", "gfx902", "gfx904", "gfx906", "gfx909", "gfx90c"),
    "gfx9-4-generic": ("gfx940", "gfx941", "gfx942", "gfx950"),
    "gfx10-1-generic": ("gfx1010", "gfx1011", "gfx1012", "gfx1013"),
    "gfx10-3-generic": ("gfx1030", "gfx1031", "gfx1032", "gfx1033", "gfx1034", "gfx1035", "gfx1036"),
    "gfx11-generic": ("gfx1100", "gfx1101", "gfx1102", "gfx1103", "gfx1150", "gfx1151", "gfx1152", "gfx1153"),
    "gfx12-generic": ("gfx1200", "gfx1201"),
}  # fmt: skip

# at most 9 digits a number: a longer one is no compute capability (and int()
# of thousands of digits raises); such a value is left to the rule alone
_CC = re.compile(r"^(\d{1,9})\.(\d{1,9})([+af]?)$")
_TOKEN = re.compile(r"^nv-compute-capability-(\d{1,9})-(\d{1,9})$")

Version = tuple[int, int]

#: Devices of a family-specific target's major that are not of its family
#: (NVIDIA's CUDA 12.9 family table: ``sm_100f`` runs on 10.0 and 10.3, not on
#: 10.1, Jetson Thor, which CUDA 13 renumbered 11.0).
OUTSIDE_FAMILY = frozenset({(10, 1)})


def tier(grade: int) -> str:
    """A word for a grade's tier, for tables: ``exact``, ``native`` (a lower
    minor, a generic gfx target), ``ptx``; '' for a build naming no code."""
    if grade >= EXACT:
        return "exact"
    if grade >= NATIVE:
        return "native"
    return "ptx" if grade >= PTX else ""


@dataclass(frozen=True)
class CudaCode:
    """The code of a CUDA build: SASS (``9.0``, and family-specific
    ``10.0f``), arch-specific SASS (``9.0a``: that device only) and PTX
    (``8.0+``) compute capabilities; `family` and `arch` keep which SASS was
    given so (for its name, ``sm_100f``, ``sm_90a``)."""

    sass: frozenset[Version] = frozenset()
    ptx: frozenset[Version] = frozenset()
    arch: frozenset[Version] = frozenset()
    family: frozenset[Version] = frozenset()

    @property
    def native(self) -> frozenset[Version]:
        """Every capability it has native code for."""
        return self.sass | self.arch


@dataclass(frozen=True)
class Fit:
    """A build's GPU code against the visible GPUs.

    Attributes:
        fits: its code runs on every visible GPU.
        grade: :attr:`scoring.model.Score.gpu` when it fits (see the module).
        detail: the check's line: what the build has, what each GPU needs.
        summary: why it ranks where it does, for ``imagefit explain``
            (``native sm_90 code for every visible GPU``).
    """

    fits: bool
    grade: int
    detail: str
    summary: str


def parse_capabilities(value: str) -> CudaCode | None:
    """``8.0,9.0`` (SASS), ``10.0f`` (family-specific SASS), ``9.0a``
    (arch-specific SASS) and ``8.0+`` (PTX) as a CudaCode; None when an item
    is not such a compute capability (the vocabulary reports it)."""
    found: dict[str, set[Version]] = {"": set(), "+": set(), "a": set(), "f": set()}
    for item in re.split(r"[\s,]+", value.strip()):
        if not item:
            continue
        match = _CC.match(item)
        if not match:
            return None
        found[match[3]].add((int(match[1]), int(match[2])))
    sass = found[""] | found["f"]
    return CudaCode(frozenset(sass), frozenset(found["+"]), frozenset(found["a"]),
                    frozenset(found["f"] - found[""]))  # fmt: skip


def token_capabilities(tokens: Sequence[str]) -> CudaCode | None:
    """The SASS the ``nv-compute-capability-X-Y`` tokens name, or None without one."""
    found = {(int(m[1]), int(m[2])) for t in tokens if (m := _TOKEN.match(t))}
    return CudaCode(frozenset(found)) if found else None


def _cc(text: str | None) -> Version | None:
    match = _CC.match(text or "")
    return (int(match[1]), int(match[2])) if match and not match[3] else None


def _v(cc: Version) -> str:
    return f"{cc[0]}.{cc[1]}"


def _sm(cc: Version, code: CudaCode | None = None, arch: bool = False) -> str:
    suffix = "a" if arch else ("f" if code is not None and cc in code.family else "")
    return f"sm_{cc[0]}{cc[1]}{suffix}"


def _device_grade(code: CudaCode, cc: Version) -> tuple[int, str]:
    """(grade, how the device runs the build): 0 when it cannot."""
    if cc in code.arch:
        return EXACT + 1, f"native {_sm(cc, arch=True)} code"
    if cc in code.sass:
        return EXACT, f"native {_sm(cc, code)} code"
    lower = [
        s
        for s in code.sass
        if s[0] == cc[0] and s[1] < cc[1] and not (s in code.family and cc in OUTSIDE_FAMILY)
    ]
    if lower:
        best = max(lower)
        return NATIVE + min(best[1], 999), (
            f"native {_sm(best, code)} code (same major as {_v(cc)})"
        )
    jit = [p for p in code.ptx if p <= cc]
    if jit:
        best = max(jit)
        how = f"PTX {_v(best)}, JIT-compiled for {_v(cc)} at load"
        return PTX + min(10 * best[0] + best[1], 999), how
    return 0, ""


def _code_text(code: CudaCode) -> str:
    parts = [_sm(s, code) for s in sorted(code.sass)] + [
        _sm(a, arch=True) for a in sorted(code.arch)
    ]
    parts += [f"PTX {_v(p)}" for p in sorted(code.ptx)]
    return ", ".join(parts) or "no code"


def _notes(notes: Sequence[str]) -> str:
    return f" [{'; '.join(notes)}]" if notes else ""


def nvidia_fit(code: CudaCode, devices: Sequence[NvidiaDevice], notes: Sequence[str] = ()) -> Fit:
    """How `code` runs on the visible NVIDIA `devices` (see the module).

    `notes`: how the visible devices were found (``GpuFacts.visibility``),
    appended to the detail. A device whose compute capability the facts do
    not hold is left out while another's is known (the detail says so); with
    none known the build does not fit."""
    have = f"needs a GPU of compute capability {_describe_code(code)}"
    known = [(d, _cc(d.compute_capability)) for d in devices]
    unknown = [d for d, cc in known if cc is None]
    known = [(d, cc) for d, cc in known if cc is not None]
    if not known:
        why = "no visible NVIDIA GPU" if not devices else "no compute capability known"
        return Fit(False, 0, f"{have}; host has {why}{_notes(notes)}", "")
    grades = [(d, cc, *_device_grade(code, cc)) for d, cc in known]
    ccs = ", ".join(dict.fromkeys(_v(cc) for _, cc in known))
    left_out = (
        f" (compute capability of GPU {', '.join(str(d.index) for d in unknown)} unknown: not counted)"
        if unknown
        else ""
    )
    failed = [(d, cc) for d, cc, grade, _ in grades if grade == 0]
    if failed:
        d, cc = failed[0]
        which = (
            f": GPU {d.index} ({_v(cc)}) runs none of {_code_text(code)}" if len(known) > 1 else ""
        )
        return Fit(False, 0, f"{have}; host has {ccs}{which}{left_out}{_notes(notes)}", "")
    worst = min(grades, key=lambda g: g[2])
    grade, how = worst[2], worst[3]
    if grade >= EXACT:
        sms = ", ".join(dict.fromkeys(_sm(cc, code, arch=cc in code.arch) for _, cc in known))
        summary = f"native {sms} code for every visible GPU"
    elif len(known) > 1:
        summary = f"{how} on GPU {worst[0].index}"
    else:
        summary = how
    return Fit(True, grade, f"{have}; host has {ccs}: {summary}{left_out}{_notes(notes)}", summary)


def _or(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _describe_code(code: CudaCode) -> str:
    return _or(
        [_v(s) for s in sorted(code.sass)]
        + [f"exactly {_v(a)} ({_sm(a, arch=True)})" for a in sorted(code.arch)]
        + [f"{_v(p)} or newer (PTX)" for p in sorted(code.ptx)]
    )


def amd_targets(value: str) -> tuple[str, ...]:
    """The gfx targets of the AMD annotation, lower-cased, in order."""
    return tuple(dict.fromkeys(v.lower() for v in re.split(r"[\s,]+", value.strip()) if v))


def expand_gfx(targets: Sequence[str]) -> tuple[str, ...]:
    """Every processor `targets` run on: each target, and the processors of each generic one."""
    out: list[str] = []
    for t in targets:
        out += [t, *GENERIC_GFX.get(t, ())]
    return tuple(dict.fromkeys(out))


def amd_fit(targets: Sequence[str], devices: Sequence[AmdGpu], notes: Sequence[str] = ()) -> Fit:
    """How a build with code for gfx `targets` runs on the visible AMD
    `devices`: exact target (:data:`EXACT`) > generic target listing the
    device (:data:`NATIVE`); a device neither covers: no fit."""
    have = f"needs an AMD GPU {_or(list(targets))}"
    if not devices:
        return Fit(False, 0, f"{have}; host has no visible AMD GPU{_notes(notes)}", "")
    gfx = ", ".join(dict.fromkeys(d.gfx_target for d in devices))
    grades = []
    for d in devices:
        if d.gfx_target in targets:
            grades.append((EXACT, d, f"native {d.gfx_target} code"))
            continue
        generic = next((t for t in targets if d.gfx_target in GENERIC_GFX.get(t, ())), None)
        if generic is None:
            return Fit(
                False, 0,
                f"{have}; host has {gfx}: GPU node {d.node} ({d.gfx_target}) runs none of them"
                f"{_notes(notes)}",
                "",
            )  # fmt: skip
        grades.append((NATIVE, d, f"generic {generic} code for {d.gfx_target}"))
    worst = min(grades, key=lambda g: g[0])
    if worst[0] == EXACT:
        summary = f"native {', '.join(dict.fromkeys(d.gfx_target for d in devices))} code for every visible GPU"
    else:
        summary = worst[2]
    return Fit(True, worst[0], f"{have}; host has {gfx}: {summary}{_notes(notes)}", summary)
