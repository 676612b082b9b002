"""GPU probes: NVML through fake pynvml modules (and the real nvidia-ml-py,
which on a host without a driver must report "none"), AMD through fake KFD
sysfs trees."""

from __future__ import annotations

import ctypes.util
import sys
import types
from pathlib import Path

import pytest

from hostfacts.context import ProbeContext
from hostfacts.model import GpuFacts, NvidiaFacts
from hostfacts.probes import gpu_amd, gpu_nvidia

GIB = 2**30

# --------------------------------------------------------------------------
# A fake pynvml: the same error hierarchy and call names as nvidia-ml-py.


class NVMLError(Exception):
    pass


class NVMLError_LibraryNotFound(NVMLError):  # pynvml's class names
    pass


class NVMLError_DriverNotLoaded(NVMLError):
    pass


class NVMLError_LibRmVersionMismatch(NVMLError):
    pass


class NVMLError_FunctionNotFound(NVMLError):
    pass


class NVMLError_NotSupported(NVMLError):
    pass


class NVMLError_NoPermission(NVMLError):
    pass


class NVMLError_GpuIsLost(NVMLError):
    pass


class NVMLError_Unknown(NVMLError):
    pass


A100 = {
    "name": "NVIDIA A100-PCIE-40GB",
    "uuid": "GPU-a100a100-0000-0000-0000-000000000000",
    "cc": (8, 0),
    "memory": 40 * GIB,
    "mig": [0, 0],
}
H100 = {
    "name": "NVIDIA H100 80GB HBM3",
    "uuid": "GPU-h100h100-1111-1111-1111-111111111111",
    "cc": (9, 0),
    "memory": 80 * GIB,
    "mig": [1, 1],
}
V100 = {
    "name": "Tesla V100-SXM2-32GB",
    "uuid": "GPU-v100v100-2222-2222-2222-222222222222",
    "cc": (7, 0),
    "memory": 32 * GIB,
    "mig": NVMLError_NotSupported("Not Supported"),
}


def make_nvml(
    devices=(),
    *,
    init_error: Exception | None = None,
    driver="550.54.15",
    cuda_v2: int | Exception | None = 12040,
    cuda_v1: int | Exception = 12040,
    nvml_version="12.550.54.15",
    as_bytes=False,
    errors: dict[str, Exception] | None = None,
    shutdown_error: Exception | None = None,
    error_classes: types.SimpleNamespace | None = None,
):
    """A pynvml-like module. ``errors`` maps a call name to the exception it
    raises; ``cuda_v2=None`` leaves the _v2 function out (an old binding).
    ``fake.calls`` records every call made."""
    classes = error_classes or sys.modules[__name__]
    fake = types.SimpleNamespace(calls=[], NVML_DEVICE_MIG_ENABLE=1)
    for name in (
        "NVMLError",
        "NVMLError_LibraryNotFound",
        "NVMLError_DriverNotLoaded",
        "NVMLError_LibRmVersionMismatch",
        "NVMLError_FunctionNotFound",
        "NVMLError_NotSupported",
        "NVMLError_NoPermission",
    ):
        setattr(fake, name, getattr(classes, name))
    errors = dict(errors or {})
    text = (lambda s: s.encode()) if as_bytes else (lambda s: s)

    def call(name, result):
        def fn(*args):
            fake.calls.append(name)
            if name in errors:
                raise errors[name]
            value = result(*args) if callable(result) else result
            if isinstance(value, Exception):
                raise value
            return value

        setattr(fake, name, fn)

    call("nvmlInit", lambda: init_error)
    call("nvmlShutdown", lambda: shutdown_error)
    call("nvmlSystemGetDriverVersion", text(driver))
    if cuda_v2 is not None:
        call("nvmlSystemGetCudaDriverVersion_v2", cuda_v2)
    call("nvmlSystemGetCudaDriverVersion", cuda_v1)
    call("nvmlSystemGetNVMLVersion", text(nvml_version))
    call("nvmlDeviceGetCount", len(devices))
    call("nvmlDeviceGetHandleByIndex", lambda i: ("handle", i))
    call("nvmlDeviceGetUUID", lambda h: text(devices[h[1]]["uuid"]))
    call("nvmlDeviceGetName", lambda h: text(devices[h[1]]["name"]))
    call("nvmlDeviceGetCudaComputeCapability", lambda h: devices[h[1]]["cc"])
    call(
        "nvmlDeviceGetMemoryInfo",
        lambda h: types.SimpleNamespace(total=devices[h[1]]["memory"], free=0, used=0),
    )
    call("nvmlDeviceGetMigMode", lambda h: devices[h[1]]["mig"])
    return fake


