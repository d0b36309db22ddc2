"""The gallery's images from an S3 bucket: no local file to stream, the same headers, ETags and fallbacks."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import pytest
from PIL import Image as PILImage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sojourn.settings import StorageSettings
from sojourn.storage import thumbnail_key
from sojourn.storage_s3 import S3Storage
from tests.web.web_helpers import fetch, make_visible_result, served, store_picture, web_settings


@pytest.fixture(scope="module")
def storage_settings(s3_storage_settings: StorageSettings) -> StorageSettings:
    return s3_storage_settings.model_copy(update={"s3_prefix": f"web-{uuid.uuid4().hex[:8]}"})


@pytest.fixture(scope="module")
def bucket(storage_settings: StorageSettings) -> S3Storage:
    storage = S3Storage.from_settings(storage_settings)
    storage.ensure_bucket()
    return storage


@pytest.fixture(scope="module")
def site(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, storage_settings: StorageSettings
) -> Iterator[str]:
    settings = web_settings(database_url, tmp_path_factory.mktemp("web-s3"))
    with served(settings.model_copy(update={"storage": storage_settings})) as url:
        yield url


async def test_originals_and_thumbnails_are_served_from_the_bucket(
    site: str, sessions: async_sessionmaker[AsyncSession], bucket: S3Storage
) -> None:
    job_id = await make_visible_result(sessions, bucket)
    store_picture(bucket, f"jobs/{job_id}/0.png", PILImage.new("RGB", (1024, 512)), thumbnail=True)

    original = fetch(f"{site}/images/{job_id}/2.png")
    assert (original.status, original.headers["Content-Type"]) == (200, "image/png")
    assert original.body == bucket.get(f"jobs/{job_id}/2.png")
    assert "max-age=" in original.headers["Cache-Control"]
    assert fetch(f"{site}/images/{job_id}/2.png", {"If-None-Match": original.headers["ETag"]}).status == 304

    small = fetch(f"{site}/images/{job_id}/0.webp")
    assert (small.status, small.headers["Content-Type"]) == (200, "image/webp")
    assert small.body == bucket.get(thumbnail_key(f"jobs/{job_id}/0.png"))
    with PILImage.open(io.BytesIO(small.body)) as thumbnail:
        assert (thumbnail.format, thumbnail.size) == ("WEBP", (384, 192))
    assert fetch(f"{site}/images/{job_id}/0.webp", {"If-None-Match": small.headers["ETag"]}).status == 304

    # No thumbnail yet: the original, under its own ETag.
    fallback = fetch(f"{site}/images/{job_id}/2.webp")
    assert (fallback.status, fallback.headers["Content-Type"]) == (200, "image/png")
    assert fallback.body == original.body and fallback.headers["ETag"] != small.headers["ETag"]


async def test_a_missing_object_or_hidden_result_is_not_found(
    site: str, sessions: async_sessionmaker[AsyncSession], bucket: S3Storage
) -> None:
    job_id = await make_visible_result(sessions, bucket)
    bucket.delete(f"jobs/{job_id}/1.png")
    assert fetch(f"{site}/images/{job_id}/1.png").status == 404
    assert fetch(f"{site}/images/{job_id}/1.webp").status == 404
    assert fetch(f"{site}/images/{job_id}/9.png").status == 404
    private = await make_visible_result(sessions, bucket, private=True)
    assert fetch(f"{site}/images/{private}/0.webp").status == 404
    assert fetch(f"{site}/images/{private}/1.png").status == 404
