"""The host facts model: one frozen, versioned value with a JSON round trip.

The JSON form (``HostFacts.model_dump_json()``) is what ``imagefit facts --json``
prints and what ``IMAGEFIT_FACTS=FILE`` reads back, so a node class can be
described once and its decisions reproduced anywhere. ``schema_version`` is
bumped on any incompatible change; readers refuse versions they do not know.

Every probed section carries a :class:`Probe` record: ``status`` (``ok``
found, ``none`` looked and there is none, ``unknown`` could not tell,
``error`` the probe failed), a one-line ``reason`` when not ``ok``, the
``evidence`` it relied on (files read, calls made, commands run) and how long
it took. Sections a facts file does not record read as ``unknown``, "not
recorded". The full field reference is docs/facts.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

Status = Literal["ok", "none", "unknown", "error"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Evidence(_Frozen):
    """How a probe knew: one file read, library call made or command run."""

    kind: Literal["file", "call", "command", "env", "config"]
    source: str = Field(
        description="Path, call name (e.g. 'nvmlSystemGetDriverVersion'), argv or variable."
    )
    detail: str = Field(default="", description="What it gave, shortened to one line.")


class Probe(_Frozen):
    """Outcome of one probe."""

    status: Status = "unknown"
    reason: str = Field(default="", description="One line when status is not 'ok'.")
    evidence: tuple[Evidence, ...] = ()
    seconds: float = Field(default=0.0, description="Wall time the probe took.")


NOT_RECORDED = Probe(status="unknown", reason="not recorded")


class CpuModel(_Frozen):
    """NFD ``cpu.model``: the CPU's identity as cpuid reports it."""

    vendor_id: str = Field(
        default="",
        description="cpuinfo vendor_id (GenuineIntel, AuthenticAMD) or Arm implementer name.",
    )
    family: int | None = Field(default=None, description="cpu family (x86) / architecture (Arm).")
    model_id: int | None = Field(
        default=None, description="model (x86) / CPU part (Arm, from hex)."
    )
    hypervisor: bool = Field(
        default=False, description="The 'hypervisor' cpuid flag: running in a VM."
    )


class CpuFacts(_Frozen):
    """The host CPU as archspec sees it.

    Names are archspec target names (archspec-json ``microarchitectures.json``),
    the same names image authors put in the CPU target annotation.
    ``target`` is what choices use: archspec's detection, or a site
    override for this node class (``target_source``); ``detected_target``
    always keeps what archspec detected, so a VM that masks one optional flag
    (archspec then names an older target) is visible next to ``generic``,
    which such masking rarely changes.
    """

    architecture: str = Field(
        description="Kernel machine name (`uname -m`): x86_64, aarch64, ppc64le, riscv64."
    )
    target: str = Field(description="Effective archspec target, e.g. 'zen4'.")
    detected_target: str = Field(
        default="", description="archspec's own detection ('' in old files: same as target)."
    )
    target_source: Literal["archspec", "site config"] = "archspec"
    vendor: str = Field(
        description="Vendor string: GenuineIntel, AuthenticAMD, ARM, IBM, generic..."
    )
    generic: str = Field(description="Generic level of `target`: x86_64_v3, armv9.0a, ppc64le...")
    ancestors: tuple[str, ...] = Field(
        description="Every other target this host can run, deepest in archspec's DAG first."
    )
    flags: tuple[str, ...] = Field(
        description="Raw feature flags of the first processor in /proc/cpuinfo, sorted."
    )
    model: CpuModel = CpuModel()
    source: str = Field(description="Where the CPU facts came from, e.g. '/proc/cpuinfo'.")
    probe: Probe = NOT_RECORDED

    def can_run(self, target: str) -> bool:
        """True if code built for archspec target `target` runs on this host
        (it is the host target or one of its ancestors)."""
        return target == self.target or target in self.ancestors


class NvidiaMigDevice(_Frozen):
    """One MIG instance of an NVIDIA GPU (``nvmlDeviceGetMigDeviceHandleByIndex``).
    It runs the code its parent GPU runs: its compute capability is the parent's."""

    index: int = Field(description="MIG device index within its parent GPU.")
    uuid: str | None = Field(
        default=None, description="'MIG-...', as CUDA_VISIBLE_DEVICES names it; None if unknown."
    )


class NvidiaDevice(_Frozen):
    """One NVIDIA GPU as NVML reports it (physical index: NVML ignores CUDA_VISIBLE_DEVICES)."""

    index: int
    uuid: str | None = Field(default=None, description="None when the driver cannot tell.")
    name: str | None = None
    compute_capability: str | None = Field(
        default=None, description="'major.minor', e.g. '9.0'; None if unknown."
    )
    memory_mib: int | None = None
    mig_enabled: bool | None = Field(
        default=None, description="Current MIG mode; None when not MIG-capable."
    )
    mig_devices: tuple[NvidiaMigDevice, ...] = Field(
        default=(), description="MIG instances (with MIG on); () in files without them."
    )


class NvidiaFacts(_Frozen):
    """NVIDIA driver and devices through NVML (nvidia-ml-py, ``import pynvml``)."""

    probe: Probe = NOT_RECORDED
    driver_version: str | None = Field(default=None, description="e.g. '550.54.15'.")
    cuda_driver_version: str | None = Field(
        default=None, description="Highest CUDA the driver supports, e.g. '12.4'."
    )
    nvml_version: str | None = None
    devices: tuple[NvidiaDevice, ...] = ()
    cuda_visible_devices: str | None = Field(
        default=None, description="$CUDA_VISIBLE_DEVICES as seen, or None if unset."
    )
    nvidia_visible_devices: str | None = Field(
        default=None, description="$NVIDIA_VISIBLE_DEVICES as seen."
    )


