"""CPU facts through archspec, from this host or from a saved /proc/cpuinfo.

archspec (archspec/archspec: archspec/cpu/detect.py) reads the first processor
block of ``/proc/cpuinfo`` and ``platform.machine()``, and has no public call
that takes another file. Its own test-suite (tests/test_cpu.py) replays dumps
by substituting ``open``, ``_machine`` and ``platform`` inside
``archspec.cpu.detect``; :func:`cpu_facts` does the same, under a lock and only
for the duration of one detection, then calls archspec's unchanged selection
(``host()``'s undecorated function). The result for ``/proc/cpuinfo`` on the
live host is therefore exactly ``archspec.cpu.host()``.
"""

from __future__ import annotations

import builtins
import contextlib
import platform
import threading
from pathlib import Path
from types import SimpleNamespace

from hostfacts.errors import HostFactsError
from hostfacts.model import CpuFacts, CpuModel

_LOCK = threading.Lock()

#: cpuinfo keys holding the feature flags, by architecture family.
_FLAG_KEYS = {"x86_64": "flags", "aarch64": "Features"}

#: Kernel machine names archspec knows as a family root.
KNOWN_MACHINES = ("x86_64", "aarch64", "ppc64le", "ppc64", "riscv64")


def _first_block(text: str) -> dict[str, str]:
    """The first processor block of a cpuinfo text as key -> value (archspec's
    own reading rule: stop at the first blank line once data was seen)."""
    data: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep != ":":
            if data:
                break
            continue
        data[key.strip()] = value.strip()
    return data


def is_sysctl_dump(text: str) -> bool:
    """True for a macOS ``sysctl`` dump (``machdep.cpu.*`` keys) rather than a cpuinfo."""
    return "machdep.cpu." in text


def _sysctl(text: str) -> dict[str, str]:
    data = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            data[key.strip()] = value.strip()
    return data


@contextlib.contextmanager
def _replay_sysctl(text: str):
    """Make archspec's Darwin detection read `text` as ``sysctl`` output
    (archspec tests/test_cpu.py replays its darwin-* dumps the same way)."""
    from archspec.cpu import detect

    data = _sysctl(text)
    machine = "aarch64" if "Apple" in data.get("machdep.cpu.brand_string", "") else "x86_64"
    fake_platform = SimpleNamespace(system=lambda: "Darwin", machine=lambda: machine)
    saved = {
        name: getattr(detect, name) for name in ("_darwin_sysctl_data", "_machine", "platform")
    }
    with _LOCK:
        detect._darwin_sysctl_data = lambda: data
        detect._machine = lambda: machine
        detect.platform = fake_platform
        try:
            yield detect, machine
        finally:
            for name, value in saved.items():
                setattr(detect, name, value)


@contextlib.contextmanager
def _replay(cpuinfo_text: str, machine: str):
    """Make archspec's Linux detection read `cpuinfo_text` as /proc/cpuinfo on
    a `machine` host, for the duration of the block."""
    import io

    from archspec.cpu import detect

    real_open = builtins.open

    def fake_open(path, *args, **kwargs):
        if str(path) == "/proc/cpuinfo":
            return io.StringIO(cpuinfo_text)
        return real_open(path, *args, **kwargs)

    fake_platform = SimpleNamespace(system=lambda: "Linux", machine=lambda: machine)
    saved = {name: getattr(detect, name, None) for name in ("open", "_machine", "platform")}
    with _LOCK:
        detect.open = fake_open  # module global shadows the builtin, as archspec's tests do
        detect._machine = lambda: machine
        detect.platform = fake_platform
        try:
            yield detect
        finally:
            for name, value in saved.items():
                if value is None:
                    delattr(detect, name)
                else:
                    setattr(detect, name, value)


def _depth_order(targets) -> tuple[str, ...]:
    """Target names, deepest in archspec's DAG first (number of ancestors),
    stable in archspec's own ancestor order for equal depth."""
    ordered = sorted(enumerate(targets), key=lambda it: (-len(it[1].ancestors), it[0]))
    return tuple(t.name for _, t in ordered)