def run_probe(fake, environ=None, **ctx_kwargs) -> NvidiaFacts:
    ctx = ProbeContext(environ=environ or {}, nvml=fake, **ctx_kwargs)
    facts = gpu_nvidia.probe(ctx)
    # Whatever happened, the section is a valid part of the facts JSON.
    assert GpuFacts.model_validate_json(GpuFacts(nvidia=facts).model_dump_json()).nvidia == facts
    return facts


def shutdowns(fake) -> int:
    return fake.calls.count("nvmlShutdown")


# --------------------------------------------------------------------------
# nvmlInit failures


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (
            NVMLError_LibraryNotFound("NVML Shared Library Not Found"),
            "none",
            "libnvidia-ml.so.1 not found",
        ),
        (NVMLError_DriverNotLoaded("Driver Not Loaded"), "none", "driver not loaded"),
        (
            NVMLError_LibRmVersionMismatch("RM has detected an NVML/RM version mismatch."),
            "unknown",
            gpu_nvidia.MISMATCH,
        ),
        (NVMLError_NoPermission("Insufficient Permissions"), "unknown", "no permission"),
        (NVMLError_Unknown("Unknown Error"), "unknown", "nvmlInit failed: Unknown Error"),
    ],
    ids=["no-library", "driver-not-loaded", "lib-rm-mismatch", "no-permission", "other-nvml-error"],
)
def test_init_failures(error, status, words):
    fake = make_nvml([A100], init_error=error)
    facts = run_probe(fake)
    assert facts.probe.status == status
    assert words in facts.probe.reason
    assert "\n" not in facts.probe.reason
    assert fake.calls == ["nvmlInit"]  # nothing else, and no nvmlShutdown after a failed init
    assert facts.devices == () and facts.driver_version is None
    assert [(e.kind, e.source) for e in facts.probe.evidence] == [("call", "nvmlInit")]


def test_mismatch_reason_is_exact():
    facts = run_probe(make_nvml(init_error=NVMLError_LibRmVersionMismatch("x")))
    assert (
        facts.probe.reason
        == "driver library and kernel module versions differ (driver upgraded without reboot?)"
    )


# --------------------------------------------------------------------------
# Successful probes


def test_two_gpus_with_different_compute_capabilities():
    fake = make_nvml([A100, H100])
    facts = run_probe(fake)
    assert facts.probe.status == "ok" and facts.probe.reason == ""
    assert facts.driver_version == "550.54.15"
    assert facts.cuda_driver_version == "12.4"
    assert facts.nvml_version == "12.550.54.15"
    assert [(d.index, d.name, d.compute_capability, d.memory_mib) for d in facts.devices] == [
        (0, "NVIDIA A100-PCIE-40GB", "8.0", 40960),
        (1, "NVIDIA H100 80GB HBM3", "9.0", 81920),
    ]
    assert facts.devices[0].uuid == A100["uuid"] and facts.devices[1].uuid == H100["uuid"]
    assert shutdowns(fake) == 1 and fake.calls[-1] == "nvmlShutdown"
    # Evidence: init, driver, cuda, count, one per device.
    sources = [e.source for e in facts.probe.evidence]
    assert sources == [
        "nvmlInit",
        "nvmlSystemGetDriverVersion",
        "nvmlSystemGetCudaDriverVersion_v2",
        "nvmlDeviceGetCount",
        "nvmlDeviceGetHandleByIndex(0)",
        "nvmlDeviceGetHandleByIndex(1)",
    ]
    driver = facts.probe.evidence[1]
    assert (driver.kind, driver.detail) == ("call", "550.54.15")
    assert "9.0" in facts.probe.evidence[-1].detail and "H100" in facts.probe.evidence[-1].detail


