"""NVIDIA GPUs and driver through NVML (the ``nvidia-ml-py`` binding, ``import pynvml``).

Calls, by their names in nvidia-ml-py's ``pynvml.py``: ``nvmlInit``,
``nvmlSystemGetDriverVersion``, ``nvmlSystemGetCudaDriverVersion_v2`` (falling
back to ``nvmlSystemGetCudaDriverVersion`` on ``NVMLError_FunctionNotFound``,
as wheelnext/nvidia-variant-provider's ``detect_cuda.py`` does),
``nvmlSystemGetNVMLVersion``, ``nvmlDeviceGetCount``,
``nvmlDeviceGetHandleByIndex``, ``nvmlDeviceGetUUID``, ``nvmlDeviceGetName``,
``nvmlDeviceGetCudaComputeCapability``, ``nvmlDeviceGetMemoryInfo``,
``nvmlDeviceGetMigMode``, for a GPU in MIG mode
``nvmlDeviceGetMaxMigDeviceCount``, ``nvmlDeviceGetMigDeviceHandleByIndex``
(``NVMLError_NotFound`` for an empty slot) and ``nvmlDeviceGetUUID`` of each
instance (the ``MIG-...`` UUIDs CUDA_VISIBLE_DEVICES names), and
``nvmlShutdown`` (always, in a ``finally``, once ``nvmlInit`` succeeded).

Errors are the binding's ``NVMLError_<Name>`` subclasses of ``NVMLError``,
matched by name through the module so that fakes work:

- ``LibraryNotFound`` (libnvidia-ml.so.1 does not load) and
  ``DriverNotLoaded``: status ``none``; so is a driver with 0 devices.
- ``LibRmVersionMismatch`` (driver upgraded without a reboot),
  ``NoPermission`` and any other ``NVMLError``: status ``unknown``.
- ``FunctionNotFound`` / ``NotSupported`` on one query leave that field
  empty and keep the device. A GPU that is not MIG-capable answers
  ``nvmlDeviceGetMigMode`` with NOT_SUPPORTED; like NVIDIA/go-nvlib
  (``pkg/nvlib/device/device.go``, ``IsMigCapable``) that reads as "not
  MIG-capable": ``mig_enabled`` is None.

Device indices are NVML's physical ones, which ignore ``CUDA_VISIBLE_DEVICES``;
that variable and ``NVIDIA_VISIBLE_DEVICES`` are recorded as seen.
"""

from __future__ import annotations

import warnings
from typing import Any

from hostfacts.context import ProbeContext
from hostfacts.model import Evidence, NvidiaDevice, NvidiaFacts, NvidiaMigDevice, Probe, Status

#: Reason when probing a copied tree: NVML would describe this machine instead.
NOT_LIVE = "not probed: NVML reads the live machine, not --root"
MISMATCH = "driver library and kernel module versions differ (driver upgraded without reboot?)"
NOT_INSTALLED = "nvidia-ml-py not installed"
#: ``NVML_DEVICE_MIG_ENABLE`` in pynvml.py.
MIG_ENABLE = 1


class _Absent(Exception):
    """The binding has no function of that name (an old nvidia-ml-py)."""


def probe(ctx: ProbeContext) -> NvidiaFacts:
    """NVIDIA driver, CUDA driver version and devices as NVML reports them.

    Args:
        ctx: probe inputs. ``ctx.nvml`` (a pynvml-like module) is used instead
            of ``import pynvml`` when set; ``ctx.environ`` gives
            CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES.

    Returns:
        :class:`NvidiaFacts`: ``driver_version`` ('550.54.15'),
        ``cuda_driver_version`` ('12.4', from the int 12040),
        ``nvml_version``, one :class:`NvidiaDevice` per NVML index (uuid,
        name, compute capability 'major.minor', total memory in MiB,
        MIG mode) and ``probe``: ``ok`` with at least one device; ``none``
        when nvidia-ml-py, libnvidia-ml or the driver is missing or there are
        no devices; ``unknown`` for driver/library mismatch, permissions,
        other NVML errors, or a ``--root`` tree without ``ctx.nvml``;
        ``error`` for anything unexpected. Evidence: one ``call`` per call
        that mattered (init, driver, CUDA, count, one per device).

    Never raises. Sources: nvidia-ml-py ``pynvml.py``; NVIDIA/go-nvlib for
    MIG NOT_SUPPORTED.
    """
    cuda_visible = ctx.environ.get("CUDA_VISIBLE_DEVICES")
    nvidia_visible = ctx.environ.get("NVIDIA_VISIBLE_DEVICES")
    run = _Run(cuda_visible, nvidia_visible)
    try:
        _probe(ctx, run)
    except Exception as exc:  # never raise: report the failure instead
        run.status, run.reason = (
            "error",
            _one_line(f"NVML probe failed: {type(exc).__name__}: {_text(exc)}"),
        )
    return run.facts()


