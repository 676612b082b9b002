"""NFD image-compatibility artifacts: discovery through the referrers API and
its tag fallback, newest-wins, verification and decoding.

Against the real Distribution 2.8 registry (no referrers API: the tag
fallback, and the request counts from its access log), and against a small
loopback registry that implements the referrers API (distribution-spec v1.1
"Listing Referrers") or misbehaves on purpose.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest

from shim.artifacts import (
    NFD_ARTIFACT_TYPE,
    NFD_SPEC_JSON,
    NFD_SPEC_YAML,
    NfdSpec,
    decode_spec,
    fetch_nfd_specs,
    newest,
    parse_rfc3339,
)
from shim.errors import DigestMismatch, RegistryError
from shim.registry import RegistryClient, referrers_tag
from tests.support import oci
from tests.support.registry import LocalRegistry

BUILDS = [
    {"name": "generic", "platform": {"architecture": "amd64", "os": "linux"}},
    {"name": "haswell", "platform": {"architecture": "amd64", "os": "linux", "variant": "v3"}},
    {"name": "zen4", "platform": {"architecture": "amd64", "os": "linux", "variant": "v4"}},
]  # fmt: skip

SPEC_OLD = b"""\
version: v1alpha1
compatibilities:
- tag: old
  weight: 1
  rules:
  - name: any-cpu
    matchFeatures:
    - feature: cpu.model
      matchExpressions: {vendor_id: {op: In, value: ["Intel", "AMD"]}}
"""
SPEC_NEW = b"""\
version: v1alpha1
compatibilities:
- tag: preferred
  weight: 10
  description: AVX-512 build
  rules:
  - name: avx512
    matchFeatures:
    - feature: cpu.cpuid
      matchExpressions: {AVX512F: {op: Exists}}
    - feature: kernel.version
      matchExpressions: {major: {op: Ge, value: ["5"]}}
