"""The web gallery in a real Chromium: images render, search and paging work, hostile text is inert.

`SOJOURN_SCREENSHOTS=1` also saves the gallery at desktop and phone sizes to docs/screenshots/.
"""

from __future__ import annotations

import colorsys
import datetime as dt
import os
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageDraw
from playwright.async_api import ConsoleMessage, Page
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.session import make_engine, make_sessionmaker
from sojourn.clock import utcnow
from sojourn.services.profiles import remember_profile
from tests.conftest import create_migrated_database
from tests.services.gallery_helpers import like, new_id
from tests.web.web_helpers import (
    data_dir,
    make_visible_result,
    served,
    site,
    storage_dir,
    store_picture,
    web_settings,
    word,
)

__all__ = ["data_dir", "site", "storage_dir"]  # the shared fixtures (`web_helpers`)


REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
# Quotes, markup characters and non-ASCII must reach the clipboard exactly.
EXACT = 'a "lighthouse" at dusk <glow> & fog, café ✨ --ar 16:9'
# The thumbnails load lazily: wait until every one in view has.
ALL_LOADED = "() => Array.from(document.images).every(img => img.complete && img.naturalWidth > 0)"


def csp_violations(page: Page) -> list[str]:
    """Console messages of the page refusing something under the Content-Security-Policy."""
    refused: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            refused.append(message.text)

    page.on("console", note)
    return refused


async def tiles(page: Page) -> list[str]:
    return await page.eval_on_selector_all(".grid a.tile", "links => links.map(a => a.getAttribute('href'))")


