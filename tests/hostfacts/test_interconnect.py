"""hostfacts.probes.interconnect on fake sysfs trees (InfiniBand, RoCE, OPA,
EFA, iWARP, Slingshot CXI) and a fake ``fi_info`` on PATH."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hostfacts.context import ProbeContext
from hostfacts.model import InterconnectFacts, RdmaDevice
from hostfacts.probes.interconnect import parse_fi_info_list, probe, rdma_kind

#: The fake fi_info runs with PATH set to its own directory only.
CAT = shutil.which("cat")
SLEEP = shutil.which("sleep")

#: `fi_info -l` of Debian 12's libfabric-bin 1.17.0 (psm2 and psm are listed
#: although this machine has no Omni-Path/TrueScale hardware).
FI_INFO_DEBIAN_1_17 = """\
psm2:
    version: 117.0
psm:
    version: 117.0
ofi_rxm:
    version: 117.0
ofi_rxd:
    version: 117.0
shm:
    version: 117.0
udp:
    version: 117.0
tcp:
    version: 117.0
sockets:
    version: 117.0
net:
    version: 117.0
ofi_hook_perf:
    version: 117.0
ofi_hook_debug:
    version: 117.0
ofi_hook_noop:
    version: 117.0
ofi_hook_hmem:
    version: 117.0
ofi_hook_dmabuf_peer_mem:
    version: 117.0
ofi_mrail:
    version: 117.0
"""

#: A Slingshot node's list, in print_providers' format (util/info.c): the
#: providers an HPE libfabric 2.x lists there (cxi 0.1, the others 203.10).
FI_INFO_SLINGSHOT = """\
cxi:
    version: 0.1
ofi_rxm:
    version: 203.10
ofi_rxd:
    version: 203.10
shm:
    version: 203.10
sm2:
    version: 203.10
udp:
    version: 203.10
tcp:
    version: 203.10
ofi_hook_debug:
    version: 203.10
ofi_hook_noop:
    version: 203.10
off_coll:
    version: 203.10
lnx:
    version: 203.10
"""

FI_INFO_EFA = """\
efa:
    version: 122.0
ofi_rxm:
    version: 122.0
shm:
    version: 122.0
tcp:
    version: 122.0