class AmdGpu(_Frozen):
    """One AMD GPU node of the KFD topology."""

    node: int
    gfx_target: str = Field(description="LLVM target name, e.g. 'gfx90a', 'gfx942'.")
    gfx_target_version: int = Field(description="Raw KFD gfx_target_version, e.g. 90010.")
    vendor_id: int | None = None
    device_id: int | None = None
    uuid: str | None = Field(
        default=None,
        description="'GPU-' and the KFD unique_id in 16 hex digits, as ROCR_VISIBLE_DEVICES names it.",
    )


class AmdFacts(_Frozen):
    """AMD GPUs from /sys/devices/virtual/kfd/kfd/topology and the amdgpu module."""

    probe: Probe = NOT_RECORDED
    driver_version: str | None = Field(
        default=None, description="/sys/module/amdgpu/version, if any."
    )
    devices: tuple[AmdGpu, ...] = ()


class GpuFacts(_Frozen):
    """The node's GPUs; ``visibility`` is empty in probed facts and files.

    When choosing, :func:`hostfacts.visible.narrow` keeps only the devices the
    job's visible-device variables leave it and says how in ``visibility``
    (one line per variable that narrowed, or could not be applied)."""

    nvidia: NvidiaFacts = NvidiaFacts()
    amd: AmdFacts = AmdFacts()
    visibility: tuple[str, ...] = Field(
        default=(),
        description="How CUDA_/NVIDIA_/ROCR_/HIP_VISIBLE_DEVICES narrowed the devices (set when choosing).",
    )


class MpiFacts(_Frozen):
    """The MPI library the environment resolves, identified by calling it."""

    probe: Probe = NOT_RECORDED
    implementation: str | None = Field(
        default=None,
        description="mpich, openmpi, intelmpi, craympich, mvapich, spectrum, mpt, fujitsu, mpiwrapper; None when not found.",
    )
    version: str | None = Field(default=None, description="Implementation version, e.g. '4.2.1'.")
    abi: Literal["mpich", "openmpi", "mpi-abi", "unknown"] = "unknown"
    library: str | None = Field(default=None, description="Path of the library that was loaded.")
    library_version: str | None = Field(
        default=None, description="First line of MPI_Get_library_version."
    )


class OsRelease(_Frozen):
    id: str | None = None
    version_id: str | None = None
    id_like: tuple[str, ...] = ()
    pretty_name: str | None = None


class PciDevice(_Frozen):
    """One PCI function from /sys/bus/pci/devices (hex strings without 0x, as NFD)."""

    address: str
    class_id: str = Field(
        description="Class and subclass, 4 hex digits, e.g. '0200' (Ethernet), '0302' (3D)."
    )
    vendor: str
    device: str
    subsystem_vendor: str | None = None
    subsystem_device: str | None = None


class SystemFacts(_Frozen):
    """Kernel, C library, OS release, container, kernel modules, PCI devices."""

    probe: Probe = NOT_RECORDED
    kernel_release: str | None = Field(
        default=None, description="`uname -r`, e.g. '6.1.0-18-amd64'."
    )
    kernel_version: tuple[int, ...] = Field(
        default=(), description="Leading numeric parts, e.g. (6, 1, 0)."
    )
    libc: Literal["glibc", "musl", "unknown"] = "unknown"
    glibc_version: str | None = Field(default=None, description="e.g. '2.36'.")
    os_release: OsRelease = OsRelease()
    container: str | None = Field(
        default=None,
        description="Container engine we run inside (podman, docker, apptainer, ...), or None.",
    )
    loaded_modules: tuple[str, ...] = ()
    pci_devices: tuple[PciDevice, ...] = ()


class RdmaDevice(_Frozen):
    """One RDMA device port from /sys/class/infiniband."""

    name: str
    port: int
    link_layer: str = Field(description="'InfiniBand' or 'Ethernet' (RoCE), as sysfs spells it.")
    kind: Literal["infiniband", "roce", "opa", "other"]
    state: str | None = Field(default=None, description="e.g. '4: ACTIVE'.")
    rate: str | None = None


class InterconnectFacts(_Frozen):
    """High-speed networks: InfiniBand/RoCE/OPA, Slingshot (CXI), libfabric."""

    probe: Probe = NOT_RECORDED
    rdma: tuple[RdmaDevice, ...] = ()
    cxi: tuple[str, ...] = Field(
        default=(), description="CXI (Slingshot) device names, e.g. ('cxi0',)."
    )
    libfabric_providers: tuple[str, ...] = Field(
        default=(), description="Providers `fi_info -l` lists."
    )
    fabrics: tuple[str, ...] = Field(
        default=(),
        description="Summary vocabulary: 'infiniband', 'roce', 'opa', 'cxi', 'efa', 'iwarp' (hardware only)",
    )


class HostFacts(_Frozen):
    """Everything imagefit knows about one host (or one node class)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    hostname: str = Field(default="", description="Node name the facts were probed on, or ''.")
    os: str = Field(default="linux", description="GOOS-style operating system name.")
    root: str = Field(
        default="/", description="Root directory the probes read (imagefit facts --root)."
    )
    cpu: CpuFacts
    gpu: GpuFacts = GpuFacts()
    mpi: MpiFacts = MpiFacts()
    system: SystemFacts = SystemFacts()
    interconnect: InterconnectFacts = InterconnectFacts()