class _Run:
    """What one probe has found so far (kept when a later call fails)."""

    def __init__(self, cuda_visible: str | None, nvidia_visible: str | None) -> None:
        self.status: Status = "unknown"
        self.reason = ""
        self.evidence: list[Evidence] = []
        self.driver_version: str | None = None
        self.cuda_driver_version: str | None = None
        self.nvml_version: str | None = None
        self.devices: list[NvidiaDevice] = []
        self.current = "nvmlInit"
        self.device: int | None = None
        self.cuda_visible = cuda_visible
        self.nvidia_visible = nvidia_visible
        for name, value in (
            ("CUDA_VISIBLE_DEVICES", cuda_visible),
            ("NVIDIA_VISIBLE_DEVICES", nvidia_visible),
        ):
            if value is not None:
                self.evidence.append(Evidence(kind="env", source=name, detail=_one_line(value)))

    def call(self, source: str, detail: str) -> None:
        self.evidence.append(Evidence(kind="call", source=source, detail=_one_line(detail)))

    def facts(self) -> NvidiaFacts:
        return NvidiaFacts(
            probe=Probe(
                status=self.status,
                reason="" if self.status == "ok" else self.reason,
                evidence=tuple(self.evidence),
            ),
            driver_version=self.driver_version,
            cuda_driver_version=self.cuda_driver_version,
            nvml_version=self.nvml_version,
            devices=tuple(self.devices),
            cuda_visible_devices=self.cuda_visible,
            nvidia_visible_devices=self.nvidia_visible,
        )


def _probe(ctx: ProbeContext, run: _Run) -> None:
    nvml = ctx.nvml
    if nvml is None:
        if not ctx.allow_commands:
            run.status, run.reason = "unknown", NOT_LIVE
            return
        try:
            with warnings.catch_warnings():
                # The deprecated 'pynvml' wheel's import hook warns on import.
                warnings.simplefilter("ignore", FutureWarning)
                import pynvml as nvml  # NVML loads only when probed
        except ImportError:
            run.status, run.reason = "none", NOT_INSTALLED
            return
    base = _error_class(nvml, "NVMLError")

    try:
        nvml.nvmlInit()
    except base as exc:
        run.call("nvmlInit", _text(exc))
        run.status, run.reason = _classify(nvml, exc, "nvmlInit")
        return
    run.call("nvmlInit", "ok")
    try:
        _collect(nvml, run)
    except base as exc:
        run.status, run.reason = _classify(nvml, exc, run.current)
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception as exc:  # a failed shutdown must not lose what was found
            run.call("nvmlShutdown", _text(exc))


def _collect(nvml: Any, run: _Run) -> None:
    """System and per-device queries after a successful nvmlInit.

    Raises:
        NVMLError (the module's): a required query failed (``run.current`` names it).
    """
    run.driver_version = _str(_optional(nvml, run, "nvmlSystemGetDriverVersion"))
    run.call("nvmlSystemGetDriverVersion", run.driver_version or "not available")

    source = "nvmlSystemGetCudaDriverVersion_v2"
    try:
        cuda = _required(nvml, run, source)
    except (_Absent, *_skippable(nvml, "FunctionNotFound", "NotSupported")):
        source = "nvmlSystemGetCudaDriverVersion"
        cuda = _optional(nvml, run, source)
    run.cuda_driver_version = cuda_version_string(cuda)
    run.call(
        source, f"{cuda} -> {run.cuda_driver_version}" if cuda is not None else "not available"
    )

    run.nvml_version = _str(_optional(nvml, run, "nvmlSystemGetNVMLVersion"))

    count = int(_required(nvml, run, "nvmlDeviceGetCount"))
    run.call("nvmlDeviceGetCount", str(count))
    for index in range(count):
        run.devices.append(_device(nvml, run, index))

    if run.devices:
        run.status, run.reason = "ok", ""
    else:
        run.status = "none"
        run.reason = f"NVIDIA driver {run.driver_version or '(version unknown)'} loaded but NVML lists no GPUs"


def _device(nvml: Any, run: _Run, index: int) -> NvidiaDevice:
    run.device = index
    handle = _required(nvml, run, "nvmlDeviceGetHandleByIndex", index)
    uuid = _str(_optional(nvml, run, "nvmlDeviceGetUUID", handle))
    name = _str(_optional(nvml, run, "nvmlDeviceGetName", handle))
    cc = _optional(nvml, run, "nvmlDeviceGetCudaComputeCapability", handle)
    capability = f"{int(cc[0])}.{int(cc[1])}" if cc is not None else None
    memory = _optional(nvml, run, "nvmlDeviceGetMemoryInfo", handle)
    memory_mib = int(memory.total) // 2**20 if memory is not None else None
    mig = _optional(nvml, run, "nvmlDeviceGetMigMode", handle)
    mig_enabled = None
    if mig is not None:
        current = mig[0] if isinstance(mig, list | tuple) else mig
        mig_enabled = int(current) == int(getattr(nvml, "NVML_DEVICE_MIG_ENABLE", MIG_ENABLE))
    mig_shown = {None: "n/a", True: "on", False: "off"}[mig_enabled]
    run.call(
        f"nvmlDeviceGetHandleByIndex({index})",
        f"{name or '?'} {uuid or '?'} cc {capability or '?'} "
        f"{'?' if memory_mib is None else memory_mib} MiB mig {mig_shown}",
    )
    instances = _mig_devices(nvml, run, handle) if mig_enabled else ()
    return NvidiaDevice(
        index=index,
        uuid=uuid or None,
        name=name or None,
        compute_capability=capability or None,
        memory_mib=memory_mib,
        mig_enabled=mig_enabled,
        mig_devices=instances,
    )


