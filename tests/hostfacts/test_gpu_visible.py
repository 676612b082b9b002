"""What the GPU probes add for the job's visible devices (issue 13 item 2):
MIG instance UUIDs through a fake pynvml, AMD UUIDs from a fake KFD tree,
and :func:`hostfacts.visible.narrow` on the facts they give."""

from __future__ import annotations

from hostfacts import facts_from_cpuinfo
from hostfacts.model import GpuFacts
from hostfacts.visible import narrow
from tests.hostfacts.test_gpu import (
    A100,
    H100,
    NODES,
    NVMLError,
    amd,
    make_nvml,
    run_probe,
    write_node,
)
from tests.test_e2e_scoring import CPUINFO, ZEN4

MIG_A = "MIG-11111111-2222-5333-8444-555555555555"
MIG_B = "MIG-66666666-7777-5888-9999-000000000000"


class NVMLError_NotFound(NVMLError):  # pynvml's name: an empty MIG slot
    pass


def mig_nvml():
    """An A100 (MIG off) and an H100 in MIG mode with instances in slots 0 and 2 of 7."""
    fake = make_nvml([A100, H100])
    fake.NVMLError_NotFound = NVMLError_NotFound
    instances = {0: MIG_A, 2: MIG_B}
    plain = fake.nvmlDeviceGetUUID

    def max_count(handle):
        fake.calls.append("nvmlDeviceGetMaxMigDeviceCount")
        return 7

    def mig_handle(handle, slot):
        fake.calls.append("nvmlDeviceGetMigDeviceHandleByIndex")
        if slot not in instances:
            raise NVMLError_NotFound("Not Found")
        return ("mig", handle[1], slot)

    def uuid(handle):
        return instances[handle[2]] if handle[0] == "mig" else plain(handle)

    fake.nvmlDeviceGetMaxMigDeviceCount = max_count
    fake.nvmlDeviceGetMigDeviceHandleByIndex = mig_handle
    fake.nvmlDeviceGetUUID = uuid
    return fake


def test_mig_instances_are_probed_with_their_uuids():
    facts = run_probe(mig_nvml())
    a100, h100 = facts.devices
    assert a100.mig_enabled is False and a100.mig_devices == ()
    assert h100.mig_enabled is True
    assert [(m.index, m.uuid) for m in h100.mig_devices] == [(0, MIG_A), (2, MIG_B)]
    assert any(MIG_A in e.detail for e in facts.probe.evidence)


def test_a_mig_instance_selects_its_parent_gpu():
    nvidia = run_probe(mig_nvml())
    host = facts_from_cpuinfo(CPUINFO / ZEN4, "x86_64").model_copy(
        update={"gpu": GpuFacts(nvidia=nvidia)}
    )
    narrowed = narrow(host, {"CUDA_VISIBLE_DEVICES": MIG_B})
    assert [d.compute_capability for d in narrowed.gpu.nvidia.devices] == ["9.0"]
    assert narrowed.gpu.visibility == (
        f"CUDA_VISIBLE_DEVICES='{MIG_B}': GPU 1 (NVIDIA H100 80GB HBM3, 9.0) of 2",
    )
    assert narrow(host, {}) is host and narrow(host, None) is host


def test_amd_uuid_from_the_kfd_unique_id(tmp_path):
    write_node(tmp_path, 0, 0)
    write_node(tmp_path, 1, 90402, 4098, 29856)
    with open(tmp_path / NODES / "1" / "properties", "a") as fh:
        fh.write("unique_id 1311768467463790320\n")
    write_node(tmp_path, 2, 90402, 4098, 29856)  # no unique_id: no UUID
    facts = amd(tmp_path)
    assert [d.uuid for d in facts.devices] == ["GPU-123456789abcdef0", None]