def test_mig_enabled_on_one_and_not_capable_on_another():
    facts = run_probe(make_nvml([A100, H100, V100]))
    assert facts.probe.status == "ok"
    assert [d.mig_enabled for d in facts.devices] == [False, True, None]
    assert "mig n/a" in facts.probe.evidence[-1].detail


def test_mig_pending_mode_is_not_current_mode():
    pending = dict(A100, mig=[0, 1])  # enabled at the next reset only
    facts = run_probe(make_nvml([pending]))
    assert facts.devices[0].mig_enabled is False


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_str_and_bytes_returns(as_bytes):
    facts = run_probe(make_nvml([H100], as_bytes=as_bytes))
    assert facts.driver_version == "550.54.15"
    assert facts.nvml_version == "12.550.54.15"
    device = facts.devices[0]
    assert (device.name, device.uuid) == (H100["name"], H100["uuid"])
    assert all(isinstance(v, str) for v in (device.name, device.uuid, facts.driver_version))


def test_cuda_v2_function_not_found_falls_back_to_v1():
    fake = make_nvml(
        [A100], cuda_v2=NVMLError_FunctionNotFound("Function Not Found"), cuda_v1=11080
    )
    facts = run_probe(fake)
    assert facts.probe.status == "ok"
    assert facts.cuda_driver_version == "11.8"
    assert fake.calls.index("nvmlSystemGetCudaDriverVersion_v2") < fake.calls.index(
        "nvmlSystemGetCudaDriverVersion"
    )
    assert "nvmlSystemGetCudaDriverVersion" in [e.source for e in facts.probe.evidence]


def test_old_binding_without_v2_uses_v1():
    fake = make_nvml([A100], cuda_v2=None, cuda_v1=12020)
    facts = run_probe(fake)
    assert facts.cuda_driver_version == "12.2"
    assert "nvmlSystemGetCudaDriverVersion_v2" not in fake.calls


def test_no_cuda_version_at_all_still_ok():
    not_found = NVMLError_FunctionNotFound("Function Not Found")
    facts = run_probe(make_nvml([A100], cuda_v2=not_found, cuda_v1=not_found))
    assert facts.probe.status == "ok" and facts.cuda_driver_version is None


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (12040, "12.4"),
        (11080, "11.8"),
        (12090, "12.9"),
        (13000, "13.0"),
        (10010, "10.1"),
        (0, None),
        (None, None),
    ],
)
def test_cuda_version_string(value, shown):
    assert gpu_nvidia.cuda_version_string(value) == shown


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ("nvmlDeviceGetMemoryInfo", NVMLError_NotSupported("Not Supported")),
        ("nvmlDeviceGetMemoryInfo", NVMLError_FunctionNotFound("Function Not Found")),
        ("nvmlDeviceGetMigMode", NVMLError_FunctionNotFound("Function Not Found")),
    ],
)
def test_device_call_not_supported_keeps_the_device(call, error):
    fake = make_nvml([A100, H100], errors={call: error})
    facts = run_probe(fake)
    assert facts.probe.status == "ok"
    assert len(facts.devices) == 2
    assert [d.compute_capability for d in facts.devices] == ["8.0", "9.0"]
    field = "memory_mib" if call == "nvmlDeviceGetMemoryInfo" else "mig_enabled"
    assert [getattr(d, field) for d in facts.devices] == [None, None]
    assert shutdowns(fake) == 1


def test_compute_capability_not_supported_leaves_it_none():
    fake = make_nvml(
        [A100], errors={"nvmlDeviceGetCudaComputeCapability": NVMLError_NotSupported("x")}
    )
    facts = run_probe(fake)
    assert facts.probe.status == "ok"
    assert facts.devices[0].compute_capability is None
    assert facts.devices[0].name == A100["name"]


