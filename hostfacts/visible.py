"""The GPUs a job uses: the node's devices narrowed by the job's
visible-device variables.

A facts file or probe describes the node (NVML and KFD list every device,
ignoring these variables); the variables describe the job, so they are read
when choosing, from the environment of the command, also for facts from a
file (``$IMAGEFIT_FACTS``, ``[node_classes]``). Rules, each cited:

- NVIDIA: ``NVIDIA_VISIBLE_DEVICES`` first (nvidia-container-toolkit: ``all``;
  ``none``, ``void`` or empty for no GPU; else indexes, ``GPU-``/``MIG-``
  UUIDs, ``GPU:MIG`` index pairs), then ``CUDA_VISIBLE_DEVICES`` over what is
  left (CUDA C Programming Guide, "CUDA Environment Variables"; NVIDIA MPS
  docs: "only the devices whose index or UUID is present in the sequence are
  visible ... enumerated in the order of the sequence", a UUID may be given
  by its first characters including ``GPU-``; an invalid index hides it and
  every entry after it). A MIG instance (``MIG-<uuid>``, or the older
  ``MIG-GPU-<uuid>/<gi>/<ci>``) counts as its parent GPU: it runs the
  parent's code (same compute capability).
- AMD: ``ROCR_VISIBLE_DEVICES`` first (indexes or ``GPU-<hex>`` UUIDs), then
  ``HIP_VISIBLE_DEVICES``, or where that is unset ``CUDA_VISIBLE_DEVICES``
  (HIP reads it for CUDA portability), as indexes over what is left (ROCm
  docs, "GPU isolation techniques"; HIP "environment variables").
- An entry that names no device of the facts: an index past the end (or not
  a number) is invalid, and as CUDA does the list stops there; a UUID the
  facts do not hold (facts from another node of the class, or without
  UUIDs) cannot be told apart: every device the list had so far counts, so
  the chosen build fits whichever GPU it is, and a note says so.

Every step is recorded in ``GpuFacts.visibility``: one line each, shown by
``imagefit explain``. Pure (the environment is passed in).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hostfacts.model import AmdGpu, HostFacts, NvidiaDevice

#: Longest variable value quoted in a note (characters).
SHOWN = 80


def _shown(value: str) -> str:
    return repr(value if len(value) <= SHOWN else value[:SHOWN] + "...")


def _name_nvidia(d: NvidiaDevice) -> str:
    return f"GPU {d.index} ({d.name or 'NVIDIA'}, {d.compute_capability or 'cc ?'})"


def _name_amd(d: AmdGpu) -> str:
    return f"GPU node {d.node} ({d.gfx_target})"


def _match_uuid(entry: str, devices: Sequence, mig: bool) -> list:
    """Devices whose UUID (or, with `mig`, one of whose MIG instances' UUIDs)
    starts with `entry` (case-insensitive, as CUDA takes a UUID prefix)."""
    want = entry.lower()
    found = []
    for d in devices:
        uuids = [m.uuid for m in getattr(d, "mig_devices", ())] if mig else [d.uuid]
        if any(u and u.lower().startswith(want) for u in uuids):
            found.append(d)
    return found


def _select(
    name: str, value: str, devices: list, describe, *, nvidia: bool, toolkit: bool = False
) -> tuple[list, str]:
    """(the devices `value` of variable `name` leaves of `devices`, one note)."""
    text = value.strip()
    if toolkit and text.lower() == "all":
        return devices, f"{name}=all: every GPU"
    if text == "" or (toolkit and text.lower() in ("none", "void")):
        return [], f"{name}={_shown(value)}: no GPU visible"
    chosen: list = []
    unknown: list[str] = []
    stopped = ""
    for raw in text.split(","):
        entry = raw.strip()
        found: list = []
        if toolkit and ":" in entry and entry.replace(":", "").isdigit():
            entry = entry.split(":", 1)[0]  # GPU:MIG pair: the parent GPU
        if entry.isdigit() and entry.isascii():
            digits = entry.lstrip("0") or "0"  # never int() of thousands of digits
            index = int(digits) if len(digits) <= 9 else len(devices)
            if index < len(devices):
                found = [devices[index]]
        elif nvidia and entry.upper().startswith("MIG-GPU-"):  # MIG-GPU-<uuid>/<gi>/<ci>
            parent = entry[4:].split("/", 1)[0]
            found = _match_uuid(parent, devices, mig=False)
            if len(found) != 1:
                unknown.append(entry)
                continue
        elif entry.upper().startswith("GPU-") or (nvidia and entry.upper().startswith("MIG-")):
            found = _match_uuid(entry, devices, mig=entry.upper().startswith("MIG-"))
            if len(found) != 1:  # absent, or a prefix of several: cannot tell which
                unknown.append(entry)
                continue
        if not found:
            stopped = entry
            break
        chosen += [d for d in found if d not in chosen]
    if unknown:
        shown = ", ".join(_shown(u) for u in unknown[:3]) + (" ..." if len(unknown) > 3 else "")
        note = (
            f"{name} names {shown}, which the facts do not list (facts from another node of"
            f" the class, or without UUIDs): every GPU counts ({len(devices)})"
        )
        return devices, note
    note = f"{name}={_shown(value)}: " + (
        ", ".join(describe(d) for d in chosen) if chosen else "no GPU visible"
    )
    if len(chosen) < len(devices):
        note += f" of {len(devices)}"
    if stopped:
        note += f" ({_shown(stopped)} is no device: it and the entries after it are ignored)"
    return chosen, note


def narrow(facts: HostFacts, environ: Mapping[str, str] | None) -> HostFacts:
    """`facts` with only the GPUs the job's visible-device variables leave
    (see the module docstring), and ``gpu.visibility`` saying how.

    Args:
        facts: the node's facts (every device, as probed or read).
        environ: the command's environment; None or no variable set: `facts`
            unchanged.

    Returns:
        A new HostFacts (the input is frozen and left as is). Probe records
        stay as they were: a node whose GPUs are all hidden still has a
        driver, and reads as having no visible GPU. A variable is applied
        only while devices of its vendor are left (on a node without GPUs
        it changes nothing).
    """
    if not environ:
        return facts
    gpu = facts.gpu
    notes: list[str] = []
    nvidia = list(gpu.nvidia.devices)
    if "NVIDIA_VISIBLE_DEVICES" in environ and nvidia:
        nvidia, note = _select(
            "NVIDIA_VISIBLE_DEVICES", environ["NVIDIA_VISIBLE_DEVICES"], nvidia, _name_nvidia,
            nvidia=True, toolkit=True,
        )  # fmt: skip
        notes.append(note)
    if "CUDA_VISIBLE_DEVICES" in environ and nvidia:
        nvidia, note = _select(
            "CUDA_VISIBLE_DEVICES", environ["CUDA_VISIBLE_DEVICES"], nvidia, _name_nvidia,
            nvidia=True,
        )  # fmt: skip
        notes.append(note)
    amd = sorted(gpu.amd.devices, key=lambda d: d.node)  # ROCr's order: by KFD node
    if "ROCR_VISIBLE_DEVICES" in environ and amd:
        amd, note = _select(
            "ROCR_VISIBLE_DEVICES", environ["ROCR_VISIBLE_DEVICES"], amd, _name_amd, nvidia=False
        )
        notes.append(note)
    hip = "HIP_VISIBLE_DEVICES" if "HIP_VISIBLE_DEVICES" in environ else "CUDA_VISIBLE_DEVICES"
    if hip in environ and amd:
        amd, note = _select(hip, environ[hip], amd, _name_amd, nvidia=False)
        notes.append(note)
    if not notes:
        return facts
    narrowed = gpu.model_copy(
        update={
            "nvidia": gpu.nvidia.model_copy(update={"devices": tuple(nvidia)}),
            "amd": gpu.amd.model_copy(update={"devices": tuple(amd)}),
            "visibility": (*gpu.visibility, *notes),
        }
    )
    return facts.model_copy(update={"gpu": narrowed})
