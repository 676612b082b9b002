"""A simulated HPC cluster on one machine, with a real Slurm, for end-to-end tests.

``Cluster`` starts, under a directory of its own:

* one ``munged`` (its own key, socket and log) and one ``slurmctld`` (its own
  ``slurm.conf``, state and log), both in a *head* mount namespace of the host
  whose ``/etc/hosts`` names every node and whose ``/etc/resolv.conf`` is
  empty, so that no name lookup ever leaves the machine;
* per simulated node (and for the *login* node) a holder process in new
  mount, UTS and network namespaces: its own hostname, its own
  ``/proc/cpuinfo`` (one of archspec's real dumps, bind-mounted), its own boot
  id (a file bind-mounted over ``/proc/sys/kernel/random/boot_id``), its own
  ``/etc/hosts`` and empty ``/etc/resolv.conf``, its own ``/run`` (so
  ``XDG_RUNTIME_DIR=/run/user/UID`` and podman's runroot are per node), and a
  per-node directory mounted at the same path (:attr:`Cluster.node_root`) on
  every node, holding the node-local :attr:`Cluster.local_dir` and slurmd's
  spool, pid and log files;
* one ``slurmd`` per compute node, run inside that node's namespaces;
* a Linux bridge on the host with two private IPv4 /24 networks, chosen among
  ``10.X.0.0/16`` ranges that no host route or address touches: the *cluster
  network* ``10.X.0.0/24`` (bridge ``.1``, login ``.2``, nodes ``.10``...) that
  carries Slurm traffic, and the *registry network* ``10.X.1.0/24`` (bridge
  ``.1`` only) where :meth:`Cluster.start_registry` binds a registry.  Each
  node has a veth on the bridge and no default route; an *offline* node has
  no route to the registry network (connecting there fails at once with
  ``ENETUNREACH``) but still runs Slurm job steps.  IPv4 forwarding is left as
  it is (off here) and nothing is NATed: the namespaces reach only one
  another and the host's bridge addresses.

The shared directory (the "parallel file system") is :attr:`Cluster.shared_dir`;
since each node's mount namespace is a copy of the host's, every host path is
visible on every node at the same path (the venv, the checkout, pytest's
files), except what is mounted over in the node.

Tests share one cluster per session with the ``hpc_cluster`` fixture
(:data:`STANDARD_NODES`, h003 offline); import it into ``tests/conftest.py``
(``from tests.support.cluster import hpc_cluster  # noqa: F401``) rather than
into several modules, or each importing module may get a cluster of its own.
Start-up takes about 0.5-1.5 s, teardown about 0.2-0.9 s, here.

Usage::

    from tests.support.cluster import Cluster, nodes_by_class

    nodes = nodes_by_class({"zen4": ("a", "linux-rocky8.5-zen4", 2),
                            "spr": ("s", "linux-unknown-sapphirerapids", 2)})
    with Cluster(base_dir, nodes, offline={"s002"}) as c:
        reg = c.start_registry()                     # LocalRegistry on the bridge
        c.srun(["-N", "4", "hostname"]).stdout      # from the login node
        c.run_on("a001", ["cat", "/proc/sys/kernel/random/boot_id"])
        argv, env = c.podman("a001")                 # shared graphroot, per-node runroot
        c.run_on("a001", [*argv, "run", "--rm", "--network=none",
                          "--tls-verify=false", ref, "cat", "/etc/imagefit-build"], env=env)

Podman on nodes (:meth:`Cluster.podman`, :meth:`Cluster.podman_everywhere`):
the image store is on the shared directory, runroot/tmp dir in the node's own
``/run``, the database in the node's own directory.  Seen here:

* rootful containers mount a fresh procfs, so they see the *host's*
  /proc/cpuinfo and boot id, not the node's (the node's are bind mounts in
  the node's mount namespace, which a container does not inherit);
* rootless containers (``user="alice"``) need ``--pid=host``: the kernel
  refuses a fresh procfs mount in a user namespace while parts of /proc are
  covered by mounts (the node's cpuinfo and boot id), EPERM from runc; with
  ``--pid=host`` podman bind-mounts the node's /proc, so the container sees
  the node's cpuinfo and boot id;
* ``podman pull`` on an offline node fails with "network is unreachable"
  after podman's own retries (about 3 s; podman 4.3 has no ``--retry``).

*base_dir* must be traversable by every user (``o+x`` on it and its
parents; checked), for job steps run as ordinary users; pytest's ``tmp_path`` is not
(``/tmp/pytest-of-root`` is 0700): use :func:`world_readable_dir`.

Everything is torn down by :meth:`Cluster.stop` (the context manager calls
it): daemons, every process left in the node namespaces and their
descendants (containers included), the holders (the namespaces and their
mounts go with them), the bridge.  Daemons and holders also get
``PR_SET_PDEATHSIG`` so a killed pytest does not leave them behind (job
steps and containers running at that moment may outlive it).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import ipaddress
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from tests.support.registry import LocalRegistry

TOOLS = {
    "munged": "/usr/sbin/munged",
    "mungekey": "/usr/sbin/mungekey",
    "slurmctld": "/usr/sbin/slurmctld",
    "slurmd": "/usr/sbin/slurmd",
    "srun": "/usr/bin/srun",
    "sinfo": "/usr/bin/sinfo",
    "scontrol": "/usr/bin/scontrol",
    "nsenter": "/usr/bin/nsenter",
    "unshare": "/usr/bin/unshare",
    "setpriv": "/usr/bin/setpriv",
    "ip": "/usr/sbin/ip",
    "mount": "/usr/bin/mount",
}
APT_PACKAGES = "slurm-wlm slurm-client munge iproute2 util-linux"

BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BOOT_ID = "/proc/sys/kernel/random/boot_id"

# The image store is shared, the rest per node: podman keeps its database in
# static_dir, which must sit with the runroot it recorded (a database shared
# by nodes with different runroots is refused).
CONTAINERS_CONF = """\
[containers]
default_ulimits = []
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{events}"
tmp_dir = "{tmp}"
static_dir = "{static}"

