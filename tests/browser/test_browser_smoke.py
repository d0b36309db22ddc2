"""The browser harness itself: a served page's image renders, hostile text stays text, copy works."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Page

from tests.browser.helpers import serve_folder

# Would set window.__xss if the page ever parsed it as markup.
HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
# What the copy button copies: quotes, markup characters and non-ASCII must survive exactly.
COPIED = 'a "lighthouse" at dusk <glow> & fog, café ✨ --ar 16:9 --seed 42'
IMAGE_SIZE = (64, 48)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    """A one-page site: a PNG, a caption holding hostile text (escaped), a copy button."""
    folder = tmp_path / "site"
    folder.mkdir()
    Image.new("RGB", IMAGE_SIZE, (200, 120, 40)).save(folder / "result.png")
    (folder / "index.html").write_text(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>smoke</title></head>
<body>
<img id="result" src="result.png" alt="result">
<p id="caption">{html.escape(HOSTILE)}</p>
<button id="copy" data-text="{html.escape(COPIED, quote=True)}">Copy prompt</button>
<script>
document.getElementById("copy").addEventListener("click", async (event) => {{
  await navigator.clipboard.writeText(event.target.dataset.text);
  document.body.dataset.copied = "yes";
}});
</script>
</body></html>""",
        encoding="utf-8",
    )
    with serve_folder(folder) as url:
        yield url


async def test_image_renders(page: Page, site: str) -> None:
    await page.goto(f"{site}/index.html")
    size = await page.eval_on_selector(
        "#result", "img => [img.complete, img.naturalWidth, img.naturalHeight]"
    )
    assert size == [True, *IMAGE_SIZE]


async def test_hostile_text_shows_as_text(page: Page, site: str) -> None:
    await page.goto(f"{site}/index.html")
    assert await page.inner_text("#caption") == HOSTILE
    assert await page.eval_on_selector("#caption", "p => p.children.length") == 0
    assert await page.evaluate("typeof window.__xss") == "undefined"


async def test_copy_button_puts_the_exact_text_on_the_clipboard(page: Page, site: str) -> None:
    await page.goto(f"{site}/index.html")
    await page.click("#copy")
    await page.wait_for_selector("body[data-copied=yes]")
    assert await page.evaluate("navigator.clipboard.readText()") == COPIED


async def test_screenshots_at_desktop_and_phone_sizes(
    page: Page, phone_page: Page, site: str, tmp_path: Path
) -> None:
    for name, browser_page, width in [("desktop", page, 1280), ("phone", phone_page, 390 * 3)]:
        await browser_page.goto(f"{site}/index.html")
        shot = tmp_path / f"{name}.png"
        await browser_page.screenshot(path=shot, full_page=True)
        with Image.open(shot) as image:
            assert image.width == width, name