def guess_machine(text: str) -> str | None:
    """The kernel machine name a cpuinfo dump comes from, from its keys
    (x86: ``vendor_id``/``flags``; Arm: ``CPU implementer``/``Features``;
    POWER: ``cpu : POWERn`` with ``le`` unknown, so ``ppc64le``, the Linux
    HPC default; RISC-V: ``isa``), or None."""
    block = _first_block(text)
    if "vendor_id" in block or "flags" in block:
        return "x86_64"
    if "CPU implementer" in block or "Features" in block:
        return "aarch64"
    if block.get("cpu", "").upper().startswith("POWER"):
        return "ppc64le"
    if "isa" in block or "uarch" in block:
        return "riscv64"
    return None


#: What makes a text the /proc/cpuinfo of a `machine` host: a key archspec reads
#: from its first processor block (archspec/cpu/detect.py ``proc_cpuinfo``:
#: ``flags`` on x86_64, ``Features`` and ``CPU implementer``/``CPU part`` on
#: aarch64, ``cpu`` (``POWERn``) on ppc64/ppc64le, ``uarch`` on riscv64, where
#: the kernel also writes ``isa``). Without one, archspec answers the bare
#: family (``x86_64``, no flags) for any text at all.
REQUIRED_KEYS = {
    "x86_64": ("flags",),
    "aarch64": ("Features", "CPU implementer"),
    "ppc64le": ("cpu",),
    "ppc64": ("cpu",),
    "riscv64": ("uarch", "isa"),
}


def check_cpuinfo(text: str, machine: str, source: str) -> None:
    """Refuse a text that is not a /proc/cpuinfo of a `machine` host: its
    first processor block (read as archspec reads it) has none of
    :data:`REQUIRED_KEYS` for `machine` (``/etc/passwd``, an empty file, a
    Windows cpuid dump).

    Raises:
        HostFactsError: one line naming `source` and the keys looked for.
    """
    keys = REQUIRED_KEYS.get(machine, ())
    block = _first_block(text)
    if keys and not any(block.get(k) for k in keys):
        wanted = " or ".join(f"'{k}'" for k in keys)
        raise HostFactsError(
            f"{source} is not a /proc/cpuinfo of an {machine} host: its first processor "
            f"block has no {wanted} line"
        )


def _int(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text, 0)
    except ValueError:
        return None


def cpu_model(text: str, machine: str) -> CpuModel:
    """NFD-style ``cpu.model`` of a cpuinfo dump: vendor_id, family, model id,
    hypervisor flag (x86: ``vendor_id``, ``cpu family``, ``model``, flag
    ``hypervisor``; Arm: implementer name, ``CPU architecture``, ``CPU part``)."""
    from archspec.cpu.detect import TARGETS_JSON

    block = _first_block(text)
    if machine == "aarch64":
        implementer = block.get("CPU implementer", "")
        vendor = TARGETS_JSON["conversions"]["arm_vendors"].get(implementer, implementer)
        return CpuModel(
            vendor_id=vendor,
            family=_int(block.get("CPU architecture")),
            model_id=_int(block.get("CPU part")),
        )
    if machine == "x86_64":
        return CpuModel(
            vendor_id=block.get("vendor_id", ""),
            family=_int(block.get("cpu family")),
            model_id=_int(block.get("model")),
            hypervisor="hypervisor" in block.get("flags", "").split(),
        )
    return CpuModel(vendor_id=block.get("vendor_id") or block.get("cpu", "").split(" ")[0])


def _sysctl_facts(text: str, source: str) -> CpuFacts:
    with _replay_sysctl(text) as (detect, machine):
        uarch = detect.host.__wrapped__()
        info = detect.sysctl_info()
    data = _sysctl(text)
    return CpuFacts(
        architecture=machine,
        target=uarch.name,
        detected_target=uarch.name,
        vendor=uarch.vendor,
        generic=uarch.generic.name,
        ancestors=_depth_order(uarch.ancestors),
        flags=tuple(sorted(info.features)),
        model=CpuModel(
            vendor_id=data.get("machdep.cpu.vendor", "Apple" if machine == "aarch64" else ""),
            family=_int(data.get("machdep.cpu.family")),
            model_id=_int(data.get("machdep.cpu.model")),
        ),
        source=source,
    )


