"""``[[policy]] image`` with a tag or a digest (issue 12, item 4b): before,
``image = "host/app:1"`` matched nothing, silently (the entry's glob was
matched against ``domain/path`` only). Now ``repo:TAG`` matches references
with that tag (a glob, like the repository), ``repo@DIGEST`` references by
that digest, and an image that can match nothing is refused with one line.
Through the installed shim (``podman`` with IMAGEFIT_DRY_RUN) against a real
registry, with a site config."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from shim.config import Settings, image_pattern_problem, split_image
from tests.conftest import world_readable_tmp
from tests.support import oci

TARGET = "org.supercontainers.hardware.cpu.target.microarch"


@pytest.fixture(scope="module")
def app(registry, tmp_path_factory):
    builds = [
        {
            "name": n,
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {TARGET: n},
        }
        for n in ("x86_64", "haswell", "zen4")
    ]
    return oci.build_and_push(registry.host, "policy/app", "1", builds,
                              layout_dir=tmp_path_factory.mktemp("policy-app"))  # fmt: skip


@pytest.fixture(scope="module")
def zen4(cpuinfo_dir, imagefit_cmd):
    out = world_readable_tmp("imagefit-policy-facts-")
    done = subprocess.run([*imagefit_cmd, "facts", "--json", "--cpuinfo", str(cpuinfo_dir / "linux-rocky8.5-zen4")],
                          check=True, capture_output=True, text=True)  # fmt: skip
    path = out / "zen4.json"
    path.write_text(done.stdout)
    path.chmod(0o644)
    return str(path)


def run(shim_bin, tmp_path, zen4, site_text: str, image: str) -> subprocess.CompletedProcess:
    site = tmp_path / "site.toml"
    site.write_text(site_text)
    site.chmod(0o644)
    env = {
        **os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"), "IMAGEFIT_DRY_RUN": "1",
        "IMAGEFIT_FACTS": zen4, "IMAGEFIT_SITE_CONFIG": str(site), "PATH": f"{shim_bin}:{os.environ['PATH']}",
    }  # fmt: skip
    env.pop("IMAGEFIT_PIN", None)
    argv = [str(shim_bin / "podman"), "run", "--rm", "--tls-verify=false", image, "id"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def pinned(done) -> str:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)[-2]


def policy(image: str, pin: str = "x86_64") -> str:
    return f'[[policy]]\nimage = "{image}"\npin = "{pin}"\n'


@pytest.mark.parametrize(
    ("pattern", "applies"),
    [
        ("{repo}", True),  # every tag, as before
        ("{repo}:1", True),  # that tag: the pin applies
        ("{repo}:[0-9]*", True),  # a glob on the tag
        ("{host}/policy/*:1", True),
        ("{repo}:2", False),  # another tag
        ("{repo}@sha256:" + "0" * 64, False),  # a digest the reference does not name
    ],
)
def test_a_tag_in_the_policy_image(shim_bin, tmp_path, zen4, app, pattern, applies):
    repo = app.repository
    image = pattern.format(repo=repo, host=repo.split("/")[0])
    done = run(shim_bin, tmp_path, zen4, policy(image), f"{repo}:1")
    want = "x86_64" if applies else "zen4"  # zen4 is this host's best build
    assert pinned(done) == app.digest_ref(want), done.stderr
    assert done.stderr == ""


def test_a_digest_in_the_policy_image(shim_bin, tmp_path, zen4, app):
    by_digest = f"{app.repository}@{app.index_digest}"
    site = policy(by_digest)
    assert pinned(run(shim_bin, tmp_path, zen4, site, by_digest)) == app.digest_ref("x86_64")
    # the tag that names the same index is another reference: not matched
    (tmp_path / "t").mkdir()
    assert pinned(
        run(shim_bin, tmp_path / "t", zen4, site, f"{app.repository}:1")
    ) == app.digest_ref("zen4")


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("{repo}:", "has an empty tag"),
        ("{repo}@", "has no valid digest"),
        ("{repo}@sha256:XYZ", "has no valid digest"),
        ("{repo}@sha256", "has no valid digest"),
        # a digest no reference can carry (go-digest, as shim.reference checks it)
        ("{repo}@sha256:abc", "has no valid digest after @ (invalid checksum digest length"),
        ("{repo}@sha384:" + "a" * 96, "has no valid digest after @ (unsupported digest algorithm"),
        (":1", "names no repository"),
    ],
)
def test_an_image_that_can_match_nothing_is_refused(shim_bin, tmp_path, zen4, app, image, problem):
    image = image.format(repo=app.repository)
    done = run(shim_bin, tmp_path, zen4, policy(image), f"{app.repository}:1")
    assert done.returncode == 125 and done.stdout == "", done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and f"[[policy]] image '{image}': {problem}" in lines[0], lines


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("h/a", ("h/a", None, None)),
        ("h:5000/a", ("h:5000/a", None, None)),
        ("h:5000/a:1", ("h:5000/a", "1", None)),
        ("h/a@sha256:" + "ab" * 32, ("h/a", None, "sha256:" + "ab" * 32)),
        ("h/a:1@sha256:" + "ab" * 32, ("h/a", "1", "sha256:" + "ab" * 32)),
    ],
)
def test_split_image(text, parts):
    assert split_image(text) == parts
    assert image_pattern_problem(text) is None


def test_policy_for_with_the_whole_reference():
    entry = {
        "node_class": None,
        "pin": "p",
        "prefer": (),
        "avoid": (),
        "lock": False,
        "source": "site",
    }
    settings = Settings(
        policies=[{**entry, "image": "h/a:1"}, {**entry, "image": "h/*", "pin": "q"}]
    )
    assert settings.policy_for("h/a:1")["pin"] == "p"
    assert settings.policy_for("h/a:2")["pin"] == "q"
    assert settings.policy_for("h/a@sha256:" + "1" * 64)["pin"] == "q"
    assert settings.policy_for("h/a")["pin"] == "q"  # domain/path alone: tag entries do not match
