"""Host facts as Node Feature Discovery features.

Shape: NFD's ``Features`` (nfd.k8s-sigs.io/v1alpha1 NodeFeatureSpec
``features``, as ``nfd export features`` prints it)::

    {"flags":      {"<domain>.<feature>": {"elements": {"<name>": {}}}},
     "attributes": {"<domain>.<feature>": {"elements": {"<name>": "<value>"}}},
     "instances":  {"<domain>.<feature>": {"elements": [{"attributes": {...}}]}}}

Standard NFD features produced (kubernetes-sigs/node-feature-discovery docs,
"Feature discovery" / customization guide, available features):

- ``cpu.cpuid`` (flags): CPU flags with NFD's names (klauspost/cpuid
  ``FeatureID`` strings, e.g. ``AVX512F``, ``SSE42``, ``FMA3``, ``AESNI``):
  the Linux flag upper-cased without underscores, except where the names
  differ (:data:`CPUID_NAMES`). Includes ``HYPERVISOR`` on VMs.
- ``cpu.model`` (attributes): ``vendor_id`` (``Intel``, ``AMD``, Arm
  implementer name), ``family``, ``id``.
- ``kernel.version`` (attributes): ``full``, ``major``, ``minor``, ``revision``.
- ``kernel.loadedmodule`` (flags): names from /proc/modules.
- ``system.osrelease`` (attributes): ``ID``, ``VERSION_ID``,
  ``VERSION_ID.major``, ``VERSION_ID.minor``.
- ``pci.device`` (instances): ``class``, ``vendor``, ``device``,
  ``subsystem_vendor``, ``subsystem_device``.

A feature whose probe ran and found nothing is emitted with no elements
(NFD fails any term on a feature the node does not have, ``DoesNotExist``
included); a feature that was not probed is left out.

Extension domains (imagefit's own, documented in docs/facts.md):

- ``archspec.cpu`` (attributes): ``target``, ``detected_target``, ``generic``,
  ``vendor``, ``architecture``; ``archspec.compatible`` (flags): every target
  this host runs (the target itself and its ancestors).
- ``gpu.nvidia`` (attributes): ``driver_version``, ``cuda_driver_version``,
  ``count``; ``gpu.nvidia.device`` (instances): ``index``, ``name``,
  ``compute_capability``, ``compute_capability_major``, ``memory_mib``, ``mig``.
  Only the GPUs the job sees (:func:`hostfacts.visible.narrow`) when choosing.
- ``gpu.amd.device`` (instances): ``node``, ``gfx_target``.
- ``mpi.library`` (attributes): ``implementation``, ``version``, ``abi``.
- ``libc.version`` (attributes): ``libc``, ``version``.
- ``network.fabric`` (flags): ``infiniband``, ``roce``, ``opa``, ``cxi``, ``efa``, ``iwarp``
"""

from __future__ import annotations

from hostfacts.model import HostFacts

#: Linux /proc/cpuinfo flag -> NFD (klauspost/cpuid) name, where they differ
#: from "upper-case, underscores dropped".
CPUID_NAMES = {
    "sse4_1": "SSE4", "sse4_2": "SSE42", "pni": "SSE3", "fma": "FMA3", "aes": "AESNI",
    "pclmulqdq": "CLMUL", "lahf_lm": "LAHF", "abm": "LZCNT", "cx8": "CMPXCHG8", "fpu": "X87",
    "ht": "HTT", "sha_ni": "SHA", "hypervisor": "HYPERVISOR", "avx512vbmi": "AVX512VBMI",
    "avx512ifma": "AVX512IFMA",
}  # fmt: skip

#: cpuinfo vendor_id -> NFD cpu.model vendor_id.
VENDOR_NAMES = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon"}


def cpuid_name(flag: str) -> str:
    """NFD's name for a Linux CPU flag."""
    return CPUID_NAMES.get(flag, flag.upper().replace("_", ""))


def _flags(names) -> dict:
    return {"elements": {n: {} for n in sorted(set(names))}}


def _attrs(values: dict) -> dict:
    return {"elements": {k: str(v) for k, v in values.items() if v is not None and v != ""}}


