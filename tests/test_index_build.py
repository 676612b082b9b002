"""``imagefit index build`` through the installed ``imagefit``, with the real
``podman build`` (no network: the base image is ``podman import``-ed from the
busybox root file system, the kernels compiled here per target with
archspec's flags and copied in, tests.support.kernels), the real registry,
and the shim in front of the real podman choosing the build this host's
facts say; bad target lists refused (one line, exit 125) or warned about
before anything is built."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from shim.registry import RegistryClient
from tests.conftest import world_readable_tmp
from tests.support import kernels
from tests.support.fixtures import _podman_setup, _podman_teardown

TARGET = "org.supercontainers.hardware.cpu.target.microarch"
GIVEN = ["x86_64_v4", "x86_64", "x86_64_v3"]  # built and listed most generic first


def imagefit(cmd, *args, env=None, cwd=None, timeout=600):
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    """Rootful podman with storage of its own for the module, the busybox base imported."""
    if shutil.which("podman") is None or shutil.which("gcc") is None:
        pytest.fail("podman or gcc missing: run tests/provision.sh")
    base = tmp_path_factory.mktemp("pb")  # podman: a runroot of <= 50 characters
    argv, env = _podman_setup(base)
    kernels.import_base(argv, env)
    try:
        yield argv, env
    finally:
        _podman_teardown(base, argv, env)


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """The build context: kernels compiled for GIVEN with the installed gcc."""
    ctx = tmp_path_factory.mktemp("build-context")
    version = kernels.gcc_version()
    built, skipped = kernels.write_context(ctx, GIVEN, version)
    assert not skipped, skipped
    return ctx, version, built


def build(imagefit_cmd, podman, *args):
    argv, env = podman
    return imagefit(imagefit_cmd, "index", "build", *args, "--tls-verify", "false",
                    *(f"--podman-arg={a}" for a in argv[1:]), env=env)  # fmt: skip


@pytest.fixture(scope="module")
def published(registry, imagefit_cmd, podman, context):
    ctx, version, _built = context
    ref = f"{registry.host}/build/kernels:1"
    # the author's own options ride along: a build argument, a podman build
    # option, the real podman named, an index annotation (docs/author.md)
    done = build(imagefit_cmd, podman, ref, str(ctx), "--compiler", f"gcc@{version}",
                 *(f"--target={t}" for t in GIVEN), "--build-arg", "AUTHOR_NOTE=from the author",
                 "--build-option=--network=none", "--runtime", shutil.which("podman"),
                 "--annotation", "org.example.suite=index-build")  # fmt: skip
    return ref, done


def client(registry) -> RegistryClient:
    return RegistryClient(registry.host, insecure=True, timeout=30)


def test_three_targets_built_pushed_and_published_as_one_index(registry, published, context):
    ref, done = published
    assert done.returncode == 0, done.stdout + done.stderr
    found = client(registry).get_manifest("build/kernels", "1")
    assert done.stdout.splitlines()[-1] == f"pushed {ref} {found.digest}"
    index = json.loads(found.body)
    assert index["annotations"]["org.example.suite"] == "index-build"  # --annotation
    targets = [m["annotations"][TARGET] for m in index["manifests"]]
    assert targets == ["x86_64", "x86_64_v3", "x86_64_v4"]  # generic first
    assert [m["platform"].get("variant") for m in index["manifests"]] == [None, "v3", "v4"]
    _ctx, _version, built = context
    for m, target in zip(index["manifests"], targets, strict=True):
        # each build is also its tag TAG-TARGET, and its image config carries its labels
        assert client(registry).get_manifest("build/kernels", f"1-{target}").digest == m["digest"]
        manifest = json.loads(client(registry).get_manifest("build/kernels", m["digest"]).body)
        config = json.loads(
            client(registry).get_blob("build/kernels", manifest["config"]["digest"])
        )
        assert config["config"]["Labels"][TARGET] == target
        assert config["architecture"] == "amd64"
    # podman's build ran per target with archspec's flags (the build log, on stderr)
    for n, target in enumerate(targets, 1):
        assert f"imagefit: [{n}/3] {target}: {built[target]}" in done.stderr.splitlines()


def test_each_build_got_its_target_and_flags_as_build_arguments(registry, published, podman):
    """The Containerfile's RUN refuses flags other than the binary's: each
    image holds its target, and each binary the host can run says its flags."""
    ref, done = published
    assert done.returncode == 0, done.stderr
    argv, env = podman
    index = json.loads(client(registry).get_manifest("build/kernels", "1").body)
    for m in index["manifests"]:
        image = f"{registry.host}/build/kernels@{m['digest']}"
        run = subprocess.run([*argv, "run", "--rm", "--network=none", "--tls-verify=false", image,
                              "cat", "/etc/imagefit-build", "/etc/imagefit-note"], env=env,
                             capture_output=True, text=True, timeout=180)  # fmt: skip
        assert run.returncode == 0, run.stderr
        # its target, and the author's --build-arg (one argument, spaces kept)
        assert run.stdout.splitlines() == [m["annotations"][TARGET], "from the author"]


def _host_choice(imagefit_cmd) -> str:
    """The deepest of GIVEN that this host's facts say it runs."""
    from archspec.cpu import TARGETS

    cpu = json.loads(imagefit(imagefit_cmd, "facts", "--json").stdout)["cpu"]
    runs = {cpu["target"], *cpu["ancestors"]}
    return max((t for t in GIVEN if t in runs), key=lambda t: len(TARGETS[t].ancestors))