def test_system_queries_not_supported_leave_fields_none():
    fake = make_nvml(
        [A100],
        errors={
            "nvmlSystemGetDriverVersion": NVMLError_NotSupported("x"),
            "nvmlSystemGetNVMLVersion": NVMLError_FunctionNotFound("x"),
        },
    )
    facts = run_probe(fake)
    assert facts.probe.status == "ok"
    assert facts.driver_version is None and facts.nvml_version is None
    assert facts.cuda_driver_version == "12.4"


def test_zero_devices_is_none_but_keeps_the_driver():
    fake = make_nvml([])
    facts = run_probe(fake)
    assert facts.probe.status == "none"
    assert "no GPUs" in facts.probe.reason
    assert facts.driver_version == "550.54.15" and facts.cuda_driver_version == "12.4"
    assert shutdowns(fake) == 1


# --------------------------------------------------------------------------
# Failures after nvmlInit: nvmlShutdown exactly once, never a raise


def test_later_nvml_error_is_unknown_and_shuts_down_once():
    fake = make_nvml(
        [A100, H100], errors={"nvmlDeviceGetCount": NVMLError_Unknown("Unknown Error")}
    )
    facts = run_probe(fake)
    assert facts.probe.status == "unknown"
    assert facts.probe.reason.startswith("nvmlDeviceGetCount failed: Unknown Error")
    assert facts.driver_version == "550.54.15"  # what was found before the failure is kept
    assert shutdowns(fake) == 1 and fake.calls[-1] == "nvmlShutdown"


def test_gpu_lost_names_the_call_and_device():
    fake = make_nvml([A100], errors={"nvmlDeviceGetUUID": NVMLError_GpuIsLost("GPU is lost")})
    facts = run_probe(fake)
    assert facts.probe.status == "unknown"
    assert (
        "nvmlDeviceGetUUID(<handle 0>)" in facts.probe.reason
        and "GPU is lost" in facts.probe.reason
    )
    assert shutdowns(fake) == 1


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (NVMLError_NoPermission("Insufficient Permissions"), "unknown", "no permission"),
        (NVMLError_LibRmVersionMismatch("x"), "unknown", gpu_nvidia.MISMATCH),
        (RuntimeError("binding bug"), "error", "RuntimeError: binding bug"),
        (KeyError("k"), "error", "KeyError"),
    ],
)
def test_device_handle_failures(error, status, words):
    fake = make_nvml([A100], errors={"nvmlDeviceGetHandleByIndex": error})
    facts = run_probe(fake)
    assert facts.probe.status == status
    assert words in facts.probe.reason
    assert shutdowns(fake) == 1


def test_failing_shutdown_keeps_the_facts():
    fake = make_nvml([A100], shutdown_error=NVMLError_Unknown("Uninitialized"))
    facts = run_probe(fake)
    assert facts.probe.status == "ok" and len(facts.devices) == 1
    assert facts.probe.evidence[-1].source == "nvmlShutdown"
    assert shutdowns(fake) == 1


def test_broken_module_is_error_not_exception():
    facts = run_probe(types.SimpleNamespace())  # no NVMLError, no nvmlInit
    assert facts.probe.status == "error"
    assert "AttributeError" in facts.probe.reason


# --------------------------------------------------------------------------
# Environment, module selection, --root


def test_visible_devices_recorded_as_seen():
    environ = {"CUDA_VISIBLE_DEVICES": "1,0", "NVIDIA_VISIBLE_DEVICES": "all"}
    facts = run_probe(make_nvml([A100, H100]), environ=environ)
    assert facts.cuda_visible_devices == "1,0"
    assert facts.nvidia_visible_devices == "all"
    # NVML indices stay physical: both devices, in NVML order.
    assert [d.index for d in facts.devices] == [0, 1]
    env = {(e.source, e.detail) for e in facts.probe.evidence if e.kind == "env"}
    assert env == {("CUDA_VISIBLE_DEVICES", "1,0"), ("NVIDIA_VISIBLE_DEVICES", "all")}


def test_visible_devices_empty_string_is_not_unset():
    facts = run_probe(make_nvml([A100]), environ={"CUDA_VISIBLE_DEVICES": ""})
    assert facts.cuda_visible_devices == "" and facts.nvidia_visible_devices is None


