"""Shared by the web gallery's tests: results with real PNG files, the app served, plain HTTP."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Image
from sojourn.imaging import encode_thumbnail
from sojourn.settings import Settings, WebSettings
from sojourn.storage import ImageStorage, LocalStorage, thumbnail_key
from tests.browser.helpers import serve_asgi
from tests.services.gallery_helpers import make_result, new_id
from web.app import create_app

COLOURS = [(200, 120, 40), (40, 120, 200), (90, 200, 90), (220, 220, 60), (160, 60, 160)]


async def make_visible_result(
    sessions: async_sessionmaker[AsyncSession], storage_dir: Path | ImageStorage, **options: Any
) -> uuid.UUID:
    """A finished result (public unless told otherwise) whose image files exist in `storage_dir`
    (a local directory, or any storage)."""
    options.setdefault("guild_id", new_id())
    job_id = await make_result(sessions, **options)
    async with sessions() as session:
        images = (
            await session.execute(select(Image.index, Image.storage_key).where(Image.job_id == job_id))
        ).all()
    shown = min(index for index, _ in images)  # the grid, or an upscale's one image
    for index, key in images:
        picture = PILImage.new("RGB", (64, 64), COLOURS[index % len(COLOURS)])
        store_picture(storage_dir, key, picture, thumbnail=index == shown)
    return job_id


def store_picture(
    storage_dir: Path | ImageStorage, key: str, picture: PILImage.Image, *, thumbnail: bool
) -> None:
    """An image file as the worker stores it, with its web thumbnail where the gallery shows it."""
    storage = LocalStorage(storage_dir) if isinstance(storage_dir, Path) else storage_dir
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    storage.put(key, buffer.getvalue())
    if thumbnail:
        storage.put(thumbnail_key(key), encode_thumbnail(picture))


def web_settings(database_url: str, data_dir: Path, **web: Any) -> Settings:
    return Settings(database_url=database_url, data_dir=data_dir, web=WebSettings(**web))


@contextmanager
def served(settings: Settings) -> Iterator[str]:
    """The gallery on uvicorn in a thread, as `sojourn web` serves it; yields its base URL."""
    with serve_asgi(create_app(settings)) as url:
        yield url


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def fetch(url: str, headers: dict[str, str] | None = None) -> Reply:
    """A GET that returns 4xx/5xx replies instead of raising (the path is sent as written)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


# The fixtures the HTTP and the browser tests share: import them by name (pytest finds them there).
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web")


@pytest.fixture(scope="module")
def storage_dir(data_dir: Path) -> Path:
    return data_dir / "images"


@pytest.fixture(scope="module")
def site(database_url: str, data_dir: Path) -> Iterator[str]:
    """The gallery on the module's database and folder, served as `sojourn web` serves it."""
    with served(web_settings(database_url, data_dir)) as url:
        yield url


def word() -> str:
    """A word no other test's prompt has, to find one test's results by search."""
    return f"w{uuid.uuid4().hex[:10]}"