"""
SPEC_HASWELL_JSON = json.dumps(
    {
        "version": "v1alpha1",
        "compatibilities": [
            {
                "tag": "avx2",
                "rules": [
                    {
                        "name": "avx2",
                        "matchFeatures": [
                            {"feature": "cpu.cpuid", "matchExpressions": {"AVX2": {"op": "Exists"}}}
                        ],
                    }
                ],
            }
        ],
    }
).encode()
SPEC_ZEN4 = b"version: v1alpha1\ncompatibilities:\n- tag: zen4\n  rules: []\n"
SBOM_TYPE = "application/vnd.example.sbom.v1"


def _wait_requests(registry, offset: int, count: int) -> list[tuple[str, str, int]]:
    """The access-log entries since *offset*, once at least *count* are there
    (the registry writes a line just after answering)."""
    deadline = time.monotonic() + 3
    while True:
        found = registry.requests(since=offset)
        if len(found) >= count or time.monotonic() > deadline:
            time.sleep(0.05)  # and no more than that
            return registry.requests(since=offset)
        time.sleep(0.01)


def _kinds(requests: list[tuple[str, str, int]]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for method, path, _status in requests:
        assert method == "GET", (method, path)
        if "/referrers/" in path:
            kind = "referrers"
        elif "/manifests/sha256-" in path:
            kind = "tag"
        elif "/manifests/" in path:
            kind = "manifest"
        elif "/blobs/" in path:
            kind = "blob"
        else:
            kind = path
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


# -- the real registry (Distribution 2.8: tag fallback) ---------------------------


@pytest.fixture(scope="module")
def attached(registry, tmp_path_factory):
    """nfd/app:1 (3 builds) with NFD artifacts on the index and two builds:

    - index: an old and a new YAML spec (the new one wins) and a newer
      artifact of another type (ignored);
    - haswell: one JSON spec;
    - zen4: one YAML spec without ``created``;
    - generic: nothing.
    """
    pushed = oci.build_and_push(
        registry.host, "nfd/app", "1", BUILDS, layout_dir=tmp_path_factory.mktemp("nfd")
    )
    host, repo = registry.host, "nfd/app"
    index = oci.subject_descriptor(pushed)
    digests = {
        "old": oci.push_artifact(host, repo, index, SPEC_OLD, created="2025-01-01T00:00:00Z"),
        "new": oci.push_artifact(
            host, repo, index, SPEC_NEW, created="2025-06-01T12:00:00.5+02:00"
        ),
        "sbom": oci.push_artifact(
            host,
            repo,
            index,
            b'{"sbom": true}',
            created="2030-01-01T00:00:00Z",
            media_type="application/json",
            artifact_type=SBOM_TYPE,
        ),
        "haswell": oci.push_artifact(
            host,
            repo,
            oci.subject_descriptor(pushed, "haswell"),
            SPEC_HASWELL_JSON,
            created="2025-03-01T00:00:00Z",
            media_type=NFD_SPEC_JSON,
        ),
        "zen4": oci.push_artifact(host, repo, oci.subject_descriptor(pushed, "zen4"), SPEC_ZEN4),
    }
    subjects = [pushed.index_digest] + [pushed.manifests[b["name"]] for b in BUILDS]
    return pushed, digests, subjects


def test_each_subject_gets_its_newest_nfd_spec(registry, attached):
    pushed, digests, subjects = attached
    client = RegistryClient(registry.host, insecure=True, timeout=10)
    specs = fetch_nfd_specs(client, "nfd/app", subjects)
    assert list(specs) == subjects
    m = pushed.manifests
    assert specs[pushed.index_digest] == [
        NfdSpec(
            subject=pushed.index_digest,
            digest=digests["new"],
            created="2025-06-01T12:00:00.5+02:00",
            document=decode_spec(SPEC_NEW, NFD_SPEC_YAML),
            media_type=NFD_SPEC_YAML,
        )
    ]
    assert specs[pushed.index_digest][0].document["compatibilities"][0]["tag"] == "preferred"
    (haswell,) = specs[m["haswell"]]
    assert (haswell.digest, haswell.media_type) == (digests["haswell"], NFD_SPEC_JSON)
    assert haswell.document == json.loads(SPEC_HASWELL_JSON)
    (zen4,) = specs[m["zen4"]]
    assert (zen4.digest, zen4.created) == (digests["zen4"], None)
    assert zen4.document == {
        "version": "v1alpha1",
        "compatibilities": [{"tag": "zen4", "rules": []}],
    }
    assert specs[m["generic"]] == []


def test_one_failed_referrers_api_call_then_only_tag_fallbacks(registry, attached):
    _pushed, _digests, subjects = attached
    client = RegistryClient(registry.host, insecure=True, timeout=10)
    offset = registry.log_offset()
    fetch_nfd_specs(client, "nfd/app", subjects, max_workers=8)
    # 1 referrers API probe + 4 tags + (manifest + blob) for the 3 subjects with artifacts
    found = _wait_requests(registry, offset, 11)
    assert _kinds(found) == {"referrers": 1, "tag": 4, "manifest": 3, "blob": 3}, found
    (probe,) = [r for r in found if "/referrers/" in r[1]]
    assert probe[2] == 404
    assert f"artifactType={NFD_ARTIFACT_TYPE.replace('/', '%2F')}" in probe[1]
    assert client.referrers_api is False
    assert client.requests_made == 11 + 1  # + the https attempt on this plain-HTTP registry

    offset = registry.log_offset()
    fetch_nfd_specs(client, "nfd/app", subjects)  # the same client remembers: no API probe
    assert _kinds(_wait_requests(registry, offset, 10)) == {"tag": 4, "manifest": 3, "blob": 3}


def test_workers_do_not_change_the_result(registry, attached):
    _pushed, _digests, subjects = attached
    one = fetch_nfd_specs(
        RegistryClient(registry.host, insecure=True), "nfd/app", subjects, max_workers=1
    )
    many = fetch_nfd_specs(RegistryClient(registry.host, insecure=True), "nfd/app", subjects[::-1])
    assert one == many


def test_no_artifacts_means_empty_lists(registry, tmp_path_factory):
    pushed = oci.build_and_push(
        registry.host, "nfd/bare", "1", BUILDS[:2], layout_dir=tmp_path_factory.mktemp("bare")
    )
    subjects = [pushed.index_digest, *pushed.manifests.values()]
    client = RegistryClient(registry.host, insecure=True)
    offset = registry.log_offset()
    assert fetch_nfd_specs(client, "nfd/bare", subjects) == {s: [] for s in subjects}
    assert _kinds(_wait_requests(registry, offset, 4)) == {"referrers": 1, "tag": 3}
    assert fetch_nfd_specs(client, "nfd/bare", []) == {}


def test_referrers_tag_index_is_maintained_as_the_spec_says(registry, attached):
    pushed, digests, _subjects = attached
    tag = f"sha256-{pushed.index_digest.removeprefix('sha256:')}"
    body = oci.inspect_raw(f"{registry.host}/nfd/app:{tag}")
    index = json.loads(body)
    assert index["mediaType"] == oci.MEDIA_TYPE_INDEX
    by_digest = {d["digest"]: d for d in index["manifests"]}
    assert list(by_digest) == [digests["old"], digests["new"], digests["sbom"]]  # append order
    assert by_digest[digests["new"]]["artifactType"] == NFD_ARTIFACT_TYPE
    assert by_digest[digests["new"]]["annotations"] == {
        "org.opencontainers.image.created": "2025-06-01T12:00:00.5+02:00"
    }
    assert by_digest[digests["sbom"]]["artifactType"] == SBOM_TYPE
    # pushing the same artifact again adds no duplicate entry
    again = oci.push_artifact(
        registry.host,
        "nfd/app",
        oci.subject_descriptor(pushed),
        SPEC_OLD,
        created="2025-01-01T00:00:00Z",
    )
    assert again == digests["old"]
    assert oci.inspect_raw(f"{registry.host}/nfd/app:{tag}") == body
    # the client's view of the same tag: filtered, normalised descriptors
    client = RegistryClient(registry.host, insecure=True)
    listed = client.referrers("nfd/app", pushed.index_digest, NFD_ARTIFACT_TYPE)
    assert [d["digest"] for d in listed] == [digests["old"], digests["new"]]
    assert set(listed[0]) == {"mediaType", "digest", "size", "artifactType", "annotations"}
    assert len(client.referrers("nfd/app", pushed.index_digest)) == 3  # no filter


def test_distribution_2_8_has_no_referrers_api_and_ignores_subject(registry, attached):
    """What this machine's registry really does (the reason for the fallback)."""
    pushed, digests, _subjects = attached
    url = f"{registry.url}/v2/nfd/app/referrers/{pushed.index_digest}"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=5)
    assert info.value.code == 404
    assert info.value.headers["Content-Type"].startswith("text/plain")
    assert info.value.read() == b"404 page not found\n"  # no route: not a distribution error
    info.value.close()
    # a manifest with a subject is stored as pushed (201) but the subject is not processed
    manifest = json.loads(oci.inspect_raw(f"{registry.host}/nfd/app@{digests['new']}"))
    assert manifest["subject"]["digest"] == pushed.index_digest
    body = oci.canonical_json({**manifest, "annotations": {"x": "probe"}})
    headers = oci.push_manifest(registry.host, "nfd/app", body, oci.MEDIA_TYPE_MANIFEST)
    assert headers.get("OCI-Subject") is None
    assert headers["Docker-Content-Digest"] == oci.sha256_digest(body)
    # a missing referrers tag is an ordinary distribution error
    tag = referrers_tag("sha256:" + "0" * 64)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{registry.url}/v2/nfd/app/manifests/{tag}", timeout=5)
    assert info.value.code == 404
    assert json.loads(info.value.read())["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    info.value.close()


def test_parallel_workers_share_authentication(tmp_path_factory):
    reg = LocalRegistry(tmp_path_factory.mktemp("nfdauth"), auth=("dave", "pw"))
    try:
        pushed = oci.build_and_push(
            reg.host, "priv/app", "1", BUILDS, layout_dir=tmp_path_factory.mktemp("nfdauthl"),
            creds="dave:pw",
        )  # fmt: skip
        subjects = [pushed.index_digest, *pushed.manifests.values()]
        attached = {
            s: oci.push_artifact(
                reg.host, "priv/app", {"mediaType": oci.MEDIA_TYPE_MANIFEST, "digest": s, "size": 1},
                SPEC_ZEN4, created="2025-01-01T00:00:00Z", creds="dave:pw",
            )
            for s in subjects[1:]
        }  # fmt: skip
        with pytest.raises(RegistryError, match=r"access denied \(HTTP 401\)"):
            fetch_nfd_specs(RegistryClient(reg.host, insecure=True), "priv/app", subjects)
        client = RegistryClient(reg.host, insecure=True, credentials=("dave", "pw"))
        offset = reg.log_offset()
        specs = fetch_nfd_specs(client, "priv/app", subjects)
        assert {s: [x.digest for x in v] for s, v in specs.items()} == {
            subjects[0]: [],
            **{s: [d] for s, d in attached.items()},
        }
        # Distribution answers the referrers probe 404 before any auth check
        # (no such route); the first tag GET gets the one 401 and is retried
        # with basic auth; then the workers' own sessions all carry the
        # credentials: 1 probe + 1 retry + 4 tags + 3 x (manifest + blob)
        found = _wait_requests(reg, offset, 12)
        assert [status for _m, _p, status in found].count(401) == 1, found
        probe = f"/v2/priv/app/referrers/{subjects[0]}"
        assert [st for _m, p, st in found if p.split("?")[0] == probe] == [404]
        tag = f"/v2/priv/app/manifests/{referrers_tag(subjects[0])}"
        assert sorted(st for _m, p, st in found if p == tag) == [401, 404]  # the index has none
        assert len(found) == 12, found
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def broken(registry, tmp_path_factory):
    """nfd/broken:1 (3 builds): the index's spec blob corrupted on the
    registry's disk, haswell's spec blob deleted, zen4's spec not YAML,
    generic fine."""
    pushed = oci.build_and_push(
        registry.host, "nfd/broken", "1", BUILDS, layout_dir=tmp_path_factory.mktemp("broken")
    )
    host, repo = registry.host, "nfd/broken"
    corrupt = b"version: v1alpha1\ncompatibilities: []\n# only nfd/broken uses this blob\n"
    oci.push_artifact(
        host, repo, oci.subject_descriptor(pushed), corrupt, created="2025-01-01T00:00:00Z"
    )
    digest = oci.sha256_digest(corrupt)
    hexpart = digest.removeprefix("sha256:")
    data = registry.storage_dir / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"
    data.write_bytes(corrupt.replace(b"version", b"VERSION"))  # same length, other bytes

    gone = b"version: v1alpha1\ncompatibilities: []\n# deleted from nfd/broken\n"
    oci.push_artifact(host, repo, oci.subject_descriptor(pushed, "haswell"), gone)
    req = urllib.request.Request(
        f"{registry.url}/v2/{repo}/blobs/{oci.sha256_digest(gone)}", method="DELETE"
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 202

    oci.push_artifact(host, repo, oci.subject_descriptor(pushed, "zen4"), b"version: [v1alpha1\n")
    oci.push_artifact(host, repo, oci.subject_descriptor(pushed, "generic"), SPEC_ZEN4)
    return pushed


def test_corrupted_spec_blob_is_refused_naming_the_subject(registry, broken):
    client = RegistryClient(registry.host, insecure=True)
    subjects = [broken.manifests["generic"], broken.index_digest]
    with pytest.raises(DigestMismatch) as info:
        fetch_nfd_specs(client, "nfd/broken", subjects)
    message = str(info.value)
    assert message.startswith(f"NFD artifact of {registry.host}/nfd/broken@{broken.index_digest}: ")
    assert "not the digest asked for" in message
    assert "\n" not in message


def test_deleted_spec_blob_is_an_error_naming_the_subject(registry, broken):
    subject = broken.manifests["haswell"]
    with pytest.raises(RegistryError, match=rf"@{subject}: .*not found \(HTTP 404\)$"):
        fetch_nfd_specs(RegistryClient(registry.host, insecure=True), "nfd/broken", [subject])


def test_spec_that_is_not_yaml_is_an_error_naming_the_subject(registry, broken):
    subject = broken.manifests["zen4"]
    with pytest.raises(
        RegistryError,
        match=rf"@{subject}: artifact sha256:\w+: spec layer is not valid YAML: .* at line 2",
    ):
        fetch_nfd_specs(RegistryClient(registry.host, insecure=True), "nfd/broken", [subject])


def test_get_blob_is_verified_and_capped(registry, attached):
    client = RegistryClient(registry.host, insecure=True)
    digest = oci.sha256_digest(SPEC_NEW)
    assert client.get_blob("nfd/app", digest) == SPEC_NEW
    with pytest.raises(RegistryError, match="blob larger than 16 bytes"):
        client.get_blob("nfd/app", digest, max_bytes=16)
    with pytest.raises(RegistryError, match=r"not found \(HTTP 404\)$"):
        client.get_blob("nfd/app", "sha256:" + "0" * 64)
    with pytest.raises(RegistryError, match="not a sha256/sha512 digest"):
        client.get_blob("nfd/app", "sha256:../../etc")


# -- a loopback registry with the referrers API -------------------------------------


class FakeRegistry:
    """Just enough of a registry: manifests and blobs by digest, tags, and the
    referrers API in several flavours (``mode``)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[str, bytes]] = {}
        self.tags: dict[str, str] = {}
        self.referrers: dict[str, list[dict]] = {}
        self.mode = "filtered"  # filtered | unfiltered | name-unknown | bad-request | offsite
        self.page_size = 0  # 0: one page
        self.blob_delay = 0.0  # seconds to stall before answering a blob GET
        self.log: list[str] = []

    def blob(self, data: bytes) -> dict:
        digest = oci.sha256_digest(data)
        self.blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    def attach(
        self,
        subject: str,
        spec: bytes,
        *,
        created=None,
        media_type=NFD_SPEC_YAML,
        artifact_type=NFD_ARTIFACT_TYPE,
        manifest_subject=None,
    ) -> str:
        manifest = {
            "schemaVersion": 2,
            "mediaType": oci.MEDIA_TYPE_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": oci.MEDIA_TYPE_EMPTY, **self.blob(b"{}")},
            "layers": [{"mediaType": media_type, **self.blob(spec)}],
            "subject": {
                "mediaType": oci.MEDIA_TYPE_MANIFEST,
                "digest": manifest_subject or subject,
                "size": 1,
            },
        }
        if created:
            manifest["annotations"] = {"org.opencontainers.image.created": created}
        body = oci.canonical_json(manifest)
        digest = oci.sha256_digest(body)
        self.manifests[digest] = (oci.MEDIA_TYPE_MANIFEST, body)
        self.referrers.setdefault(subject, []).append(
            {
                "mediaType": oci.MEDIA_TYPE_MANIFEST,
                "digest": digest,
                "size": len(body),
                "artifactType": artifact_type,
                "annotations": manifest.get("annotations", {}),
            }
        )
        return digest

    def kinds(self) -> dict[str, int]:
        return _kinds([("GET", p, 200) for p in self.log])


def _handler(fake: FakeRegistry):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            fake.log.append(self.path)
            parts = urlsplit(self.path)
            segments = parts.path.split("/")
            if "referrers" in segments:
                return self.referrers(segments[-1], parse_qs(parts.query))
            if "manifests" in segments:
                ref = segments[-1]
                ref = fake.tags.get(ref, ref)
                if ref not in fake.manifests:
                    return self.send(
                        404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', "application/json"
                    )
                media_type, body = fake.manifests[ref]
                return self.send(200, body, media_type, {"Docker-Content-Digest": ref})
            if "blobs" in segments and fake.blob_delay:
                time.sleep(fake.blob_delay)
            if "blobs" in segments and segments[-1] in fake.blobs:
                return self.send(200, fake.blobs[segments[-1]], "application/octet-stream")
            return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}', "application/json")

        def referrers(self, subject, query):
            if fake.mode == "name-unknown":
                return self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}', "application/json")
            if fake.mode == "bad-request":
                return self.send(400, b'{"errors":[{"code":"DIGEST_INVALID"}]}', "application/json")
            items = list(fake.referrers.get(subject, []))
            headers = {}
            wanted = query.get("artifactType", [None])[0]
            if fake.mode == "filtered" and wanted:
                items = [d for d in items if d["artifactType"] == wanted]
                headers["OCI-Filters-Applied"] = "artifactType"
            start = int(query.get("page", ["0"])[0])
            if fake.page_size:
                if start + fake.page_size < len(items):
                    host = (
                        "elsewhere.example:5000" if fake.mode == "offsite" else self.headers["Host"]
                    )
                    nxt = f"http://{host}/v2/r/referrers/{subject}?page={start + fake.page_size}"
                    headers["Link"] = f'<{nxt}>; rel="next"'
                items = items[start : start + fake.page_size]
            body = oci.canonical_json(
                {"schemaVersion": 2, "mediaType": oci.MEDIA_TYPE_INDEX, "manifests": items}
            )
            return self.send(200, body, oci.MEDIA_TYPE_INDEX, headers)

        def send(self, status, body, content_type, headers=None):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def fake():
    registry = FakeRegistry()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(registry))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", registry
    finally:
        server.shutdown()
        server.server_close()


SUBJECT_A = "sha256:" + "a" * 64
SUBJECT_B = "sha256:" + "b" * 64


@pytest.mark.parametrize("mode", ["filtered", "unfiltered"])
def test_referrers_api_is_used_when_the_registry_has_it(fake, mode):
    host, reg = fake
    reg.mode = mode
    old = reg.attach(SUBJECT_A, SPEC_OLD, created="2025-01-01T00:00:00Z")
    new = reg.attach(SUBJECT_A, SPEC_NEW, created="2025-01-01T00:00:00.000000001Z")  # 1 ns later
    reg.attach(SUBJECT_A, b"sbom", created="2031-01-01T00:00:00Z", artifact_type=SBOM_TYPE)
    only_b = reg.attach(SUBJECT_B, SPEC_ZEN4)
    client = RegistryClient(host, insecure=True)
    specs = fetch_nfd_specs(client, "r", [SUBJECT_A, SUBJECT_B])
    assert [s.digest for s in specs[SUBJECT_A]] == [new]
    assert specs[SUBJECT_A][0].document == decode_spec(SPEC_NEW, NFD_SPEC_YAML)
    assert [s.digest for s in specs[SUBJECT_B]] == [only_b]
    assert client.referrers_api is True
    assert reg.kinds() == {"referrers": 2, "manifest": 2, "blob": 2}  # no tag fallback
    listed = client.referrers("r", SUBJECT_A, NFD_ARTIFACT_TYPE)
    assert [d["digest"] for d in listed] == [old, new]  # the sbom is filtered out either way


def test_referrers_api_pages_are_followed(fake):
    host, reg = fake
    reg.mode, reg.page_size = "unfiltered", 1
    digests = [
        reg.attach(SUBJECT_A, SPEC_OLD, created=f"2025-01-0{i}T00:00:00Z") for i in (1, 3, 2)
    ]
    client = RegistryClient(host, insecure=True)
    assert [d["digest"] for d in client.referrers("r", SUBJECT_A, NFD_ARTIFACT_TYPE)] == digests
    assert reg.kinds() == {"referrers": 3}
    assert newest(client.referrers("r", SUBJECT_A, NFD_ARTIFACT_TYPE))["digest"] == digests[1]


def test_referrers_api_page_on_another_host_is_refused(fake):
    host, reg = fake
    reg.mode, reg.page_size = "offsite", 1
    reg.attach(SUBJECT_A, SPEC_OLD)
    reg.attach(SUBJECT_A, SPEC_NEW)
    with pytest.raises(RegistryError, match="next page is on another host"):
        RegistryClient(host, insecure=True).referrers("r", SUBJECT_A, NFD_ARTIFACT_TYPE)


def test_unknown_repository_404_falls_back_without_concluding_there_is_no_api(fake):
    host, reg = fake
    reg.mode = "name-unknown"
    client = RegistryClient(host, insecure=True)
    assert client.referrers("r", SUBJECT_A, NFD_ARTIFACT_TYPE) == []
    assert client.referrers("r", SUBJECT_B, NFD_ARTIFACT_TYPE) == []
    assert client.referrers_api is None
    assert reg.kinds() == {"referrers": 2, "tag": 2}


def test_bad_request_is_an_error_not_a_fallback(fake):
    host, reg = fake
    reg.mode = "bad-request"
    with pytest.raises(
        RegistryError, match=r"referrers API\): registry refused the request \(HTTP 400\)"
    ):
        fetch_nfd_specs(RegistryClient(host, insecure=True), "r", [SUBJECT_A])
    assert reg.kinds() == {"referrers": 1}


def test_fallback_tag_that_is_not_an_index_means_no_referrers(fake):
    host, reg = fake
    reg.mode = "name-unknown"
    body = oci.canonical_json(
        {"schemaVersion": 2, "mediaType": oci.MEDIA_TYPE_MANIFEST, "layers": []}
    )
    reg.manifests[oci.sha256_digest(body)] = (oci.MEDIA_TYPE_MANIFEST, body)
    reg.tags[referrers_tag(SUBJECT_A)] = oci.sha256_digest(body)
    assert RegistryClient(host, insecure=True).referrers("r", SUBJECT_A, NFD_ARTIFACT_TYPE) == []


def test_blob_that_lies_about_its_digest_is_refused(fake):
    host, reg = fake
    reg.attach(SUBJECT_A, SPEC_NEW)
    reg.blobs[oci.sha256_digest(SPEC_NEW)] = SPEC_OLD
    with pytest.raises(
        DigestMismatch, match=rf"^NFD artifact of {host}/r@{SUBJECT_A}: .*not the digest asked for$"
    ):
        fetch_nfd_specs(RegistryClient(host, insecure=True), "r", [SUBJECT_A])


def test_artifact_listed_for_another_subject_is_refused(fake):
    host, reg = fake
    reg.attach(SUBJECT_A, SPEC_NEW, manifest_subject=SUBJECT_B)
    with pytest.raises(RegistryError, match="not the image it is listed for"):
        fetch_nfd_specs(RegistryClient(host, insecure=True), "r", [SUBJECT_A])


def test_listed_artifact_of_another_type_is_refused(fake):
    host, reg = fake
    digest = reg.attach(SUBJECT_A, SPEC_NEW, artifact_type=SBOM_TYPE)
    reg.referrers[SUBJECT_A][0]["artifactType"] = NFD_ARTIFACT_TYPE  # the listing lies
    with pytest.raises(
        RegistryError, match=rf"artifact {digest}: artifactType .* is not {NFD_ARTIFACT_TYPE}"
    ):
        fetch_nfd_specs(RegistryClient(host, insecure=True), "r", [SUBJECT_A])


def test_spec_layer_of_another_media_type_is_refused(fake):
    host, reg = fake
    reg.attach(SUBJECT_A, SPEC_NEW, media_type="text/plain")
    with pytest.raises(RegistryError, match="no layer of type"):
        fetch_nfd_specs(RegistryClient(host, insecure=True), "r", [SUBJECT_A])


def test_many_subjects_in_parallel(fake):
    host, reg = fake
    subjects = ["sha256:" + hashlib.sha256(str(i).encode()).hexdigest() for i in range(20)]
    expected = {
        s: reg.attach(s, b"version: v1alpha1\nn: %d\n" % i) for i, s in enumerate(subjects) if i % 2
    }
    specs = fetch_nfd_specs(RegistryClient(host, insecure=True), "r", subjects, max_workers=8)
    assert {s: [x.digest for x in v] for s, v in specs.items()} == {
        s: [expected[s]] if s in expected else [] for s in subjects
    }
    assert specs[subjects[3]][0].document == {"version": "v1alpha1", "n": 3}


def test_the_client_deadline_bounds_the_whole_fetch(fake):
    host, reg = fake
    subjects = ["sha256:" + hashlib.sha256(str(i).encode()).hexdigest() for i in range(4)]
    for s in subjects:
        reg.attach(s, SPEC_ZEN4)
    reg.blob_delay = 3.0
    start = time.monotonic()
    with pytest.raises(
        RegistryError, match=rf"^NFD artifact of {host}/r@{subjects[0]}: .*timed out after 1 s$"
    ):
        fetch_nfd_specs(RegistryClient(host, insecure=True, timeout=1.0), "r", subjects)
    assert time.monotonic() - start < 2.5


# -- pure helpers ------------------------------------------------------------------


def _desc(digest_char: str, created: str | None) -> dict:
    annotations = {"org.opencontainers.image.created": created} if created is not None else {}
    return {"digest": "sha256:" + digest_char * 64, "annotations": annotations}


def test_newest_by_created_then_lowest_digest():
    assert newest([]) is None
    a, b, c = (
        _desc("a", "2025-01-01T00:00:00Z"),
        _desc("b", "2025-01-01T01:00:00+01:00"),
        _desc("c", None),
    )
    assert newest([c, b, a])["digest"] == a["digest"]  # same instant: lowest digest
    assert newest([c, _desc("d", "not a date")])["digest"] == c["digest"]  # both "oldest"
    assert newest([c, _desc("f", "1999-12-31T23:59:59Z")])["digest"].startswith("sha256:f")
    later = _desc("e", "2025-01-01T00:00:00.000001Z")
    assert newest([a, later, c]) is later


def test_parse_rfc3339():
    assert parse_rfc3339("1970-01-01T00:00:00Z") == 0
    assert parse_rfc3339("1970-01-01t00:00:01.5z") == 1_500_000_000
    assert parse_rfc3339("1970-01-01T01:00:00+01:00") == 0
    assert parse_rfc3339("1970-01-01T00:00:00.1234567891Z") == 123_456_789
    assert parse_rfc3339("2016-12-31T23:59:60Z") == parse_rfc3339("2016-12-31T23:59:59Z")
    for bad in (None, 5, "", "2025-01-01", "2025-13-01T00:00:00Z", "2025-01-01T00:00:00"):
        assert parse_rfc3339(bad) is None


def test_referrers_tag_schema_examples():
    # distribution-spec "Referrers Tag Schema" table
    assert referrers_tag("sha256:" + "a" * 64) == "sha256-" + "a" * 64
    assert referrers_tag("sha512:" + "a" * 128) == "sha512-" + "a" * 64
    odd = ("test+algorithm+using+algorithm+separators+and+lots+of+characters+to+excercise+overall+truncation:"
           "alsoSome=InTheEncodedSectionToShowHyphenReplacementAndLotsAndLotsOfCharactersToExcerciseEncodedTruncation")  # fmt: skip
    assert referrers_tag(odd) == (
        "test-algorithm-using-algorithm-s-alsoSome-InTheEncodedSectionToShowHyphenReplacementAndLotsAndLot"
    )


def test_decode_spec():
    assert decode_spec(b'{"version": "v1alpha1"}', NFD_SPEC_JSON) == {"version": "v1alpha1"}
    # JSON is YAML too; timestamps stay strings (JSON-shaped, as NFD's decoder leaves them)
    assert decode_spec(b'{"a": 1}', NFD_SPEC_YAML) == {"a": 1}
    assert decode_spec(b"d: 2025-01-01\n", NFD_SPEC_YAML) == {"d": "2025-01-01"}
    with pytest.raises(RegistryError, match="not a mapping"):
        decode_spec(b"- a\n", NFD_SPEC_YAML)
    with pytest.raises(RegistryError, match="not valid JSON"):
        decode_spec(b"version: v1", NFD_SPEC_JSON)
    with pytest.raises(RegistryError, match="not valid YAML"):
        decode_spec(b"!!python/object:os.system {}\n", NFD_SPEC_YAML)  # safe loader only
    with pytest.raises(RegistryError, match="not valid YAML"):
        decode_spec(b"a: 1\n---\nb: 2\n", NFD_SPEC_YAML)
    bomb = b"a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(
        b"a%d: &a%d [%s]\n" % (i, i, b", ".join([b"*a%d" % (i - 1)] * 10)) for i in range(1, 9)
    )
    with pytest.raises(RegistryError, match="more than 200000 nodes"):
        decode_spec(bomb, NFD_SPEC_YAML)
