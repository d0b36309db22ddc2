"""`sojourn thumbnails`: results made before the worker wrote thumbnails get theirs, once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Image
from sojourn.cli import main
from sojourn.storage import thumbnail_key
from tests.services.gallery_helpers import make_result, new_id
from tests.web.web_helpers import store_picture


async def _files(
    sessions: async_sessionmaker[AsyncSession], storage_dir: Path, **options: object
) -> list[str]:
    """A result whose image files exist without thumbnails; its storage keys by index."""
    job_id = await make_result(sessions, guild_id=new_id(), **options)  # type: ignore[arg-type]
    async with sessions() as session:
        keys = list(
            await session.scalars(
                select(Image.storage_key).where(Image.job_id == job_id).order_by(Image.index)
            )
        )
    for key in keys:
        store_picture(storage_dir, key, PILImage.new("RGB", (800, 600), (90, 30, 200)), thumbnail=False)
    return keys


async def test_missing_thumbnails_are_made_once_for_the_shown_image(
    sessions: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    storage_dir = tmp_path / "images"
    grid = await _files(sessions, storage_dir)
    upscale = await _files(sessions, storage_dir, upscale=True)
    private = await _files(sessions, storage_dir, private=True)  # may be made public later
    monkeypatch.setenv("SOJOURN_DATABASE_URL", database_url)
    monkeypatch.setenv("SOJOURN_DATA_DIR", str(tmp_path))

    assert await asyncio.to_thread(main, ["thumbnails"]) == 0
    assert "3 made" in capsys.readouterr().out
    for shown in (grid[0], upscale[0], private[0]):
        with PILImage.open(storage_dir / thumbnail_key(shown)) as thumbnail:
            assert (thumbnail.format, thumbnail.size) == ("WEBP", (384, 288))
    assert not any((storage_dir / thumbnail_key(key)).exists() for key in grid[1:])

    assert await asyncio.to_thread(main, ["thumbnails"]) == 0
    assert "0 made, 3 already there" in capsys.readouterr().out
