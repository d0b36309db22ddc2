"""A real worker on `SOJOURN_STORAGE__BACKEND=s3` stores a job's images in the bucket, none on disk."""

from __future__ import annotations

import io
import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from PIL import Image as PILImage

from db.models import JobStatus
from sojourn.settings import Settings, StorageSettings
from sojourn.storage import thumbnail_key
from sojourn.storage_s3 import S3Storage
from tests.conftest import running_worker, worker_settings
from tests.worker.test_worker import images_of, submit, wait_for

REDIS_DB = 14


@pytest.fixture(scope="module")
def storage_settings(s3_storage_settings: StorageSettings) -> StorageSettings:
    return s3_storage_settings.model_copy(update={"s3_prefix": f"worker-{uuid.uuid4().hex[:8]}"})


@pytest.fixture(scope="module")
def settings(database_url, redis_base_url, tiny_models, tmp_path_factory, storage_settings) -> Settings:  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp("s3-worker-data")
    return worker_settings(
        database_url, redis_base_url, REDIS_DB, data_dir, tiny_models, storage=storage_settings
    )


@pytest.fixture(scope="module")
def worker(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    with running_worker(settings) as process:
        yield process


async def test_a_job_s_images_and_grid_thumbnail_land_in_the_bucket(  # type: ignore[no-untyped-def]
    sessions, settings, storage_settings, worker
) -> None:
    job = await submit(sessions, settings, "a lighthouse in a storm --seed 7 --q .25")
    done = await wait_for(sessions, job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error

    bucket = S3Storage.from_settings(storage_settings)
    images = await images_of(sessions, job.id)
    assert [image.index for image in images] == [0, 1, 2, 3, 4]
    for image in images:
        with PILImage.open(io.BytesIO(bucket.get(image.storage_key))) as png:
            assert png.format == "PNG" and png.size == (image.width, image.height)
            assert json.loads(png.text["sojourn"])["job_id"] == str(job.id)
    grid = images[0].storage_key
    with PILImage.open(io.BytesIO(bucket.get(thumbnail_key(grid)))) as thumbnail:
        assert thumbnail.format == "WEBP"
    assert not bucket.exists(thumbnail_key(images[1].storage_key))  # only the grid has one
    # The objects sit under the deployment's prefix, and no image was written to the local disk.
    assert bucket.location(grid) == f"s3://{storage_settings.s3_bucket}/{storage_settings.s3_prefix}/{grid}"
    assert not settings.resolved_storage_dir.exists() or not any(settings.resolved_storage_dir.rglob("*.png"))
