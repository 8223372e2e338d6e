"""Glance's images, as the images context and the Glance and Nova scenarios use them:
the data an upload sends, create (with its upload, until active)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from femdc_bench.workload import image_source
from femdc_bench.workload.errors import SetupError, wait_for
from femdc_bench.workload.services import RepeatedBytes

if TYPE_CHECKING:
    from femdc_bench.workload.context import Ctx

SERVICE = "image"
BLOCK_BYTES = 64 * 1024


def image_size_bytes(args: dict[str, Any]) -> int:
    size = int(round(float(args["image_size_mb"]) * 1e6))
    if size <= 0:
        raise SetupError("image_size_mb must be > 0")
    return size


ImageData = RepeatedBytes | image_source.FileData


def image_data(location: str | None, size_mb: float = 1.0) -> ImageData:
    """What an upload sends: the file at `location` (a URL: fetched once into the image
    cache, see image_source), else `size_mb` of one random block repeated."""
    if location is not None:
        try:
            return image_source.FileData(image_source.local_file(location))
        except image_source.ImageSourceError as e:
            raise SetupError(str(e)) from None
    return RepeatedBytes(os.urandom(BLOCK_BYTES), image_size_bytes({"image_size_mb": size_mb}))


def wait_active(ctx: Ctx, image_id: str, *, poll_s: float, timeout_s: float) -> dict[str, Any]:
    def failed(img: dict[str, Any]) -> str | None:
        status = img.get("status")
        return f"status {status}" if status in ("killed", "deleted", "pending_delete") else None

    image: dict[str, Any] = wait_for(
        lambda: ctx.api("image").get(f"/images/{image_id}").json(),
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
    data: ImageData,
    *,
    disk_format: str,
    container_format: str,
    poll_s: float,
    timeout_s: float,
    visibility: str = "private",
    min_disk: int = 0,
    min_ram: int = 0,
    properties: dict[str, Any] | None = None,
    name: str | None = None,
) -> str:
    """glance.create_image with glance.upload_data inside; the image is tracked."""
    with ctx.atomic("glance.create_image"):
        body = {
            **(properties or {}),
            "name": name or ctx.new_name(),
            "disk_format": disk_format,
            "container_format": container_format,
            "visibility": visibility,
            "min_disk": min_disk,
            "min_ram": min_ram,
        }
        image_id = str(ctx.api("image").post("/images", json=body).json()["id"])
        ctx.track("/images", image_id, SERVICE)
        with ctx.atomic("glance.upload_data"):
            ctx.api("image").put(
                f"/images/{image_id}/file",
                data=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            ctx.record_bytes(len(data))
        wait_active(ctx, image_id, poll_s=poll_s, timeout_s=timeout_s)
    return image_id
