"""Rally's images and flavors contexts (validation, the flavors' per-job names), the image
source (a real download from 127.0.0.1 into the cache), the Dummy scenarios run by the
agent, and which rally-openstack samples the task loader takes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import femdc_bench.workload.scenarios  # noqa: F401  (registers)
from femdc_bench.workload import agent, image_source
from femdc_bench.workload.registry import REGISTRY
from femdc_bench.workload.scenarios.nova import _from_context
from femdc_bench.workload.task_contexts import ContextError, make_flavors, validate

URL = "http://download.cirros-cloud.net/0.5.2/cirros-0.5.2-x86_64-disk.img"


# --------------------------------------------------------------------------- images context


def test_images_context_as_rally_with_its_deprecated_spellings() -> None:
    got = validate({"users": {}, "images": {"image_url": URL, "image_type": "qcow2",
                                            "image_container": "bare",
                                            "image_args": {"is_public": True, "min_ram": 64},
                                            "images_per_tenant": 4}})["images"]
    assert got == {"image_url": URL, "disk_format": "qcow2", "container_format": "bare",
                   "visibility": "public", "images_per_tenant": 4, "min_ram": 64,
                   "min_disk": 0}
    one = validate({"users": {}, "images": {"image_url": "/srv/x.img", "disk_format": "raw",
                                            "container_format": "bare",
                                            "image_name": "img"}})["images"]
    assert one["image_name"] == "img" and one["visibility"] == "private"


@pytest.mark.parametrize(("images", "path"), [
    ({"disk_format": "raw", "container_format": "bare"}, "images.image_url"),
    ({"image_url": "relative.img", "disk_format": "raw", "container_format": "bare"},
     "images.image_url"),
    ({"image_url": URL, "container_format": "bare"}, "images.disk_format"),
    ({"image_url": URL, "disk_format": "raw"}, "images.container_format"),
    ({"image_url": URL, "disk_format": "vhdx2", "container_format": "bare"},
     "images.disk_format"),
    ({"image_url": URL, "image_type": "zip", "container_format": "bare"}, "images.image_type"),
    ({"image_url": URL, "disk_format": "raw", "container_format": "bare",
      "images_per_tenant": 0}, "images.images_per_tenant"),
    ({"image_url": URL, "disk_format": "raw", "container_format": "bare",
      "image_args": {"protected": True}}, "images.image_args.protected"),
    ({"image_url": URL, "disk_format": "raw", "container_format": "bare", "owner": "x"},
     "images.owner"),
])
def test_bad_images_context(images: dict, path: str) -> None:
    with pytest.raises(ContextError) as e:
        validate({"users": {}, "images": images})
    assert e.value.path == path


def test_images_needs_users() -> None:
    with pytest.raises(ContextError) as e:
        validate({"images": {"image_url": URL, "disk_format": "raw",
                             "container_format": "bare"}})
    assert e.value.path == "images"


# --------------------------------------------------------------------------- flavors context


def test_flavors_context_defaults_as_rally_and_no_users_needed() -> None:
    assert validate({"flavors": [{"name": "ram64", "ram": 64}]})["flavors"] == [
        {"name": "ram64", "ram": 64, "vcpus": 1, "disk": 0, "swap": 0, "ephemeral": 0,
         "extra_specs": {}}]


@pytest.mark.parametrize(("flavors", "path"), [
    ([], "flavors"),
    ([{"ram": 64}], "flavors[0].name"),
    ([{"name": "a"}], "flavors[0].ram"),
    ([{"name": "a", "ram": 0}], "flavors[0].ram"),
    ([{"name": "a", "ram": 64}, {"name": "a", "ram": 32}], "flavors[1].name"),
    ([{"name": "a", "ram": 64, "extra_specs": {"hw:cpu": 2}}], "flavors[0].extra_specs"),
    ([{"name": "a", "ram": 64, "rxtx": 1}], "flavors[0].rxtx"),
])
def test_bad_flavors_context(flavors: Any, path: str) -> None:
    with pytest.raises(ContextError) as e:
        validate({"flavors": flavors})
    assert e.value.path == path


class _Compute:
    def __init__(self) -> None:
        self.log: list[tuple[str, dict]] = []

    def post(self, path: str, json: dict) -> object:
        self.log.append((path, json))
        body = {"flavor": {"id": f"f{len(self.log)}"}}
        return type("R", (), {"json": lambda _self: body})()


class _FlavorJob:
    name_prefix = "femdc-r1-edge1-"

    def __init__(self) -> None:
        self.api = _Compute()
        self.tracked: list[tuple[str, str, str]] = []
        self.context_names: dict[str, dict[str, str]] = {"image": {}, "flavor": {}}

    def admin(self, service: str) -> _Compute:
        assert service == "compute"
        return self.api

    def track(self, collection: str, rid: str, service: str) -> None:
        self.tracked.append((service, collection, rid))


def test_each_job_makes_its_own_flavors_found_by_their_given_names() -> None:
    job = _FlavorJob()
    flavors = validate({"flavors": [{"name": "ram64", "ram": 64, "extra_specs":
                                     {"hw:mem_page_size": "small"}}, {"name": "big", "ram": 512,
                                                                      "vcpus": 2}]})["flavors"]
    make_flavors(job, flavors)
    made = [b["flavor"] for p, b in job.api.log if p == "/flavors"]
    # another site's job makes its own: Nova's names are global
    assert [f["name"] for f in made] == ["femdc-r1-edge1-ram64", "femdc-r1-edge1-big"]
    assert made[1]["vcpus"] == 2 and made[0]["OS-FLV-EXT-DATA:ephemeral"] == 0
    assert ("/flavors/f1/os-extra-specs", {"extra_specs": {"hw:mem_page_size": "small"}}) \
        in job.api.log
    assert job.tracked == [("compute", "/flavors", "f1"), ("compute", "/flavors", "f3")]
    # a scenario's flavor: ram64 / {name: ram64} / {regex: ^big$} finds this job's flavor
    assert _from_context(job, "flavor", "ram64") == "f1"  # type: ignore[arg-type]
    assert _from_context(job, "flavor", {"name": "ram64"}) == "f1"  # type: ignore[arg-type]
    assert _from_context(job, "flavor", {"regex": "^big$"}) == "f3"  # type: ignore[arg-type]
    assert _from_context(job, "flavor", "m1.tiny") is None  # type: ignore[arg-type]
    assert _from_context(job, "flavor", {"id": "f1"}) is None  # type: ignore[arg-type]


# --------------------------------------------------------------------------- image source


class _Images(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        _Images.hits += 1
        if self.path != "/images/cirros.img":
            self.send_error(404)
            return
        body = b"QFI\xfb" + bytes(5000)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def image_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("FEMDC_IMAGE_CACHE", str(tmp_path / "cache"))
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _Images.hits = 0
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_url_is_fetched_once_into_the_cache(image_server: str, tmp_path: Path) -> None:
    url = f"{image_server}/images/cirros.img"
    path = image_source.local_file(url)
    assert path == image_source.cache_path(url) and path.name == "cirros.img"
    assert path.is_relative_to(tmp_path / "cache")
    assert image_source.local_file(url) == path and _Images.hits == 1
    data = image_source.FileData(path)
    assert len(data) == 5004 and b"".join(data) == b"QFI\xfb" + bytes(5000)
    assert b"".join(data) == b"".join(data)  # every upload reads it anew
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]


def test_a_missing_url_or_file_is_one_clear_error(image_server: str, tmp_path: Path) -> None:
    with pytest.raises(image_source.ImageSourceError, match="404"):
        image_source.local_file(f"{image_server}/images/gone.img")
    assert not image_source.cache_path(f"{image_server}/images/gone.img").exists()
    with pytest.raises(image_source.ImageSourceError, match="no such file"):
        image_source.local_file(str(tmp_path / "nope.img"))
    seeded = tmp_path / "seed.img"
    seeded.write_bytes(b"x")
    assert image_source.local_file(f"file://{seeded}") == seeded


@pytest.mark.parametrize("value", ["cirros.img", "ftp://x/y", "", 3])
def test_bad_locations(value: Any) -> None:
    with pytest.raises(ValueError, match="image_location"):
        REGISTRY.get("GlanceImages.create_and_delete_image").resolve_args(
            {"image_location": value})


def test_glance_args_as_rally() -> None:
    sc = REGISTRY.get("GlanceImages.create_and_delete_image")
    args = sc.resolve_args({"image_location": URL, "disk_format": "qcow2",
                            "container_format": "bare", "properties": {"os_distro": "x"}})
    assert args["visibility"] == "private" and args["min_ram"] == 0
    for bad, msg in (({"disk_format": "zip"}, "disk_format"),
                     ({"visibility": "everyone"}, "visibility"),
                     ({"min_disk": -1}, "min_disk"),
                     ({"properties": {"owner": "x"}}, "owner")):
        with pytest.raises(ValueError, match=msg):
            sc.resolve_args(bad)


# ------------------------------------------------------------------- Dummy, run by the agent


def _run(tmp_path: Path, scenario: str, args: dict[str, Any], times: int
         ) -> tuple[int, list[dict[str, Any]]]:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"site": "s1", "host": "h", "jobs": [{
        "scenario": scenario, "args": args,
        "runner": {"type": "times", "times": times, "concurrency": 2},
        "target_site": "s1",
        "auth": {"auth_url": "http://127.0.0.1:9/v3", "username": "admin",
                 "password": "x", "project_name": "admin"},
        "name_prefix": "femdc-t-"}]}))
    out = tmp_path / "out.jsonl"
    code = agent.main(["--spec", str(spec), "--out", str(out)])
    return code, [json.loads(line) for line in out.read_text().splitlines() if line]


def test_dummy_times_foo_and_bar_and_takes_any_arg(tmp_path: Path) -> None:
    code, rows = _run(tmp_path, "Dummy.dummy", {"sleep": 0.01, "whatever": [1]}, 4)
    assert code == 0
    its = [r for r in rows if not r.get("action")]
    assert len(its) == 4 and all(r["status"] == "ok" and r["duration_ms"] >= 10 for r in its)
    assert sorted(r["action"] for r in rows if r.get("action")) == ["bar"] * 4 + ["foo"] * 4


def test_dummy_failure_fails_rallys_iterations(tmp_path: Path) -> None:
    _, rows = _run(tmp_path, "Dummy.failure",
                   {"sleep": 0, "from_iteration": 2, "to_iteration": 6, "each": 2}, 8)
    failed = sorted(r["iteration"] + 1 for r in rows if r["status"] == "error")
    assert failed == [2, 4, 6]  # Rally counts iterations from 1
    assert all("Dummy scenario expected exception: 'Expected failure'" in r["error"]
               for r in rows if r["status"] == "error")


def test_dummy_timed_atomic_actions(tmp_path: Path) -> None:
    _, rows = _run(tmp_path, "Dummy.dummy_timed_atomic_actions",
                   {"number_of_actions": 3, "sleep_factor": 0.01}, 1)
    acts = {r["action"]: r["duration_ms"] for r in rows if r.get("action")}
    assert list(acts) == ["action_0", "action_1", "action_2"]
    assert acts["action_2"] >= 20 > acts["action_0"]


@pytest.mark.parametrize(("name", "args", "msg"), [
    ("Dummy.dummy", {"sleep": -1}, "sleep"),
    ("Dummy.dummy_exception_probability", {"exception_probability": 2}, "in \\[0, 1\\]"),
    ("Dummy.dummy_random_action", {"sleep_min": 2, "sleep_max": 1}, "sleep_max"),
    ("Dummy.failure", {"each": 1.5}, "each"),
    ("Authenticate.validate_nova", {}, "repetitions"),
    ("NovaFlavors.create_and_delete_flavor", {"ram": 64, "vcpus": 1}, "disk"),
    ("GlanceImages.create_and_update_image", {"create_min_disk": -1}, "create_min_disk"),
    ("GlanceImages.create_and_update_image", {"remove_props": "a"}, "remove_props"),
    ("GlanceImages.create_and_update_image", {"min_ram": -2}, "min_ram"),
    ("GlanceImages.create_and_deactivate_image", {"disk_format": "zip"}, "disk_format"),
    ("GlanceImages.create_and_get_image", {"image_location": "x.img"}, "image_location"),
    ("KeystoneBasic.create_and_list_services", {"service_type": 3}, "service_type"),
    ("KeystoneBasic.create_and_delete_service", {"colour": "red"}, "colour"),
])
def test_bad_args(name: str, args: dict[str, Any], msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        REGISTRY.get(name).resolve_args(args)


def test_api_versions_context_checks_ours() -> None:
    assert validate({"api_versions": {"glance": {"version": 2}, "nova": {"version": 2.1}}}) == {}
    for cfg, path in (({"glance": {"version": 1}}, "api_versions.glance.version"),
                      ({"cinder": {"version": 3}}, "api_versions.cinder"),
                      ({"glance": {"service_type": "image"}},
                       "api_versions.glance.service_type"),
                      ([], "api_versions")):
        with pytest.raises(ContextError) as e:
            validate({"api_versions": cfg})
        assert e.value.path == path, e.value
