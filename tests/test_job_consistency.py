"""One build per job, and pulls for node classes, through the installed shim
(dry run; real registry): the environment Slurm gives a job step
(``SLURM_JOB_ID``, ``SLURM_JOB_NODELIST``), ``consistency`` from the site
config or ``IMAGEFIT_CONSISTENCY``, and ``IMAGEFIT_NODE_CLASS`` on the pulls
of every runtime (apptainer, singularity and Sarus through recording
stand-ins that assert the exact argv). The same on a real Slurm cluster:
tests/test_cluster_e2e.py."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import world_readable_tmp
from tests.support.standin import StandIn, path_with
from tests.test_cluster_cli import COMMON, DUMPS, _builds, _write, app, env, facts  # noqa: F401

HERE = os.uname().nodename.split(".")[0]  # this machine is a node of the job, class zen4
JOB = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": f"a[001-002],c001,{HERE}"}


def _site(env, registry, facts, extra="") -> None:  # noqa: F811
    arm = facts["neoverse_v2"]
    _write(Path(env["IMAGEFIT_SITE_CONFIG"]),
           f'insecure_registries = ["{registry.host}"]\n{extra}\n'
           f'[node_classes.zen4]\nfacts = "{facts["zen4"]}"\nhosts = ["a*", "{HERE}"]\n'
           f'[node_classes.cascadelake]\nfacts = "{facts["cascadelake"]}"\nhosts = ["c*"]\n'
           f'[node_classes.grace]\nfacts = "{arm}"\nhosts = ["g*"]\n')  # fmt: skip


@pytest.fixture(scope="module")
def arm_facts(cpuinfo_dir, imagefit_cmd, facts):  # noqa: F811
    out = world_readable_tmp("imagefit-arm-class-")
    done = subprocess.run([*imagefit_cmd, "facts", "--json", "--cpuinfo", str(cpuinfo_dir / "linux-ubuntu22.04-neoverse_v2"),
                           "--machine", "aarch64"], check=True, capture_output=True, text=True)  # fmt: skip
    (out / "grace.json").write_text(done.stdout)
    (out / "grace.json").chmod(0o644)
    return {**facts, "neoverse_v2": str(out / "grace.json")}


def _shim(shim_bin, env, *args, **extra):  # noqa: F811
    return subprocess.run([str(shim_bin / "podman"), *args], env={**env, "IMAGEFIT_DRY_RUN": "1", **extra},
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def _pinned(done) -> str:
    assert done.returncode == 0, done.stderr
    return next(a for a in json.loads(done.stdout.splitlines()[-1]) if "@sha256:" in a)


def test_a_job_step_runs_the_common_build_from_the_site_config_or_the_environment(
    registry,
    app,
    arm_facts,
    shim_bin,
    env,  # noqa: F811
):
    run = ["run", "--rm", "--tls-verify=false", app.ref, "true"]
    _site(env, registry, arm_facts)
    zen4 = {"IMAGEFIT_FACTS": arm_facts["zen4"]}
    assert _pinned(_shim(shim_bin, env, *run, **zen4, **JOB)) == app.digest_ref(
        "zen4"
    )  # consistency = node
    done = _shim(shim_bin, env, *run, **zen4, **JOB, IMAGEFIT_CONSISTENCY="job")
    assert _pinned(done) == app.digest_ref(COMMON) and done.stderr == ""
    _site(env, registry, arm_facts, 'consistency = "job"')
    assert _pinned(_shim(shim_bin, env, *run, **zen4, **JOB)) == app.digest_ref(COMMON)
    # every rank gets it, whatever its own class: the cascadelake node too
    cascade = {"IMAGEFIT_FACTS": arm_facts["cascadelake"]}
    assert _pinned(_shim(shim_bin, env, *run, **cascade, **JOB)) == app.digest_ref(COMMON)
    # a job of one class: that class's build; outside a job: this node's own
    one = {**JOB, "SLURM_JOB_NODELIST": f"a[001-004],{HERE}"}
    assert _pinned(_shim(shim_bin, env, *run, **zen4, **one)) == app.digest_ref("zen4")
    assert _pinned(_shim(shim_bin, env, *run, **cascade)) == app.digest_ref("haswell")
    # IMAGEFIT_CONSISTENCY=node for one command
    done = _shim(shim_bin, env, *run, **cascade, **JOB, IMAGEFIT_CONSISTENCY="node")
    assert _pinned(done) == app.digest_ref("haswell")


def test_a_job_node_in_no_class_and_a_job_with_no_common_build(
    registry, app, arm_facts, shim_bin, env
):  # noqa: F811
    run = ["run", "--rm", "--tls-verify=false", app.ref, "true"]
    _site(env, registry, arm_facts, 'consistency = "job"')
    zen4 = {"IMAGEFIT_FACTS": arm_facts["zen4"]}
    done = _shim(
        shim_bin, env, *run, **zen4, SLURM_JOB_ID="1", SLURM_JOB_NODELIST=f"{HERE},x[07-08]"
    )
    assert _pinned(done) == app.digest_ref("zen4")
    assert done.stderr.splitlines() == [
        "imagefit: job node x07 is in no node class; choosing for this node alone"
    ]
    done = _shim(shim_bin, env, *run, **zen4, SLURM_JOB_ID="1", SLURM_JOB_NODELIST="a[001-")
    assert _pinned(done) == app.digest_ref("zen4")
    assert len(done.stderr.splitlines()) == 1 and "cannot read SLURM_JOB_NODELIST" in done.stderr
    # this node not among the job's nodes (an salloc shell on the login node): its own choice
    done = _shim(shim_bin, env, *run, **zen4, SLURM_JOB_ID="1", SLURM_JOB_NODELIST="c[001-002]")
    assert _pinned(done) == app.digest_ref("zen4")
    assert done.stderr.splitlines() == [
        f"imagefit: this node ({HERE}) is not in job 1's nodes; choosing for this node alone"
    ]
    done = _shim(
        shim_bin, env, *run, **zen4, SLURM_JOB_ID="1", SLURM_JOB_NODELIST=f"{HERE},g[01-02]"
    )
    assert done.returncode == 125 and done.stdout == ""
    first = done.stderr.splitlines()[0]
    assert (
        first.startswith(f"imagefit: {app.ref}: no build runs on every")
        and "grace fits none" in first
    ), first
    assert (
        "zen4 fits x86_64, x86_64_v3, zen4" in first
        and "[job 1 (node classes grace, zen4)]" in first
    )


@pytest.fixture
def runtimes(imagefit_cmd, tmp_path):
    prefix = world_readable_tmp("imagefit-prefix-runtimes-")
    for name in ("apptainer", "singularity", "sarus"):
        StandIn(tmp_path / "real", name)
    subprocess.run([*imagefit_cmd, "install", "--prefix", str(prefix), "--runtime", "apptainer", "--runtime",
                    "singularity", "--runtime", "sarus", "--force"], check=True, capture_output=True, text=True,
                   env={"PATH": f"{tmp_path / 'real'}:/usr/bin:/bin"})  # fmt: skip
    return prefix / "bin", tmp_path / "real"


@pytest.mark.parametrize("classes", ["zen4", "zen4,cascadelake"])
def test_class_pulls_of_apptainer_singularity_and_sarus_make_one_image(
    registry,
    app,
    arm_facts,
    env,
    runtimes,
    classes,  # noqa: F811
):
    shims, real = runtimes
    _site(env, registry, arm_facts)
    build = "zen4" if classes == "zen4" else COMMON
    cases = [
        ("apptainer", ["pull", "--no-https", "out.sif", f"docker://{app.ref}"],
         ["pull", "--no-https", "out.sif", f"docker://{app.digest_ref(build)}"]),
        ("singularity", ["build", "--no-https", "out.sif", f"docker://{app.ref}"],
         ["build", "--no-https", "out.sif", f"docker://{app.digest_ref(build)}"]),
        ("sarus", ["pull", app.ref], ["pull", app.digest_ref(build)]),
    ]  # fmt: skip
    # Sarus pulls through Skopeo, which reads registries.conf: mark the test registry there
    Path(env["CONTAINERS_REGISTRIES_CONF"]).write_text(
        f'unqualified-search-registries = []\n[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n'
    )
    for runtime, argv, expected in cases:
        standin = StandIn(real, runtime)
        done = subprocess.run([str(shims / runtime), *argv], capture_output=True, text=True, timeout=60,
                              env={**env, "PATH": path_with(shims, real), "IMAGEFIT_NODE_CLASS": classes,
                                   "IMAGEFIT_FACTS": arm_facts["neoverse_v2"]})  # fmt: skip
        assert done.returncode == 0 and done.stderr == "", (runtime, done.stderr)
        assert standin.argvs() == [expected], runtime


def test_a_class_pull_where_one_class_fails_open_leaves_the_pull_as_given(
    registry,
    app,
    arm_facts,
    shim_bin,
    env,
    tmp_path,  # noqa: F811
):
    _site(
        env,
        registry,
        arm_facts,
        f'[node_classes.broken]\nfacts = "{tmp_path / "gone.json"}"\nhosts = ["b*"]\n',
    )
    done = _shim(
        shim_bin, env, "pull", "--tls-verify=false", app.ref, IMAGEFIT_NODE_CLASS="zen4,broken"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        json.dumps([_real_podman(), "pull", "--tls-verify=false", app.ref])
    ]
    assert len(done.stderr.splitlines()) == 1 and "running the command unchanged" in done.stderr


def _real_podman() -> str:
    import shutil

    return shutil.which("podman", path="/usr/bin:/bin")


def test_offline_a_job_names_the_digest_it_needs(arm_facts, shim_bin, env, tmp_path):  # noqa: F811
    """The job's common build is not what a pull for any one class gets: the
    offline message names the digest to pull."""
    from tests.support import oci
    from tests.support.registry import LocalRegistry

    own = LocalRegistry(tmp_path / "reg")
    try:
        app = oci.build_and_push(own.host, "job/app", "1", _builds(["x86_64", COMMON, "haswell", "zen4"]),
                                 layout_dir=tmp_path / "layout")  # fmt: skip
        shared = world_readable_tmp("imagefit-job-store-")
        shared.chmod(0o1777)
        _site(
            env,
            own,
            arm_facts,
            f'consistency = "job"\ndecision_cache_dir = "{shared}"\ndecision_cache_ttl = 0.5',
        )
        job = {**JOB, "IMAGEFIT_FACTS": arm_facts["zen4"]}
        storage = [
            "--root",
            str(tmp_path / "st"),
            "--runroot",
            tempfile.mkdtemp(prefix="rr-", dir="/tmp"),
        ]
        run = ["run", "--rm", *storage, "--tls-verify=false", app.ref, "true"]
        assert _pinned(_shim(shim_bin, env, *run, **job)) == app.digest_ref(COMMON)
    finally:
        own.stop()
    time.sleep(0.6)
    done = _shim(shim_bin, env, *run, **job)
    lines = done.stderr.splitlines()
    assert done.returncode == 125, done.stderr
    assert "using the decision made" in lines[0], lines
    assert lines[1].startswith(
        f"imagefit: {app.ref}: job 4242 (node classes cascadelake, zen4) needs build {COMMON} "
    )
    assert lines[1].endswith(
        f"podman --root={storage[1]} --runroot={storage[3]} pull {app.digest_ref(COMMON)}"
    ), lines[1]


@pytest.fixture
def enroot(imagefit_cmd, tmp_path):
    """The shim linked as ``enroot`` and a recording stand-in enroot behind it."""
    prefix = world_readable_tmp("imagefit-prefix-enroot-")
    StandIn(tmp_path / "real", "enroot")
    subprocess.run([*imagefit_cmd, "install", "--prefix", str(prefix), "--runtime", "enroot"], check=True,
                   capture_output=True, text=True, env={"PATH": f"{tmp_path / 'real'}:/usr/bin:/bin"})  # fmt: skip
    return prefix / "bin", tmp_path / "real"


def _enroot_uri(ref: str) -> str:
    """``docker://HOST#REPO:TAG`` (enroot's own form) of ``HOST/REPO:TAG`` or
    ``HOST/REPO@sha256:HEX`` (written ``:sha256:HEX``, as the shim pins it)."""
    host, rest = ref.split("/", 1)
    return f"docker://{host}#{rest.replace('@sha256:', ':sha256:')}"


@pytest.mark.parametrize(
    "verb", [["import", "-o", "app.sqsh"], ["load", "--name", "app"], ["digest"]]
)
def test_pyxis_steps_of_a_job_import_the_common_build(registry, app, arm_facts, env, enroot, verb):  # noqa: F811
    """pyxis runs ``enroot import`` (or ``load``, and ``digest`` for its cache)
    in every node's job step: with ``consistency = "job"`` each node gets the
    build that fits every class of the job, whatever its own class; outside a
    job, its own."""
    shims, real = enroot
    _site(env, registry, arm_facts, 'consistency = "job"')
    standin = StandIn(real, "enroot")
    base = {**env, "PATH": path_with(shims, real), "ENROOT_ALLOW_HTTP": "yes"}
    for facts_name, job, build in (
        ("cascadelake", JOB, COMMON),
        ("zen4", JOB, COMMON),
        ("zen4", {}, "zen4"),
    ):
        done = subprocess.run([str(shims / "enroot"), *verb, _enroot_uri(app.ref)], capture_output=True,
                              text=True, timeout=60, env={**base, **job, "IMAGEFIT_FACTS": arm_facts[facts_name]})  # fmt: skip
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert standin.argvs()[-1] == [*verb, _enroot_uri(app.digest_ref(build))], (facts_name, job)


def test_a_class_import_on_the_login_node_makes_that_class_squashfs(
    registry, app, arm_facts, env, enroot
):  # noqa: F811
    """``IMAGEFIT_NODE_CLASS=NAME enroot import`` (a login node preparing a
    squashfs for a class) chooses that class's build, as a podman pull does."""
    shims, real = enroot
    _site(env, registry, arm_facts)
    standin = StandIn(real, "enroot")
    done = subprocess.run([str(shims / "enroot"), "import", "-o", "c.sqsh", _enroot_uri(app.ref)],
                          capture_output=True, text=True, timeout=60,
                          env={**env, "PATH": path_with(shims, real), "ENROOT_ALLOW_HTTP": "yes",
                               "IMAGEFIT_NODE_CLASS": "cascadelake", "IMAGEFIT_FACTS": arm_facts["neoverse_v2"]})  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert standin.argvs() == [["import", "-o", "c.sqsh", _enroot_uri(app.digest_ref("haswell"))]]
