"""Build labels that say which build (issue 12, item 2 and the label half of
item 7), through the installed ``imagefit`` and the shim linked as
``podman`` (``IMAGEFIT_DRY_RUN=1``), against a real registry on loopback.

One index holds a CPU build and a CUDA build of the same target
(``x86_64_v3``), an MPICH-ABI and an Open MPI-ABI build of ``zen4``, a build
named only by a ``platform.features`` token, and the generic build. A second
holds two builds that differ only in kernel and glibc ranges (their labels
get digest suffixes). Host facts: archspec's real cpuinfo dumps plus GPU and
MPI described with the hostfacts model (tests.test_e2e_scoring.host).
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.support import oci
from tests.test_e2e_scoring import HASWELL, MPICH, OPENMPI, ZEN4, h100, host, t4

P = "org.supercontainers."
TARGET = P + "hardware.cpu.target.microarch"
AMD64 = {"architecture": "amd64", "os": "linux"}
V3 = {**AMD64, "variant": "v3"}
V4 = {**AMD64, "variant": "v4"}

BUILDS = [
    {"name": "generic", "platform": AMD64, "annotations": {TARGET: "x86_64"}},
    {"name": "cpu", "platform": V3, "annotations": {TARGET: "x86_64_v3"}},
    {"name": "cuda", "platform": V3, "annotations": {
        TARGET: "x86_64_v3", P + "hardware.gpu.vendor": "nvidia",
        P + "hardware.gpu.cuda.version": ">=12.2", P + "hardware.gpu.compute_capabilities": "9.0"}},
    {"name": "mpich", "platform": V4, "annotations": {TARGET: "zen4", P + "mpi.abi": "mpich"}},
    {"name": "openmpi", "platform": V4, "annotations": {TARGET: "zen4", P + "mpi.abi": "openmpi"}},
    {"name": "token", "platform": {**AMD64, "features": ["cpu:haswell"]}, "annotations": None},
]  # fmt: skip
LABELS = {
    "generic": "x86_64",
    "cpu": "x86_64_v3",
    "cuda": "x86_64_v3+cuda12.2+sm90",
    "mpich": "zen4+mpich-abi",
    "openmpi": "zen4+openmpi-abi",
    "token": "haswell",  # from its platform.features token, not linux/amd64@<digest>
}
TWINS = [
    {"name": "old", "platform": V4, "annotations": {TARGET: "zen4", P + "os.glibc.version": ">=2.28"}},
    {"name": "new", "platform": V4, "annotations": {TARGET: "zen4", P + "os.kernel.version": ">=5.14"}},
]  # fmt: skip

HOSTS = {
    "h100": lambda: host(ZEN4, "zen4-h100", gpu=h100()),
    "t4": lambda: host(HASWELL, "haswell-t4", gpu=t4()),
    "zen4": lambda: host(ZEN4, "zen4-cpu"),
    "mpich": lambda: host(ZEN4, "zen4-mpich", mpi=MPICH),
    "openmpi": lambda: host(ZEN4, "zen4-openmpi", mpi=OPENMPI),
    "haswell": lambda: host(HASWELL, "haswell"),
}


@pytest.fixture(scope="module")
def pushed(registry, tmp_path_factory):
    return oci.build_and_push(registry.host, "labels/app", "1", BUILDS,
                              layout_dir=tmp_path_factory.mktemp("labels"))  # fmt: skip


@pytest.fixture(scope="module")
def twins(registry, tmp_path_factory):
    return oci.build_and_push(registry.host, "labels/twins", "1", TWINS,
                              layout_dir=tmp_path_factory.mktemp("twins"))  # fmt: skip


@pytest.fixture(scope="module")
def facts(tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("facts")
    files = {}
    for name, make in HOSTS.items():
        path = out / f"{name}.json"
        path.write_text(make().model_dump_json(indent=2))
        files[name] = str(path)
    return files


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """No site or user config, a cache of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEFIT_")}
    env.update({
        "IMAGEFIT_SITE_CONFIG": str(tmp_path / "no-site.toml"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "IMAGEFIT_CACHE_DIR": str(tmp_path / "cache"),
    })  # fmt: skip
    return env


def site(env: dict, tmp_path, body: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(body)
    path.chmod(0o644)
    env["IMAGEFIT_SITE_CONFIG"] = str(path)


def run(cmd: list[str], env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=120)


def explain(imagefit_cmd, env, ref: str, facts_file: str, *extra: str) -> dict:
    done = run(imagefit_cmd, env, "explain", ref, "--json", "--tls-verify", "false",
               "--facts", facts_file, *extra)  # fmt: skip
    assert done.returncode in (0, 125), done.stderr
    return json.loads(done.stdout)


def labels_of(decision: dict, pushed) -> dict[str, str]:
    by_digest = {d: n for n, d in pushed.manifests.items()}
    return {by_digest[c["digest"]]: c["build"] for c in decision["candidates"]}


def shim(shim_bin, podman_env, env, args, facts_file, **extra):
    argv, podman = podman_env
    env = {**{k: v for k, v in podman.items() if not k.startswith("IMAGEFIT_")}, **env}
    env.update({"PATH": f"{shim_bin}:{podman['PATH']}", "IMAGEFIT_FACTS": facts_file,
                "IMAGEFIT_DRY_RUN": "1", **extra})  # fmt: skip
    return subprocess.run([str(shim_bin / "podman"), *argv[1:], *args], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


# -- labels ------------------------------------------------------------------------


def test_every_build_has_a_label_that_says_what_it_is(imagefit_cmd, env, pushed, facts):
    decision = explain(imagefit_cmd, env, pushed.ref, facts["h100"])
    assert labels_of(decision, pushed) == LABELS
    assert decision["chosen"]["build"] == "x86_64_v3+cuda12.2+sm90"
    text = run(imagefit_cmd, env, "explain", pushed.ref, "--tls-verify", "false",
               "--facts", facts["h100"]).stdout  # fmt: skip
    for label in LABELS.values():
        assert f"  {label}  " in text, label
    assert "selected: x86_64_v3+cuda12.2+sm90 ranks first" in text


def test_builds_alike_but_for_versions_get_their_digest(imagefit_cmd, env, twins, facts):
    decision = explain(imagefit_cmd, env, twins.ref, facts["zen4"])
    short = {n: d.split(":")[1][:8] for n, d in twins.manifests.items()}
    assert labels_of(decision, twins) == {
        "old": f"zen4@{short['old']}",
        "new": f"zen4@{short['new']}",
    }


def test_check_shows_labels_and_the_hosts_gpus_and_mpi(imagefit_cmd, env, pushed, facts):
    done = run(imagefit_cmd, env, "check", pushed.ref, "--tls-verify", "false",
               "--facts", facts["h100"], "--facts", facts["mpich"], "--facts", facts["t4"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [re.split(r"\s{2,}", ln.strip()) for ln in done.stdout.splitlines()[3:]]
    assert rows[0] == [
        "zen4-h100", "zen4; 1x NVIDIA H100 80GB HBM3 (sm 9.0, CUDA 12.4); no MPI", "selected",
        "x86_64_v3+cuda12.2+sm90", pushed.manifests["cuda"][:19],
    ]  # fmt: skip
    assert rows[1] == [
        "zen4-mpich", "zen4; no GPU; mpich 4.1.2 (mpich ABI)", "selected", "zen4+mpich-abi",
        pushed.manifests["mpich"][:19],
    ]  # fmt: skip
    # the T4 (sm 7.5) has no code in the sm90 build; which CPU build wins is the
    # ranking of platform.features tokens (item 7), not the label
    assert rows[2][:3] == [
        "haswell-t4",
        "haswell; 1x Tesla T4 (sm 7.5, CUDA 12.2); no MPI",
        "selected",
    ]
    assert rows[2][3:] in (
        ["haswell", pushed.manifests["token"][:19]],
        ["x86_64_v3", pushed.manifests["cpu"][:19]],
    )


def test_audit_log_and_decision_cache_carry_the_label(
    shim_bin, podman_env, env, tmp_path, pushed, facts
):
    audit = tmp_path / "audit.jsonl"
    site(env, tmp_path, f'audit_log = "{audit}"\n')
    args = ["run", "--rm", "--tls-verify=false", pushed.ref, "true"]
    for _ in range(2):  # a miss, then a hit from the decision cache
        done = shim(shim_bin, podman_env, env, args, facts["h100"])
        assert done.returncode == 0, done.stderr
        assert f"{pushed.repository}@{pushed.manifests['cuda']}" in json.loads(done.stdout)
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(r["cache"], r["build"], r["chosen"]) for r in records] == [
        ("miss", "x86_64_v3+cuda12.2+sm90", pushed.manifests["cuda"]),
        ("hit", "x86_64_v3+cuda12.2+sm90", pushed.manifests["cuda"]),
    ]


# -- policy --------------------------------------------------------------------------


def test_a_pin_on_the_bare_target_names_the_cpu_build_not_the_cuda_build(
    shim_bin, podman_env, env, tmp_path, pushed, facts
):
    # before: both builds were labelled x86_64_v3, and this pin ran the CUDA build
    site(env, tmp_path, f'[[policy]]\nimage = "{pushed.repository}"\npin = "x86_64_v3"\n')
    done = shim(shim_bin, podman_env, env, ["run", "--rm", "--tls-verify=false", pushed.ref, "true"],
                facts["h100"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{pushed.repository}@{pushed.manifests['cpu']}" in json.loads(done.stdout)


@pytest.mark.parametrize(
    ("pin", "node", "build"),
    [("x86_64_v3+cuda12.2+sm90", "h100", "cuda"), ("zen4+openmpi-abi", "openmpi", "openmpi"),
     ("haswell", "haswell", "token")],
)  # fmt: skip
def test_a_pin_on_the_full_label_runs_that_build(
    shim_bin, podman_env, env, tmp_path, pushed, facts, pin, node, build
):
    site(env, tmp_path, f'[[policy]]\nimage = "{pushed.repository}"\npin = "{pin}"\n')
    done = shim(shim_bin, podman_env, env, ["run", "--rm", "--tls-verify=false", pushed.ref, "true"],
                facts[node])  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{pushed.repository}@{pushed.manifests[build]}" in json.loads(done.stdout)


def test_a_pin_that_names_several_builds_is_one_line_and_exit_125(
    shim_bin, podman_env, env, tmp_path, pushed, facts, imagefit_cmd
):
    site(env, tmp_path, f'[[policy]]\nimage = "{pushed.repository}"\npin = "zen4"\n')
    args = ["run", "--rm", "--tls-verify=false", pushed.ref, "true"]
    done = shim(shim_bin, podman_env, env, args, facts["mpich"])
    assert done.returncode == 125 and done.stdout == ""
    assert done.stderr == (
        f'imagefit: {pushed.ref}: site policy pin "zen4" names 2 builds: zen4+mpich-abi, '
        "zen4+openmpi-abi; pin one label or digest\n"
    )
    # IMAGEFIT_PIN says so too, naming itself
    env["IMAGEFIT_SITE_CONFIG"] = str(tmp_path / "none.toml")
    done = shim(shim_bin, podman_env, env, args, facts["zen4"], IMAGEFIT_PIN="zen4")
    assert done.returncode == 125
    assert done.stderr.splitlines() == [
        f'imagefit: {pushed.ref}: IMAGEFIT_PIN pin "zen4" names 2 builds: zen4+mpich-abi, '
        "zen4+openmpi-abi; pin one label or digest"
    ]
    # explain: refused, with the same reason
    site(env, tmp_path, f'[[policy]]\nimage = "{pushed.repository}"\npin = "zen4"\n')
    decision = explain(imagefit_cmd, env, pushed.ref, facts["mpich"])
    assert decision["outcome"] == "refused" and decision["chosen"] is None
    assert decision["reason"].startswith('site policy pin "zen4" names 2 builds')


def test_lint_policy_reports_a_pin_that_names_several_builds(imagefit_cmd, env, tmp_path, pushed):
    site(env, tmp_path, f'[[policy]]\nimage = "{pushed.repository}"\npin = "zen4"\n')
    done = run(imagefit_cmd, env, "lint", "--policy", pushed.ref, "--tls-verify", "false")
    assert done.returncode == 1, done.stderr
    path = env["IMAGEFIT_SITE_CONFIG"]
    assert done.stdout.splitlines() == [
        f'error: policy: site config {path}: [[policy]] image = "{pushed.repository}" (for nodes '
        f'in no class): site policy pin "zen4" names 2 builds: zen4+mpich-abi, zen4+openmpi-abi; '
        f"pin one label or digest: those nodes refuse {pushed.ref}"
    ]
    # doctor --image says so too, as a problem (the same lint finding)
    insecure = f'insecure_registries = ["{pushed.ref.split("/")[0]}"]\n'
    site(env, tmp_path, insecure + f'[[policy]]\nimage = "{pushed.repository}"\npin = "zen4"\n')
    done = run(imagefit_cmd, env, "doctor", "--image", pushed.ref, "--json")
    assert done.returncode == 1, done.stderr
    assert [p for p in json.loads(done.stdout)["problems"] if "pin" in p] == [
        f'site config {env["IMAGEFIT_SITE_CONFIG"]}: [[policy]] image = "{pushed.repository}" '
        f'(for nodes in no class): site policy pin "zen4" names 2 builds: zen4+mpich-abi, '
        f"zen4+openmpi-abi; pin one label or digest: those nodes refuse {pushed.ref}"
    ]
    site(env, tmp_path, f'[[policy]]\nimage = "{pushed.repository}"\npin = "zen4+mpich-abi"\n')
    done = run(imagefit_cmd, env, "lint", "--policy", pushed.ref, "--tls-verify", "false")
    assert done.returncode == 0 and done.stdout == "", done.stdout


# -- explain's words -------------------------------------------------------------------


def _details(decision: dict, pushed, build: str) -> dict[str, str]:
    cand = next(c for c in decision["candidates"] if c["digest"] == pushed.manifests[build])
    return {c["name"]: c["detail"] for c in cand["checks"]}


def test_explain_words_each_rule_as_people_write_it(imagefit_cmd, env, pushed, twins, facts):
    h100_host = explain(imagefit_cmd, env, pushed.ref, facts["h100"])
    cuda = _details(h100_host, pushed, "cuda")
    assert cuda["gpu.nvidia"] == "needs an NVIDIA GPU; host has 1 (NVIDIA H100 80GB HBM3)"
    assert cuda["gpu.cuda"] == "needs CUDA >= 12.2 (driver); host has CUDA 12.4"
    assert cuda["gpu.compute_capability"] == (
        "needs a GPU of compute capability 9.0; host has 9.0: native sm_90 code for every visible GPU"
    )
    assert cuda["cpu.target"] == "needs CPU target x86_64_v3; host zen4 runs it"
    mpich = _details(h100_host, pushed, "mpich")
    assert mpich["mpi.abi"] == "needs MPI ABI mpich; host has no MPI"
    openmpi = _details(explain(imagefit_cmd, env, pushed.ref, facts["mpich"]), pushed, "openmpi")
    assert openmpi["mpi.abi"] == "needs MPI ABI openmpi; host has mpich 4.1.2 (mpich ABI)"

    t4_host = explain(imagefit_cmd, env, pushed.ref, facts["t4"])
    assert _details(t4_host, pushed, "cuda")["gpu.compute_capability"] == (
        "needs a GPU of compute capability 9.0; host has 7.5"
    )
    assert _details(t4_host, pushed, "mpich")["cpu.target"] == (
        "needs CPU target zen4; host haswell cannot run it"
    )
    no_gpu = _details(explain(imagefit_cmd, env, pushed.ref, facts["zen4"]), pushed, "cuda")
    assert no_gpu["gpu.nvidia"] == "needs an NVIDIA GPU; host has no NVIDIA driver"
    assert no_gpu["gpu.cuda"] == "needs CUDA >= 12.2 (driver); host has no NVIDIA driver"

    zen4 = explain(imagefit_cmd, env, twins.ref, facts["zen4"])
    assert (
        _details(zen4, twins, "old")["glibc.version"] == "needs glibc >= 2.28; host has glibc 2.36"
    )
    assert _details(zen4, twins, "new")["kernel.version"] == (
        "needs kernel >= 5.14; host has 6.1.0-18-amd64"
    )

    text = run(imagefit_cmd, env, "explain", pushed.ref, "-v", "--tls-verify", "false",
               "--facts", facts["zen4"]).stdout  # fmt: skip
    assert "x  gpu.nvidia count > 0; host has 0" in text
    for never in ("Ge [", "In [", "host: ''", "; host: "):
        assert never not in text, never


def test_index_create_prints_a_label_per_build(registry, imagefit_cmd, env, tmp_path):
    # the report: index create labelled a CUDA build and a CPU build both x86_64_v3
    from tests.test_author import push_image

    h = registry.host
    cpu = push_image(h, "labels/cpu:1", "cpu", tmp_path)
    gpu = push_image(h, "labels/gpu:1", "gpu", tmp_path)
    done = run(imagefit_cmd, env, "index", "create", f"{h}/labels/made:1", "--tls-verify", "false",
               "--build", f"{h}/labels/cpu:1=x86_64_v3",
               "--build", f"{h}/labels/gpu:1=x86_64_v3,gpu.vendor=nvidia,cuda=>=12.2,"
                          "compute_capabilities=9.0")  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [re.split(r"\s+", ln.strip())[:3] for ln in done.stdout.splitlines()[:-1]]
    assert rows == [
        ["0", "x86_64_v3", "linux/amd64/v3"],
        ["1", "x86_64_v3+cuda12.2+sm90", "linux/amd64/v3"],
    ]
    assert f"{cpu[:19]}" in done.stdout and f"{gpu[:19]}" in done.stdout
