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
GlanceImages.create_and_download_image glance.download_image: GET                  1
                                    /images/{id}/file of the image setup made,
                                    streamed; size checked; records mb_per_s
=================================== ============================================== ========

glance.create_image (Rally's create_image includes the upload): POST /images, then
glance.upload_data (its own atomic action, nested: PUT /images/{id}/file with
`image_size_mb` x 10^6 bytes, Content-Length set; records bytes and mb_per_s), then
GET /images/{id} until active (killed or deleted: failure).

Args: ``image_size_mb`` (1: MB = 10^6 bytes), ``disk_format`` ("raw"),
``container_format`` ("bare"), ``poll_interval`` (0.5 s), ``timeout`` (120 s, for each
wait). The data is 64 KiB of os.urandom made once per job, repeated: the bytes really go
up, at no CPU cost. Images are private, named with the job's prefix, and deleted at
teardown if an iteration left them.

Differences from Rally: no wait for "queued" before the upload and no pre-poll sleep
(Rally sleeps glance_image_create_prepoll_delay, 2 s by default); the list asks pages of
1000 images (glanceclient: 20).
"""

from __future__ import annotations

import os
from typing import Any

from femdc_bench.workload.context import Ctx, JobContext, SetupError, WorkerContext, wait_for
from femdc_bench.workload.registry import scenario
from femdc_bench.workload.scenarios.common import (
    WAIT_ARGS,
    RepeatedBytes,
    ScenarioFailed,
    pages,
    teardown_tracked,
    wait_args,
)

SERVICE = "image"
BLOCK_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024
LIST_LIMIT = 1000  # Glance's default api_limit_max
IMAGE_ARGS: dict[str, Any] = {
    "image_size_mb": 1.0,
    "disk_format": "raw",
    "container_format": "bare",
    **WAIT_ARGS,
}


# --------------------------------------------------------------------------- helpers


def image_size_bytes(args: dict[str, Any]) -> int:
    size = int(round(float(args["image_size_mb"]) * 1e6))
    if size <= 0:
        raise SetupError("image_size_mb must be > 0")
    return size


def setup_data(job: JobContext) -> None:
    """The data an upload sends: one random block, repeated (job.shared["data"])."""
    try:
        wait_args(job.args)
    except ValueError as e:
        raise SetupError(str(e)) from None
    job.shared["data"] = RepeatedBytes(os.urandom(BLOCK_BYTES), image_size_bytes(job.args))


def wait_active(ctx: Ctx, image_id: str, *, poll_s: float, timeout_s: float) -> dict[str, Any]:
    def failed(img: dict[str, Any]) -> str | None:
        status = img.get("status")
        return f"status {status}" if status in ("killed", "deleted", "pending_delete") else None

    image: dict[str, Any] = wait_for(
        lambda: ctx.image.get(f"/images/{image_id}").json(),
        lambda img: img.get("status") == "active",
        failed=failed,
        what=f"image {image_id}",
        timeout_s=timeout_s,
        poll_s=poll_s,
        delay_first=False,
    )
    return image


def create_image(
    ctx: Ctx,
    data: RepeatedBytes,
    *,
    disk_format: str,
    container_format: str,
    poll_s: float,
    timeout_s: float,
    visibility: str = "private",
) -> str:
    """glance.create_image with glance.upload_data inside; the image is tracked."""
    with ctx.atomic("glance.create_image"):
        body = {
            "name": ctx.new_name(),
            "disk_format": disk_format,
            "container_format": container_format,
            "visibility": visibility,
        }
        image_id = str(ctx.image.post("/images", json=body).json()["id"])
        ctx.track("/images", image_id, SERVICE)
        with ctx.atomic("glance.upload_data"):
            ctx.image.put(
                f"/images/{image_id}/file",
                data=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            ctx.record_bytes(len(data))
        wait_active(ctx, image_id, poll_s=poll_s, timeout_s=timeout_s)
    return image_id


def _create(ctx: WorkerContext) -> str:
    poll, timeout = wait_args(ctx.args)
    return create_image(
        ctx,
        ctx.shared["data"],
        disk_format=ctx.args["disk_format"],
        container_format=ctx.args["container_format"],
        poll_s=poll,
        timeout_s=timeout,
    )


def delete_image(ctx: Ctx, image_id: str, *, poll_s: float, timeout_s: float) -> None:
    """glance.delete_image: DELETE, then GET until 404 (Rally checks the deletion)."""
    with ctx.atomic("glance.delete_image"):
        ctx.image.delete(f"/images/{image_id}")
        wait_for(
            lambda: ctx.image.get(f"/images/{image_id}", raise_exc=False),
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
)
def create_and_list_image(ctx: WorkerContext) -> None:
    """Create an image, then list the active images; the new one must be there."""
    image_id = _create(ctx)
    with ctx.atomic("glance.list_images"):
        images = pages(
            ctx.image,
            "/images",
            "images",
            {"status": "active", "limit": LIST_LIMIT},
            strip_prefix="/v2",
        )
    if not any(i.get("id") == image_id for i in images):
        raise ScenarioFailed(f"image {image_id} not in the list of {len(images)} images")


def setup_download(job: JobContext) -> None:
    """One image of `image_size_mb`, uploaded once, that every iteration downloads."""
    setup_data(job)
    poll, timeout = wait_args(job.args)
    data: RepeatedBytes = job.shared["data"]
    job.shared["image_id"] = create_image(
        job,
        data,
        disk_format=job.args["disk_format"],
        container_format=job.args["container_format"],
        poll_s=poll,
        timeout_s=timeout,
    )
    job.shared["image_size"] = len(data)


@scenario(
    "GlanceImages.create_and_download_image",
    service=SERVICE,
    setup=setup_download,
    teardown=teardown_tracked,
    args=IMAGE_ARGS,
    qualified=True,
)
def create_and_download_image(ctx: WorkerContext) -> None:
    """Download the image setup created (streamed, bytes counted, size checked)."""
    image_id, size = ctx.shared["image_id"], ctx.shared["image_size"]
    with ctx.atomic("glance.download_image"):
        r = ctx.image.get(f"/images/{image_id}/file", stream=True)
        try:
            got = 0
            for chunk in r.iter_content(CHUNK_BYTES):
                got += len(chunk)
        finally:
            r.close()
        ctx.record_bytes(got)
        if got != size:
            raise ScenarioFailed(f"image {image_id}: downloaded {got} bytes, expected {size}")
