"""The user-facing commands of the cluster feature, through the installed
``imagefit`` and shim against the real registry: ``warm`` (index store and
decisions for every node class, then an offline shim decides with no
request), ``pull --node-class`` (recording stand-in runtimes), ``check``
over the configured classes, ``explain`` naming who set a pin, ``doctor``'s
node-class section, ``lint --policy``. Node classes' facts files are made
from archspec's real /proc/cpuinfo dumps."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import world_readable_tmp
from tests.support import oci
from tests.support.standin import StandIn, path_with

TARGET = "org.supercontainers.hardware.cpu.target.microarch"
#: node class -> archspec cpuinfo dump (zen4 and an Intel class; zen3 for a mislabelled node)
DUMPS = {"zen4": "linux-rocky8.5-zen4", "cascadelake": "linux-centos7-cascadelake",
         "zen3": "linux-ubuntu20.04-zen3"}  # fmt: skip
#: the build each class gets, and the one build that fits both
EXPECTED = {"zen4": "zen4", "cascadelake": "haswell"}
COMMON = "x86_64_v3"
UNREACHABLE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
               "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
               "NO_PROXY": "", "no_proxy": "", "IMAGEFIT_REGISTRY_TIMEOUT": "1"}  # fmt: skip


def _builds(names):
    return [
        {
            "name": n,
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {TARGET: n},
        }
        for n in names
    ]


@pytest.fixture(scope="module")
def app(registry, tmp_path_factory):
    return oci.build_and_push(
        registry.host, "cluster/app", "1", _builds(["x86_64", COMMON, "haswell", "zen4"]),
        layout_dir=tmp_path_factory.mktemp("cluster-app"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def facts(cpuinfo_dir, imagefit_cmd) -> dict[str, str]:
    out = world_readable_tmp("imagefit-classes-")
    files = {}
    for name, dump in DUMPS.items():
        done = subprocess.run([*imagefit_cmd, "facts", "--json", "--cpuinfo", str(cpuinfo_dir / dump)],
                              check=True, capture_output=True, text=True)  # fmt: skip
        path = out / f"{name}.json"
        path.write_text(done.stdout)
        path.chmod(0o644)
        files[name] = str(path)
    return files


def _write(path: Path, body: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(0o644)
    return str(path)


def classes_toml(facts, zen4_hosts=("a*",), extra: str = "") -> str:
    return (
        f'[node_classes.zen4]\nfacts = "{facts["zen4"]}"\nhosts = {json.dumps(list(zen4_hosts))}\n'
        f'[node_classes.cascadelake]\nfacts = "{facts["cascadelake"]}"\nhosts = ["c*"]\n' + extra
    )


@pytest.fixture
def env(tmp_path, registry):
    """No config but the site file (IMAGEFIT_SITE_CONFIG, written by each
    test), caches of its own, no registries.conf beyond loopback."""
    conf = tmp_path / "registries.conf"
    conf.write_text("unqualified-search-registries = []\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEFIT_")}
    return {
        **base, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"), "IMAGEFIT_CACHE_DIR": str(tmp_path / "facts-cache"),
        "IMAGEFIT_SITE_CONFIG": str(tmp_path / "site.toml"), "CONTAINERS_REGISTRIES_CONF": str(conf),
    }  # fmt: skip


def site(env, registry, body: str) -> None:
    _write(Path(env["IMAGEFIT_SITE_CONFIG"]), f'insecure_registries = ["{registry.host}"]\n' + body)


def imagefit(imagefit_cmd, env, *args, **extra):
    return subprocess.run([*imagefit_cmd, *args], env={**env, **extra}, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def shared_dir(tmp_path) -> Path:
    path = tmp_path / "shared"
    path.mkdir()
    path.chmod(0o1777)
    return path


# -- warm --------------------------------------------------------------------------------


def test_warm_fills_the_store_and_every_class_then_an_offline_shim_needs_no_request(
    registry, app, facts, imagefit_cmd, shim_bin, env, tmp_path
):
    shared = shared_dir(tmp_path)
    site(env, registry, f'decision_cache_dir = "{shared}"\n' + classes_toml(facts))
    done = imagefit(imagefit_cmd, env, "warm", app.ref)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.splitlines() == [
        f"{app.ref}: {name} -> {build} ({app.manifests[build]})" for name, build in EXPECTED.items()
    ]
    uid = os.geteuid()
    names = sorted(p.name for p in shared.iterdir())
    assert sum(n.endswith(f".{uid}.ref") for n in names) == 1, names
    assert sum(n.endswith(".blob") for n in names) >= 1, names
    assert sum(n.endswith(f".{uid}.entry") for n in names) == 2, names
    # a second run within half the TTL asks the registry nothing
    mark = registry.log_offset()
    again = imagefit(imagefit_cmd, env, "warm", app.ref)
    assert again.stdout == done.stdout and registry.requests(mark) == []

    # a compute node of each class, the registry unreachable: the build of its class, no request
    shim_env = {**env, **UNREACHABLE, "IMAGEFIT_DRY_RUN": "1", "PATH": f"{shim_bin}:{env['PATH']}"}
    for name, build in EXPECTED.items():
        mark = registry.log_offset()
        ran = subprocess.run([str(shim_bin / "podman"), "run", "--rm", app.ref, "id"],
                             env={**shim_env, "IMAGEFIT_FACTS": facts[name]},
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout.splitlines()[-1])[-2] == app.digest_ref(build)
        assert ran.stderr == "", ran.stderr
        assert registry.requests(mark) == []
    # without the decisions, the store alone still decides offline
    for entry in shared.glob("*.entry"):
        entry.unlink()
    mark = registry.log_offset()
    ran = subprocess.run([str(shim_bin / "podman"), "run", "--rm", app.ref, "id"],
                         env={**shim_env, "IMAGEFIT_FACTS": facts["cascadelake"]},
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout.splitlines()[-1])[-2] == app.digest_ref("haswell")
    assert registry.requests(mark) == []


def test_warm_without_a_shared_dir_or_classes_and_a_failing_image(
    registry, app, facts, imagefit_cmd, env, tmp_path
):
    site(env, registry, "")
    done = imagefit(imagefit_cmd, env, "warm", app.ref, IMAGEFIT_FACTS=facts["zen4"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{app.ref}: this node -> zen4 ({app.manifests['zen4']})"]
    (line,) = done.stderr.splitlines()
    assert "no decision_cache_dir" in line and "per-user cache" in line
    assert list((tmp_path / "cache/imagefit/decisions").glob("*.entry"))

    site(env, registry, f'decision_cache_dir = "{tmp_path / "absent"}"\n' + classes_toml(facts))
    missing = f"{app.repository}:no-such-tag"
    done = imagefit(imagefit_cmd, env, "warm", missing, app.ref)
    assert done.returncode == 125
    assert done.stdout.splitlines() == [
        f"{app.ref}: {name} -> {build} ({app.manifests[build]})" for name, build in EXPECTED.items()
    ]
    lines = done.stderr.splitlines()
    assert len(lines) == 2, lines
    assert f"shared cache directory {tmp_path / 'absent'}" in lines[0] and "per-user" in lines[0]
    assert lines[1].startswith(f"{missing}: cannot resolve")
    assert not (tmp_path / "absent").exists()  # never created


# -- pull --node-class -----------------------------------------------------------------------


def test_pull_for_a_node_class_runs_the_shimmed_pull_of_the_real_runtime(
    registry, app, facts, imagefit_cmd, env, tmp_path
):
    """The plumbing alone: a digest (one image manifest, nothing to choose)
    goes through the shim to the runtime on PATH, with IMAGEFIT_ACTIVE."""
    site(env, registry, classes_toml(facts))
    standin = StandIn(tmp_path / "bin", "podman")
    done = imagefit(imagefit_cmd, env, "pull", "--node-class", "cascadelake", app.digest_ref("zen4"),
                    "--", "--tls-verify=false", "-q", PATH=path_with(standin.path.parent))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert standin.calls() == [
        {
            "argv": ["pull", "--tls-verify=false", "-q", app.digest_ref("zen4")],
            "name": "podman",
            "active": "1",
        }
    ]
    failing = StandIn(tmp_path / "bin2", "podman", status=7)
    done = imagefit(imagefit_cmd, env, "pull", "--node-class", "zen4", app.digest_ref("zen4"),
                    PATH=path_with(failing.path.parent))  # fmt: skip
    assert done.returncode == 7 and len(failing.calls()) == 1


def test_pull_for_node_classes_podman_gets_every_build_and_the_tag(
    registry, app, facts, imagefit_cmd, env, tmp_path
):
    site(env, registry, classes_toml(facts))
    standin = StandIn(tmp_path / "bin", "podman")
    done = imagefit(imagefit_cmd, env, "pull", "--node-class", "zen4", "--node-class", "cascadelake",
                    app.ref, "--", "--tls-verify=false", PATH=path_with(standin.path.parent))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert standin.argvs() == [
        ["pull", "--tls-verify=false", app.digest_ref("zen4"), app.digest_ref("haswell")],
        ["tag", app.digest_ref("zen4"), app.ref],
    ]
    assert {c["active"] for c in standin.calls()} == {"1"}


@pytest.mark.parametrize("runtime", ["apptainer", "singularity"])
def test_pull_for_node_classes_apptainer_gets_the_one_common_build(
    registry, app, facts, imagefit_cmd, env, tmp_path, runtime
):
    site(env, registry, classes_toml(facts))
    standin = StandIn(tmp_path / "bin", runtime)
    done = imagefit(imagefit_cmd, env, "pull", "--runtime", runtime, "--node-class", "zen4",
                    "--node-class", "cascadelake", app.ref, "--", "--no-https",
                    PATH=path_with(standin.path.parent))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert standin.argvs() == [
        ["pull", "--no-https", "app_1.sif", f"docker://{app.digest_ref(COMMON)}"]
    ]


def test_pull_for_an_unknown_class_is_one_line(registry, app, facts, imagefit_cmd, env, tmp_path):
    site(env, registry, classes_toml(facts))
    standin = StandIn(tmp_path / "bin", "podman")
    done = imagefit(imagefit_cmd, env, "pull", "--node-class", "zen5", app.ref,
                    PATH=path_with(standin.path.parent))  # fmt: skip
    assert done.returncode == 125 and standin.calls() == []
    assert done.stderr.splitlines() == [
        "imagefit: unknown node class 'zen5' (configured: zen4, cascadelake)"
    ]


# -- check over the configured classes ---------------------------------------------------------


def test_check_uses_every_node_class_and_its_policy(registry, app, facts, imagefit_cmd, env):
    scoped = f'[[policy]]\nimage = "{app.repository}"\nnode_class = "cascadelake"\npin = "x86_64"\n'
    site(env, registry, classes_toml(facts, extra=scoped))
    done = imagefit(imagefit_cmd, env, "check", app.ref)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[3:]]
    assert [(r[0], r[-2], r[-1]) for r in rows] == [
        ("zen4", "zen4", app.manifests["zen4"][:19]),
        ("cascadelake", "x86_64", app.manifests["x86_64"][:19]),
    ]
    doc = json.loads(imagefit(imagefit_cmd, env, "check", app.ref, "--json").stdout)
    assert [
        (n["node"], n["facts"], n["node_class"], n["chosen"]["build"]) for n in doc["nodes"]
    ] == [
        ("zen4", facts["zen4"], "zen4", "zen4"),
        ("cascadelake", facts["cascadelake"], "cascadelake", "x86_64"),
    ]
    assert doc["nodes"][0]["policy"] is None
    assert doc["nodes"][1]["policy"] == {"image": app.repository, "pin": "x86_64", "prefer": [],
                                         "avoid": [], "source": "site", "lock": False}  # fmt: skip
    table = list(
        csv.DictReader(io.StringIO(imagefit(imagefit_cmd, env, "check", app.ref, "--csv").stdout))
    )
    assert [(r["node"], r["facts"], r["build"], r["digest"]) for r in table] == [
        ("zen4", facts["zen4"], "zen4", app.manifests["zen4"]),
        ("cascadelake", facts["cascadelake"], "x86_64", app.manifests["x86_64"]),
    ]
    # --facts still works as before: rows named by the facts, no class policy
    done = imagefit(imagefit_cmd, env, "check", app.ref, "--facts", facts["cascadelake"], "--json")
    assert [n["chosen"]["build"] for n in json.loads(done.stdout)["nodes"]] == ["haswell"]
    # neither: one line
    site(env, registry, "")
    done = imagefit(imagefit_cmd, env, "check", app.ref)
    assert done.returncode == 125 and len(done.stderr.splitlines()) == 1
    assert "nothing to check against" in done.stderr and "--facts" in done.stderr


# -- explain: who set the pin ------------------------------------------------------------------


def _explain(imagefit_cmd, env, ref, *args, **extra):
    text = imagefit(imagefit_cmd, env, "explain", ref, *args, **extra)
    doc = imagefit(imagefit_cmd, env, "explain", ref, "--json", *args, **extra)
    assert text.returncode == doc.returncode == 0, text.stderr + doc.stderr
    policy_lines = [line for line in text.stdout.splitlines() if line.startswith("policy:")]
    return policy_lines, json.loads(doc.stdout)


def test_explain_says_who_set_the_pin(registry, app, facts, imagefit_cmd, env, tmp_path):
    image = f'image = "{app.repository}"'
    user = Path(env["XDG_CONFIG_HOME"]) / "imagefit/config.toml"
    fz = ("--facts", facts["zen4"])
    site(env, registry, f'[[policy]]\n{image}\npin = "x86_64"\n')
    lines, doc = _explain(imagefit_cmd, env, app.ref, *fz)
    assert lines == [f"policy: pin x86_64 (site config; [[policy]] {image})"]
    assert doc["policy"] == {"image": app.repository, "pin": "x86_64", "prefer": [], "avoid": [],
                             "source": "site", "lock": False}  # fmt: skip
    assert doc["chosen"]["build"] == "x86_64" and doc["node_class"] is None

    if os.geteuid() != 0:  # root reads no user config (the in-process test below covers it)
        _write(user, f'[[policy]]\n{image}\npin = "haswell"\nprefer = ["zen4"]\n')
        lines, doc = _explain(imagefit_cmd, env, app.ref, *fz)
        assert lines == [f"policy: pin haswell; prefer zen4 (user config; [[policy]] {image})"]
        assert (doc["policy"]["source"], doc["chosen"]["build"]) == ("user", "haswell")

    lines, doc = _explain(imagefit_cmd, env, app.ref, *fz, IMAGEFIT_PIN=COMMON)
    assert lines == [f"policy: pin {COMMON} (IMAGEFIT_PIN)"]
    assert (doc["policy"]["source"], doc["policy"]["lock"], doc["chosen"]["build"]) == (
        "environment", False, COMMON)  # fmt: skip

    site(env, registry, f'[[policy]]\n{image}\npin = "x86_64"\nlock = true\n')
    lines, doc = _explain(imagefit_cmd, env, app.ref, *fz, IMAGEFIT_PIN=COMMON)
    assert lines == [f"policy: pin x86_64 (site config, locked; [[policy]] {image})"]
    assert (doc["policy"]["source"], doc["policy"]["lock"], doc["chosen"]["build"]) == (
        "site", True, "x86_64")  # fmt: skip

    user.unlink(missing_ok=True)
    site(env, registry, "")
    lines, doc = _explain(imagefit_cmd, env, app.ref, *fz)
    assert lines == [] and doc["policy"] is None


def test_a_user_entry_over_a_site_one_is_named_user_config(tmp_path):
    """As an ordinary user (the installed commands run as root here, and root
    reads no user config): the user's entry wins over the site's, and explain
    names it."""
    from shim import config, render

    site_file = _write(
        tmp_path / "site.toml", '[[policy]]\nimage = "r.example/app"\npin = "x86_64"\n'
    )
    user_file = _write(tmp_path / "config/imagefit/config.toml",
                       '[[policy]]\nimage = "r.example/*"\npin = "haswell"\nprefer = ["zen4"]\n')  # fmt: skip
    environ = {"IMAGEFIT_SITE_CONFIG": site_file, "XDG_CONFIG_HOME": str(tmp_path / "config"),
               "HOME": str(tmp_path)}  # fmt: skip
    uid = os.stat(user_file).st_uid
    settings = config.load(environ, euid=uid or 12345)  # root-owned files are trusted by any uid
    assert settings.sources == (site_file, user_file), settings.warnings
    entry = settings.policy_for("r.example/app")
    assert (
        render.policy_text(entry)
        == 'pin haswell; prefer zen4 (user config; [[policy]] image = "r.example/*")'
    )
    assert render.policy_json(entry) == {"image": "r.example/*", "pin": "haswell", "prefer": ["zen4"],
                                         "avoid": [], "source": "user", "lock": False}  # fmt: skip


def test_explain_uses_this_nodes_class_for_the_policy(registry, app, facts, imagefit_cmd, env):
    scoped = (
        f'[[policy]]\nimage = "{app.repository}"\nnode_class = "zen4"\nprefer = ["{COMMON}"]\n'
        f'[[policy]]\nimage = "{app.repository}"\nnode_class = "cascadelake"\npin = "x86_64"\n'
    )
    site(env, registry, classes_toml(facts, zen4_hosts=["*"], extra=scoped))
    # this node: in class zen4 by its hostname (hosts = ["*"]); its facts are zen4's
    text = imagefit(imagefit_cmd, env, "explain", app.ref, IMAGEFIT_FACTS=facts["zen4"])
    assert text.returncode == 0, text.stderr
    assert "node class: zen4" in text.stdout.splitlines()
    assert f"policy: prefer {COMMON} (site config; [[policy]] image = \"{app.repository}\", " \
           'node_class = "zen4")' in text.stdout.splitlines()  # fmt: skip
    doc = json.loads(
        imagefit(
            imagefit_cmd, env, "explain", app.ref, "--json", IMAGEFIT_FACTS=facts["zen4"]
        ).stdout
    )
    assert (doc["node_class"], doc["policy"]["prefer"], doc["chosen"]["build"]) == (
        "zen4",
        [COMMON],
        COMMON,
    )
    # --node-class: that class's facts and policy
    doc = json.loads(
        imagefit(
            imagefit_cmd, env, "explain", app.ref, "--json", "--node-class", "cascadelake"
        ).stdout
    )
    assert (doc["node_class"], doc["policy"]["pin"], doc["chosen"]["build"]) == (
        "cascadelake",
        "x86_64",
        "x86_64",
    )
    assert doc["host"].startswith("linux/amd64") and "cascadelake" in doc["host"]
    # --facts: some host, no class of its own: no scoped policy applies
    doc = json.loads(
        imagefit(imagefit_cmd, env, "explain", app.ref, "--json", "--facts", facts["zen4"]).stdout
    )
    assert (doc["node_class"], doc["policy"], doc["chosen"]["build"]) == (None, None, "zen4")


# -- doctor ------------------------------------------------------------------------------------


def _doctor(imagefit_cmd, env, *args, **extra):
    done = imagefit(imagefit_cmd, env, "doctor", "--json", *args, **extra)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def test_doctor_node_class_section(registry, facts, imagefit_cmd, env, tmp_path):
    shared = shared_dir(tmp_path)
    missing = tmp_path / "gone.json"
    body = f'decision_cache_dir = "{shared}"\n' + classes_toml(facts, zen4_hosts=["*"]) + (
        f'[node_classes.gone]\nfacts = "{missing}"\nhosts = ["g*"]\n'
    )  # fmt: skip
    site(env, registry, body)
    data = _doctor(imagefit_cmd, env, IMAGEFIT_FACTS=facts["zen4"])
    cluster = data["cluster"]
    assert [(c["name"], c["readable"], c["cpu_target"]) for c in cluster["node_classes"]] == [
        ("zen4", True, "zen4"), ("cascadelake", True, "cascadelake"), ("gone", False, None)]  # fmt: skip
    own = cluster["node_class"]
    assert (own["name"], own["facts"], own["matches"], own["differences"]) == (
        "zen4",
        facts["zen4"],
        True,
        [],
    )
    cache = cluster["shared_cache"]
    assert (cache["path"], cache["state"], cache["mode"], cache["sticky"], cache["uid"]) == (
        str(shared), "ok", "1777", True, os.geteuid())  # fmt: skip
    problems = [p for p in data["problems"] if "node class" in p or "shared cache" in p]
    assert len(problems) == 1 and problems[0].startswith(
        f"node class gone: cannot read facts file {missing}"
    )
    text = imagefit(imagefit_cmd, env, "doctor", IMAGEFIT_FACTS=facts["zen4"]).stdout
    section = text.split("\nnode class:\n", 1)[1].split("\n\n")[0].splitlines()
    assert (
        section[0]
        == f"  this node ({own['hostname']}): zen4 (facts {facts['zen4']}: its facts match this node's)"
    )
    assert (
        section[-1] == f"  shared cache: {shared}: owner root uid 0, mode 1777, sticky"
        or os.geteuid() != 0
    )

    # a mislabelled node: zen3 facts on a node the config puts in class zen4; the shared dir absent
    shared.rmdir()
    data = _doctor(imagefit_cmd, env, IMAGEFIT_FACTS=facts["zen3"])
    own = data["cluster"]["node_class"]
    assert (
        own["matches"] is False
        and own["differences"][0] == "cpu.target zen3 here, zen4 in the class's"
    )
    (mislabelled,) = [p for p in data["problems"] if p.startswith("this node")]
    assert "is in node class zen4 by its name, but its facts are not the class's" in mislabelled
    assert "cpu.target zen3 here, zen4 in the class's" in mislabelled
    (absent,) = [p for p in data["problems"] if p.startswith("shared cache directory")]
    assert absent.startswith(
        f"shared cache directory {shared} (decision_cache_dir): No such file or directory"
    )
    assert data["cluster"]["shared_cache"]["state"] == "absent"
    assert not shared.exists()
    # not a directory
    shared.write_text("")
    data = _doctor(imagefit_cmd, env, IMAGEFIT_FACTS=facts["zen4"])
    assert data["cluster"]["shared_cache"]["state"] == "not a directory"
    assert any(p.endswith("every user falls back to a per-user cache") for p in data["problems"])


def test_doctor_and_lint_policy_name_a_pin_that_matches_no_build(
    registry, app, facts, imagefit_cmd, env
):
    image = f'image = "{app.repository}"'
    body = classes_toml(facts) + (
        f'[[policy]]\n{image}\nnode_class = "zen4"\npin = "zen5"\n'
        f'[[policy]]\n{image}\nprefer = ["sapphirerapids", "haswell"]\navoid = ["{app.manifests["x86_64"]}"]\n'
    )  # fmt: skip
    site(env, registry, body)
    builds = f"builds: x86_64, {COMMON}, haswell, zen4"
    done = imagefit(imagefit_cmd, env, "lint", "--policy", app.ref)
    assert done.returncode == 1, done.stderr
    site_path = env["IMAGEFIT_SITE_CONFIG"]
    assert done.stdout.splitlines() == [
        f'error: policy: site config {site_path}: [[policy]] {image}, node_class = "zen4" '
        f'(for node class zen4): pin "zen5" matches no build of {app.ref} ({builds}; or their digests): '
        "those nodes refuse the image",
        f"warning: policy: site config {site_path}: [[policy]] {image} (for nodes in no class, node class "
        f'cascadelake): prefer "sapphirerapids" matches no build of {app.ref} ({builds}): it changes nothing',
    ]
    doc = json.loads(imagefit(imagefit_cmd, env, "lint", "--policy", app.ref, "--json").stdout)
    assert [(f["severity"], f["code"]) for f in doc["findings"]] == [
        ("error", "policy-pin"), ("warning", "policy-name")]  # fmt: skip
    assert doc["digest"] == app.index_digest

    data = _doctor(imagefit_cmd, env, "--image", app.ref)
    (row,) = data["cluster"]["images"]
    assert (row["reference"], row["index_digest"], row["policies"]) == (
        app.ref,
        app.index_digest,
        2,
    )
    # the pin that refuses the image and the preference that does nothing: both problems
    assert [p for p in data["problems"] if "policy" in p] == [f["message"] for f in doc["findings"]]
    assert not data["healthy"] and data["notes"] == []
    assert registry.host in [r["host"] for r in data["registries"]]

    # a pin by digest or label that names a build: clean
    site(
        env,
        registry,
        classes_toml(facts) + f'[[policy]]\n{image}\npin = "{app.manifests["haswell"]}"\n',
    )
    done = imagefit(imagefit_cmd, env, "lint", "--policy", app.ref)
    assert done.returncode == 0 and done.stdout == "", done.stdout
    assert done.stderr == f"{app.ref}: clean\n"
    data = _doctor(imagefit_cmd, env, "--image", app.ref)
    assert not [p for p in data["problems"] if "policy" in p]


def test_check_names_a_class_whose_facts_cannot_be_read_and_shows_the_others(
    registry, app, facts, imagefit_cmd, env, tmp_path
):
    missing = tmp_path / "gone.json"
    site(env, registry, classes_toml({**facts, "cascadelake": str(missing)}))
    done = imagefit(imagefit_cmd, env, "check", app.ref, "--csv")
    assert done.returncode == 125
    assert done.stderr.splitlines() == [
        f"imagefit: node class cascadelake: cannot read facts file {missing}: No such file or directory"
    ]
    assert [r["node"] for r in csv.DictReader(io.StringIO(done.stdout))] == ["zen4"]
