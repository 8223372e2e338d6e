"""Glance (image v2) scenarios, with Rally's names: raw REST through keystoneauth1 Adapters.

Paths are relative to the image v2 endpoint (".../v2"). `N` is the number of status
polls, at least one (an image is usually active when its upload returns).

=================================== ============================================== ========
name                                one iteration                                  requests
=================================== ============================================== ========
GlanceImages.create_and_delete_image create_image (below), then glance.delete_image: 3 + N + 1
                                    DELETE /images/{id}, GET /images/{id} until 404
GlanceImages.create_and_list_image  create_image, then glance.list_images:         2 + N + 1
                                    GET /images?status=active&limit=1000 (and its
                                    next pages); the new image must be listed
GlanceImages.create_and_download_image create_image, then glance.download_image:  2 + N + 1
                                    GET /images/{id}/file, streamed; size checked;
                                    records mb_per_s (images deleted at teardown)
GlanceImages.list_images            glance.list_images: GET /images?limit=1000 (and 1+
                                    its next pages): e.g. the images context's images
GlanceImages.create_and_get_image   create_image, then glance.get_image:           2 + N + 1
                                    GET /images/{id}
GlanceImages.create_and_update_image create_image (min_disk/min_ram from          2 + N + 1
                                    create_min_disk/create_min_ram), then
                                    glance.update_image: PATCH /images/{id} (JSON
                                    patch: new name, min_disk, min_ram, remove_props)
GlanceImages.create_and_deactivate_image create_image, then                       2 + N + 2
                                    glance.deactivate_image: POST
                                    /images/{id}/actions/deactivate (admin), then
                                    the status must be "deactivated"
=================================== ============================================== ========

glance.create_image (Rally's create_image includes the upload): POST /images, then
glance.upload_data (its own atomic action, nested: PUT /images/{id}/file with
`image_size_mb` x 10^6 bytes, Content-Length set; records bytes and mb_per_s), then
GET /images/{id} until active (killed or deleted: failure).

Args: ``image_location`` (Rally's: a path or URL whose bytes each upload sends; a URL is
fetched once per load host into the image cache, untimed: see image_source), else
``image_size_mb`` (1: MB = 10^6 bytes) of random data: 64 KiB of os.urandom made once per
job, repeated (the bytes really go up, at no CPU cost); ``disk_format`` ("raw"),
``container_format`` ("bare"), ``visibility`` ("private"), ``min_disk``, ``min_ram`` (0),
``properties`` (free-form image properties), ``poll_interval`` (0.5 s), ``timeout``
(120 s, for each wait). Images are named with the job's prefix and deleted at teardown if
an iteration left them.

Differences from Rally: no wait for "queued" before the upload and no pre-poll sleep
(Rally sleeps glance_image_create_prepoll_delay, 2 s by default); the list asks pages of
1000 images (glanceclient: 20); an ``image_location`` URL is fetched once, not per
iteration (Rally downloads it in every upload: that times the download site).
"""

from __future__ import annotations

from typing import Any

from femdc_bench.workload import image_source
from femdc_bench.workload.context import Ctx, JobContext, SetupError, WorkerContext, wait_for
from femdc_bench.workload.registry import scenario
from femdc_bench.workload.scenarios.common import (
    WAIT_ARGS,
    ScenarioFailed,
    pages,
    teardown_tracked,
    wait_args,
)
from femdc_bench.workload.services.image import (  # noqa: F401  (shared: services/image.py)
    SERVICE,
    ImageData,
    create_image,
    image_data,
    image_size_bytes,
    wait_active,
)

CHUNK_BYTES = 64 * 1024
LIST_LIMIT = 1000  # Glance's default api_limit_max
IMAGE_ARGS: dict[str, Any] = {
    "image_size_mb": 1.0,
    "image_location": None,
    "disk_format": "raw",
    "container_format": "bare",
    "visibility": "private",
    "min_disk": 0,
    "min_ram": 0,
    "properties": None,
    **WAIT_ARGS,
}
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso",
                "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "shared", "community")
#: image properties that are not free-form (set by their own args or by Glance)
RESERVED_PROPERTIES = frozenset({"id", "name", "status", "visibility", "disk_format",
                                 "container_format", "min_disk", "min_ram", "owner",
                                 "size", "checksum", "created_at", "updated_at", "file",
                                 "locations", "self", "schema", "protected"})


