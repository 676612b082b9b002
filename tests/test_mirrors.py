"""Mirrors and location remapping (registries.conf ``[[registry.mirror]]``,
``prefix``/``location``, ``blocked``, ``mirror-by-digest-only``,
``pull-from-mirror``), after containers/image
pkg/sysregistriesv2/system_registries_v2.go.

Unit tests of :func:`shim.registries_conf.pull_sources` over many documents,
then end to end: two real Distribution registries on loopback (a site mirror
and an upstream), an upstream address where nothing listens, ``imagefit
explain``, the installed shim (``IMAGEFIT_DRY_RUN=1``) as podman, apptainer
and sarus, and a real ``podman pull`` through the shim from the mirror.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from shim import registries_conf
from shim.errors import DigestMismatch, RegistryError
from shim.reference import parse
from shim.registries_conf import RegistriesConfError, Source, pull_sources
from shim.resolve import fetch, head
from tests.conftest import world_readable_tmp
from tests.support import oci
from tests.support.registry import LocalRegistry, can_make_htpasswd
from tests.support.standin import StandIn, path_with

TARGET = "org.supercontainers.hardware.cpu.target.microarch"
BUILDS = [
    {"name": "x86_64", "platform": {"architecture": "amd64", "os": "linux"}, "annotations": {TARGET: "x86_64"}},
    {"name": "haswell", "platform": {"architecture": "amd64", "os": "linux", "variant": "v3"},
     "annotations": {TARGET: "haswell"}},
    {"name": "zen4", "platform": {"architecture": "amd64", "os": "linux", "variant": "v4"},
     "annotations": {TARGET: "zen4"}},
]  # fmt: skip


# -- pull_sources: unit tests over registries.conf documents ------------------------


@pytest.fixture
def conf(tmp_path, monkeypatch):
    """write(text, name="registries.conf") -> environ naming that file as the
    main registries.conf; drop-ins go to HOME/.config/containers/registries.conf.d
    (the system drop-in directory is an empty one of the test's)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setattr(registries_conf, "SYSTEM_DROPIN_DIR", str(tmp_path / "system.d"))
    monkeypatch.setattr(registries_conf, "SYSTEM_FILE", str(tmp_path / "system.conf"))
    main = tmp_path / "registries.conf"
    main.write_text("")
    environ = {"HOME": str(home), "CONTAINERS_REGISTRIES_CONF": str(main)}

    def write(text: str, dropin: str | None = None) -> dict:
        if dropin is None:
            main.write_text(text)
        else:
            d = home / ".config" / "containers" / "registries.conf.d"
            d.mkdir(parents=True, exist_ok=True)
            (d / dropin).write_text(text)
        return environ

    write.environ = environ
    write.home = home
    write.tmp = tmp_path
    return write


def names(sources: list[Source]) -> list[str]:
    return [s.name for s in sources]


def test_no_config_is_the_registry_as_named(conf):
    assert pull_sources("quay.io/org/app", False, conf("")) == [Source("quay.io", "org/app")]


def test_mirrors_in_order_then_the_registry(conf):
    env = conf("""
[[registry]]
location = "registry.example.com"
[[registry.mirror]]
location = "mirror-a.site.local:5000"
insecure = true
[[registry.mirror]]
location = "mirror-b.site.local/cache/"
""")
    got = pull_sources("registry.example.com/hpc/gromacs", False, env)
    assert got == [
        Source("mirror-a.site.local:5000", "hpc/gromacs", insecure=True, mirror=True),
        Source("mirror-b.site.local", "cache/hpc/gromacs", mirror=True),  # trailing / dropped
        Source("registry.example.com", "hpc/gromacs"),
    ]
    # another registry is not touched; a name merely starting like it neither
    assert names(pull_sources("registry.example.com.evil/x", False, env)) == [
        "registry.example.com.evil/x"
    ]


def test_prefix_is_remapped_to_location(conf):
    env = conf("""
[[registry]]
prefix = "docker.io/library"
location = "hub.site.local/dockerhub/library"
insecure = true
[[registry.mirror]]
location = "cache.site.local/dh"
""")
    assert pull_sources("docker.io/library/alpine", False, env) == [
        Source("cache.site.local", "dh/alpine", mirror=True),
        Source("hub.site.local", "dockerhub/library/alpine", insecure=True),
    ]
    # docker.io/other is outside the prefix
    assert names(pull_sources("docker.io/other/app", False, env)) == ["docker.io/other/app"]
    # "docker.io/library" does not match "docker.io/libraryx/..."
    assert names(pull_sources("docker.io/libraryx/app", False, env)) == ["docker.io/libraryx/app"]


def test_longest_prefix_wins(conf):
    env = conf("""
[[registry]]
location = "example.com"
[[registry.mirror]]
location = "m1.local"
[[registry]]
prefix = "example.com/team"
location = "team.local/t"
[[registry.mirror]]
location = "m2.local/team"
""")
    assert names(pull_sources("example.com/team/app", False, env)) == [
        "m2.local/team/app", "team.local/t/app"
    ]  # fmt: skip
    assert names(pull_sources("example.com/other/app", False, env)) == [
        "m1.local/other/app", "example.com/other/app"
    ]  # fmt: skip


def test_wildcard_prefix_matches_subdomains_only(conf):
    env = conf("""
[[registry]]
prefix = "*.example.com"
[[registry.mirror]]
location = "mirror.local/ex"
""")
    assert pull_sources("a.example.com/x/y", False, env) == [
        Source("mirror.local", "ex/x/y", mirror=True),
        Source("a.example.com", "x/y"),  # empty location: the name as it is
    ]
    assert names(pull_sources("b.a.example.com/x", True, env)) == [
        "mirror.local/ex/x", "b.a.example.com/x"
    ]  # fmt: skip
    # the port stays in what is appended: "mirror.local/ex:5000/x" is no
    # repository name, and podman refuses such a pull too
    with pytest.raises(RegistriesConfError, match="not a valid repository name"):
        pull_sources("b.a.example.com:5000/x", True, env)
    for outside in ("example.com/x", "a.example.community/x", "evil.com/a.example.com/x"):
        assert names(pull_sources(outside, False, env)) == [outside]


def test_wildcard_with_location_rewrites_the_host(conf):
    env = conf('[[registry]]\nprefix = "*.corp.local"\nlocation = "proxy.local/corp"\n')
    assert names(pull_sources("git.corp.local/a/b", False, env)) == ["proxy.local/corp/a/b"]


def test_equally_long_prefixes_first_in_prefix_order_wins(conf):
    # FindRegistry keeps the first of equally long matches, entries sorted by
    # prefix: "*.b.com" sorts before "a.b.com"
    env = conf("""
[[registry]]
location = "a.b.com"
[[registry.mirror]]
location = "exact.local"
[[registry]]
prefix = "*.b.com"
[[registry.mirror]]
location = "wild.local"
""")
    assert names(pull_sources("a.b.com/x", False, env))[0] == "wild.local/x"


def test_a_host_prefix_also_covers_its_ports_as_containers_image_does(conf):
    env = conf(
        '[[registry]]\nlocation = "example.com"\n[[registry.mirror]]\nlocation = "m.local"\n'
    )
    assert names(pull_sources("example.com:5000/x", False, env)) == [
        "m.local:5000/x", "example.com:5000/x"
    ]  # fmt: skip


def test_mirror_by_digest_only(conf):
    env = conf("""
[[registry]]
location = "up.example.com"
mirror-by-digest-only = true
[[registry.mirror]]
location = "m.local"
""")
    assert names(pull_sources("up.example.com/a", False, env)) == ["up.example.com/a"]
    assert names(pull_sources("up.example.com/a", True, env)) == ["m.local/a", "up.example.com/a"]


@pytest.mark.parametrize(
    ("is_digest", "expected"),
    [(False, ["all.local/a", "tag.local/a", "dflt.local/a", "up.example.com/a"]),
     (True, ["all.local/a", "digest.local/a", "dflt.local/a", "up.example.com/a"])],
)  # fmt: skip
def test_pull_from_mirror(conf, is_digest, expected):
    env = conf("""
[[registry]]
location = "up.example.com"
[[registry.mirror]]
location = "all.local"
pull-from-mirror = "all"
[[registry.mirror]]
location = "digest.local"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tag.local"
pull-from-mirror = "tag-only"
[[registry.mirror]]
location = "dflt.local"
""")
    assert names(pull_sources("up.example.com/a", is_digest, env)) == expected


def test_blocked(conf):
    env = conf("""
[[registry]]
location = "blocked.example.com"
blocked = true
[[registry]]
location = "only-via-mirror.example.com"
blocked = true
[[registry.mirror]]
location = "m.local"
[[registry]]
location = "open.example.com"
[[registry.mirror]]
location = "bad.example.com/open"
[[registry]]
prefix = "bad.example.com"
location = "bad.example.com"
blocked = true
""")
    assert pull_sources("blocked.example.com/a", False, env) == [
        Source("blocked.example.com", "a", blocked="blocked.example.com")
    ]
    assert pull_sources("only-via-mirror.example.com/a", False, env) == [
        Source("m.local", "a", mirror=True),
        Source("only-via-mirror.example.com", "a", blocked="only-via-mirror.example.com"),
    ]
    # a mirror whose own repository is under a blocked entry is blocked too
    assert pull_sources("open.example.com/a", False, env)[0].blocked == "bad.example.com"


def test_dropins_replace_whole_entries_in_name_order(conf):
    conf("""
[[registry]]
location = "up.example.com"
[[registry.mirror]]
location = "main.local"
[[registry]]
location = "other.example.com"
[[registry.mirror]]
location = "other-mirror.local"
""")
    conf('[[registry]]\nlocation = "up.example.com"\n[[registry.mirror]]\nlocation = "ten.local"\n',
         dropin="10-site.conf")  # fmt: skip
    env = conf('[[registry]]\nlocation = "up.example.com"\n[[registry.mirror]]\nlocation = "twenty.local"\n'
               'insecure = true\n', dropin="20-site.conf")  # fmt: skip
    conf("[[registry]]\nlocation = 'up.example.com'\n", dropin="30-not-a-conf.txt")
    assert pull_sources("up.example.com/a", False, env) == [
        Source("twenty.local", "a", insecure=True, mirror=True),
        Source("up.example.com", "a"),
    ]
    # an entry no drop-in names stays
    assert names(pull_sources("other.example.com/a", False, env)) == [
        "other-mirror.local/a", "other.example.com/a"
    ]  # fmt: skip


def test_within_one_file_the_first_entry_of_a_prefix_wins(conf):
    env = conf("""
[[registry]]
location = "up.example.com"
[[registry.mirror]]
location = "first.local"
[[registry]]
location = "up.example.com"
[[registry.mirror]]
location = "second.local"
""")
    assert names(pull_sources("up.example.com/a", False, env))[0] == "first.local/a"


def test_system_dropins_come_before_user_dropins(conf):
    system = conf.tmp / "system.d"
    system.mkdir()
    (system / "99-system.conf").write_text(
        '[[registry]]\nlocation = "up.example.com"\n[[registry.mirror]]\nlocation = "sys.local"\n'
    )
    env = conf('[[registry]]\nlocation = "up.example.com"\n[[registry.mirror]]\nlocation = "user.local"\n',
               dropin="00-user.conf")  # fmt: skip
    assert names(pull_sources("up.example.com/a", False, env))[0] == "user.local/a"


def test_a_user_registries_conf_replaces_the_system_file_and_its_dropins(conf):
    system = conf.tmp / "system.d"
    system.mkdir()
    (system / "m.conf").write_text(
        '[[registry]]\nlocation = "up.example.com"\n[[registry.mirror]]\nlocation = "sys.local"\n'
    )
    (conf.tmp / "system.conf").write_text(
        '[[registry]]\nlocation = "x.example.com"\n[[registry.mirror]]\nlocation = "sysx.local"\n'
    )
    environ = {"HOME": conf.environ["HOME"]}
    assert names(pull_sources("up.example.com/a", False, environ))[0] == "sys.local/a"
    assert names(pull_sources("x.example.com/a", False, environ))[0] == "sysx.local/a"
    user = conf.home / ".config" / "containers"
    user.mkdir(parents=True)
    (user / "registries.conf").write_text(
        '[[registry]]\nlocation = "up.example.com"\n[[registry.mirror]]\nlocation = "home.local"\n'
    )
    assert names(pull_sources("up.example.com/a", False, environ))[0] == "home.local/a"
    assert names(pull_sources("x.example.com/a", False, environ)) == ["x.example.com/a"]


def test_registries_config_path_is_read_when_containers_registries_conf_is_not_set(conf):
    conf('[[registry]]\nlocation = "up.example.com"\n[[registry.mirror]]\nlocation = "m.local"\n')
    environ = {"HOME": conf.environ["HOME"],
               "REGISTRIES_CONFIG_PATH": conf.environ["CONTAINERS_REGISTRIES_CONF"]}  # fmt: skip
    assert names(pull_sources("up.example.com/a", False, environ))[0] == "m.local/a"


def test_v1_format(conf):
    env = conf("""
[registries.search]
registries = ["docker.io"]
[registries.insecure]
registries = ["plain.local:5000"]
[registries.block]
registries = ["bad.example.com"]
""")
    assert pull_sources("plain.local:5000/a", False, env) == [
        Source("plain.local:5000", "a", insecure=True)
    ]
    assert pull_sources("bad.example.com/a", False, env) == [
        Source("bad.example.com", "a", blocked="bad.example.com")
    ]


BAD = [
    ("[[registry]]\nlocation = 'https://up.example.com'\n", "URI schemes are not supported"),
    ("[[registry]]\ninsecure = true\n", "neither location nor prefix"),
    ("[[registry]]\nprefix = 'up.example.com'\n", "has no location"),
    ("[[registry]]\nprefix = '*.example.com/ns'\n", "must be of the form *.example.com"),
    ("[[registry]]\nlocation = 'a.com'\npull-from-mirror = 'all'\n", "non-mirror registry"),
    ("[[registry]]\nlocation = 'a.com'\n[[registry.mirror]]\ninsecure = true\n", "has no location"),
    ("[[registry]]\nlocation = 'a.com'\n[[registry.mirror]]\nlocation = 'm.local'\n"
     "pull-from-mirror = 'sometimes'\n", "unsupported pull-from-mirror value"),
    ("[[registry]]\nlocation = 'a.com'\nmirror-by-digest-only = true\n[[registry.mirror]]\n"
     "location = 'm.local'\npull-from-mirror = 'tag-only'\n", "use one"),
    ("[[registry]]\nprefix = 'a.com/x'\nlocation = 'a.com'\ninsecure = true\n"
     "[[registry]]\nprefix = 'a.com/y'\nlocation = 'a.com'\n", "conflicting 'insecure'"),
    ("[[registry]]\nlocation = 'a.com'\ninsecure = 'yes'\n", "must be true or false"),
    ("[[registry]\nlocation = 'a.com'\n", "registries.conf"),
    ("unqualified-search-registries = ['a.com']\n[registries.insecure]\nregistries = ['b.com']\n",
     "mixes the v1 and v2 formats"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "says"), BAD, ids=[s for _t, s in BAD])
def test_documents_containers_image_refuses_are_refused(conf, text, says):
    env = conf(text)
    with pytest.raises(RegistriesConfError, match=says.replace("*", r"\*")) as info:
        pull_sources("a.com/x", False, env)
    assert "\n" not in str(info.value)


def test_v1_in_a_dropin_is_refused(conf):
    env = conf("[registries.insecure]\nregistries = ['b.com']\n", dropin="v1.conf")
    with pytest.raises(RegistriesConfError, match="v2 format"):
        pull_sources("a.com/x", False, env)


def test_a_rewrite_to_an_invalid_name_is_refused(conf):
    # "mirror/x" would be docker.io/mirror/x: not the canonical name asked for
    env = conf("[[registry]]\nlocation = 'a.com'\n[[registry.mirror]]\nlocation = 'mirror'\n")
    with pytest.raises(RegistriesConfError, match="not a valid repository name"):
        pull_sources("a.com/x", False, env)


def test_a_missing_file_is_skipped(conf):
    environ = {**conf.environ, "CONTAINERS_REGISTRIES_CONF": str(conf.tmp / "absent.conf")}
    assert names(pull_sources("a.com/x", False, environ)) == ["a.com/x"]


def test_insecure_is_unchanged_by_mirrors(conf):
    # registries_conf.insecure() answers for the registry named, as before
    env = conf("[[registry]]\nlocation = 'a.com'\n[[registry.mirror]]\nlocation = 'm.local'\n"
               "insecure = true\n")  # fmt: skip
    assert registries_conf.insecure("a.com/x", env) is False
    assert registries_conf.insecure("m.local/x", env) is False


# -- end to end: real registries -----------------------------------------------------


def dead_host() -> str:
    """127.0.0.1:PORT where nothing listens."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """A second real registry: the upstream where it is reachable at all."""
    reg = LocalRegistry(tmp_path_factory.mktemp("upstream"))
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def app(upstream, registry, tmp_path_factory):
    """The index pushed to the upstream as hpc/app:1 and, with the same digests,
    to the site mirror (the session registry) as mirror/hpc/app:1."""
    pushed = oci.build_and_push(
        upstream.host, "hpc/app", "1", BUILDS, layout_dir=tmp_path_factory.mktemp("mirror-app")
    )
    oci.push_layout(pushed.layout_dir, f"{registry.host}/mirror/hpc/app:1")
    assert (
        oci.sha256_digest(oci.inspect_raw(f"{registry.host}/mirror/hpc/app:1"))
        == pushed.index_digest
    )
    return pushed


def mirror_conf(path, upstream_host: str, mirrors: list[tuple[str, str]], *,
                upstream_insecure: bool = False, extra: str = "") -> str:  # fmt: skip
    """A registries.conf naming `mirrors` [(location, more toml)] for the
    upstream ``UPSTREAM/hpc``."""
    text = f'[[registry]]\nprefix = "{upstream_host}/hpc"\nlocation = "{upstream_host}/hpc"\n'
    text += f"insecure = {'true' if upstream_insecure else 'false'}\n"
    for location, more in mirrors:
        text += f'[[registry.mirror]]\nlocation = "{location}"\ninsecure = true\n{more}'
    path.write_text(text + extra)
    path.chmod(0o644)
    return str(path)


def env_for(tmp_path, conf_path: str, **more) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"HOME": str(home), "CONTAINERS_REGISTRIES_CONF": conf_path, **more}


def manifest_gets(reg, since: int, repo: str) -> list[str]:
    return [p for m, p, _s in reg.requests(since) if m in ("GET", "HEAD") and
            p.startswith(f"/v2/{repo}/manifests/")]  # fmt: skip


def test_fetch_takes_the_index_from_the_mirror_when_the_upstream_is_unreachable(
    registry, app, tmp_path
):
    up = dead_host()
    env = env_for(
        tmp_path, mirror_conf(tmp_path / "r.conf", up, [(f"{registry.host}/mirror/hpc", "")])
    )
    since = registry.log_offset()
    data = fetch(parse(f"{up}/hpc/app:1"), environ=env, insecure=False, timeout=5)
    assert data.digest == app.index_digest
    assert data.source == f"{registry.host}/mirror/hpc/app"
    assert data.reference == parse(f"{up}/hpc/app:1")
    seen = registry.requests(since)
    assert manifest_gets(registry, since, "mirror/hpc/app")[0] == "/v2/mirror/hpc/app/manifests/1"
    assert all(p == "/v2/" or p.startswith("/v2/mirror/hpc/app/") for _m, p, _s in seen), seen
    # the registry counts what the client counts (the https attempt never
    # reaches the access log: one more request)
    assert data.requests == len(seen) + 1
    assert (
        head(parse(f"{up}/hpc/app:1"), environ=env, insecure=False, timeout=5) == app.index_digest
    )


def test_a_lying_mirror_is_skipped_like_a_lying_registry_would_be(
    registry, upstream, app, tmp_path, liar
):
    liar_host, hits = liar
    conf_path = mirror_conf(
        tmp_path / "r.conf", upstream.host,
        [(f"{liar_host}/mirror/hpc", ""), (f"{registry.host}/mirror/hpc", "")],
        upstream_insecure=True,
    )  # fmt: skip
    env = env_for(tmp_path, conf_path)
    since_m, since_u = registry.log_offset(), upstream.log_offset()
    data = fetch(parse(f"{upstream.host}/hpc/app:1"), environ=env, insecure=True, timeout=5)
    assert data.digest == app.index_digest and data.source == f"{registry.host}/mirror/hpc/app"
    assert "/v2/mirror/hpc/app/manifests/1" in hits
    assert manifest_gets(upstream, since_u, "hpc/app") == []  # the second mirror served it
    assert manifest_gets(registry, since_m, "mirror/hpc/app")[0] == "/v2/mirror/hpc/app/manifests/1"
    # by digest: the liar's content does not hash to the digest asked for
    hits.clear()
    by_digest = parse(f"{upstream.host}/hpc/app@{app.index_digest}")
    assert fetch(by_digest, environ=env, insecure=True, timeout=5).digest == app.index_digest
    assert hits == [f"/v2/mirror/hpc/app/manifests/{app.index_digest}"]


def test_a_lying_mirror_and_an_unreachable_upstream_fail_with_both_causes(liar, tmp_path):
    liar_host, _hits = liar
    up = dead_host()
    env = env_for(tmp_path, mirror_conf(tmp_path / "r.conf", up, [(f"{liar_host}/m", "")]))
    with pytest.raises(RegistryError) as info:
        fetch(parse(f"{up}/hpc/app:1"), environ=env, insecure=False, timeout=5)
    text = str(info.value)
    assert text.startswith(
        f"cannot reach registry {up}: connection refused (mirrors also failed: ["
    )
    assert f"{liar_host}/m/app:1: content hashes to" in text and "registry announced" in text
    assert "\n" not in text
    with pytest.raises(DigestMismatch):  # the registry's own error keeps its type
        fetch(parse(f"{liar_host}/hpc/app:1"), environ=env_for(tmp_path, str(tmp_path / "none")),
              insecure=True, timeout=5)  # fmt: skip


def test_digest_only_mirror_serves_digests_and_the_registry_serves_tags(
    registry, upstream, app, tmp_path
):
    conf_path = mirror_conf(tmp_path / "r.conf", upstream.host,
                            [(f"{registry.host}/mirror/hpc", 'pull-from-mirror = "digest-only"\n')],
                            upstream_insecure=True)  # fmt: skip
    env = env_for(tmp_path, conf_path)
    since_m, since_u = registry.log_offset(), upstream.log_offset()
    data = fetch(parse(f"{upstream.host}/hpc/app:1"), environ=env, insecure=True, timeout=5)
    assert data.digest == app.index_digest and data.source == f"{upstream.host}/hpc/app"
    assert registry.requests(since_m) == []  # the mirror is not asked for a tag at all
    assert manifest_gets(upstream, since_u, "hpc/app")[0] == "/v2/hpc/app/manifests/1"
    since_m, since_u = registry.log_offset(), upstream.log_offset()
    by_digest = fetch(parse(f"{upstream.host}/hpc/app@{app.index_digest}"),
                      environ=env, insecure=True, timeout=5)  # fmt: skip
    assert by_digest.source == f"{registry.host}/mirror/hpc/app"
    assert upstream.requests(since_u) == []
    assert manifest_gets(registry, since_m, "mirror/hpc/app")[0] == (
        f"/v2/mirror/hpc/app/manifests/{app.index_digest}"
    )
    # head() follows the same order
    since_m = registry.log_offset()
    assert head(parse(f"{upstream.host}/hpc/app:1"), environ=env, insecure=True, timeout=5) == (
        app.index_digest
    )
    assert registry.requests(since_m) == []


def test_a_remapped_location_is_where_the_registry_is_asked(registry, app, tmp_path):
    conf_path = tmp_path / "r.conf"
    conf_path.write_text(f'[[registry]]\nprefix = "gromacs.example.org/hpc"\n'
                         f'location = "{registry.host}/mirror/hpc"\ninsecure = true\n')  # fmt: skip
    env = env_for(tmp_path, str(conf_path))
    ref = parse("gromacs.example.org/hpc/app:1")
    # the caller's insecure flag is registries.conf's for the registry: true here
    data = fetch(ref, environ=env, insecure=True, timeout=5)
    assert data.source == f"{registry.host}/mirror/hpc/app" and data.digest == app.index_digest


def test_one_deadline_for_all_sources(upstream, app, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # accepts (in the kernel) and never answers
    try:
        silent = f"127.0.0.1:{listener.getsockname()[1]}"
        conf_path = mirror_conf(tmp_path / "r.conf", upstream.host, [(f"{silent}/m", "")],
                                upstream_insecure=True)  # fmt: skip
        since = upstream.log_offset()
        start = time.monotonic()
        with pytest.raises(RegistryError, match="timed out after 1.5 s") as info:
            fetch(parse(f"{upstream.host}/hpc/app:1"), environ=env_for(tmp_path, conf_path),
                  insecure=True, timeout=1.5)  # fmt: skip
        took = time.monotonic() - start
    finally:
        listener.close()
    assert took < 2.5, took  # not 1.5 s per source
    assert f"registry {upstream.host} timed out" in str(info.value)
    assert upstream.requests(since) == []  # no time was left for it


def test_blocked_registry_fails_with_one_line_unless_a_mirror_serves_it(registry, app, tmp_path):
    up = dead_host()
    conf_path = tmp_path / "r.conf"
    conf_path.write_text(f'[[registry]]\nlocation = "{up}"\nblocked = true\n')
    env = env_for(tmp_path, str(conf_path))
    with pytest.raises(RegistryError) as info:
        fetch(parse(f"{up}/hpc/app:1"), environ=env, insecure=False, timeout=5)
    assert str(info.value) == f"registry {up} is blocked in registries.conf"
    conf_path.write_text(f'[[registry]]\nlocation = "{up}"\nblocked = true\n'
                         f'[[registry.mirror]]\nlocation = "{registry.host}/mirror"\ninsecure = true\n')  # fmt: skip
    assert fetch(parse(f"{up}/hpc/app:1"), environ=env, insecure=False, timeout=5).digest == (
        app.index_digest
    )


# -- credentials are looked up for the host actually contacted ------------------------


@pytest.fixture(scope="module")
def auth_mirror(app, tmp_path_factory):
    if not can_make_htpasswd():
        pytest.skip("no bcrypt htpasswd maker (bcrypt or apache2-utils)")
    reg = LocalRegistry(tmp_path_factory.mktemp("authmirror"), auth=("carol", "s3cret"))
    try:
        oci.push_layout(app.layout_dir, f"{reg.host}/mirror/hpc/app:1", creds="carol:s3cret")
        oci.push_layout(app.layout_dir, f"{reg.host}/hpc/app:1", creds="carol:s3cret")
        yield reg
    finally:
        reg.stop()


def _auth_file(path, host: str) -> str:
    token = base64.b64encode(b"carol:s3cret").decode()
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    return str(path)


def test_mirror_credentials_come_from_the_mirror_hosts_entry(auth_mirror, app, tmp_path):
    up = dead_host()
    conf_path = mirror_conf(tmp_path / "r.conf", up, [(f"{auth_mirror.host}/mirror/hpc", "")])
    ref = parse(f"{up}/hpc/app:1")
    ok = env_for(
        tmp_path, conf_path, REGISTRY_AUTH_FILE=_auth_file(tmp_path / "a.json", auth_mirror.host)
    )
    assert fetch(ref, environ=ok, insecure=False, timeout=5).digest == app.index_digest
    # credentials filed for the upstream host are not the mirror's
    wrong = env_for(tmp_path, conf_path, REGISTRY_AUTH_FILE=_auth_file(tmp_path / "b.json", up))
    with pytest.raises(RegistryError, match=r"mirror/hpc/app:1: access denied \(HTTP 401\)"):
        fetch(ref, environ=wrong, insecure=False, timeout=5)


def test_explicit_credentials_go_only_to_the_references_own_host(auth_mirror, app, tmp_path):
    up = dead_host()
    env = env_for(
        tmp_path, mirror_conf(tmp_path / "r.conf", up, [(f"{auth_mirror.host}/mirror/hpc", "")])
    )
    with pytest.raises(RegistryError, match="access denied"):
        fetch(parse(f"{up}/hpc/app:1"), environ=env, insecure=False, timeout=5,
              credentials=("carol", "s3cret"))  # fmt: skip
    # a mirror on the reference's own host gets them (containers/image does the same)
    same = mirror_conf(tmp_path / "s.conf", auth_mirror.host, [(f"{auth_mirror.host}/mirror/hpc", "")],
                       upstream_insecure=True)  # fmt: skip
    data = fetch(parse(f"{auth_mirror.host}/hpc/app:1"), environ=env_for(tmp_path, same),
                 insecure=True, timeout=5, credentials=("carol", "s3cret"))  # fmt: skip
    assert data.source == f"{auth_mirror.host}/mirror/hpc/app"


# -- a mirror that lies about digests --------------------------------------------------

LIE = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                  "manifests": []}).encode()  # fmt: skip


class _Liar(http.server.BaseHTTPRequestHandler):
    """Answers every manifest request with the same index, announcing a
    digest it does not hash to."""

    protocol_version = "HTTP/1.1"
    hits: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        if self.path != "/v2/":
            self.hits.append(self.path)
        body = b"{}" if self.path == "/v2/" else LIE
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.oci.image.index.v1+json")
        self.send_header("Docker-Content-Digest", "sha256:" + "0" * 64)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET


@pytest.fixture(scope="module")
def liar():
    handler = type("Liar", (_Liar,), {"hits": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{srv.server_address[1]}", handler.hits
    srv.shutdown()
    srv.server_close()


# -- through the installed shim and imagefit explain -----------------------------------


@pytest.fixture(scope="module")
def facts_file(cpuinfo_dir, imagefit_cmd):
    out = world_readable_tmp("imagefit-mirror-facts-")
    files = {}
    for dump in ("linux-rocky8.5-zen4", "linux-rhel7-haswell"):
        done = subprocess.run([*imagefit_cmd, "facts", "--json", "--cpuinfo", str(cpuinfo_dir / dump)],
                              check=True, capture_output=True, text=True)  # fmt: skip
        path = out / f"{dump.rsplit('-', 1)[1]}.json"
        path.write_text(done.stdout)
        path.chmod(0o644)
        files[path.stem] = str(path)
    yield files
    shutil.rmtree(out, ignore_errors=True)


def shim_env(tmp_path, conf_path: str, facts: str, path: str, **more) -> dict:
    site = tmp_path / "site.toml"
    site.write_text("decision_cache_ttl = 0\n")
    site.chmod(0o644)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "IMAGEFIT_DRY_RUN": "1", "IMAGEFIT_FACTS": facts, "IMAGEFIT_SITE_CONFIG": str(site),
            "IMAGEFIT_REGISTRY_TIMEOUT": "3", "CONTAINERS_REGISTRIES_CONF": conf_path,
            "PATH": path, **more}  # fmt: skip


def test_explain_and_the_shim_choose_from_the_mirror_and_keep_the_original_name(
    registry, app, tmp_path, shim_bin, imagefit_cmd, facts_file
):
    up = dead_host()
    conf_path = mirror_conf(tmp_path / "r.conf", up, [(f"{registry.host}/mirror/hpc", "")])
    ref = f"{up}/hpc/app:1"
    pinned = f"{up}/hpc/app@{app.manifests['zen4']}"
    env = shim_env(tmp_path, conf_path, facts_file["zen4"], f"{shim_bin}:{os.environ['PATH']}")
    since = registry.log_offset()
    explained = subprocess.run([*imagefit_cmd, "explain", ref, "--json", "--facts", facts_file["zen4"]],
                               env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert explained.returncode == 0, explained.stderr
    out = json.loads(explained.stdout)
    assert out["index_digest"] == app.index_digest
    assert json.dumps(out).count(pinned) >= 1  # the rewritten operand: the original name
    explain_requests = registry.requests(since)
    since = registry.log_offset()
    args = ["run", "--rm", ref, "id"]
    done = subprocess.run([str(shim_bin / "podman"), *args], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    argv = json.loads(done.stdout)
    assert pinned in argv and ref not in argv, argv
    assert done.stderr == ""
    shim_requests = registry.requests(since)
    assert manifest_gets(registry, since, "mirror/hpc/app")[0] == "/v2/mirror/hpc/app/manifests/1"
    assert [p for _m, p, _s in shim_requests].count("/v2/mirror/hpc/app/manifests/1") == 1
    assert all(p == "/v2/" or p.startswith("/v2/mirror/hpc/app/") for _m, p, _s in shim_requests)
    # the index, one referrers API probe (404: Distribution 2.8 has none), the
    # referrers tag of the index and of each build: the same for explain
    assert len(shim_requests) == len(explain_requests) == 3 + len(BUILDS), shim_requests


def test_shim_fails_open_on_a_blocked_registry_with_one_line(
    registry, app, tmp_path, shim_bin, facts_file
):
    up = dead_host()
    conf_path = tmp_path / "r.conf"
    conf_path.write_text(f'[[registry]]\nlocation = "{up}"\nblocked = true\n')
    env = shim_env(tmp_path, str(conf_path), facts_file["zen4"], f"{shim_bin}:{os.environ['PATH']}")
    args = ["run", "--rm", f"{up}/hpc/app:1", "id"]
    done = subprocess.run([str(shim_bin / "podman"), *args], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and json.loads(done.stdout)[1:] == args
    assert done.stderr == (
        f"imagefit: cannot resolve {up}/hpc/app:1 (registry {up} is blocked in registries.conf);"
        " running the command unchanged\n"
    )


def test_shim_fails_open_on_a_registries_conf_podman_refuses(tmp_path, shim_bin, facts_file):
    conf_path = tmp_path / "r.conf"
    conf_path.write_text('[[registry]]\nlocation = "https://up.example.com"\n')
    env = shim_env(tmp_path, str(conf_path), facts_file["zen4"], f"{shim_bin}:{os.environ['PATH']}")
    args = ["run", "--rm", "up.example.com/hpc/app:1", "id"]
    done = subprocess.run([str(shim_bin / "podman"), *args], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and json.loads(done.stdout)[1:] == args
    assert done.stderr == (
        f"imagefit: cannot resolve up.example.com/hpc/app:1 ({conf_path}: invalid location "
        "'https://up.example.com': URI schemes are not supported); running the command unchanged\n"
    )


def test_shim_with_a_lying_mirror_and_the_upstream_down_fails_open(
    liar, tmp_path, shim_bin, facts_file
):
    liar_host, _hits = liar
    up = dead_host()
    conf_path = mirror_conf(tmp_path / "r.conf", up, [(f"{liar_host}/m", "")])
    env = shim_env(tmp_path, conf_path, facts_file["zen4"], f"{shim_bin}:{os.environ['PATH']}")
    args = ["run", "--rm", f"{up}/hpc/app:1", "id"]
    done = subprocess.run([str(shim_bin / "podman"), *args], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and json.loads(done.stdout)[1:] == args
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "registry announced" in lines[0] and "connection refused" in lines[0]
    assert lines[0].endswith("; running the command unchanged")


@pytest.fixture(scope="module")
def hpc_shims(imagefit_cmd):
    prefix = world_readable_tmp("imagefit-mirror-prefix-")
    subprocess.run([*imagefit_cmd, "install", "--prefix", str(prefix),
                    "--runtime", "apptainer", "--runtime", "sarus"],
                   check=True, capture_output=True, text=True)  # fmt: skip
    yield prefix / "bin"
    shutil.rmtree(prefix, ignore_errors=True)


@pytest.mark.parametrize("runtime", ["apptainer", "sarus"])
def test_apptainer_and_sarus_resolve_through_the_same_mirrors(
    registry, app, tmp_path, hpc_shims, facts_file, runtime
):
    up = dead_host()
    conf_path = mirror_conf(tmp_path / "r.conf", up, [(f"{registry.host}/mirror/hpc", "")])
    standin = StandIn(tmp_path / "bin", runtime)
    env = shim_env(
        tmp_path, conf_path, facts_file["haswell"], path_with(hpc_shims, standin.path.parent)
    )
    image = f"{up}/hpc/app:1"
    args = (
        ["exec", f"docker://{image}", "true"] if runtime == "apptainer" else ["run", image, "true"]
    )
    done = subprocess.run([str(hpc_shims / runtime), *args], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    pinned = f"{up}/hpc/app@{app.manifests['haswell']}"
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert any(pinned in arg for argv in printed for arg in argv), printed


# -- a real podman pull of the rewritten reference, from the mirror ----------------------


def test_real_podman_pull_through_the_shim_comes_from_the_mirror(
    registry, app, tmp_path, shim_bin, podman_env, facts_file
):
    argv, env = podman_env
    up = dead_host()
    # podman reads the same file (podman_env's CONTAINERS_REGISTRIES_CONF)
    mirror_conf(Path(env["CONTAINERS_REGISTRIES_CONF"]), up, [(f"{registry.host}/mirror/hpc", "")])
    env = {**env, "PATH": f"{shim_bin}:{env['PATH']}", "IMAGEFIT_FACTS": facts_file["haswell"],
           "IMAGEFIT_REGISTRY_TIMEOUT": "3"}  # fmt: skip
    site = tmp_path / "site.toml"
    site.write_text("decision_cache_ttl = 0\n")
    site.chmod(0o644)
    env["IMAGEFIT_SITE_CONFIG"] = str(site)
    since = registry.log_offset()
    done = subprocess.run([str(shim_bin / "podman"), *argv[1:], "pull", "-q", f"{up}/hpc/app:1"],
                          env=env, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    listed = subprocess.run([*argv, "images", "--digests", "--format", "{{.Repository}} {{.Digest}}"],
                            env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert f"{up}/hpc/app {app.manifests['haswell']}" in listed.stdout.splitlines(), listed.stdout
    paths = [p for _m, p, _s in registry.requests(since)]
    # the shim read the index by tag; podman pulled the pinned build by digest
    assert "/v2/mirror/hpc/app/manifests/1" in paths
    assert f"/v2/mirror/hpc/app/manifests/{app.manifests['haswell']}" in paths
    assert any(p.startswith("/v2/mirror/hpc/app/blobs/") for p in paths)