async def test_gallery_images_render(
    page: Page, site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    tag = word()
    made = [await make_visible_result(sessions, storage_dir, prompt=f"render {tag}") for _ in range(3)]
    refused = csp_violations(page)
    await page.goto(f"{site}/?q={tag}")
    await page.wait_for_function(ALL_LOADED)
    sizes = await page.eval_on_selector_all(
        ".grid img", "images => images.map(img => [img.complete, img.naturalWidth])"
    )
    assert sizes == [[True, 64]] * 3
    assert sorted(await tiles(page)) == sorted(f"/jobs/{job_id}" for job_id in made)
    await page.goto(f"{site}/jobs/{made[0]}")
    await page.wait_for_function(ALL_LOADED)
    assert (
        await page.eval_on_selector_all(".images img", "images => images.map(img => img.naturalWidth > 0)")
        == [True] * 4
    )
    assert refused == []


async def test_search_box_and_next_page_link(
    script_free_page: Page, site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    page = script_free_page
    tag = word()
    start = utcnow() - dt.timedelta(minutes=5)
    made = [
        await make_visible_result(
            sessions, storage_dir, prompt=f"paged {tag}", finished_at=start + dt.timedelta(seconds=n)
        )
        for n in range(26)
    ]
    await make_visible_result(sessions, storage_dir, prompt="something else entirely")
    await page.goto(f"{site}/")
    await page.fill("input[name=q]", tag)
    await page.press("input[name=q]", "Enter")
    await page.wait_for_url(f"**q={tag}**")
    first = await tiles(page)
    assert len(first) == 24
    await page.click("a[rel=next]")
    await page.wait_for_url("**cursor=**")
    second = await tiles(page)
    assert first + second == [f"/jobs/{job_id}" for job_id in reversed(made)]
    assert await page.locator("a[rel=next]").count() == 0


async def test_more_pages_load_as_you_scroll(
    page: Page, site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    tag = word()
    start = utcnow() - dt.timedelta(minutes=5)
    made = [
        await make_visible_result(
            sessions, storage_dir, prompt=f"scrolled {tag}", finished_at=start + dt.timedelta(seconds=n)
        )
        for n in range(60)
    ]
    refused = csp_violations(page)
    await page.goto(f"{site}/?q={tag}")
    address = page.url
    # Scroll to the end until the last page's tiles are in and the next-page link is gone.
    await page.wait_for_function(
        """() => { window.scrollTo(0, document.body.scrollHeight);
                   return !document.querySelector("a[rel=next]"); }""",
        polling=100,
    )
    assert await tiles(page) == [f"/jobs/{job_id}" for job_id in reversed(made)]
    assert page.url == address  # the same page, grown: no navigation
    await page.wait_for_function(ALL_LOADED)
    assert refused == []


async def test_a_private_result_is_absent(
    page: Page, site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    tag = word()
    public = await make_visible_result(sessions, storage_dir, prompt=f"open {tag}")
    private = await make_visible_result(sessions, storage_dir, prompt=f"secret {tag}", private=True)
    await page.goto(f"{site}/?q={tag}")
    assert await tiles(page) == [f"/jobs/{public}"]
    response = await page.goto(f"{site}/jobs/{private}")
    assert response is not None and response.status == 404
    assert "secret" not in await page.content()


async def test_a_hostile_prompt_is_inert_text(
    page: Page, site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    tag = word()
    job_id = await make_visible_result(sessions, storage_dir, prompt=f"{tag} {HOSTILE}")
    await page.goto(f"{site}/?q={tag}")
    assert await page.inner_text(".grid .prompt") == f"{tag} {HOSTILE} --seed 7"
    await page.goto(f"{site}/jobs/{job_id}")
    assert await page.inner_text("#prompt") == f"{tag} {HOSTILE} --seed 7"
    assert await page.eval_on_selector("#prompt", "p => p.children.length") == 0
    assert await page.evaluate("typeof window.__xss") == "undefined"


async def test_copy_prompt_copies_the_exact_prompt(
    page: Page, site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    job_id = await make_visible_result(sessions, storage_dir, prompt=EXACT)
    refused = csp_violations(page)
    await page.goto(f"{site}/jobs/{job_id}")
    await page.click("button.copy")
    await page.wait_for_selector("button.copy[data-copied=yes]")
    assert await page.evaluate("navigator.clipboard.readText()") == f"{EXACT} --seed 7"
    assert refused == []


async def test_the_phone_layout_fits_the_screen(
    phone_page: Page, site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    job_id = await make_visible_result(sessions, storage_dir, prompt="a long prompt " * 40)
    for path in ("/", f"/jobs/{job_id}"):
        await phone_page.goto(site + path)
        width = await phone_page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], (path, width)


def paint(storage_dir: Path, key: str, hue: float) -> None:
    """A gradient in place of a test's flat colour, so the screenshots look like a gallery."""
    size = 384
    image = PILImage.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    for y in range(size):
        r, g, b = colorsys.hsv_to_rgb((hue + y / size * 0.25) % 1.0, 0.65, 0.35 + 0.6 * y / size)
        draw.line([(0, y), (size, y)], fill=(int(r * 255), int(g * 255), int(b * 255)))
    draw.ellipse([size * 0.3, size * 0.2, size * 0.7, size * 0.6], fill=(250, 240, 220))
    store_picture(storage_dir, key, image, thumbnail=key.endswith("/0.png"))  # the grid's


async def test_desktop_and_phone_screenshots(
    page: Page, phone_page: Page, postgres_admin_url: str, tmp_path: Path
) -> None:
    # A gallery of its own: a fresh database, only these results, in their own folder.
    storage_dir = tmp_path / "images"
    database_url = await create_migrated_database(postgres_admin_url)
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    prompts = [
        "a lighthouse in a storm, oil painting",
        "a fox in the snow at dawn",
        "neon city street in the rain, cinematic",
        "a cup of tea on a windowsill, soft light",
        "mountain lake at sunset, wide angle",
        "a paper boat on a puddle, macro",
        "an astronaut reading in a library",
        "desert dunes under the milky way",
    ]
    makers = {new_id(): name for name in ("Mara", "Iven", "Soledad", "Kit")}
    fans = [new_id() for _ in range(12)]
    try:
        made = []
        for n, prompt in enumerate(prompts * 2):
            maker = list(makers)[n % len(makers)]
            job_id = await make_visible_result(sessions, storage_dir, prompt=prompt, user_id=maker)
            for index in range(5):  # the grid and its four images
                paint(storage_dir, f"jobs/{job_id}/{index}.png", (n / 16 + index * 0.05) % 1.0)
            await like(sessions, job_id, *fans[: (n * 7) % 13])
            made.append(job_id)
        for maker, name in makers.items():
            await remember_profile(sessions, maker, name, None)
        # `SOJOURN_SCREENSHOTS=1` writes them where the README shows them; otherwise a temporary folder.
        folder = SCREENSHOTS if os.environ.get("SOJOURN_SCREENSHOTS") == "1" else tmp_path / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        with served(web_settings(database_url, tmp_path)) as url:
            for name, browser_page in (("desktop", page), ("phone", phone_page)):
                await browser_page.goto(f"{url}/?sort=top")
                await browser_page.wait_for_function(ALL_LOADED)
                await browser_page.screenshot(
                    path=folder / f"gallery-{name}.png", full_page=name == "desktop"
                )
            await page.goto(f"{url}/jobs/{made[1]}")  # 7 ❤
            await page.wait_for_function(ALL_LOADED)
            await page.screenshot(path=folder / "result-desktop.png")
    finally:
        await engine.dispose()
    for name in ("gallery-desktop", "gallery-phone", "result-desktop"):
        assert (folder / f"{name}.png").stat().st_size > 10_000, name