#: The most MIG instances one GPU is asked for (an H100 has at most 7).
MAX_MIG = 64


def _mig_devices(nvml: Any, run: _Run, handle: Any) -> tuple[NvidiaMigDevice, ...]:
    """The MIG instances of a GPU in MIG mode: index and UUID of each
    occupied slot (an empty slot answers ``NVMLError_NotFound``; a binding or
    driver without the calls gives ()).

    Raises:
        NVMLError (the module's): any other failure of the calls.
    """
    count = _optional(nvml, run, "nvmlDeviceGetMaxMigDeviceCount", handle)
    found = []
    for slot in range(min(int(count or 0), MAX_MIG)):
        try:
            mig = _required(nvml, run, "nvmlDeviceGetMigDeviceHandleByIndex", handle, slot)
        except (_Absent, *_skippable(nvml, "NotFound", "FunctionNotFound", "NotSupported")):
            continue
        uuid = _str(_optional(nvml, run, "nvmlDeviceGetUUID", mig))
        found.append(NvidiaMigDevice(index=slot, uuid=uuid or None))
    if count is not None:
        run.call(
            f"nvmlDeviceGetMigDeviceHandleByIndex(<handle {run.device}>, 0..{int(count) - 1})",
            ", ".join(d.uuid or "?" for d in found) or "no MIG instances",
        )
    return tuple(found)


def cuda_version_string(value: Any) -> str | None:
    """'12.4' from NVML's CUDA driver version int 12040 (``v//1000``,
    ``(v%1000)//10``); None for None or a non-positive value. Never raises
    for ints."""
    if value is None:
        return None
    version = int(value)
    if version <= 0:
        return None
    return f"{version // 1000}.{(version % 1000) // 10}"


def _error_class(nvml: Any, name: str) -> Any:
    """The module's exception class `name`, or () (matches nothing) if absent."""
    found = getattr(nvml, name, None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else ()


def _skippable(nvml: Any, *names: str) -> tuple[type[BaseException], ...]:
    return tuple(cls for cls in (_error_class(nvml, f"NVMLError_{n}") for n in names) if cls != ())


def _required(nvml: Any, run: _Run, name: str, *args: Any) -> Any:
    """``nvml.<name>(*args)``, remembering the call in ``run.current`` for the reason.

    Raises:
        _Absent: the binding has no such function.
        NVMLError (the module's): as the call raises it.
    """
    shown = ", ".join(str(a) if isinstance(a, int) else f"<handle {run.device}>" for a in args)
    run.current = f"{name}({shown})" if args else name
    fn = getattr(nvml, name, None)
    if fn is None:
        raise _Absent(f"this pynvml has no {name}")
    return fn(*args)


def _optional(nvml: Any, run: _Run, name: str, *args: Any) -> Any:
    """``nvml.<name>(*args)``, or None when the binding, driver or device does
    not have it (missing attribute, FunctionNotFound, NotSupported)."""
    try:
        return _required(nvml, run, name, *args)
    except (_Absent, *_skippable(nvml, "FunctionNotFound", "NotSupported")):
        return None


def _classify(nvml: Any, exc: BaseException, call: str) -> tuple[Status, str]:
    """(status, one-line reason) for an NVMLError raised by `call`."""
    message = _text(exc)
    if isinstance(exc, _error_class(nvml, "NVMLError_LibraryNotFound")):
        return "none", f"NVIDIA driver library libnvidia-ml.so.1 not found ({call}: {message})"
    if isinstance(exc, _error_class(nvml, "NVMLError_DriverNotLoaded")):
        return "none", f"NVIDIA driver not loaded ({call}: {message})"
    if isinstance(exc, _error_class(nvml, "NVMLError_LibRmVersionMismatch")):
        return "unknown", MISMATCH
    if isinstance(exc, _error_class(nvml, "NVMLError_NoPermission")):
        return "unknown", _one_line(f"no permission to query NVML ({call}: {message})")
    return "unknown", _one_line(f"{call} failed: {message} ({type(exc).__name__})")


def _str(value: Any) -> str | None:
    """Text of an NVML string (old bindings return bytes)."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace").rstrip("\x00")
    return str(value)


def _text(exc: BaseException) -> str:
    """str(exc), which for a real NVMLError calls into the library and may fail."""
    try:
        return _one_line(str(exc)) or type(exc).__name__
    except Exception:
        return type(exc).__name__


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