def check_image_args(args: dict[str, Any]) -> None:
    """Formats and visibility among Glance's, sizes >= 0, a location Rally would take."""
    for key, allowed in (("disk_format", DISK_FORMATS),
                         ("container_format", CONTAINER_FORMATS),
                         ("visibility", VISIBILITIES)):
        if args[key] not in allowed:
            raise ValueError(f"arg {key!r}: expected one of {', '.join(allowed)}, "
                             f"got {args[key]!r}")
    for key in ("min_disk", "min_ram"):
        v = args[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"arg {key!r}: expected an integer >= 0, got {v!r}")
    if args["image_location"] is not None:
        image_source.check_location(args["image_location"])
    props = args["properties"]
    if props is not None:
        if not isinstance(props, dict) or not all(isinstance(k, str) for k in props):
            raise ValueError("arg 'properties': expected a mapping of names to values")
        bad = sorted(set(props) & RESERVED_PROPERTIES)
        if bad:
            raise ValueError(f"arg 'properties': {bad[0]!r} is not a free-form property")


# --------------------------------------------------------------------------- helpers


def setup_data(job: JobContext) -> None:
    """The data an upload sends (job.shared["data"]): `image_location`'s bytes, else
    `image_size_mb` of random data."""
    try:
        wait_args(job.args)
    except ValueError as e:
        raise SetupError(str(e)) from None
    job.shared["data"] = image_data(job.args["image_location"], job.args["image_size_mb"])


def _create(ctx: Ctx) -> str:
    poll, timeout = wait_args(ctx.args)
    a = ctx.args
    return create_image(
        ctx,
        ctx.shared["data"],
        disk_format=a["disk_format"],
        container_format=a["container_format"],
        poll_s=poll,
        timeout_s=timeout,
        visibility=a["visibility"],
        min_disk=a["min_disk"],
        min_ram=a["min_ram"],
        properties=a["properties"],
    )


def delete_image(ctx: Ctx, image_id: str, *, poll_s: float, timeout_s: float) -> None:
    """glance.delete_image: DELETE, then GET until 404 (Rally checks the deletion)."""
    with ctx.atomic("glance.delete_image"):
        ctx.api("image").delete(f"/images/{image_id}")
        wait_for(
            lambda: ctx.api("image").get(f"/images/{image_id}", raise_exc=False),
            lambda r: r.status_code == 404,
            failed=lambda r: f"HTTP {r.status_code}" if r.status_code != 200 else None,
            what=f"image {image_id} deletion",
            timeout_s=timeout_s,
            poll_s=poll_s,
            delay_first=False,
        )
    ctx.untrack("/images", image_id, SERVICE)


# --------------------------------------------------------------------------- scenarios


@scenario(
    "GlanceImages.create_and_delete_image",
    service=SERVICE,
    setup=setup_data,
    teardown=teardown_tracked,
    args=IMAGE_ARGS,
    qualified=True,
    check=check_image_args,
)
def create_and_delete_image(ctx: WorkerContext) -> None:
    """Create an image (upload included), then delete it."""
    image_id = _create(ctx)
    poll, timeout = wait_args(ctx.args)
    delete_image(ctx, image_id, poll_s=poll, timeout_s=timeout)


@scenario(
    "GlanceImages.create_and_list_image",
    service=SERVICE,
    setup=setup_data,
    teardown=teardown_tracked,
    args=IMAGE_ARGS,
    qualified=True,
    check=check_image_args,
)
def create_and_list_image(ctx: WorkerContext) -> None:
    """Create an image, then list the active images; the new one must be there."""
    image_id = _create(ctx)
    with ctx.atomic("glance.list_images"):
        images = pages(
            ctx.api("image"),
            "/images",
            "images",
            {"status": "active", "limit": LIST_LIMIT},
            strip_prefix="/v2",
        )
    if not any(i.get("id") == image_id for i in images):
        raise ScenarioFailed(f"image {image_id} not in the list of {len(images)} images")


def download_image(ctx: Ctx, image_id: str, size: int) -> None:
    """glance.download_image: GET /images/{id}/file, streamed, bytes counted, size checked."""
    with ctx.atomic("glance.download_image"):
        r = ctx.api("image").get(f"/images/{image_id}/file", stream=True)
        try:
            got = 0
            for chunk in r.iter_content(CHUNK_BYTES):
                got += len(chunk)
        finally:
            r.close()
        ctx.record_bytes(got)
        if got != size:
            raise ScenarioFailed(f"image {image_id}: downloaded {got} bytes, expected {size}")