def test_visible_devices_recorded_even_without_nvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    facts = gpu_nvidia.probe(ProbeContext(environ={"CUDA_VISIBLE_DEVICES": "3"}))
    assert facts.cuda_visible_devices == "3"


def test_pynvml_not_importable(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    facts = gpu_nvidia.probe(ProbeContext(environ={}))
    assert facts.probe.status == "none"
    assert facts.probe.reason == "nvidia-ml-py not installed"


def test_ctx_nvml_is_used_instead_of_import(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    fake = make_nvml([H100])
    assert run_probe(fake).probe.status == "ok"
    assert "nvmlInit" in fake.calls


def test_copied_root_does_not_touch_live_nvml(tmp_path, monkeypatch):
    def boom():
        raise AssertionError("live NVML touched")

    monkeypatch.setitem(sys.modules, "pynvml", types.SimpleNamespace(nvmlInit=boom))
    facts = gpu_nvidia.probe(ProbeContext(root=tmp_path, environ={}))
    assert facts.probe.status == "unknown"
    assert facts.probe.reason == "not probed: NVML reads the live machine, not --root"


def test_copied_root_with_fake_nvml_is_probed(tmp_path):
    facts = run_probe(make_nvml([A100]), root=tmp_path)
    assert facts.probe.status == "ok"


# --------------------------------------------------------------------------
# The real nvidia-ml-py


def test_real_error_classes_are_matched():
    """Fake calls raising the real binding's exceptions (built from codes, as
    pynvml does) are classified like the fakes."""
    pynvml = pytest.importorskip("pynvml")
    mismatch = pynvml.NVMLError(pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH)
    assert type(mismatch).__name__ == "NVMLError_LibRmVersionMismatch"
    fake = make_nvml([A100], init_error=mismatch, error_classes=pynvml)
    assert run_probe(fake).probe.reason == gpu_nvidia.MISMATCH

    not_found = pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
    fake = make_nvml([A100], cuda_v2=not_found, cuda_v1=12020, error_classes=pynvml)
    assert run_probe(fake).cuda_driver_version == "12.2"


def test_real_pynvml_without_driver_says_none():
    pytest.importorskip("pynvml")
    facts = gpu_nvidia.probe(ProbeContext(environ={}))
    assert GpuFacts(nvidia=facts).nvidia.probe.status == facts.probe.status
    if ctypes.util.find_library("nvidia-ml") is None:
        assert facts.probe.status == "none", facts.probe
        reason = facts.probe.reason.lower()
        assert "library" in reason or "driver" in reason
        assert facts.devices == ()
    else:  # a GPU host: the real thing
        assert facts.probe.status in ("ok", "none", "unknown"), facts.probe
        if facts.probe.status == "ok":
            assert facts.driver_version and facts.devices
            assert all(d.compute_capability.count(".") == 1 for d in facts.devices)


# --------------------------------------------------------------------------
# AMD: KFD topology trees

NODES = "sys/devices/virtual/kfd/kfd/topology/nodes"


def write_node(root: Path, node: int, gfx: int, vendor: int = 0, device: int = 0) -> None:
    where = root / NODES / str(node)
    where.mkdir(parents=True)
    simd = 0 if gfx == 0 else 440
    (where / "properties").write_text(
        f"cpu_cores_count {64 if gfx == 0 else 0}\n"
        f"simd_count {simd}\n"
        "mem_banks_count 1\n"
        f"gfx_target_version {gfx}\n"
        f"vendor_id {vendor}\n"
        f"device_id {device}\n"
        "location_id 0\n"
        "drm_render_minor 128\n"
    )


def write_driver(root: Path, version: str) -> None:
    (root / "sys/module/amdgpu").mkdir(parents=True)
    (root / "sys/module/amdgpu/version").write_text(version + "\n")


def amd(root: Path):
    facts = gpu_amd.probe(ProbeContext(root=root, environ={}))
    assert GpuFacts.model_validate_json(GpuFacts(amd=facts).model_dump_json()).amd == facts
    return facts


@pytest.mark.parametrize(
    ("version", "name"),
    [
        (90010, "gfx90a"),
        (90400, "gfx940"),
        (90402, "gfx942"),
        (110000, "gfx1100"),
        (100300, "gfx1030"),
        (90008, "gfx908"),
        (90012, "gfx90c"),
        (120001, "gfx1201"),
        (110501, "gfx1151"),
        (90500, "gfx950"),
        (80003, "gfx803"),
    ],
)
def test_gfx_target_name(version, name):
    assert gpu_amd.gfx_target_name(version) == name


def test_mi250x_two_gcds(tmp_path):
    write_node(tmp_path, 0, 0)
    write_node(tmp_path, 1, 90010, 4098, 29704)
    write_node(tmp_path, 2, 90010, 4098, 29704)
    write_driver(tmp_path, "6.8.5")
    facts = amd(tmp_path)
    assert facts.probe.status == "ok" and facts.probe.reason == ""
    assert facts.driver_version == "6.8.5"
    assert [
        (d.node, d.gfx_target, d.gfx_target_version, d.vendor_id, d.device_id)
        for d in facts.devices
    ] == [
        (1, "gfx90a", 90010, 4098, 29704),
        (2, "gfx90a", 90010, 4098, 29704),
    ]
    sources = [e.source for e in facts.probe.evidence]
    assert sources == [f"{tmp_path}/{NODES}/{n}/properties" for n in range(3)] + [
        f"{tmp_path}/sys/module/amdgpu/version"
    ]
    assert facts.probe.evidence[0].detail == "gfx_target_version 0: CPU node"
    assert facts.probe.evidence[1].detail == "gfx_target_version 90010 -> gfx90a"


def test_mi300x(tmp_path):
    write_node(tmp_path, 0, 0)
    write_node(tmp_path, 1, 0)
    for node in range(2, 10):
        write_node(tmp_path, node, 90402, 4098, 29857)
    write_node(tmp_path, 10, 90402, 4098, 29857)
    facts = amd(tmp_path)
    assert facts.probe.status == "ok"
    assert {d.gfx_target for d in facts.devices} == {"gfx942"}
    assert [d.node for d in facts.devices] == list(range(2, 11))  # numeric order, 10 last


def test_rx7900(tmp_path):
    write_node(tmp_path, 0, 0)
    write_node(tmp_path, 1, 110000, 4098, 29772)
    write_driver(tmp_path, "6.3.6")
    facts = amd(tmp_path)
    assert [d.gfx_target for d in facts.devices] == ["gfx1100"]
    assert facts.devices[0].device_id == 29772


def test_cpu_only_topology_is_none(tmp_path):
    write_node(tmp_path, 0, 0)
    facts = amd(tmp_path)
    assert facts.probe.status == "none"
    assert "no GPU nodes" in facts.probe.reason
    assert facts.devices == ()


def test_missing_topology_is_none(tmp_path):
    facts = amd(tmp_path)
    assert facts.probe.status == "none"
    assert "no KFD topology" in facts.probe.reason
    assert facts.driver_version is None


def test_missing_driver_version_is_still_ok(tmp_path):
    write_node(tmp_path, 0, 0)
    write_node(tmp_path, 1, 90402, 4098, 29857)
    facts = amd(tmp_path)
    assert facts.probe.status == "ok"
    assert facts.driver_version is None
    assert facts.probe.evidence[-1].detail == "absent (in-tree amdgpu)"


def test_odd_nodes_are_skipped(tmp_path):
    write_node(tmp_path, 0, 0)
    (tmp_path / NODES / "1").mkdir()  # no properties file
    (tmp_path / NODES / "README").mkdir()  # not a node number
    write_node(tmp_path, 2, 90010, 4098, 29704)
    where = tmp_path / NODES / "3"
    where.mkdir()
    (where / "properties").write_text(
        "cpu_cores_count 0\n"
    )  # no gfx_target_version: as LLVM, a CPU
    facts = amd(tmp_path)
    assert [d.node for d in facts.devices] == [2]
    assert "unreadable" in [e.detail for e in facts.probe.evidence]


def test_parse_properties_ignores_junk():
    assert gpu_amd.parse_properties("gfx_target_version 90010\nname x y\nvendor_id abc\n\n") == {
        "gfx_target_version": 90010
    }