def cpu_facts_from_text(text: str, machine: str | None, source: str) -> CpuFacts:
    """CPU facts of a cpuinfo text from a `machine` host, or of a macOS
    ``sysctl`` dump (the machine is then read from the dump; `machine` may
    be None).

    Raises:
        HostFactsError: the machine name is not one archspec knows, the dump
            is of another architecture than `machine`, or it is no cpuinfo
            at all (:func:`check_cpuinfo`).
    """
    if is_sysctl_dump(text):
        return _sysctl_facts(text, source)
    if machine is None:
        machine = guess_machine(text)
        if machine is None:
            raise HostFactsError(f"cannot tell the architecture of {source}; give --machine")
    if machine not in KNOWN_MACHINES:
        raise HostFactsError(
            f"unknown machine {machine!r}: expected one of {', '.join(KNOWN_MACHINES)}"
        )
    looks = guess_machine(text)
    if looks is not None and looks != machine and not (looks == "ppc64le" and machine == "ppc64"):
        raise HostFactsError(f"{source} looks like a {looks} /proc/cpuinfo, not {machine}")
    check_cpuinfo(text, machine, source)
    with _replay(text, machine) as detect:
        uarch = detect.host.__wrapped__()  # bypass archspec's process-wide lru_cache
    block = _first_block(text)
    flags = tuple(sorted(set(block.get(_FLAG_KEYS.get(uarch.family.name, "flags"), "").split())))
    return CpuFacts(
        architecture=machine,
        target=uarch.name,
        detected_target=uarch.name,
        vendor=uarch.vendor,
        generic=uarch.generic.name,
        ancestors=_depth_order(uarch.ancestors),
        flags=flags,
        model=cpu_model(text, machine),
        source=source,
    )


def cpu_facts(cpuinfo: str | Path = "/proc/cpuinfo", machine: str | None = None) -> CpuFacts:
    """CPU facts for the host described by a cpuinfo file.

    Args:
        cpuinfo: path of a ``/proc/cpuinfo``, a dump of one from another
            host, or a macOS ``sysctl -a`` dump.
        machine: that host's kernel machine name (``uname -m``: x86_64,
            aarch64, ppc64le...); default: ``platform.machine()`` for this
            host's /proc/cpuinfo, else read from the dump's keys.

    Returns:
        CpuFacts with the archspec target, vendor, generic level, ancestors
        (deepest first), raw flags and cpu.model.

    Raises:
        HostFactsError: the file cannot be read or the machine name is not one
            archspec knows.
    """
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise HostFactsError(f"cannot read {cpuinfo}: {exc.strerror or exc}") from None
    if machine is None and not is_sysctl_dump(text) and str(cpuinfo) == "/proc/cpuinfo":
        machine = platform.machine()
    return cpu_facts_from_text(text, machine, str(cpuinfo))


def with_target(cpu: CpuFacts, target: str) -> CpuFacts:
    """`cpu` with its effective target replaced by a site override (a node
    class whose VMs mask a flag, say). ``detected_target`` keeps archspec's
    answer; ancestors and generic level follow the new target.

    Raises:
        HostFactsError: `target` is not an archspec name, or belongs to
            another architecture family.
    """
    from archspec.cpu import TARGETS

    uarch = TARGETS.get(target)
    if uarch is None:
        raise HostFactsError(f"site cpu target {target!r} is not an archspec target name")
    family = TARGETS[cpu.detected_target or cpu.target].family.name
    if uarch.family.name != family:
        raise HostFactsError(
            f"site cpu target {target!r} is a {uarch.family.name} target; this host is {family}"
        )
    return cpu.model_copy(
        update={
            "target": uarch.name,
            "detected_target": cpu.detected_target or cpu.target,
            "target_source": "site config",
            "generic": uarch.generic.name,
            "ancestors": _depth_order(uarch.ancestors),
        }
    )