@scenario(
    "GlanceImages.create_and_download_image",
    service=SERVICE,
    setup=setup_data,
    teardown=teardown_tracked,
    args=IMAGE_ARGS,
    qualified=True,
    check=check_image_args,
)
def create_and_download_image(ctx: WorkerContext) -> None:
    """Create an image (upload included), then download it (as Rally: the image stays
    until teardown)."""
    image_id = _create(ctx)
    download_image(ctx, image_id, len(ctx.shared["data"]))


@scenario("GlanceImages.list_images", service=SERVICE, qualified=True)
def list_images(ctx: WorkerContext) -> None:
    """List the images this iteration's user sees (every page)."""
    with ctx.atomic("glance.list_images"):
        pages(ctx.api("image"), "/images", "images", {"limit": LIST_LIMIT}, strip_prefix="/v2")


@scenario(
    "GlanceImages.create_and_get_image",
    service=SERVICE,
    setup=setup_data,
    teardown=teardown_tracked,
    args=IMAGE_ARGS,
    qualified=True,
    check=check_image_args,
)
def create_and_get_image(ctx: WorkerContext) -> None:
    """Create an image, then get it (as Rally: the image stays until teardown)."""
    image_id = _create(ctx)
    with ctx.atomic("glance.get_image"):
        got = ctx.api("image").get(f"/images/{image_id}").json()
    if got.get("id") != image_id:
        raise ScenarioFailed(f"GET /images/{image_id} answered image {got.get('id')!r}")


UPDATE_ARGS = {**IMAGE_ARGS, "create_min_disk": 0, "create_min_ram": 0, "remove_props": None}


def _check_update_args(args: dict[str, Any]) -> None:
    check_image_args(args)
    for key in ("create_min_disk", "create_min_ram"):
        v = args[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"arg {key!r}: expected an integer >= 0, got {v!r}")
    rp = args["remove_props"]
    if rp is not None and (not isinstance(rp, list) or not all(isinstance(p, str) for p in rp)):
        raise ValueError(f"arg 'remove_props': expected a list of property names, got {rp!r}")


@scenario(
    "GlanceImages.create_and_update_image",
    service=SERVICE,
    setup=setup_data,
    teardown=teardown_tracked,
    args=UPDATE_ARGS,
    qualified=True,
    check=_check_update_args,
)
def create_and_update_image(ctx: WorkerContext) -> None:
    """Create an image with create_min_disk/create_min_ram, then glance.update_image: one
    JSON-patch PATCH giving it a new name, min_disk, min_ram and removing remove_props
    (as Rally's update_image)."""
    poll, timeout = wait_args(ctx.args)
    a = ctx.args
    image_id = create_image(
        ctx, ctx.shared["data"], disk_format=a["disk_format"],
        container_format=a["container_format"], poll_s=poll, timeout_s=timeout,
        visibility=a["visibility"], min_disk=a["create_min_disk"],
        min_ram=a["create_min_ram"], properties=a["properties"])
    name = ctx.new_name()
    ops: list[dict[str, Any]] = [
        {"op": "replace", "path": "/name", "value": name},
        {"op": "replace", "path": "/min_disk", "value": a["min_disk"]},
        {"op": "replace", "path": "/min_ram", "value": a["min_ram"]},
    ]
    ops += [{"op": "remove", "path": f"/{p}"} for p in a["remove_props"] or ()]
    with ctx.atomic("glance.update_image"):
        got = ctx.api("image").patch(
            f"/images/{image_id}", json=ops,
            headers={"Content-Type": "application/openstack-images-v2.1-json-patch"}).json()
    if (got.get("name"), got.get("min_disk"), got.get("min_ram")) != (
            name, a["min_disk"], a["min_ram"]):
        raise ScenarioFailed(f"image {image_id} not updated: name {got.get('name')!r}, "
                             f"min_disk {got.get('min_disk')}, min_ram {got.get('min_ram')}")


@scenario(
    "GlanceImages.create_and_deactivate_image",
    service=SERVICE,
    setup=setup_data,
    teardown=teardown_tracked,
    args=IMAGE_ARGS,
    qualified=True,
    check=check_image_args,
)
def create_and_deactivate_image(ctx: WorkerContext) -> None:
    """Create an image, then glance.deactivate_image: POST /images/{id}/actions/deactivate
    as the admin (Glance's default policy) and the image must be "deactivated" (it stays
    until teardown, as in Rally)."""
    image_id = _create(ctx)
    admin = ctx.admin_api(SERVICE)
    with ctx.atomic("glance.deactivate_image"):
        admin.post(f"/images/{image_id}/actions/deactivate")
    status = admin.get(f"/images/{image_id}").json().get("status")
    if status != "deactivated":
        raise ScenarioFailed(f"image {image_id}: status {status!r} after deactivation")
