"""High-speed networks: InfiniBand, RoCE, Omni-Path, AWS EFA, Slingshot (CXI), libfabric.

Sources (host-facts reference, section 5):

- RDMA devices: ``/sys/class/infiniband/<device>/ports/<n>/{link_layer,
  state,rate}`` (Linux ``Documentation/ABI/stable/sysfs-class-infiniband``).
  ``link_layer`` is what the kernel's ``link_layer_show`` prints:
  ``InfiniBand``, ``Ethernet`` (RoCE) or ``Unknown`` (unspecified, e.g. EFA);
  ``state`` reads like ``4: ACTIVE``, ``rate`` like ``200 Gb/sec (4X HDR)``.
  Omni-Path ports also say ``InfiniBand``; they are told apart by the
  device's driver (``device/driver`` links to ``hfi1``) or its ``hfi1_N``
  name (sosreport ``sos/plugins/infiniband.py`` treats ``hfi*`` as OPA). AWS
  EFA devices (driver ``efa``; udev may rename them, e.g. ``rdmap16s27``) are
  kind ``other`` and fabric ``efa``. iWARP NICs (``node_type`` ``RNIC``) say
  ``Ethernet`` too; they are kind ``other`` and fabric ``iwarp``, not RoCE.
- Slingshot: the cxi driver's ``/sys/class/cxi/cxiN`` devices, and Cassini
  NICs on PCI even without the driver: ``17db:0501`` (Cassini-1) and
  ``1590:0371`` (Cassini-2) (HewlettPackard/shs-cxi-driver
  ``drivers/net/ethernet/hpe/ss1/cass_core.h``).
- libfabric: ``fi_info -l`` (fi_info(1), ofiwg/libfabric ``util/info.c``
  ``print_providers``) prints each provider as ``<name>:`` at the start of a
  line followed by an indented ``    version: <major>.<minor>``; the result
  depends on ``FI_PROVIDER`` and on which ``libfabric.so`` loads. It runs only
  when ``fi_info`` is on the context's PATH and commands may run.

``fabrics`` summarises the hardware in one vocabulary: ``infiniband``,
``roce``, ``opa``, ``efa``, ``iwarp`` and ``cxi``, from devices only. A listed
libfabric provider shows what this libfabric can load, not that the hardware
is there (Debian 12's libfabric 1.17 lists ``psm2`` and ``psm`` on a machine
without Omni-Path), so providers are recorded in ``libfabric_providers`` and
never read as a fabric; ``tcp`` is always available and is not listed.
``fi_info`` gets the time the probe has left.
"""

from __future__ import annotations

import os
import re
import time

from hostfacts.context import ProbeContext, file_evidence
from hostfacts.model import Evidence, InterconnectFacts, Probe, RdmaDevice
from hostfacts.probes.system import read_pci_devices

INFINIBAND = "/sys/class/infiniband"
CXI = "/sys/class/cxi"

#: (vendor, device) of HPE Slingshot Cassini NICs (cass_core.h).
CASSINI_PCI_IDS = {("17db", "0501"): "Cassini-1", ("1590", "0371"): "Cassini-2"}

#: A provider line of ``fi_info -l``: the name at column 0, then ':'.
_PROVIDER_LINE = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_;.+-]*):\s*$")


def rdma_kind(name: str, link_layer: str, driver: str | None, node_type: str | None = None) -> str:
    """Kind of one RDMA port: 'infiniband', 'roce', 'opa' or 'other'.

    Args:
        name: device name, e.g. 'mlx5_0', 'hfi1_0'.
        link_layer: the port's sysfs ``link_layer``.
        driver: name of the device's driver (``device/driver`` link), or None.
        node_type: the device's sysfs ``node_type`` (e.g. '1: CA', '4: RNIC').

    Never raises.
    """
    if driver == "efa" or (driver is None and name.startswith("efa")):
        return "other"
    if driver == "hfi1" or re.match(r"hfi1_\d+$", name):
        return "opa"
    if node_type and "RNIC" in node_type:
        return "other"
    if link_layer == "InfiniBand":
        return "infiniband"
    if link_layer == "Ethernet":
        return "roce"
    return "other"


def parse_fi_info_list(text: str) -> tuple[str, ...]:
    """Provider names of ``fi_info -l`` output, in order, each once.

    A layered name (``tcp;ofi_rxm``) gives each of its parts. Never raises.

    Example: 'cxi:\\n    version: 0.1\\nshm:\\n    version: 203.10\\n' ->
    ('cxi', 'shm').
    """
    names: list[str] = []
    for line in text.splitlines():
        found = _PROVIDER_LINE.match(line)
        if not found or found.group(1) == "version":
            continue
        for part in found.group(1).split(";"):
            if part and part not in names:
                names.append(part)
    return tuple(names)