def test_the_shim_runs_the_build_this_hosts_facts_say_stock_podman_the_first(
    registry, published, podman, shim_bin, imagefit_cmd, context
):
    ref, done = published
    assert done.returncode == 0, done.stderr
    argv, env = podman
    expected = _host_choice(imagefit_cmd)
    cache = world_readable_tmp("imagefit-build-cache-")
    shim_env = {**env, "PATH": f"{shim_bin}:{env['PATH']}", "XDG_CACHE_HOME": str(cache)}
    run = ["run", "--rm", "--network=none", "--tls-verify=false", ref, "kernels", "target"]
    try:
        shimmed = subprocess.run([str(shim_bin / "podman"), *argv[1:], *run], env=shim_env,
                                 capture_output=True, text=True, timeout=300)  # fmt: skip
        stock = subprocess.run([*argv, *run], env=env, capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    _ctx, _version, built = context
    assert shimmed.returncode == 0, shimmed.stderr
    assert shimmed.stdout.strip() == f"{expected} {built[expected]}"
    assert stock.returncode == 0, stock.stderr
    assert stock.stdout.strip() == f"x86_64 {built['x86_64']}"  # the first amd64 match


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--compiler", "gcc@12.2.0", "--target", "x86_64", "--target", "zen4"],
         "imagefit: --target #2: target zen4: cannot produce optimized binary for micro-architecture "
         "'zen4' with gcc@12.2.0 [supported compiler versions are 10.3:12.2, 12.3:]"),
        (["--compiler", "gcc@10.3", "--target", "x86_64", "--target", "sapphirerapids"],
         "imagefit: --target #2: target sapphirerapids: cannot produce optimized binary for "
         "micro-architecture 'sapphirerapids' with gcc@10.3 [supported compiler versions are 11.0:]"),
        (["--compiler", "gcc@12.2", "--target", "x86_64,mpi.version=>=5,<4"],
         "imagefit: refusing to build REF: error: #0 x86_64: org.supercontainers.mpi.version: "
         "no version satisfies '>=5,<4'"),
        (["--compiler", "gcc@12.2", "--target", "x86_64", "--target", "x86_64"],
         "imagefit: --target #2: target x86_64 given twice (also --target #1): one build per target"),
        (["--compiler", "gcc@12.2", "--target", "zen9"],
         "imagefit: --target #1: unknown CPU target 'zen9' (not an archspec name; did you mean zen?)"),
        (["--compiler", "gcc", "--target", "x86_64"],
         "imagefit: --compiler 'gcc' is not NAME@VERSION (gcc@12.2)"),
    ],
)  # fmt: skip
def test_a_bad_target_list_is_one_line_before_anything_is_built(
    registry, imagefit_cmd, podman, context, args, message
):
    ctx, _version, _built = context
    ref = f"{registry.host}/build/refused:1"
    done = build(imagefit_cmd, podman, ref, str(ctx), *args)
    assert done.returncode == 125, done.stdout + done.stderr
    assert done.stderr.splitlines() == [message.replace("REF", ref)]
    argv, env = podman
    images = subprocess.run([*argv, "images", "--format", "{{.Repository}}"], env=env,
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "build/refused" not in images


def test_lint_warnings_of_a_target_list_are_shown_by_a_dry_run(
    registry, imagefit_cmd, podman, context
):
    ctx, version, built = context
    ref = f"{registry.host}/build/order:1"
    done = build(imagefit_cmd, podman, ref, str(ctx), "--compiler", f"gcc@{version}",
                 "--target", "x86_64_v3", "--target", "x86_64", "--keep-order", "--dry-run")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "imagefit: warning: #0 x86_64_v3: the first linux/amd64 build, but #1 x86_64 is more "
        "generic: runtimes without imagefit take the first match; put the generic build first"
    ]
    lines = done.stdout.splitlines()
    assert lines[0] == f"# x86_64_v3: {built['x86_64_v3']}"
    assert f"--build-arg 'IMAGEFIT_CFLAGS={built['x86_64_v3']}'" in lines[1]
    assert lines[1].startswith("podman --root ") and f"-t {ref}-x86_64_v3 {ctx}" in lines[1]
    assert lines[3] == f"# x86_64: {built['x86_64']}"
    argv, env = podman
    images = subprocess.run([*argv, "images", "--format", "{{.Repository}}"], env=env,
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "build/order" not in images  # a dry run builds nothing


def test_a_failing_podman_build_is_one_line(registry, imagefit_cmd, podman, context):
    """haswell's binary is not in the context: the COPY fails."""
    ctx, version, _built = context
    done = build(imagefit_cmd, podman, f"{registry.host}/build/broken:1", str(ctx),
                 "--compiler", f"gcc@{version}", "--target", "haswell", "--quiet")  # fmt: skip
    assert done.returncode == 125, done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("imagefit: podman build of haswell: podman exited with "), last
    assert "Traceback" not in done.stderr


def test_a_containerfile_that_reads_no_target_is_refused(registry, imagefit_cmd, podman, tmp_path):
    (tmp_path / "Containerfile").write_text(f"FROM {kernels.BASE}\nRUN true\n")
    done = build(imagefit_cmd, podman, f"{registry.host}/build/same:1", str(tmp_path),
                 "--compiler", "gcc@12.2", "--target", "x86_64")  # fmt: skip
    assert done.returncode == 125
    assert done.stderr.splitlines() == [
        f"imagefit: {Path(tmp_path) / 'Containerfile'} declares neither ARG IMAGEFIT_TARGET nor "
        "ARG IMAGEFIT_CFLAGS: every target would get the same build"
    ]


def test_the_author_guide_walkthrough_runs(registry, imagefit_cmd, podman, tmp_path):
    """docs/author.md section 2: its Containerfile (busybox: the imported
    base), its targets file and its ``imagefit index build`` commands, with
    the binaries compiled per target here."""
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "author.md").read_text()
    files = {}
    for block in re.findall(r"```(?:dockerfile|text)\n(.*?)```", text, flags=re.S):
        first, _, body = block.partition("\n")
        if first.startswith("# "):
            files[first[2:].strip()] = body
    targets = [ln.split("#")[0].strip() for ln in files["targets.txt"].splitlines()]
    kernels.write_context(tmp_path, [t for t in targets if t], kernels.gcc_version())
    (tmp_path / "Containerfile").write_text(
        re.sub(r"^FROM \S+", f"FROM {kernels.BASE}", files["Containerfile"], flags=re.M)
    )
    (tmp_path / "targets.txt").write_text(files["targets.txt"])
    section = text.split("## 2. Build every target's image", 1)[1].split("\n## ", 1)[0]
    commands = [ln.strip() for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S)
                for ln in block.splitlines() if ln.startswith("imagefit index build")]  # fmt: skip
    assert len(commands) == 2 and commands[0].endswith("--dry-run")
    argv, env = podman
    for command in commands:
        words = command.replace("REGISTRY", registry.host).split()[3:]
        done = imagefit(imagefit_cmd, "index", "build", *words, "--tls-verify", "false",
                        *(f"--podman-arg={a}" for a in argv[1:]), env=env, cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
    index = json.loads(client(registry).get_manifest("apps/kernels", "1").body)
    assert [m["annotations"][TARGET] for m in index["manifests"]] == ["x86_64", "x86_64_v3", "zen2"]