[network]
network_config_dir = "{netconf}"
"""

STORAGE_CONF = """\
[storage]
driver = "vfs"
graphroot = "{root}"
runroot = "{runroot}"
"""


class ClusterError(RuntimeError):
    """The cluster could not be set up; the message says what failed."""


class ClusterUnsupported(ClusterError):
    """The kernel or sandbox forbids something the cluster needs (not a
    missing package): the message carries the exact failure."""


def archspec_dumps_dir() -> Path:
    """archspec's real /proc/cpuinfo dumps (``<platform>-<os>-<target>``)."""
    import archspec

    return Path(archspec.__file__).parent / "json" / "tests" / "targets"


def resolve_cpuinfo(spec: str | os.PathLike | None) -> Path | None:
    """A dump name in archspec's directory, or a path to a cpuinfo file."""
    if spec is None:
        return None
    path = Path(spec)
    if not path.is_absolute():
        path = archspec_dumps_dir() / spec
    if not path.is_file():
        raise ClusterError(f"cpuinfo dump {spec!r} not found ({path})")
    return path


def nodes_by_class(spec: Mapping[str, tuple[str, str, int]]) -> dict[str, tuple[str, str]]:
    """``{"zen4": ("a", "linux-rocky8.5-zen4", 4)}`` -> ``{"a001": ("zen4",
    "linux-rocky8.5-zen4"), ..., "a004": ...}``: the *nodes* argument of
    :class:`Cluster` for *n* nodes per class named ``<prefix>NNN``."""
    nodes: dict[str, tuple[str, str]] = {}
    for cls, (prefix, dump, count) in spec.items():
        for i in range(1, count + 1):
            nodes[f"{prefix}{i:03d}"] = (cls, dump)
    return nodes


def world_readable_dir(prefix: str = "imagefit-cluster-") -> Path:
    """A new directory under the system temp dir that every user can traverse
    (a good *base_dir*); the caller removes it."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run a :class:`Cluster` (empty when nothing)."""
    missing = [f"{path} ({name})" for name, path in TOOLS.items() if not os.access(path, os.X_OK)]
    if missing:
        missing.append(f"apt-get install -y {APT_PACKAGES} (tests/provision.sh)")
    elif os.geteuid() != 0:
        missing.append("the cluster needs root (namespaces, bridge, slurmd)")
    return missing


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when the test process dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _run(
    argv: Sequence[str], *, timeout: float = 30, check: bool = True, **kw
) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            **kw,
        )
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(f"{' '.join(argv)}: timed out after {timeout}s") from exc
    if check and done.returncode != 0:
        raise ClusterError(
            f"{' '.join(argv)} exited {done.returncode}: {(done.stderr or done.stdout).strip()}"
        )
    return done


_FORBIDDEN = ("operation not permitted", "permission denied", "not supported",
              "unknown device type", "no such device", "read-only file system")  # fmt: skip


def _forbidden_or_error(what: str, detail: str) -> ClusterError:
    """ClusterUnsupported when *detail* says the kernel/sandbox refused
    (EPERM, EACCES, EOPNOTSUPP, no such link type, read-only /proc), else a
    plain ClusterError (a fixable failure, which tests must not skip)."""
    cls = ClusterUnsupported if any(w in detail.lower() for w in _FORBIDDEN) else ClusterError
    return cls(f"{what}: {detail.strip()}")


