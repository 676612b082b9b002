"""hostfacts.probes.system on fake trees (kernel, libc, os-release, container,
modules, PCI) and on this machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hostfacts.context import ProbeContext
from hostfacts.model import PciDevice, SystemFacts
from hostfacts.probes import system
from hostfacts.probes.system import (
    glibc_banner,
    glibc_major_minor,
    kernel_version,
    parse_os_release,
    probe,
)


def _write(root: Path, absolute: str, content: str | bytes) -> Path:
    path = root / absolute.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _symlink(root: Path, absolute: str, target: str) -> None:
    path = root / absolute.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def _probe(root: Path, environ: dict[str, str] | None = None) -> SystemFacts:
    return probe(ProbeContext(root=root, environ=environ or {}))


# --- kernel -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("6.1.0-18-amd64", (6, 1, 0)),
        ("5.14.0-362.24.1.el9_3.x86_64", (5, 14, 0)),
        ("4.18.0", (4, 18, 0)),
        ("5.15.0-1057-aws", (5, 15, 0)),
        ("6.4.0-150600.23.25-default", (6, 4, 0)),
        ("6.8.0-rc3", (6, 8, 0)),
        ("5.10", (5, 10)),
        ("6.18.44-fc-v769\n", (6, 18, 44)),
        ("", ()),
        ("garbage", ()),
    ],
)
def test_kernel_version(release, expected):
    assert kernel_version(release) == expected


def test_kernel_release_from_the_tree(tmp_path):
    _write(tmp_path, "/proc/sys/kernel/osrelease", "5.14.0-362.24.1.el9_3.x86_64\n")
    facts = _probe(tmp_path)
    assert facts.probe.status == "ok"
    assert facts.probe.reason == ""
    assert facts.kernel_release == "5.14.0-362.24.1.el9_3.x86_64"
    assert facts.kernel_version == (5, 14, 0)
    sources = [e.source for e in facts.probe.evidence]
    assert f"{tmp_path}/proc/sys/kernel/osrelease" in sources


def test_no_kernel_release_is_unknown_not_an_error(tmp_path):
    facts = _probe(tmp_path)
    assert facts.probe.status == "unknown"
    assert "osrelease" in facts.probe.reason
    assert facts.kernel_release is None and facts.kernel_version == ()
    assert facts.libc == "unknown" and facts.glibc_version is None
    assert facts.container is None
    assert facts.loaded_modules == () and facts.pci_devices == ()


# --- os-release ---------------------------------------------------------------

DEBIAN_12 = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""

RHEL_9_3 = """\
NAME="Red Hat Enterprise Linux"
VERSION="9.3 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.3 (Plow)"
ANSI_COLOR="0;31"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:redhat:enterprise_linux:9::baseos"
HOME_URL="https://www.redhat.com/"
DOCUMENTATION_URL="https://access.redhat.com/documentation/en-us/red_hat_enterprise_linux/9"
BUG_REPORT_URL="https://bugzilla.redhat.com/"