def probe(ctx: ProbeContext) -> InterconnectFacts:
    """RDMA ports, CXI devices, libfabric providers and the fabric summary.

    Args:
        ctx: probe inputs; sysfs is read under ``ctx.root``, ``fi_info -l``
            runs only when ``ctx`` allows commands and finds it on its PATH.

    Returns:
        InterconnectFacts; probe ``ok`` when anything was found, ``none``
        ("no RDMA, CXI or libfabric found") otherwise, ``error`` if the probe
        itself failed. Evidence: the directories and files read, the command
        run. Never raises.
    """
    evidence: list[Evidence] = []
    try:
        return _probe(ctx, evidence, time.monotonic())
    except Exception as exc:  # never raise: report the failure instead
        reason = " ".join(f"interconnect probe failed: {type(exc).__name__}: {exc}".split())[:200]
        return InterconnectFacts(
            probe=Probe(status="error", reason=reason, evidence=tuple(evidence))
        )


def _probe(ctx: ProbeContext, evidence: list[Evidence], start: float) -> InterconnectFacts:
    fabrics: set[str] = set()
    rdma = _rdma(ctx, evidence, fabrics)
    cxi = _cxi(ctx, evidence, fabrics)
    providers = _providers(ctx, evidence, ctx.timeout - (time.monotonic() - start))
    if rdma or cxi or providers or fabrics:
        status = Probe(status="ok", reason="", evidence=tuple(evidence))
    else:
        status = Probe(
            status="none", reason="no RDMA, CXI or libfabric found", evidence=tuple(evidence)
        )
    return InterconnectFacts(
        probe=status,
        rdma=rdma,
        cxi=cxi,
        libfabric_providers=providers,
        fabrics=tuple(sorted(fabrics)),
    )


def _read(ctx: ProbeContext, absolute: str) -> str | None:
    """A one-line sysfs attribute, stripped, or None."""
    text = ctx.read_text(absolute, limit=4096)
    return text.strip() if text is not None else None


def _driver(ctx: ProbeContext, device: str) -> str | None:
    """Name of the driver bound to RDMA device `device` (its ``device/driver`` link)."""
    try:
        return os.path.basename(os.readlink(ctx.path(f"{INFINIBAND}/{device}/device/driver")))
    except OSError:
        return None


def _rdma(ctx: ProbeContext, evidence: list[Evidence], fabrics: set[str]) -> tuple[RdmaDevice, ...]:
    """Every port of every device of /sys/class/infiniband."""
    devices = ctx.listdir(INFINIBAND)
    if not devices:
        evidence.append(file_evidence(ctx, INFINIBAND, "absent or empty"))
        return ()
    ports: list[RdmaDevice] = []
    for name in devices:
        driver = _driver(ctx, name)
        node_type = _read(ctx, f"{INFINIBAND}/{name}/node_type")
        numbers = sorted(int(n) for n in ctx.listdir(f"{INFINIBAND}/{name}/ports") if n.isdigit())
        for number in numbers:
            base = f"{INFINIBAND}/{name}/ports/{number}"
            link_layer = _read(ctx, f"{base}/link_layer") or "Unknown"
            kind = rdma_kind(name, link_layer, driver, node_type)
            port = RdmaDevice(
                name=name,
                port=number,
                link_layer=link_layer,
                kind=kind,
                state=_read(ctx, f"{base}/state") or None,
                rate=_read(ctx, f"{base}/rate") or None,
            )
            ports.append(port)
            evidence.append(
                file_evidence(
                    ctx,
                    f"{base}/link_layer",
                    f"{link_layer}, {port.state or '?'}, {port.rate or '?'}, driver {driver or '?'}",
                )
            )
            if kind != "other":
                fabrics.add(kind)
            elif driver == "efa" or (driver is None and name.startswith("efa")):
                fabrics.add("efa")
            elif node_type and "RNIC" in node_type:
                fabrics.add("iwarp")
    return tuple(ports)


def _cxi(ctx: ProbeContext, evidence: list[Evidence], fabrics: set[str]) -> tuple[str, ...]:
    """CXI device names of /sys/class/cxi; Cassini NICs on PCI add 'cxi' to fabrics."""
    names = tuple(n for n in ctx.listdir(CXI) if re.fullmatch(r"cxi\d+", n))
    if names:
        evidence.append(file_evidence(ctx, CXI, " ".join(names)))
        fabrics.add("cxi")
    cassini = [
        f"{d.address} {d.vendor}:{d.device} {CASSINI_PCI_IDS[(d.vendor, d.device)]}"
        for d in read_pci_devices(ctx)
        if (d.vendor, d.device) in CASSINI_PCI_IDS
    ]
    if cassini:
        evidence.append(file_evidence(ctx, "/sys/bus/pci/devices", "; ".join(cassini)[:160]))
        fabrics.add("cxi")
    return names


def _providers(ctx: ProbeContext, evidence: list[Evidence], left: float) -> tuple[str, ...]:
    """Providers ``fi_info -l`` lists, or () when it is absent, fails or may not run.

    It gets the time the probe has `left`, less a margin to report in.
    """
    fi_info = ctx.which("fi_info")
    if not fi_info:
        return ()
    done, shown = ctx.run([fi_info, "-l"], timeout=max(0.1, left - 0.2))
    evidence.append(shown)
    if done is None or done.returncode != 0:
        return ()
    return parse_fi_info_list(done.stdout)
