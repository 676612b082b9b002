"""AMD GPUs from the KFD topology in sysfs, as LLVM's ``amdgpu-arch`` finds them.

llvm/llvm-project ``clang/tools/amdgpu-arch/AMDGPUArchByKFD.cpp`` lists
``/sys/devices/virtual/kfd/kfd/topology/nodes/<N>``, reads the
``gfx_target_version <int>`` line of each node's ``properties``, skips nodes
where it is 0 (CPUs), sorts by node number and prints
``gfx%ld%ld%lx`` of ``major = (v / 10000) % 100``, ``minor = (v / 100) % 100``,
``step = v % 100``: major and minor in decimal, the stepping in hex (90010 ->
gfx90a, 90402 -> gfx942, 110000 -> gfx1100). ROCR_VISIBLE_DEVICES is not
applied, as there. The driver version is ``/sys/module/amdgpu/version``, which
only the out-of-tree (DKMS) amdgpu module has; ROCm's ``rocminfo`` is not
needed (host-facts reference, section 3, AMD).
"""

from __future__ import annotations

from hostfacts.context import ProbeContext, file_evidence
from hostfacts.model import AmdFacts, AmdGpu, Evidence, Probe

#: KFD_SYSFS_NODE_PATH in AMDGPUArchByKFD.cpp.
TOPOLOGY_NODES = "/sys/devices/virtual/kfd/kfd/topology/nodes"
DRIVER_VERSION = "/sys/module/amdgpu/version"


def gfx_target_name(version: int) -> str:
    """LLVM target name of a KFD ``gfx_target_version``.

    Example: 90010 -> 'gfx90a', 90402 -> 'gfx942', 100300 -> 'gfx1030',
    110000 -> 'gfx1100'. Formatting as ``printGPUsByKFD`` in
    AMDGPUArchByKFD.cpp (``gfx%ld%ld%lx``). Never raises for ints.
    """
    major = (version // 10000) % 100
    minor = (version // 100) % 100
    step = version % 100
    return f"gfx{major}{minor}{step:x}"


def _uuid(unique_id: int | None) -> str | None:
    """The UUID ROCr gives a GPU, as ROCR_VISIBLE_DEVICES takes it: ``GPU-`` and
    the KFD node's ``unique_id`` in 16 hex digits (ROCm docs, "GPU isolation
    techniques"; rocminfo prints the same); None when 0 or absent."""
    if not unique_id or unique_id < 0:
        return None
    return f"GPU-{unique_id:016x}"


def parse_properties(text: str) -> dict[str, int]:
    """Integer fields of a KFD node ``properties`` file ('key value' per line).

    Returns:
        {key: int}; lines whose value is not a decimal integer are left out.
        Never raises.
    """
    fields: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                fields[parts[0]] = int(parts[1], 10)
            except ValueError:
                continue
    return fields


def probe(ctx: ProbeContext) -> AmdFacts:
    """AMD GPU nodes of the KFD topology and the amdgpu driver version.

    Args:
        ctx: probe inputs; files are read under ``ctx.root`` (works on a
            copied ``--root`` tree).

    Returns:
        :class:`AmdFacts`: one :class:`AmdGpu` per node whose
        ``gfx_target_version`` is not 0, by node number (``gfx_target``
        e.g. 'gfx942', raw version, PCI ``vendor_id``/``device_id`` as ints);
        ``driver_version`` from /sys/module/amdgpu/version or None (in-tree
        driver). ``probe.status``: ``ok`` with GPU nodes, ``none`` without a
        topology or with CPU nodes only, ``error`` if anything unexpected
        failed. Evidence: each file read.

    Never raises. Source: LLVM ``AMDGPUArchByKFD.cpp``.
    """
    evidence: list[Evidence] = []
    try:
        return _probe(ctx, evidence)
    except Exception as exc:  # never raise: report the failure instead
        reason = " ".join(f"AMD KFD probe failed: {type(exc).__name__}: {exc}".split())[:200]
        return AmdFacts(probe=Probe(status="error", reason=reason, evidence=tuple(evidence)))


def _probe(ctx: ProbeContext, evidence: list[Evidence]) -> AmdFacts:
    nodes = sorted((int(n), n) for n in ctx.listdir(TOPOLOGY_NODES) if n.isascii() and n.isdigit())
    if not nodes:
        evidence.append(file_evidence(ctx, TOPOLOGY_NODES, "absent or empty"))
        return AmdFacts(
            probe=Probe(
                status="none",
                reason=f"no KFD topology ({TOPOLOGY_NODES}): amdgpu not loaded or no AMD GPU",
                evidence=tuple(evidence),
            )
        )

    devices: list[AmdGpu] = []
    for node, name in nodes:
        path = f"{TOPOLOGY_NODES}/{name}/properties"
        text = ctx.read_text(path)
        if text is None:
            evidence.append(file_evidence(ctx, path, "unreadable"))
            continue
        fields = parse_properties(text)
        version = fields.get("gfx_target_version", 0)
        if version == 0:
            evidence.append(file_evidence(ctx, path, "gfx_target_version 0: CPU node"))
            continue
        target = gfx_target_name(version)
        evidence.append(file_evidence(ctx, path, f"gfx_target_version {version} -> {target}"))
        devices.append(
            AmdGpu(
                node=node,
                gfx_target=target,
                gfx_target_version=version,
                vendor_id=fields.get("vendor_id"),
                device_id=fields.get("device_id"),
                uuid=_uuid(fields.get("unique_id")),
            )
        )

    raw = ctx.read_text(DRIVER_VERSION)
    driver = (raw.strip() or None) if raw is not None else None
    evidence.append(file_evidence(ctx, DRIVER_VERSION, driver or "absent (in-tree amdgpu)"))

    if devices:
        probe = Probe(status="ok", reason="", evidence=tuple(evidence))
    else:
        probe = Probe(
            status="none",
            reason="KFD topology lists no GPU nodes (CPU nodes only)",
            evidence=tuple(evidence),
        )
    return AmdFacts(probe=probe, driver_version=driver, devices=tuple(devices))