"""


def _write(root: Path, absolute: str, content: str) -> None:
    path = root / absolute.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)


def _ib_port(
    root: Path,
    device: str,
    port: int,
    link_layer: str,
    state: str = "4: ACTIVE",
    rate: str = "200 Gb/sec (4X HDR)",
    driver: str | None = None,
    node_type: str = "1: CA",
) -> None:
    base = f"/sys/class/infiniband/{device}"
    _write(root, f"{base}/ports/{port}/link_layer", link_layer + "\n")
    _write(root, f"{base}/ports/{port}/state", state + "\n")
    _write(root, f"{base}/ports/{port}/rate", rate + "\n")
    _write(root, f"{base}/node_type", node_type + "\n")
    if driver:
        link = root / base.lstrip("/") / "device" / "driver"
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            # as in sysfs: a relative link into /sys/bus/pci/drivers (dangling in the fake tree is fine)
            link.symlink_to(f"../../../../../../bus/pci/drivers/{driver}")


def _pci(root: Path, address: str, cls: str, vendor: str, device: str) -> None:
    for name, value in {"class": cls, "vendor": vendor, "device": device}.items():
        _write(root, f"/sys/bus/pci/devices/{address}/{name}", value + "\n")


def _probe(root: Path) -> InterconnectFacts:
    return probe(ProbeContext(root=root, environ={}))


def _fake_fi_info(tmp_path: Path, output: str, code: int = 0) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "output.txt").write_text(output)
    script = bindir / "fi_info"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = "-l" ] || { echo "unexpected arguments: $*" >&2; exit 2; }\n'
        f'{CAT} "{bindir}/output.txt"\n'
        f"exit {code}\n"
    )
    script.chmod(0o755)
    return {"PATH": str(bindir)}


# --- RDMA -----------------------------------------------------------------------


def test_infiniband_hdr(tmp_path):
    _ib_port(tmp_path, "mlx5_0", 1, "InfiniBand", driver="mlx5_core")
    facts = _probe(tmp_path)
    assert facts.probe.status == "ok"
    assert facts.rdma == (
        RdmaDevice(
            name="mlx5_0",
            port=1,
            link_layer="InfiniBand",
            kind="infiniband",
            state="4: ACTIVE",
            rate="200 Gb/sec (4X HDR)",
        ),
    )
    assert facts.fabrics == ("infiniband",)
    (evidence,) = [e for e in facts.probe.evidence if "mlx5_0" in e.source]
    assert evidence.source == f"{tmp_path}/sys/class/infiniband/mlx5_0/ports/1/link_layer"
    assert "mlx5_core" in evidence.detail and "ACTIVE" in evidence.detail


def test_roce(tmp_path):
    _ib_port(tmp_path, "mlx5_1", 1, "Ethernet", rate="100 Gb/sec (2X HDR)", driver="mlx5_core")
    facts = _probe(tmp_path)
    assert [(p.name, p.kind, p.link_layer) for p in facts.rdma] == [("mlx5_1", "roce", "Ethernet")]
    assert facts.fabrics == ("roce",)


def test_infiniband_and_roce_on_one_node_ports_in_order(tmp_path):
    _ib_port(tmp_path, "mlx5_1", 1, "Ethernet", driver="mlx5_core")
    _ib_port(tmp_path, "mlx5_0", 2, "InfiniBand", state="1: DOWN", rate="10 Gb/sec (4X SDR)")
    _ib_port(tmp_path, "mlx5_0", 1, "InfiniBand")
    _write(tmp_path, "/sys/class/infiniband/mlx5_0/ports/not-a-port", "")
    facts = _probe(tmp_path)
    assert [(p.name, p.port, p.kind, p.state) for p in facts.rdma] == [
        ("mlx5_0", 1, "infiniband", "4: ACTIVE"),
        ("mlx5_0", 2, "infiniband", "1: DOWN"),
        ("mlx5_1", 1, "roce", "4: ACTIVE"),
    ]
    assert facts.fabrics == ("infiniband", "roce")


def test_omni_path_by_name(tmp_path):
    # hfi1 ports report link_layer InfiniBand, yet they are Omni-Path
    _ib_port(tmp_path, "hfi1_0", 1, "InfiniBand", rate="100 Gb/sec (4X EDR)")
    facts = _probe(tmp_path)
    assert [(p.name, p.kind, p.link_layer) for p in facts.rdma] == [("hfi1_0", "opa", "InfiniBand")]
    assert facts.fabrics == ("opa",)


def test_omni_path_by_driver_under_a_udev_name(tmp_path):
    _ib_port(tmp_path, "ibp94s0", 1, "InfiniBand", rate="100 Gb/sec (4X EDR)", driver="hfi1")
    facts = _probe(tmp_path)
    assert facts.rdma[0].kind == "opa"
    assert facts.fabrics == ("opa",)


def test_aws_efa(tmp_path):
    # EFA's link layer is unspecified: sysfs prints "Unknown"; udev names it rdmapXsY
    _ib_port(
        tmp_path,
        "rdmap16s27",
        1,
        "Unknown",
        rate="100 Gb/sec (4X EDR)",
        driver="efa",
        node_type="6: unspecified",
    )
    facts = _probe(tmp_path)
    assert [(p.name, p.kind, p.link_layer) for p in facts.rdma] == [
        ("rdmap16s27", "other", "Unknown")
    ]
    assert facts.fabrics == ("efa",)
    assert facts.probe.status == "ok"


def test_efa_by_name_without_driver_link(tmp_path):
    _ib_port(tmp_path, "efa_0", 1, "Unknown")
    facts = _probe(tmp_path)
    assert facts.rdma[0].kind == "other"
    assert facts.fabrics == ("efa",)


def test_iwarp_is_not_roce(tmp_path):
    _ib_port(
        tmp_path,
        "iwp24s0f0",
        1,
        "Ethernet",
        rate="100 Gb/sec (4X EDR)",
        driver="irdma",
        node_type="4: RNIC",
    )
    facts = _probe(tmp_path)
    assert facts.rdma[0].kind == "other"
    assert facts.fabrics == ("iwarp",)


def test_missing_port_attributes(tmp_path):
    (tmp_path / "sys/class/infiniband/mlx5_0/ports/1").mkdir(parents=True)
    facts = _probe(tmp_path)
    assert facts.rdma == (RdmaDevice(name="mlx5_0", port=1, link_layer="Unknown", kind="other"),)


@pytest.mark.parametrize(
    ("name", "link_layer", "driver", "node_type", "expected"),
    [
        ("mlx5_0", "InfiniBand", "mlx5_core", "1: CA", "infiniband"),
        ("mlx5_2", "Ethernet", "mlx5_core", "1: CA", "roce"),
        ("hfi1_0", "InfiniBand", None, None, "opa"),
        ("ib0", "InfiniBand", "hfi1", None, "opa"),
        ("qib0", "InfiniBand", "ib_qib", None, "infiniband"),
        ("efa_0", "Unknown", None, None, "other"),
        ("rdmap0s6", "Unknown", "efa", None, "other"),
        ("rxe0", "Ethernet", None, "1: CA", "roce"),
        ("siw0", "Ethernet", None, "4: RNIC", "other"),
        ("x", "Unknown", None, None, "other"),
    ],
)
def test_rdma_kind(name, link_layer, driver, node_type, expected):
    assert rdma_kind(name, link_layer, driver, node_type) == expected


# --- Slingshot ------------------------------------------------------------------------


def test_cxi_devices_and_cassini_pci(tmp_path):
    (tmp_path / "sys/class/cxi/cxi0").mkdir(parents=True)
    (tmp_path / "sys/class/cxi/cxi1").mkdir(parents=True)
    (tmp_path / "sys/class/cxi/README").mkdir(parents=True)  # not a device name
    _pci(tmp_path, "0000:c2:00.0", "0x020000", "0x17db", "0x0501")
    _pci(tmp_path, "0000:41:00.0", "0x030200", "0x10de", "0x2330")
    facts = _probe(tmp_path)
    assert facts.cxi == ("cxi0", "cxi1")
    assert facts.fabrics == ("cxi",)
    assert facts.probe.status == "ok"
    details = " ".join(e.detail for e in facts.probe.evidence)
    assert "17db:0501 Cassini-1" in details and "cxi0 cxi1" in details


def test_cassini_2_on_pci_without_the_driver(tmp_path):
    _pci(tmp_path, "0000:c2:00.0", "0x020000", "0x1590", "0x0371")
    facts = _probe(tmp_path)
    assert facts.cxi == ()
    assert facts.fabrics == ("cxi",)
    assert facts.probe.status == "ok"


def test_other_hpe_pci_devices_are_not_cassini(tmp_path):
    _pci(tmp_path, "0000:01:00.0", "0x088000", "0x1590", "0x0001")
    _pci(tmp_path, "0000:02:00.0", "0x020000", "0x17db", "0x0500")
    facts = _probe(tmp_path)
    assert facts.fabrics == () and facts.probe.status == "none"


# --- libfabric -----------------------------------------------------------------------


def test_parse_fi_info_list_real_debian_output():
    assert parse_fi_info_list(FI_INFO_DEBIAN_1_17) == (
        "psm2",
        "psm",
        "ofi_rxm",
        "ofi_rxd",
        "shm",
        "udp",
        "tcp",
        "sockets",
        "net",
        "ofi_hook_perf",
        "ofi_hook_debug",
        "ofi_hook_noop",
        "ofi_hook_hmem",
        "ofi_hook_dmabuf_peer_mem",
        "ofi_mrail",
    )


def test_parse_fi_info_list_layered_and_noise():
    text = "tcp;ofi_rxm:\n    version: 110.10\ntcp:\n    version: 110.10\n\nfi_getinfo: -61\n  indented:\n"
    assert parse_fi_info_list(text) == ("tcp", "ofi_rxm")
    assert parse_fi_info_list("") == ()


def test_fi_info_on_a_slingshot_node(tmp_path):
    root = tmp_path / "tree"
    (root / "sys/class/cxi/cxi0").mkdir(parents=True)
    env = _fake_fi_info(tmp_path, FI_INFO_SLINGSHOT)
    facts = probe(ProbeContext(root=root, environ=env, allow_commands=True))
    assert facts.libfabric_providers[:3] == ("cxi", "ofi_rxm", "ofi_rxd")
    assert "lnx" in facts.libfabric_providers
    assert facts.fabrics == ("cxi",)  # from the device; providers never claim hardware
    (command,) = [e for e in facts.probe.evidence if e.kind == "command"]
    assert command.source.endswith("fi_info -l") and command.detail == "exit 0: cxi:"


def test_fi_info_alone_on_an_efa_image(tmp_path):
    # no sysfs at all (a copied tree), yet the efa provider is listed: recorded, not a fabric
    env = _fake_fi_info(tmp_path, FI_INFO_EFA)
    facts = probe(ProbeContext(root=tmp_path / "tree", environ=env, allow_commands=True))
    assert facts.probe.status == "ok"
    assert facts.rdma == ()
    assert facts.libfabric_providers == ("efa", "ofi_rxm", "shm", "tcp")
    assert facts.fabrics == ()


def test_fi_info_psm2_does_not_claim_omni_path(tmp_path):
    env = _fake_fi_info(tmp_path, FI_INFO_DEBIAN_1_17)
    facts = probe(ProbeContext(root=tmp_path / "tree", environ=env, allow_commands=True))
    assert "psm2" in facts.libfabric_providers
    assert facts.fabrics == ()


def test_fi_info_failure_is_recorded(tmp_path):
    env = _fake_fi_info(tmp_path, "fi_getinfo: -61 (No data available)\n", code=1)
    facts = probe(ProbeContext(root=tmp_path / "tree", environ=env, allow_commands=True))
    assert facts.libfabric_providers == ()
    assert facts.probe.status == "none"
    assert any(e.kind == "command" and e.detail.startswith("exit 1") for e in facts.probe.evidence)


def test_fi_info_timeout(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "fi_info"
    script.write_text(f"#!/bin/sh\nexec {SLEEP} 5\n")
    script.chmod(0o755)
    ctx = ProbeContext(
        root=tmp_path / "tree", environ={"PATH": str(bindir)}, allow_commands=True, timeout=0.3
    )
    facts = probe(ctx)
    assert facts.probe.status == "none"
    assert any(e.kind == "command" and "timed out" in e.detail for e in facts.probe.evidence)


def test_fi_info_not_run_on_a_copied_tree(tmp_path):
    env = _fake_fi_info(tmp_path, FI_INFO_SLINGSHOT)
    facts = probe(ProbeContext(root=tmp_path / "tree", environ=env))
    assert facts.libfabric_providers == ()
    assert not [e for e in facts.probe.evidence if e.kind == "command"]


# --- the whole section ---------------------------------------------------------------


def test_nothing_found(tmp_path):
    facts = _probe(tmp_path)
    assert facts.probe.status == "none"
    assert facts.probe.reason == "no RDMA, CXI or libfabric found"
    assert (facts.rdma, facts.cxi, facts.libfabric_providers, facts.fabrics) == ((), (), (), ())
    assert facts.probe.evidence  # says where it looked


def test_round_trip_and_summary(tmp_path):
    _ib_port(tmp_path, "mlx5_0", 1, "InfiniBand", driver="mlx5_core")
    (tmp_path / "sys/class/cxi/cxi0").mkdir(parents=True)
    (tmp_path / "x").mkdir()
    env = _fake_fi_info(tmp_path / "x", FI_INFO_SLINGSHOT)
    facts = probe(ProbeContext(root=tmp_path, environ=env, allow_commands=True))
    assert facts.fabrics == ("cxi", "infiniband")
    assert InterconnectFacts.model_validate_json(facts.model_dump_json()) == facts


def test_probe_never_raises(tmp_path, monkeypatch):
    from hostfacts.probes import interconnect

    def boom(*_):
        raise RuntimeError("sysfs vanished")

    monkeypatch.setattr(interconnect, "_rdma", boom)
    facts = _probe(tmp_path)
    assert facts.probe.status == "error" and "sysfs vanished" in facts.probe.reason


def test_live_probe_on_this_machine():
    facts = probe(ProbeContext())
    assert facts.probe.status in ("ok", "none"), facts.probe.reason
    assert facts.probe.evidence
