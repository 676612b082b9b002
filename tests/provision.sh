#!/usr/bin/env bash
# Provision a machine (Debian 12, as root) for imagefit's test-suite:
#  - the real tools the tests run: a Distribution registry, podman (rootful and
#    rootless), skopeo, busybox-static for tiny images;
#  - Slurm (slurmctld, slurmd, srun) and munge for the simulated cluster of
#    tests/support/cluster.py, which starts its own daemons with its own config
#    files (nothing is configured or left running here);
#  - Debian's docker.io (dockerd, docker) for tests/test_e2e_docker.py, whose
#    fixture (tests/support/docker.py) starts a daemon of its own, as the
#    registry's does: none is configured or left running here;
#  - an ordinary user for rootless podman (IMAGEFIT_TEST_USER, default alice, uid 1234);
#  - a virtual environment every user can run (/opt/imagefit-venv by default,
#    IMAGEFIT_VENV overrides) with imagefit and its test extras installed from
#    this checkout. Idempotent: rerun it after changing the code.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${IMAGEFIT_VENV:-/opt/imagefit-venv}
TEST_USER=${IMAGEFIT_TEST_USER:-alice}
TEST_UID=${IMAGEFIT_TEST_UID:-1234}
PKGS=(docker-registry podman runc uidmap slirp4netns fuse-overlayfs busybox-static skopeo apache2-utils python3-venv
      libmpich12 mpich libopenmpi3 openmpi-bin time lmod rpm tcl
      slurm-wlm slurm-client munge iproute2 util-linux charliecloud python3-lark openssl)
# Started by their packages' postinst on a systemd machine; the cluster tests
# run daemons of their own, so these are stopped again (only when this run
# installed them).
SERVICES=(slurmd slurmctld munge)
# The system daemon would add iptables rules and a docker0 bridge (podman's
# networks share the host): stopped like the services above.
PKGS+=(docker.io)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "provision: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    for svc in "${SERVICES[@]}"; do
      case " ${missing[*]} " in
        *" $svc "*|*" slurm-wlm "*) systemctl disable --now "$svc" >/dev/null 2>&1 || true ;;
      esac
    done
    case " ${missing[*]} " in
      *" docker.io "*) systemctl disable --now docker.socket docker containerd >/dev/null 2>&1 || true ;;
    esac
  fi
fi

# Environment Modules (for tests/test_packaging.py) conflicts with lmod in Debian
# (both define `module`): unpack its .deb instead; the test runs its modulecmd.tcl.
EM_DIR=/opt/environment-modules
if ! ls "$EM_DIR"/usr/lib/*/modulecmd.tcl >/dev/null 2>&1; then
  deb_dir=$(mktemp -d)
  (cd "$deb_dir" && { apt-get download -q environment-modules || { apt-get update -q && apt-get download -q environment-modules; }; })
  dpkg-deb -x "$deb_dir"/environment-modules_*.deb "$EM_DIR"
  rm -rf "$deb_dir"
fi

if ! id -u "$TEST_USER" >/dev/null 2>&1; then
  useradd -m -u "$TEST_UID" "$TEST_USER"
fi

# Debian's python3 lives outside /root, so the rootless test user can run the shim.
if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q --force-reinstall --no-deps .
"$VENV/bin/python" -m pip install -q '.[test]'
chmod -R a+rX "$VENV"
echo "provision: ready ($VENV, test user $TEST_USER)"