def _ns_inode(pid: int, kind: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    try:
        return int(data.rsplit(")", 1)[1].split()[1])
    except (IndexError, ValueError):
        return None


def _pids_in_namespaces(inodes: set[str]) -> set[int]:
    """Pids whose net or mnt namespace is one of *inodes*, and all their
    descendants (conmon and containers started on a node)."""
    me = os.getpid()
    parents = {}
    found = set()
    for pid in _all_pids():
        if pid == me:
            continue
        parents[pid] = _ppid(pid)
        if _ns_inode(pid, "net") in inodes or _ns_inode(pid, "mnt") in inodes:
            found.add(pid)
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if pid not in found and ppid in found:
                found.add(pid)
                changed = True
    return found


def _kill_pids(pids: Iterable[int], timeout: float = 5.0) -> None:
    pids = set(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 2.0)
        while time.monotonic() < deadline:
            pids = {p for p in pids if os.path.exists(f"/proc/{p}") and not _zombie(p)}
            if not pids:
                return
            time.sleep(0.05)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    """One simulated machine (a compute node, or the login node)."""

    name: str
    cls: str
    cpuinfo: Path | None  # None: the host's own /proc/cpuinfo
    address: str
    offline: bool = False
    login: bool = False
    boot_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    holder: subprocess.Popen | None = None
    slurmd: subprocess.Popen | None = None
    netns: str | None = None
    mntns: str | None = None

    @property
    def target(self) -> str | None:
        """The archspec target its cpuinfo dump is named after (None: the host's)."""
        return self.cpuinfo.name.rsplit("-", 1)[-1] if self.cpuinfo else None

    @property
    def pid(self) -> int:
        if self.holder is None:
            raise ClusterError(f"node {self.name} is not running")
        return self.holder.pid


class Cluster:
    """A running simulated cluster (see the module docstring).

    *nodes* maps a node name to a cpuinfo spec: a dump name in archspec's
    test directory (``"linux-rocky8.5-zen4"``), a path to a cpuinfo file, or
    ``(class, dump)``.  A node's class (its Slurm partition) is the class
    given, else the dump's target (the last ``-`` field of its name).  Each
    class gets a partition; partition ``all`` (the default) holds every node.
    *offline*: node names with no route to the registry network.  *login*:
    the login node's name; *login_cpuinfo* its dump (None: the host's CPU).
    *cpus*: the CPUs each node declares to Slurm (slurm.conf overrides what
    slurmd detects).
    """

    def __init__(
        self,
        base_dir: str | os.PathLike,
        nodes: Mapping[str, str | os.PathLike | tuple[str, str | os.PathLike]],
        *,
        offline: Iterable[str] = (),
        login: str = "login01",
        login_cpuinfo: str | os.PathLike | None = None,
        cpus: int = 2,
        startup_timeout: float = 60.0,
        start: bool = True,
    ) -> None:
        if not nodes:
            raise ClusterError("a cluster needs at least one node")
        if len(nodes) > 200:
            raise ClusterError("at most 200 nodes")
        self.base_dir = Path(base_dir).resolve()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.cpus = cpus
        self.startup_timeout = startup_timeout
        self.offline = set(offline)
        unknown = self.offline - set(nodes)
        if unknown:
            raise ClusterError(f"offline nodes not in the cluster: {sorted(unknown)}")
        if login in nodes:
            raise ClusterError(f"login node {login!r} is also a compute node")
        self._specs = {}
        for name, spec in nodes.items():
            if isinstance(spec, tuple):
                cls, dump = spec
            else:
                dump = spec
                cls = Path(spec).name.rsplit("-", 1)[-1]
            self._specs[name] = (cls, resolve_cpuinfo(dump))
        self._login_spec = (login, resolve_cpuinfo(login_cpuinfo))
        self.nodes: dict[str, Node] = {}
        self.login: Node | None = None
        self.suffix = secrets.token_hex(3)
        self.bridge = f"ifc{self.suffix}"
        self.net_index: int | None = None
        self.head_dir = self.base_dir / "head"
        self.shared_dir = self.base_dir / "shared"
        self.nodes_dir = self.base_dir / "nodes"
        # Mounted over, on each node, by that node's own directory.
        self.node_root = self.base_dir / "node"
        self.slurm_conf = self.head_dir / "slurm.conf"
        self.munge_socket = self.head_dir / "munge" / "munge.socket"
        self.ctld_port: int | None = None
        self._head: subprocess.Popen | None = None
        self._munged: subprocess.Popen | None = None
        self._ctld: subprocess.Popen | None = None
        self._registries: list[LocalRegistry] = []
        self._bridge_up = False
        self._started = False
        self.timings: dict[str, float] = {}
        if start:
            self.start()

    # -- addresses -----------------------------------------------------------
    @property
    def host_address(self) -> str:
        """The host's end of the bridge on the cluster network (slurmctld)."""
        return f"10.{self.net_index}.0.1"

    @property
    def registry_address(self) -> str:
        """The host's address on the registry network (offline nodes have no
        route to it)."""
        return f"10.{self.net_index}.1.1"

    @property
    def cluster_network(self) -> str:
        return f"10.{self.net_index}.0.0/24"

    @property
    def registry_network(self) -> str:
        return f"10.{self.net_index}.1.0/24"

    @property
    def classes(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for node in self.nodes.values():
            out.setdefault(node.cls, []).append(node.name)
        return out

    @property
    def local_dir(self) -> Path:
        """The node-local directory, as seen *on* a node (same path on every
        node, different content per node; see :meth:`node_dir`)."""
        return self.node_root / "local"

    def node_dir(self, node: str) -> Path:
        """The host-side path of *node*'s local directory (what the node sees
        at :attr:`local_dir`)."""
        return self.nodes_dir / self._node(node).name / "local"

    def _node(self, name: str) -> Node:
        if self.login is not None and name == self.login.name:
            return self.login
        try:
            return self.nodes[name]
        except KeyError:
            raise ClusterError(f"no node {name!r} (nodes: {sorted(self.nodes)})") from None

    # -- lifecycle -----------------------------------------------------------
    def __enter__(self) -> Self:
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> Self:
        if self._started:
            return self
        missing = missing_prerequisites()
        if missing:
            raise ClusterError("; ".join(missing))
        self._check_traversable()
        t0 = time.monotonic()
        try:
            self._started = True
            self._layout()
            self._setup_network_and_nodes()
            self.timings["namespaces"] = time.monotonic() - t0
            self._start_head()
            self.timings["munged+slurmctld"] = time.monotonic() - t0 - self.timings["namespaces"]
            self._start_slurmds()
            self._wait_nodes_idle()
        except BaseException:
            self.stop()
            raise
        self.timings["start"] = time.monotonic() - t0
        return self

    def _check_traversable(self) -> None:
        path = self.base_dir
        while True:
            mode = path.stat().st_mode
            if not mode & 0o001:
                raise ClusterError(
                    f"{path} is not traversable by other users (mode {oct(mode & 0o777)}):"
                    " job steps run as ordinary users need it; use world_readable_dir()"
                )
            if path.parent == path:
                return
            path = path.parent

    def _layout(self) -> None:
        for d in (
            self.head_dir,
            self.shared_dir,
            self.nodes_dir,
            self.node_root,
            self.head_dir / "munge",
        ):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o755)
        self.shared_dir.chmod(0o1777)
        (self.head_dir / "slurm-state").mkdir(exist_ok=True)

    # -- network -------------------------------------------------------------
    def _pick_net_index(self) -> int:
        used = []
        for cmd in (
            ["ip", "-4", "-o", "addr", "show"],
            ["ip", "-4", "route", "show", "table", "all"],
        ):
            out = _run(cmd).stdout
            for word in out.split():
                with contextlib.suppress(ValueError):
                    if word[0].isdigit():
                        used.append(ipaddress.ip_network(word, strict=False))
        with contextlib.suppress(OSError):
            for line in Path("/etc/resolv.conf").read_text().splitlines():
                words = line.split()
                if len(words) > 1 and words[0] == "nameserver":
                    with contextlib.suppress(ValueError):
                        used.append(ipaddress.ip_network(words[1]))
        candidates = list(range(64, 250))
        random.shuffle(candidates)
        for n in candidates:
            ours = ipaddress.ip_network(f"10.{n}.0.0/16")
            if not any(ours.overlaps(u) for u in used if u.prefixlen > 0):
                return n
        raise ClusterError("no free 10.X.0.0/16 range for the cluster network")

    def _setup_network_and_nodes(self) -> None:
        lock_path = Path(tempfile.gettempdir()) / "imagefit-cluster-net.lock"
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.net_index = self._pick_net_index()
            try:
                _run(["ip", "link", "add", self.bridge, "type", "bridge"])
            except ClusterError as exc:
                raise _forbidden_or_error("cannot create a Linux bridge", str(exc)) from exc
            self._bridge_up = True
            # Bridged frames skip iptables even where br_netfilter is loaded
            # (a per-bridge setting; the host's global sysctls are untouched).
            _run(["ip", "link", "set", self.bridge, "type", "bridge",
                  "nf_call_iptables", "0", "nf_call_ip6tables", "0", "nf_call_arptables", "0"],
                 check=False)  # fmt: skip
            with contextlib.suppress(OSError):
                Path(f"/proc/sys/net/ipv6/conf/{self.bridge}/disable_ipv6").write_text("1")
            _run(["ip", "addr", "add", f"{self.host_address}/24", "dev", self.bridge])
            _run(["ip", "addr", "add", f"{self.registry_address}/24", "dev", self.bridge])
            _run(["ip", "link", "set", self.bridge, "up"])
        login_name, login_cpuinfo = self._login_spec
        self.login = Node(
            login_name, "login", login_cpuinfo, f"10.{self.net_index}.0.2", login=True
        )
        for i, (name, (cls, cpuinfo)) in enumerate(self._specs.items()):
            self.nodes[name] = Node(
                name, cls, cpuinfo, f"10.{self.net_index}.0.{10 + i}", offline=name in self.offline
            )
        self._write_hosts()
        everyone = [self.login, *self.nodes.values()]
        for node in everyone:
            self._start_holder(node)
        for node in everyone:
            self._wait_holder(node)
        for i, node in enumerate(everyone):
            self._setup_node(node, i)

    def _write_hosts(self) -> None:
        lines = ["127.0.0.1 localhost", f"{self.host_address} {socket.gethostname()} slurmctld"]
        lines += [f"{n.address} {n.name}" for n in [self.login, *self.nodes.values()]]
        (self.head_dir / "hosts").write_text("\n".join(lines) + "\n")
        (self.head_dir / "resolv.conf").write_text(
            "# no name servers: nothing is looked up outside\n"
        )
        for p in ("hosts", "resolv.conf"):
            (self.head_dir / p).chmod(0o644)

    def _start_holder(self, node: Node) -> None:
        node.holder = subprocess.Popen(
            ["unshare", "--mount", "--uts", "--net", "--propagation", "private",
             "sleep", "infinity"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,  # noqa: PLW1509
        )  # fmt: skip

    def _wait_holder(self, node: Node) -> None:
        own_net, own_mnt = _ns_inode(os.getpid(), "net"), _ns_inode(os.getpid(), "mnt")
        deadline = time.monotonic() + 10
        while True:
            if node.holder.poll() is not None:
                err = node.holder.stderr.read().decode(errors="replace").strip()
                raise _forbidden_or_error(f"unshare --mount --uts --net (node {node.name})", err)
            net, mnt = _ns_inode(node.pid, "net"), _ns_inode(node.pid, "mnt")
            exe = None
            with contextlib.suppress(OSError):
                exe = os.readlink(f"/proc/{node.pid}/exe")
            if net and mnt and net != own_net and mnt != own_mnt and exe and "sleep" in exe:
                node.netns, node.mntns = net, mnt
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"node {node.name}: namespaces not ready after 10s")
            time.sleep(0.01)

    def _setup_node(self, node: Node, index: int) -> None:
        ndir = self.nodes_dir / node.name
        for sub in ("local", "run", "slurmd", "podman"):
            (ndir / sub).mkdir(parents=True, exist_ok=True)
            (ndir / sub).chmod(0o755)
        (ndir / "local").chmod(0o1777)
        (ndir / "boot_id").write_text(node.boot_id + "\n")
        (ndir / "boot_id").chmod(0o444)
        (ndir / "hostname").write_text(node.name + "\n")
        host_veth = f"v{self.suffix}{index:03d}"
        try:
            _run(["ip", "link", "add", host_veth, "type", "veth", "peer", "name", "eth0",
                  "netns", str(node.pid)])  # fmt: skip
        except ClusterError as exc:
            raise _forbidden_or_error("cannot create a veth pair", str(exc)) from exc
        _run(["ip", "link", "set", host_veth, "master", self.bridge, "up"])
        with contextlib.suppress(OSError):
            Path(f"/proc/sys/net/ipv6/conf/{host_veth}/disable_ipv6").write_text("1")
        route = (
            ""
            if node.offline
            else f"ip route add {self.registry_network} via {self.host_address} dev eth0"
        )
        script = f"""set -e
hostname {node.name}
echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 || true
echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6 || true
ip link set lo up
ip addr add {node.address}/24 dev eth0
ip link set eth0 up
{route}
mount --bind {ndir} {self.node_root}
mount --bind {ndir / "run"} /run
mount --bind {ndir / "boot_id"} {BOOT_ID}
mount --bind {self.head_dir / "hosts"} /etc/hosts
mount --bind {self.head_dir / "resolv.conf"} /etc/resolv.conf
mount --bind {ndir / "hostname"} /etc/hostname
"""
        if node.cpuinfo is not None:
            script += f"mount --bind {node.cpuinfo} /proc/cpuinfo\n"
        # Shared propagation inside the node (a peer group of its own, not the
        # host's): rootless podman expects "/" to be a shared mount.
        script += "mount --make-rshared /\n"
        done = subprocess.run(
            ["nsenter", "-t", str(node.pid), "-m", "-u", "-n", "sh", "-c", script],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if done.returncode != 0:
            raise _forbidden_or_error(
                f"setting up node {node.name} (hostname, addresses, bind mounts over /proc)",
                done.stderr,
            )

    # -- head: munged + slurmctld -------------------------------------------
    def _start_head(self) -> None:
        # A mount namespace of the host (same network) where /etc/hosts names
        # the nodes and no DNS server is configured.
        self._head = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sleep", "infinity"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,  # noqa: PLW1509
        )  # fmt: skip
        own_mnt = _ns_inode(os.getpid(), "mnt")
        deadline = time.monotonic() + 10
        while _ns_inode(self._head.pid, "mnt") in (None, own_mnt) or "sleep" not in (
            os.readlink(f"/proc/{self._head.pid}/exe")
            if os.path.exists(f"/proc/{self._head.pid}")
            else ""
        ):
            if self._head.poll() is not None:
                err = self._head.stderr.read().decode(errors="replace")
                raise _forbidden_or_error("unshare --mount (head namespace)", err)
            if time.monotonic() > deadline:
                raise ClusterError("head namespace not ready after 10s")
            time.sleep(0.01)
        _run(["nsenter", "-t", str(self._head.pid), "-m", "sh", "-c",
              f"mount --bind {self.head_dir / 'hosts'} /etc/hosts &&"
              f" mount --bind {self.head_dir / 'resolv.conf'} /etc/resolv.conf"])  # fmt: skip
        self._start_munged()
        self.ctld_port = _free_tcp_port()
        self._write_slurm_conf()
        self._ctld = self._popen_logged(
            self._head_cmd(["slurmctld", "-D", "-i", "-f", str(self.slurm_conf)]),
            self.head_dir / "slurmctld.stdout",
        )
        self._wait(
            lambda: self._slurm_query(["scontrol", "ping"]).returncode == 0,
            "slurmctld answering scontrol ping",
            proc=self._ctld,
            log=self.head_dir / "slurmctld.log",
        )

    def _head_cmd(self, argv: list[str]) -> list[str]:
        return [TOOLS["nsenter"], "-t", str(self._head.pid), "-m", "--", *argv]

    def _popen_logged(
        self, argv: list[str], log: Path, env: dict | None = None
    ) -> subprocess.Popen:
        with open(log, "ab") as out:
            return subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env if env is not None else self._daemon_env(),
                preexec_fn=_die_with_parent,  # noqa: PLW1509
            )  # fmt: skip

    def _daemon_env(self) -> dict[str, str]:
        return {
            "PATH": BASE_PATH,
            "LANG": "C.UTF-8",
            "SLURM_CONF": str(self.slurm_conf),
            "HOME": "/root",
        }

    def _start_munged(self) -> None:
        mdir = self.head_dir / "munge"
        key = mdir / "munge.key"
        if not key.exists():
            _run(["mungekey", "--create", "--keyfile", str(key)])
        key.chmod(0o600)
        self._munged = self._popen_logged(
            self._head_cmd([
                "munged", "--foreground", "--force",
                f"--socket={self.munge_socket}", f"--key-file={key}",
                f"--pid-file={mdir / 'munged.pid'}", f"--log-file={mdir / 'munged.log'}",
                f"--seed-file={mdir / 'munged.seed'}", f"--origin={self.host_address}",
                "--num-threads=4",
            ]),
            mdir / "munged.stdout",
        )  # fmt: skip
        self._wait(
            lambda: self.munge_socket.is_socket(),
            "munged socket",
            proc=self._munged,
            log=mdir / "munged.log",
        )

    def _write_slurm_conf(self) -> None:
        nr = self.node_root
        lines = [
            f"ClusterName=ifc{self.suffix}",
            f"SlurmctldHost={socket.gethostname()}({self.host_address})",
            f"SlurmctldPort={self.ctld_port}",
            "SlurmdPort=6818",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"StateSaveLocation={self.head_dir / 'slurm-state'}",
            f"SlurmctldPidFile={self.head_dir / 'slurmctld.pid'}",
            f"SlurmctldLogFile={self.head_dir / 'slurmctld.log'}",
            # Per node: node_root is each node's own directory.
            f"SlurmdSpoolDir={nr / 'slurmd' / 'spool'}",
            f"SlurmdPidFile={nr / 'slurmd' / 'slurmd.pid'}",
            f"SlurmdLogFile={nr / 'slurmd' / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SwitchType=switch/none",
            "MpiDefault=none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "SchedulerType=sched/backfill",
            "ReturnToService=2",
            "SlurmdParameters=config_overrides",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=60",
            "MessageTimeout=10",
            "InactiveLimit=0",
            "KillWait=2",
            "MinJobAge=5",
            "TreeWidth=256",
        ]
        for node in self.nodes.values():
            lines.append(
                f"NodeName={node.name} NodeAddr={node.address} NodeHostname={node.name}"
                f" CPUs={self.cpus} RealMemory=1000 Feature={node.cls} State=UNKNOWN"
            )
        for cls, names in self.classes.items():
            if cls == "all":
                raise ClusterError('"all" is the partition of every node, not a class name')
            lines.append(f"PartitionName={cls} Nodes={','.join(names)} MaxTime=INFINITE State=UP")
        lines.append("PartitionName=all Nodes=ALL Default=YES MaxTime=INFINITE State=UP")
        self.slurm_conf.write_text("\n".join(x for x in lines if x) + "\n")
        self.slurm_conf.chmod(0o644)

    def _start_slurmds(self) -> None:
        for node in self.nodes.values():
            ndir = self.nodes_dir / node.name / "slurmd"
            (ndir / "spool").mkdir(parents=True, exist_ok=True)
            node.slurmd = self._popen_logged(
                ["nsenter", "-t", str(node.pid), "-m", "-u", "-n", "--",
                 "slurmd", "-D", "-f", str(self.slurm_conf)],
                ndir / "slurmd.stdout",
            )  # fmt: skip

    def _slurm_query(self, argv: list[str], timeout: float = 10) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                self._head_cmd(argv), capture_output=True, text=True, timeout=timeout,
                env=self._daemon_env(), stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, "", "timeout")

    def node_states(self) -> dict[str, str]:
        """``{node: state}`` as sinfo reports it (``idle``, ``down*``, ...)."""
        out = self._slurm_query(["sinfo", "-h", "-N", "-o", "%N %T"]).stdout
        return dict(line.split(None, 1) for line in out.splitlines() if " " in line)

    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until sinfo reports every node idle (no job left on any)."""
        saved = self.startup_timeout
        if timeout is not None:
            self.startup_timeout = timeout
        try:
            self._wait_nodes_idle()
        finally:
            self.startup_timeout = saved

    def _wait_nodes_idle(self) -> None:
        want = set(self.nodes)

        def ready() -> bool:
            for node in self.nodes.values():
                if node.slurmd.poll() is not None:
                    log = self.nodes_dir / node.name / "slurmd" / "slurmd.log"
                    raise ClusterError(
                        f"slurmd of {node.name} exited {node.slurmd.returncode}:\n{_tail(log)}"
                        f"{_tail(log.with_suffix('.stdout'))}"
                    )
            states = self.node_states()
            return want <= {
                n for n, s in states.items() if s.rstrip("*~#") == "idle" and not s.endswith("*")
            }

        self._wait(ready, "every node idle in sinfo", log=self.head_dir / "slurmctld.log",
                   detail=lambda: f"states: {self.node_states()}")  # fmt: skip

    def _wait(self, cond, what: str, *, proc=None, log: Path | None = None, detail=None) -> None:
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.02
        while not cond():
            if proc is not None and proc.poll() is not None:
                raise ClusterError(f"{what}: process exited {proc.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                extra = detail() if detail else ""
                raise ClusterError(
                    f"{what}: not reached after {self.startup_timeout}s {extra}\n{_tail(log)}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    # -- teardown ------------------------------------------------------------
    def stop(self) -> None:
        """Stop everything this cluster started; safe to call twice."""
        if not self._started:
            return
        t0 = time.monotonic()
        for reg in self._registries:
            with contextlib.suppress(Exception):
                reg.stop()
        self._registries.clear()
        everyone = [n for n in [self.login, *self.nodes.values()] if n is not None]
        # In order: slurmds, then slurmctld, then munged (a daemon whose munged
        # is already gone waits on it before it exits).
        for group in ([n.slurmd for n in everyone if n.slurmd], [self._ctld], [self._munged]):
            _terminate_all([p for p in group if p is not None])
        # Whatever is left in our namespaces (slurmstepd, job steps, conmon,
        # containers) and the descendants of those processes.
        inodes = {i for n in everyone for i in (n.netns, n.mntns) if i}
        head_mnt = _ns_inode(self._head.pid, "mnt") if self._head else None
        if head_mnt and head_mnt != _ns_inode(os.getpid(), "mnt"):
            inodes.add(head_mnt)
        holders = {n.holder.pid for n in everyone if n.holder} | (
            {self._head.pid} if self._head else set()
        )
        if inodes:
            _kill_pids(_pids_in_namespaces(inodes) - holders)
        for n in everyone:
            if n.holder is not None:
                _stop_proc(n.holder)
        if self._head is not None:
            _stop_proc(self._head)
        if self._bridge_up:
            _run(["ip", "link", "del", self.bridge], check=False)
            self._bridge_up = False
        # Host ends of veths go with their peers' namespaces; clean up any left.
        out = _run(["ip", "-o", "link", "show"], check=False).stdout
        for line in out.splitlines():
            parts = line.split(":")
            if len(parts) > 1:
                name = parts[1].strip().split("@")[0]
                if name.startswith(f"v{self.suffix}"):
                    _run(["ip", "link", "del", name], check=False)
        self._started = False
        self.timings["stop"] = time.monotonic() - t0

    # -- running things on nodes ---------------------------------------------
    def base_env(self, node: str, user: str | None = None) -> dict[str, str]:
        """The environment a command on *node* starts from: a system PATH,
        HOME/USER/LOGNAME of *user* (default root), SLURM_CONF, LANG, and a
        per-node XDG_RUNTIME_DIR."""
        pw = pwd.getpwnam(user) if user else pwd.getpwuid(0)
        self._runtime_dir(node, pw)
        return {
            "PATH": BASE_PATH,
            "HOME": pw.pw_dir,
            "USER": pw.pw_name,
            "LOGNAME": pw.pw_name,
            "LANG": "C.UTF-8",
            "SLURM_CONF": str(self.slurm_conf),
            "XDG_RUNTIME_DIR": f"/run/user/{pw.pw_uid}",
        }

    def _runtime_dir(self, node: str, pw: pwd.struct_passwd) -> Path:
        path = self.nodes_dir / self._node(node).name / "run" / "user" / str(pw.pw_uid)
        if not path.exists():
            path.parent.mkdir(mode=0o755, exist_ok=True)
            path.mkdir(mode=0o700)
            os.chown(path, pw.pw_uid, pw.pw_gid)
        return path

    def node_argv(self, node: str, argv: Sequence[str], user: str | None = None) -> list[str]:
        """The argv that runs *argv* on *node* (in its namespaces), as *user*."""
        n = self._node(node)
        prefix = [TOOLS["nsenter"], "-t", str(n.pid), "-m", "-u", "-n", "--"]
        if user not in (None, "root"):
            pw = pwd.getpwnam(user)
            prefix += [
                TOOLS["setpriv"],
                f"--reuid={pw.pw_uid}",
                f"--regid={pw.pw_gid}",
                "--init-groups",
                "--",
            ]
        return [*prefix, *argv]

    def run_on(
        self,
        node: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        timeout: float = 60,
        *,
        check: bool = False,
        input: str | None = None,
        cwd: str | os.PathLike | None = None,
    ) -> subprocess.CompletedProcess:
        """Run *argv* on *node* (a compute node or the login node) as root or
        *user*; *env* is layered over :meth:`base_env`.  Returns the
        CompletedProcess (text stdout/stderr).  On timeout the command and
        everything it started on the node are killed and TimeoutExpired is
        raised."""
        full_env = self.base_env(node, user) | dict(env or {})
        proc = subprocess.Popen(
            self.node_argv(node, argv, user),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=full_env, cwd=cwd or "/", start_new_session=True,
        )  # fmt: skip
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=10)
            raise subprocess.TimeoutExpired(proc.args, timeout, out, err) from None
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        if check and done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, argv, out, err)
        return done

    def srun(
        self,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        timeout: float = 60,
        *,
        check: bool = False,
    ) -> subprocess.CompletedProcess:
        """Run the real ``srun ARGS`` on the login node (srun exports its
        environment, *env* over :meth:`base_env`, to the job steps)."""
        return self.run_on(
            self.login.name,
            [TOOLS["srun"], *args],
            env=env,
            user=user,
            timeout=timeout,
            check=check,
        )

    # -- services reachable from the nodes ----------------------------------
    def start_registry(self, root_dir: str | os.PathLike | None = None, **kw) -> LocalRegistry:
        """A :class:`LocalRegistry` bound to :attr:`registry_address`: every
        online node and the login node reach it, offline nodes do not, the
        host too (push with ``reg.host`` as usual).  Stopped with the cluster."""
        root = Path(root_dir) if root_dir else self.head_dir / f"registry{len(self._registries)}"
        reg = LocalRegistry(root, host=self.registry_address, **kw)
        self._registries.append(reg)
        return reg

    @property
    def registries(self) -> list[LocalRegistry]:
        return list(self._registries)

    @property
    def registry(self) -> LocalRegistry:
        """The first registry on the registry network (started on first use)."""
        return self._registries[0] if self._registries else self.start_registry()

    def podman_everywhere(self, user: str | None = None) -> tuple[list[str], dict[str, str]]:
        """:meth:`podman` prepared on every node and the login node: the
        (argv, env) it returns is the same on each (the per-node paths are
        the same paths on every node), so it can go into ``srun``'s
        environment, e.g. ``c.srun(["-N6", *argv, "run", ...], env=env)``."""
        results = {n: self.podman(n, user) for n in [self.login.name, *self.nodes]}
        (argv, env), *rest = results.values()
        if any(r != (argv, env) for r in rest):
            raise ClusterError("podman settings differ between nodes")
        return argv, env

    def podman(self, node: str, user: str | None = None) -> tuple[list[str], dict[str, str]]:
        """(argv prefix, env) for podman on *node*: the image store (graphroot)
        on the shared directory (one per user: root, or *user* rootless); the
        runroot and tmp dir where podman puts them by default, in the node's
        own ``/run`` (``/run/containers/storage`` and ``/run/libpod`` for root,
        ``/run/user/UID/containers`` and ``/run/user/UID/libpod/tmp`` rootless);
        the database (static dir), events log and config files in the node's
        own directory.  Use with :meth:`run_on` (``env=`` the returned env,
        ``user=`` the same user).  Containers need ``--network=none`` or
        ``--network=host``; a plain-HTTP registry needs ``--tls-verify=false``
        (or use the generated registries.conf, which marks the cluster's
        registries insecure)."""
        n = self._node(node)
        pw = pwd.getpwnam(user) if user else pwd.getpwuid(0)
        owner = (pw.pw_uid, pw.pw_gid)
        rootless = pw.pw_uid != 0
        tag = pw.pw_name
        top = self.shared_dir / "podman"
        graph = top / tag / "graph"
        host_node = self.nodes_dir / n.name / "podman" / tag
        seen_node = self.node_root / "podman" / tag  # the same, as the node sees it
        host_run = self.nodes_dir / n.name / "run"  # the node's /run
        if rootless:
            self._runtime_dir(n.name, pw)
            runroot, tmp = f"/run/user/{pw.pw_uid}/containers", f"/run/user/{pw.pw_uid}/libpod/tmp"
        else:
            runroot, tmp = "/run/containers/storage", "/run/libpod"
        for d in (top, top / tag, graph, host_node, host_node / "static", host_node / "net",
                  host_node / "conf", host_run / runroot[5:], host_run / tmp[5:]):  # fmt: skip
            d.mkdir(parents=True, exist_ok=True)
        (host_node / "conf" / "containers.conf").write_text(
            CONTAINERS_CONF.format(
                events=seen_node / "events.log", tmp=tmp,
                static=seen_node / "static", netconf=seen_node / "net",
            )
        )  # fmt: skip
        (host_node / "conf" / "storage.conf").write_text(
            STORAGE_CONF.format(root=graph, runroot=runroot)
        )
        regs = "".join(
            f'[[registry]]\nlocation = "{r.host}"\ninsecure = true\n\n' for r in self._registries
        )
        (host_node / "conf" / "registries.conf").write_text(
            "unqualified-search-registries = []\n\n" + regs
        )
        if rootless:
            chown = [top / tag, graph, host_node, *(host_run / p[5:] for p in (runroot, tmp))]
            chown += [host_run / "user" / str(pw.pw_uid) / "libpod"]
            for path in chown:
                for root, dirs, files in os.walk(path):
                    for name in [*dirs, *files]:
                        os.lchown(os.path.join(root, name), *owner)
                os.lchown(path, *owner)
        argv = [
            "podman", "--root", str(graph), "--runroot", runroot,
            "--storage-driver", "vfs", "--tmpdir", tmp,
        ]  # fmt: skip
        env = {
            "CONTAINERS_CONF": str(seen_node / "conf" / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(seen_node / "conf" / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(seen_node / "conf" / "registries.conf"),
        }
        return argv, env


# -- pytest ---------------------------------------------------------------------

# The layout tests/test_cluster_infra.py checks: 6 online nodes in 3 classes and
# one offline node (h003, class haswell).
STANDARD_NODES = nodes_by_class(
    {
        "zen4": ("a", "linux-rocky8.5-zen4", 2),
        "spr": ("s", "linux-unknown-sapphirerapids", 2),
        "haswell": ("h", "linux-rhel7-haswell", 3),
    }
)
STANDARD_OFFLINE = frozenset({"h003"})


def start_for_pytest(base_dir: str | os.PathLike, nodes: Mapping = STANDARD_NODES, **kw) -> Cluster:
    """Start a Cluster from a fixture: fail when a package is missing (skip
    instead under IMAGEFIT_TESTS_ALLOW_SKIP=1, as tests/support/fixtures.py
    does), skip when the kernel or sandbox forbids namespaces, bridges, veths
    or the bind mounts over /proc (ClusterUnsupported, with its message)."""
    import pytest

    missing = missing_prerequisites()
    if missing:
        message = "simulated cluster: " + "; ".join(missing)
        if os.environ.get("IMAGEFIT_TESTS_ALLOW_SKIP") == "1":
            pytest.skip(message)
        pytest.fail(message)
    try:
        return Cluster(base_dir, nodes, **kw)
    except ClusterUnsupported as exc:
        pytest.skip(f"this kernel/sandbox forbids the simulated cluster: {exc}")


def _hpc_cluster():
    base = world_readable_dir()
    cluster = start_for_pytest(base, STANDARD_NODES, offline=STANDARD_OFFLINE)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def _make_fixture():
    try:
        import pytest
    except ImportError:  # usable without pytest
        return None
    return pytest.fixture(scope="session", name="hpc_cluster")(_hpc_cluster)


#: Session fixture: a started Cluster with STANDARD_NODES (h003 offline);
#: ``hpc_cluster.registry`` starts a registry the online nodes reach.  Import
#: it into a test module or conftest (``from tests.support.cluster import
#: hpc_cluster``; pyproject's ruff settings allow the F401/F811 that brings).
hpc_cluster = _make_fixture()


def _terminate_all(procs: list[subprocess.Popen], timeout: float = 5.0) -> None:
    procs = [p for p in procs if p.poll() is None]
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            p.terminate()
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=2)


def _stop_proc(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _tail(path: Path | None, lines: int = 25) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return f"--- {path} (last {lines} lines)\n" + "\n".join(text[-lines:]) + "\n"


__all__ = [
    "STANDARD_NODES",
    "STANDARD_OFFLINE",
    "Cluster",
    "hpc_cluster",
    "start_for_pytest",
    "ClusterError",
    "ClusterUnsupported",
    "Node",
    "archspec_dumps_dir",
    "missing_prerequisites",
    "nodes_by_class",
    "resolve_cpuinfo",
    "world_readable_dir",
]