REDHAT_BUGZILLA_PRODUCT="Red Hat Enterprise Linux 9"
REDHAT_BUGZILLA_PRODUCT_VERSION=9.3
REDHAT_SUPPORT_PRODUCT="Red Hat Enterprise Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="9.3"
"""

ROCKY_9_3 = """\
NAME="Rocky Linux"
VERSION="9.3 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"
ANSI_COLOR="0;32"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:rocky:rocky:9::baseos"
HOME_URL="https://rockylinux.org/"
BUG_REPORT_URL="https://bugs.rockylinux.org/"
SUPPORT_END="2032-05-31"
ROCKY_SUPPORT_PRODUCT="Rocky-Linux-9"
ROCKY_SUPPORT_PRODUCT_VERSION="9.3"
REDHAT_SUPPORT_PRODUCT="Rocky Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="9.3"
"""

UBUNTU_22_04 = """\
PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
UBUNTU_CODENAME=jammy
"""

SLES_15_SP5 = """\
NAME="SLES"
VERSION="15-SP5"
VERSION_ID="15.5"
PRETTY_NAME="SUSE Linux Enterprise Server 15 SP5"
ID="sles"
ID_LIKE="suse"
ANSI_COLOR="0;32"
CPE_NAME="cpe:/o:suse:sles:15:sp5"
DOCUMENTATION_URL="https://documentation.suse.com/"
"""

ALPINE_3_19 = """\
NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.19.1
PRETTY_NAME="Alpine Linux v3.19"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
"""


@pytest.mark.parametrize(
    ("text", "id_", "version_id", "id_like", "pretty"),
    [
        (DEBIAN_12, "debian", "12", (), "Debian GNU/Linux 12 (bookworm)"),
        (RHEL_9_3, "rhel", "9.3", ("fedora",), "Red Hat Enterprise Linux 9.3 (Plow)"),
        (ROCKY_9_3, "rocky", "9.3", ("rhel", "centos", "fedora"), "Rocky Linux 9.3 (Blue Onyx)"),
        (UBUNTU_22_04, "ubuntu", "22.04", ("debian",), "Ubuntu 22.04.4 LTS"),
        (SLES_15_SP5, "sles", "15.5", ("suse",), "SUSE Linux Enterprise Server 15 SP5"),
        (ALPINE_3_19, "alpine", "3.19.1", (), "Alpine Linux v3.19"),
    ],
    ids=["debian12", "rhel9.3", "rocky9.3", "ubuntu22.04", "sles15sp5", "alpine3.19"],
)
def test_os_release_of_real_distributions(tmp_path, text, id_, version_id, id_like, pretty):
    _write(tmp_path, "/etc/os-release", text)
    release = _probe(tmp_path).os_release
    assert (release.id, release.version_id, release.id_like, release.pretty_name) == (
        id_,
        version_id,
        id_like,
        pretty,
    )


def test_os_release_quoting_rules():
    text = (
        "# a comment line\n"
        "\n"
        "ID='my-os'\n"
        'PRETTY_NAME="My \\"Quoted\\" OS \\$HOME \\\\ \\`x\\` \\n"\n'
        "VERSION_ID='1.0'\n"
        "ID_LIKE='a  b'\n"
        "SINGLE='it\\s literal'\n"
        "MIXED=abc\"def ghi\"'jk'\n"
        "UNQUOTED=plain\\ word rest\n"
        "  INDENTED=yes  \n"
        "not a line\n"
        "1BAD=x\n"
        'UNTERMINATED="open\n'
    )
    fields = parse_os_release(text)
    assert fields["ID"] == "my-os"
    # inside double quotes only \\ \$ \" \` are escapes; "\n" stays as written
    assert fields["PRETTY_NAME"] == 'My "Quoted" OS $HOME \\ `x` \\n'
    assert fields["VERSION_ID"] == "1.0"
    assert fields["ID_LIKE"] == "a  b"
    assert fields["SINGLE"] == "it\\s literal"
    assert fields["MIXED"] == "abcdef ghijk"
    assert fields["UNQUOTED"] == "plain word"
    assert fields["INDENTED"] == "yes"
    assert fields["UNTERMINATED"] == "open"
    assert "1BAD" not in fields and "not a line" not in fields


def test_single_quoted_file_in_a_tree(tmp_path):
    _write(
        tmp_path, "/etc/os-release", "ID='my-os'\nID_LIKE='a  b'\nPRETTY_NAME=\"My \\\"OS\\\"\"\n"
    )
    release = _probe(tmp_path).os_release
    assert release.id == "my-os"
    assert release.id_like == ("a", "b")
    assert release.pretty_name == 'My "OS"'
    assert release.version_id is None


def test_os_release_falls_back_to_usr_lib(tmp_path):
    _write(tmp_path, "/usr/lib/os-release", DEBIAN_12)
    facts = _probe(tmp_path)
    assert facts.os_release.id == "debian"
    assert f"{tmp_path}/usr/lib/os-release" in [e.source for e in facts.probe.evidence]


def test_etc_os_release_wins_over_usr_lib(tmp_path):
    _write(tmp_path, "/usr/lib/os-release", DEBIAN_12)
    _write(tmp_path, "/etc/os-release", UBUNTU_22_04)
    assert _probe(tmp_path).os_release.id == "ubuntu"


def test_absolute_os_release_symlink_stays_in_the_tree(tmp_path):
    # /etc/os-release -> /usr/lib/os-release must read the tree's file, not this machine's
    _write(tmp_path, "/usr/lib/os-release", SLES_15_SP5)
    _symlink(tmp_path, "/etc/os-release", "/usr/lib/os-release")
    assert _probe(tmp_path).os_release.id == "sles"


def test_missing_os_release(tmp_path):
    release = _probe(tmp_path).os_release
    assert release.id is None and release.id_like == () and release.pretty_name is None


# --- glibc and musl -------------------------------------------------------------

#: Banners as csu/version.c builds them (glibc >= 2.26 ends with '.', older with
#: ', by Roland McGrath et al.'), with the real PKGVERSION of each distribution.
BANNERS = {
    "debian-2.36": (
        b"GNU C Library (Debian GLIBC 2.36-9+deb12u4) stable release version 2.36.\n",
        "2.36",
    ),
    "ubuntu-2.35": (
        b"GNU C Library (Ubuntu GLIBC 2.35-0ubuntu3.6) stable release version 2.35.\n",
        "2.35",
    ),
    "rhel-2.34": (b"GNU C Library (GNU libc) stable release version 2.34.\n", "2.34"),
    "centos7-2.17": (
        b"GNU C Library (GNU libc) stable release version 2.17, by Roland McGrath et al.\n",
        "2.17",
    ),
    # Linaro's VERSION carries the release date; confstr gives 'glibc 2.20-2014.11'
    "linaro-2.20": (
        b"GNU C Library (GNU libc) stable release version 2.20-2014.11, by Roland McGrath et al.\n",
        "2.20",
    ),
    "development-2.39.9000": (
        b"GNU C Library (GNU libc) development release version 2.39.9000.\n",
        "2.39",
    ),
}


def _fake_libc(banner: bytes) -> bytes:
    """An ELF-looking blob with the banner inside .rodata-like noise."""
    noise = bytes(range(256)) * 64
    rest = b"Copyright (C) 2023 Free Software Foundation, Inc.\nThis is free software;\x00"
    return b"\x7fELF\x02\x01\x01" + noise + b"\x00" + banner + rest + noise


@pytest.mark.parametrize("name", sorted(BANNERS))
def test_glibc_banner_in_a_copied_tree(tmp_path, name):
    banner, expected = BANNERS[name]
    _write(tmp_path, "/lib/x86_64-linux-gnu/libc.so.6", _fake_libc(banner))
    facts = _probe(tmp_path)
    assert facts.libc == "glibc"
    assert facts.glibc_version == expected
    found = [
        e for e in facts.probe.evidence if e.source.endswith("/lib/x86_64-linux-gnu/libc.so.6")
    ]
    assert found and found[0].detail == banner.decode().strip()


@pytest.mark.parametrize("name", sorted(BANNERS))
def test_glibc_banner_parser(name):
    banner, expected = BANNERS[name]
    line, version = glibc_banner(_fake_libc(banner))
    assert line == banner.decode().strip()
    assert glibc_major_minor(version) == expected


def test_linaro_version_string_keeps_its_suffix_in_the_banner():
    _, version = glibc_banner(_fake_libc(BANNERS["linaro-2.20"][0]))
    assert version == "2.20-2014.11"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2.36", "2.36"),
        ("2.20-2014.11", "2.20"),
        ("2.39.9000", "2.39"),
        ("2.17", "2.17"),
        ("x", None),
        ("", None),
    ],
)
def test_glibc_major_minor(text, expected):
    assert glibc_major_minor(text) == expected


def test_no_banner_in_an_unrelated_blob():
    assert glibc_banner(b"\x7fELF" + bytes(4096)) is None


def test_rhel_layout_lib64(tmp_path):
    _write(tmp_path, "/usr/lib64/libc.so.6", _fake_libc(BANNERS["rhel-2.34"][0]))
    _symlink(tmp_path, "/lib64", "usr/lib64")
    facts = _probe(tmp_path)
    assert (facts.libc, facts.glibc_version) == ("glibc", "2.34")


def test_absolute_libc_symlink_is_resolved_inside_the_tree(tmp_path):
    # /lib64/libc.so.6 -> /usr/lib64/libc.so.6 must not read this machine's libc
    _write(tmp_path, "/usr/lib64/libc.so.6", _fake_libc(BANNERS["rhel-2.34"][0]))
    _symlink(tmp_path, "/lib64/libc.so.6", "/usr/lib64/libc.so.6")
    assert _probe(tmp_path).glibc_version == "2.34"


def test_old_glibc_from_the_real_file_name(tmp_path):
    # glibc < 2.34 installs libc-2.X.so with libc.so.6 as a symlink to it
    _write(tmp_path, "/lib/x86_64-linux-gnu/libc-2.31.so", b"\x7fELF no banner here")
    _symlink(tmp_path, "/lib/x86_64-linux-gnu/libc.so.6", "libc-2.31.so")
    facts = _probe(tmp_path)
    assert (facts.libc, facts.glibc_version) == ("glibc", "2.31")
    assert any(e.detail == "-> libc-2.31.so" for e in facts.probe.evidence)


def test_alpine_musl(tmp_path):
    _write(tmp_path, "/etc/os-release", ALPINE_3_19)
    _write(tmp_path, "/lib/ld-musl-x86_64.so.1", b"\x7fELF musl")
    _symlink(tmp_path, "/lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1")
    facts = _probe(tmp_path)
    assert facts.libc == "musl"
    assert facts.glibc_version is None
    assert facts.os_release.id == "alpine"
    assert any(e.source.endswith("/lib/ld-musl-x86_64.so.1") for e in facts.probe.evidence)


def test_musl_on_aarch64(tmp_path):
    _write(tmp_path, "/lib/ld-musl-aarch64.so.1", b"\x7fELF musl")
    assert _probe(tmp_path).libc == "musl"


def test_glibc_wins_over_a_musl_loader_beside_it(tmp_path):
    # Debian's musl package installs /lib/ld-musl-x86_64.so.1 next to glibc
    _write(tmp_path, "/lib/x86_64-linux-gnu/libc.so.6", _fake_libc(BANNERS["debian-2.36"][0]))
    _write(tmp_path, "/lib/ld-musl-x86_64.so.1", b"\x7fELF musl")
    assert _probe(tmp_path).libc == "glibc"


def test_a_copied_tree_does_not_use_this_process_libc(tmp_path, monkeypatch):
    def fail(*_):
        raise AssertionError("confstr must not describe a copied tree")

    monkeypatch.setattr(os, "confstr", fail)
    monkeypatch.setattr(system, "_gnu_get_libc_version", fail)
    _write(tmp_path, "/lib/x86_64-linux-gnu/libc.so.6", _fake_libc(BANNERS["ubuntu-2.35"][0]))
    assert _probe(tmp_path).glibc_version == "2.35"


def _fake_ldd(tmp_path: Path, stdout: str, stderr: str, code: int) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "ldd"
    script.write_text(
        f"#!/bin/sh\nprintf '%s' '{stdout}'\nprintf '%s' '{stderr}' >&2\nexit {code}\n"
    )
    script.chmod(0o755)
    return {"PATH": str(bindir)}


def test_musl_from_ldd_version(tmp_path):
    env = _fake_ldd(
        tmp_path,
        "",
        "musl libc (x86_64)\nVersion 1.2.4\nDynamic Program Path: /lib/ld-musl-x86_64.so.1\n",
        1,
    )
    facts = probe(ProbeContext(root=tmp_path / "tree", environ=env, allow_commands=True))
    assert facts.libc == "musl"
    assert any(e.kind == "command" and "ldd" in e.source for e in facts.probe.evidence)


def test_glibc_from_ldd_version(tmp_path):
    env = _fake_ldd(tmp_path, "ldd (Debian GLIBC 2.36-9+deb12u4) 2.36\nCopyright (C) 2022\n", "", 0)
    facts = probe(ProbeContext(root=tmp_path / "tree", environ=env, allow_commands=True))
    assert (facts.libc, facts.glibc_version) == ("glibc", "2.36")


def test_resolve_in_root_clamps_dotdot(tmp_path):
    _write(tmp_path, "/etc/os-release", "ID=x\n")
    _symlink(tmp_path, "/a/link", "../../../../etc/os-release")
    ctx = ProbeContext(root=tmp_path, environ={})
    assert ctx.resolve("/a/link") == tmp_path / "etc" / "os-release"
    assert ctx.resolve("/missing/file") is None


def test_resolve_in_root_stops_on_a_loop(tmp_path):
    _symlink(tmp_path, "/loop", "/loop")
    assert ProbeContext(root=tmp_path, environ={}).resolve("/loop/x") is None


# --- libc on the live root: confstr, ctypes, fallbacks ----------------------------


def test_live_confstr(monkeypatch):
    monkeypatch.setattr(os, "confstr", lambda name: "glibc 2.17")
    facts = probe(ProbeContext(environ={}))
    assert (facts.libc, facts.glibc_version) == ("glibc", "2.17")
    call = [e for e in facts.probe.evidence if e.kind == "call" and "confstr" in e.source]
    assert call and call[0].source == "os.confstr(CS_GNU_LIBC_VERSION)" and "2.17" in call[0].detail


def test_live_confstr_linaro_form(monkeypatch):
    monkeypatch.setattr(os, "confstr", lambda name: "glibc 2.20-2014.11")
    assert probe(ProbeContext(environ={})).glibc_version == "2.20"


@pytest.mark.parametrize(
    "failure", [OSError(22, "Invalid argument"), ValueError("unrecognized configuration name")]
)
def test_live_confstr_failure_falls_back_to_ctypes(monkeypatch, failure):
    def broken(name):
        raise failure

    monkeypatch.setattr(os, "confstr", broken)
    monkeypatch.setattr(system, "_gnu_get_libc_version", lambda: "2.28")
    facts = probe(ProbeContext(environ={}))
    assert (facts.libc, facts.glibc_version) == ("glibc", "2.28")
    assert any(e.source == "gnu_get_libc_version()" for e in facts.probe.evidence)


def test_live_confstr_none_and_no_ctypes_reads_the_libc_file(monkeypatch):
    expected = os.confstr("CS_GNU_LIBC_VERSION").split()[1]
    monkeypatch.setattr(os, "confstr", lambda name: None)
    monkeypatch.setattr(system, "_gnu_get_libc_version", lambda: None)
    facts = probe(ProbeContext(environ={}))
    # this machine's own libc.so.6, found by its banner or its file name
    assert (facts.libc, facts.glibc_version) == ("glibc", expected)
    assert any(e.kind == "file" and e.source.endswith("/libc.so.6") for e in facts.probe.evidence)


def test_ctypes_reads_this_process_libc():
    value = system._gnu_get_libc_version()
    assert value is not None and value == os.confstr("CS_GNU_LIBC_VERSION").split()[1]


# --- container ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "environ", "expected"),
    [
        (
            {"/run/.containerenv": 'engine="podman-4.3.1"\nname="x"\nid="abc"\nrootless=1\n'},
            {},
            "podman",
        ),
        ({"/run/.containerenv": ""}, {}, "podman"),
        ({"/.dockerenv": ""}, {}, "docker"),
        ({}, {"APPTAINER_CONTAINER": "/scratch/lolcow.sif"}, "apptainer"),
        ({}, {"SINGULARITY_CONTAINER": "/scratch/lolcow.sif"}, "singularity"),
        ({}, {"APPTAINER_CONTAINER": "/a.sif", "SINGULARITY_CONTAINER": "/a.sif"}, "apptainer"),
        ({}, {"CH_RUNNING": "Weird Al Yankovic"}, "charliecloud"),
        ({}, {"container": "podman"}, "podman"),
        ({}, {"container": "oci"}, "oci"),
        ({}, {"container": "systemd-nspawn"}, "systemd-nspawn"),
        (
            {"/proc/1/cgroup": "12:pids:/docker/3f2ab1c9\n11:memory:/docker/3f2ab1c9\n"},
            {},
            "docker",
        ),
        (
            {"/proc/1/cgroup": "1:name=systemd:/kubepods/besteffort/pod1234/cri-containerd-abcd\n"},
            {},
            "kubernetes",
        ),
        ({"/proc/1/cgroup": "1:name=systemd:/machine.slice/libpod-0123abcd.scope\n"}, {}, "podman"),
        ({"/proc/1/cgroup": "0::/\n"}, {}, None),
        ({"/proc/1/cgroup": "0::/user.slice/user-1000.slice/session-3.scope\n"}, {}, None),
        ({}, {}, None),
        # apptainer inside a docker container: the innermost (environment) wins
        ({"/.dockerenv": ""}, {"APPTAINER_CONTAINER": "/a.sif"}, "apptainer"),
    ],
)
def test_container(tmp_path, files, environ, expected):
    for name, content in files.items():
        _write(tmp_path, name, content)
    assert _probe(tmp_path, environ).container == expected


def test_container_evidence(tmp_path):
    _write(tmp_path, "/run/.containerenv", 'engine="podman-4.3.1"\n')
    facts = _probe(tmp_path)
    assert any(
        e.source.endswith("/run/.containerenv") and e.detail == "podman-4.3.1"
        for e in facts.probe.evidence
    )


# --- modules and PCI ------------------------------------------------------------------

PROC_MODULES = """\
mlx5_ib 466944 0 - Live 0x0000000000000000
ib_uverbs 184320 1 mlx5_ib, Live 0x0000000000000000
mlx5_core 2076672 1 mlx5_ib, Live 0x0000000000000000
nvidia_uvm 1802240 0 - Live 0x0000000000000000 (POE)
nvidia 56692736 1 nvidia_uvm, Live 0x0000000000000000 (POE)
cxi_ss1 1150976 0 - Live 0x0000000000000000 (OE)
ice 1081344 0 - Live 0x0000000000000000
"""


def test_loaded_modules(tmp_path):
    _write(tmp_path, "/proc/modules", PROC_MODULES)
    facts = _probe(tmp_path)
    assert facts.loaded_modules == (
        "cxi_ss1",
        "ib_uverbs",
        "ice",
        "mlx5_core",
        "mlx5_ib",
        "nvidia",
        "nvidia_uvm",
    )
    assert any(
        e.source.endswith("/proc/modules") and e.detail == "7 modules" for e in facts.probe.evidence
    )


def _pci(
    root: Path, address: str, cls: str, vendor: str, device: str, sub_vendor: str, sub_device: str
) -> None:
    for name, value in {
        "class": cls,
        "vendor": vendor,
        "device": device,
        "subsystem_vendor": sub_vendor,
        "subsystem_device": sub_device,
    }.items():
        _write(root, f"/sys/bus/pci/devices/{address}/{name}", value + "\n")


def test_pci_devices(tmp_path):
    # NVIDIA H100 SXM5 (3D controller), Mellanox ConnectX-6 (InfiniBand), Intel E810-C (Ethernet)
    _pci(tmp_path, "0000:c1:00.0", "0x030200", "0x10de", "0x2330", "0x10de", "0x16c1")
    _pci(tmp_path, "0000:17:00.0", "0x020700", "0x15b3", "0x101b", "0x15b3", "0x0006")
    _pci(tmp_path, "0000:4b:00.0", "0x020000", "0x8086", "0x1593", "0x8086", "0x0005")
    _write(tmp_path, "/sys/bus/pci/devices/0000:00:00.0/vendor", "0x8086\n")  # no class: left out
    facts = _probe(tmp_path)
    assert facts.pci_devices == (
        PciDevice(
            address="0000:17:00.0",
            class_id="0207",
            vendor="15b3",
            device="101b",
            subsystem_vendor="15b3",
            subsystem_device="0006",
        ),
        PciDevice(
            address="0000:4b:00.0",
            class_id="0200",
            vendor="8086",
            device="1593",
            subsystem_vendor="8086",
            subsystem_device="0005",
        ),
        PciDevice(
            address="0000:c1:00.0",
            class_id="0302",
            vendor="10de",
            device="2330",
            subsystem_vendor="10de",
            subsystem_device="16c1",
        ),
    )


def test_pci_upper_case_and_missing_subsystem(tmp_path):
    _write(tmp_path, "/sys/bus/pci/devices/0000:01:00.0/class", "0x0302\n")
    _write(tmp_path, "/sys/bus/pci/devices/0000:01:00.0/vendor", "0x10DE\n")
    _write(tmp_path, "/sys/bus/pci/devices/0000:01:00.0/device", "0x20B5\n")
    (device,) = _probe(tmp_path).pci_devices
    assert (device.class_id, device.vendor, device.device) == ("0302", "10de", "20b5")
    assert device.subsystem_vendor is None and device.subsystem_device is None


# --- the whole section and this machine ---------------------------------------------------


def test_full_fake_node(tmp_path):
    _write(tmp_path, "/proc/sys/kernel/osrelease", "6.1.0-18-amd64\n")
    _write(tmp_path, "/etc/os-release", DEBIAN_12)
    _write(tmp_path, "/lib/x86_64-linux-gnu/libc.so.6", _fake_libc(BANNERS["debian-2.36"][0]))
    _write(tmp_path, "/proc/modules", PROC_MODULES)
    _write(tmp_path, "/run/.containerenv", "")
    _pci(tmp_path, "0000:c1:00.0", "0x030200", "0x10de", "0x2330", "0x10de", "0x16c1")
    facts = _probe(tmp_path)
    assert facts.probe.status == "ok"
    assert facts.kernel_version == (6, 1, 0)
    assert (facts.libc, facts.glibc_version) == ("glibc", "2.36")
    assert facts.os_release.id == "debian"
    assert facts.container == "podman"
    assert len(facts.loaded_modules) == 7 and len(facts.pci_devices) == 1
    assert all(e.source.startswith(str(tmp_path)) for e in facts.probe.evidence if e.kind == "file")
    # the section round-trips through JSON like every facts section
    assert SystemFacts.model_validate_json(facts.model_dump_json()) == facts


def test_probe_never_raises(tmp_path, monkeypatch):
    def boom(*_):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(system, "_os_release", boom)
    _write(tmp_path, "/proc/sys/kernel/osrelease", "6.1.0\n")
    facts = _probe(tmp_path)
    assert facts.probe.status == "error"
    assert "disk on fire" in facts.probe.reason


def test_live_probe_on_this_machine():
    facts = probe(ProbeContext())
    assert facts.probe.status == "ok", facts.probe.reason
    assert facts.kernel_release == os.uname().release
    assert facts.kernel_version[:2] == tuple(int(p) for p in os.uname().release.split(".")[:2])
    assert facts.libc == "glibc"
    assert facts.glibc_version == os.confstr("CS_GNU_LIBC_VERSION").split()[1]
    assert any(e.source == "os.confstr(CS_GNU_LIBC_VERSION)" for e in facts.probe.evidence)
    assert facts.os_release.id is not None
    # live evidence names host paths as the user knows them
    assert any(e.source == "/proc/sys/kernel/osrelease" for e in facts.probe.evidence)