def features(facts: HostFacts) -> dict:
    """The facts as an NFD ``Features`` object (see the module docstring)."""
    cpu, system = facts.cpu, facts.system
    flags: dict = {
        "cpu.cpuid": _flags(cpuid_name(f) for f in cpu.flags),
        "archspec.compatible": _flags((cpu.target, *cpu.ancestors)),
    }
    attributes: dict = {
        "cpu.model": _attrs(
            {
                "vendor_id": VENDOR_NAMES.get(cpu.model.vendor_id, cpu.model.vendor_id),
                "family": cpu.model.family,
                "id": cpu.model.model_id,
            }
        ),
        "archspec.cpu": _attrs(
            {
                "architecture": cpu.architecture,
                "target": cpu.target,
                "detected_target": cpu.detected_target or cpu.target,
                "generic": cpu.generic,
                "vendor": cpu.vendor,
            }
        ),
    }
    instances: dict = {}
    if system.kernel_release:
        parts = list(system.kernel_version) + [None] * 3
        attributes["kernel.version"] = _attrs(
            {
                "full": system.kernel_release,
                "major": parts[0],
                "minor": parts[1],
                "revision": parts[2],
            }
        )
    probed = system.probe.status == "ok"  # a probed feature that is empty is emitted empty:
    if probed or system.loaded_modules:  # NFD fails a term on a missing feature, even DoesNotExist
        flags["kernel.loadedmodule"] = _flags(system.loaded_modules)
    release = system.os_release
    if release.id:
        version = release.version_id or ""
        major, _, rest = version.partition(".")
        attributes["system.osrelease"] = _attrs(
            {
                "ID": release.id,
                "VERSION_ID": version,
                "VERSION_ID.major": major,
                "VERSION_ID.minor": rest.split(".")[0],
            }
        )
    if system.libc != "unknown":
        attributes["libc.version"] = _attrs({"libc": system.libc, "version": system.glibc_version})
    if probed or system.pci_devices:
        instances["pci.device"] = {
            "elements": [
                {
                    "attributes": {
                        k: v
                        for k, v in {
                            "class": d.class_id,
                            "vendor": d.vendor,
                            "device": d.device,
                            "subsystem_vendor": d.subsystem_vendor,
                            "subsystem_device": d.subsystem_device,
                        }.items()  # fmt: skip
                        if v
                    }
                }
                for d in system.pci_devices
            ]
        }
    nvidia = facts.gpu.nvidia
    if nvidia.probe.status == "none":
        attributes["gpu.nvidia"] = _attrs({"count": 0})
        instances["gpu.nvidia.device"] = {"elements": []}
    if nvidia.probe.status == "ok":
        attributes["gpu.nvidia"] = _attrs(
            {
                "driver_version": nvidia.driver_version,
                "cuda_driver_version": nvidia.cuda_driver_version,
                "count": len(nvidia.devices),
            }
        )
        instances["gpu.nvidia.device"] = {
            "elements": [
                {
                    "attributes": _attrs(
                        {
                            "index": d.index,
                            "name": d.name,
                            "compute_capability": d.compute_capability,
                            "compute_capability_major": (d.compute_capability or "").split(".")[0],
                            "memory_mib": d.memory_mib,
                            "mig": None if d.mig_enabled is None else str(d.mig_enabled).lower(),
                        }
                    )["elements"]
                }  # fmt: skip
                for d in nvidia.devices
            ]
        }
    if facts.gpu.amd.devices or facts.gpu.amd.probe.status in ("ok", "none"):
        instances["gpu.amd.device"] = {
            "elements": [
                {"attributes": {"node": str(d.node), "gfx_target": d.gfx_target}}
                for d in facts.gpu.amd.devices
            ]
        }
    mpi = facts.mpi
    if mpi.implementation or mpi.probe.status == "none":
        attributes["mpi.library"] = _attrs(
            {"implementation": mpi.implementation, "version": mpi.version, "abi": mpi.abi}
        )
    if facts.interconnect.fabrics or facts.interconnect.probe.status in ("ok", "none"):
        flags["network.fabric"] = _flags(facts.interconnect.fabrics)
    return {"flags": flags, "attributes": attributes, "instances": instances}
