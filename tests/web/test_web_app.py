"""The web gallery over HTTP, on real Postgres and real files: what it shows, hides, escapes, refuses."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Job
from sojourn.clock import utcnow
from sojourn.services.profiles import remember_profile
from tests.services.gallery_helpers import hold, like, new_id, turn_web_gallery
from tests.web.web_helpers import (
    data_dir,
    fetch,
    make_visible_result,
    served,
    site,
    storage_dir,
    store_picture,
    web_settings,
    word,
)
from web.app import CSP
from web.ratelimit import TokenBuckets

__all__ = ["data_dir", "site", "storage_dir"]  # the shared fixtures (`web_helpers`)

AVATAR = "https://cdn.discordapp.com/avatars/80351110224678912/1a2b3c4d5e6f.png?size=128"
XSS = '<script>window.__xss=1</script> "><img src=x onerror="window.__xss=2">'


async def test_home_shows_public_results_with_their_images(
    site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    tag = word()
    job_id = await make_visible_result(sessions, storage_dir, prompt=f"a lighthouse {tag}")
    reply = fetch(f"{site}/?q={tag}")
    assert reply.status == 200
    assert f'href="/jobs/{job_id}"' in reply.text
    assert f'src="/images/{job_id}/0.webp"' in reply.text  # the thumbnail
    assert fetch(f"{site}/").status == 200


async def test_hidden_results_are_absent_and_their_pages_missing(
    site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    tag = word()
    shown = await make_visible_result(sessions, storage_dir, prompt=f"shown {tag}")
    private = await make_visible_result(sessions, storage_dir, prompt=f"private {tag}", private=True)
    removed = await make_visible_result(sessions, storage_dir, prompt=f"removed {tag}")
    async with sessions.begin() as session:
        await session.execute(update(Job).where(Job.id == removed).values(removed_at=utcnow()))
    held_guild = new_id()
    held = await make_visible_result(sessions, storage_dir, prompt=f"held {tag}", guild_id=held_guild)
    await hold(sessions, held, held_guild)
    off_guild = new_id()
    off = await make_visible_result(sessions, storage_dir, prompt=f"off {tag}", guild_id=off_guild)
    await turn_web_gallery(sessions, off_guild, on=False)
    direct = await make_visible_result(sessions, storage_dir, prompt=f"direct {tag}", guild_id=None)
    hidden_channel = await make_visible_result(
        sessions, storage_dir, prompt=f"hidden channel {tag}", channel_public=False
    )
    hidden = [private, removed, held, off, direct, hidden_channel]

    home = fetch(f"{site}/?q={tag}").text
    api = json.loads(fetch(f"{site}/api/images?q={tag}").body)
    assert [item["job_id"] for item in api["items"]] == [str(shown)]
    assert str(shown) in home
    for job_id in [*hidden, uuid.uuid4()]:
        assert str(job_id) not in home
        assert fetch(f"{site}/jobs/{job_id}").status == 404, job_id
        assert fetch(f"{site}/images/{job_id}/0.png").status == 404, job_id
        assert fetch(f"{site}/images/{job_id}/1.png").status == 404, job_id
    assert fetch(f"{site}/jobs/{shown}").status == 200


async def test_result_page_shows_the_prompt_its_parameters_and_lineage(
    site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    tag = word()
    parent = await make_visible_result(sessions, storage_dir, prompt=f"a fox {tag}")
    child = await make_visible_result(sessions, storage_dir, prompt=f"a fox {tag}", upscale=True)
    async with sessions.begin() as session:
        await session.execute(update(Job).where(Job.id == child).values(parent_job_id=parent))
    await like(sessions, parent, new_id(), new_id())

    page = fetch(f"{site}/jobs/{parent}").text
    assert f"a fox {tag} --seed 7" in page
    assert f'data-copy="a fox {tag} --seed 7"' in page
    assert "a member" in page
    assert '<dd class="likes">2</dd>' in page
    for index in (1, 2, 3, 4):
        assert f'src="/images/{parent}/{index}.png"' in page
    assert f'href="/jobs/{child}"' in page
    assert '<script src="/static/copy.js" defer></script>' in page
    child_page = fetch(f"{site}/jobs/{child}").text
    assert f'href="/jobs/{parent}"' in child_page
    assert f'src="/images/{child}/1.png"' in child_page


async def test_a_prompt_with_markup_is_shown_as_text(
    site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    tag = word()
    job_id = await make_visible_result(sessions, storage_dir, prompt=f"{tag} {XSS}")
    for url in (f"{site}/?q={tag}", f"{site}/jobs/{job_id}", f"{site}/users/{await owner(sessions, job_id)}"):
        page = fetch(url).text
        assert "<script>window" not in page, url
        assert "<img src=x" not in page, url
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page, url
    # The search box echoes the search as an attribute value, quotes escaped.
    echoed = fetch(f"{site}/?q={tag}%22%3E%3Cscript%3E").text
    assert '"><script>' not in echoed


async def test_a_result_names_its_creator_with_their_avatar_as_text(
    site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    tag = word()
    user_id = new_id()
    job_id = await make_visible_result(sessions, storage_dir, prompt=f"a kite {tag}", user_id=user_id)
    await remember_profile(sessions, user_id, f"<script>x</script> {tag}", AVATAR)
    avatar = f'<img class="avatar" src="{AVATAR}" alt=""'

    page = fetch(f"{site}/jobs/{job_id}").text
    assert f"&lt;script&gt;x&lt;/script&gt; {tag}</a>" in page
    assert "<script>x" not in page and "a member" not in page
    assert avatar in page and 'referrerpolicy="no-referrer"' in page
    members_page = fetch(f"{site}/users/{user_id}").text
    assert f"&lt;script&gt;x&lt;/script&gt; {tag}&#39;s work</h1>" in members_page
    assert avatar in members_page
    caption = fetch(f"{site}/?q={tag}").text
    assert f'<span class="name">&lt;script&gt;x&lt;/script&gt; {tag}</span>' in caption
    assert avatar in caption

    # Someone with no public result: their profile shows nowhere (their page says only "a member").
    private_id = new_id()
    await make_visible_result(sessions, storage_dir, user_id=private_id, private=True)
    await remember_profile(sessions, private_id, f"hidden {tag}", AVATAR)
    hidden_page = fetch(f"{site}/users/{private_id}").text
    assert f"hidden {tag}" not in hidden_page and AVATAR not in hidden_page
    assert "A member&#39;s work" in hidden_page


async def test_a_member_without_a_recorded_profile_is_a_member(
    site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    job_id = await make_visible_result(sessions, storage_dir)
    page = fetch(f"{site}/jobs/{job_id}").text
    assert f'<a class="creator" href="/users/{await owner(sessions, job_id)}">a member</a>' in page
    assert 'class="avatar"' not in page


async def owner(sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> int:
    async with sessions() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job.user_id


async def test_every_reply_carries_the_content_security_policy(
    site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    job_id = await make_visible_result(sessions, storage_dir)
    for path in ("/", f"/jobs/{job_id}", f"/images/{job_id}/0.png", "/api/images", "/jobs/nope", "/?sort=x"):
        reply = fetch(f"{site}{path}")
        assert reply.headers["Content-Security-Policy"] == CSP, path
        assert "script-src 'self';" in CSP and "unsafe-inline" not in CSP
        # Avatars come from Discord's CDN, and no other image from anywhere but here.
        assert "img-src 'self' https://cdn.discordapp.com https://media.discordapp.net;" in CSP
        assert reply.headers["X-Content-Type-Options"] == "nosniff", path


async def test_an_image_is_served_with_long_cache_headers_and_an_etag(
    site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    job_id = await make_visible_result(sessions, storage_dir)
    reply = fetch(f"{site}/images/{job_id}/2.png")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "image/png"
    assert reply.body == (storage_dir / f"jobs/{job_id}/2.png").read_bytes()
    assert "max-age=" in reply.headers["Cache-Control"]
    etag = reply.headers["ETag"]
    assert fetch(f"{site}/images/{job_id}/2.png", {"If-None-Match": etag}).status == 304
    assert fetch(f"{site}/images/{job_id}/9.png").status == 404  # no such image


async def test_a_thumbnail_is_a_small_webp_and_falls_back_to_the_original(
    site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    job_id = await make_visible_result(sessions, storage_dir)
    store_picture(storage_dir, f"jobs/{job_id}/0.png", PILImage.new("RGB", (1024, 512)), thumbnail=True)
    reply = fetch(f"{site}/images/{job_id}/0.webp")
    assert (reply.status, reply.headers["Content-Type"]) == (200, "image/webp")
    with PILImage.open(io.BytesIO(reply.body)) as thumbnail:
        assert (thumbnail.format, thumbnail.size) == ("WEBP", (384, 192))
    assert len(reply.body) < len(fetch(f"{site}/images/{job_id}/0.png").body)
    assert fetch(f"{site}/images/{job_id}/0.webp", {"If-None-Match": reply.headers["ETag"]}).status == 304
    # An image without a thumbnail yet (made before thumbnails) is sent as it is, under its own ETag.
    original = fetch(f"{site}/images/{job_id}/2.webp")
    assert (original.status, original.headers["Content-Type"]) == (200, "image/png")
    assert original.headers["ETag"] != fetch(f"{site}/images/{job_id}/0.webp").headers["ETag"]
    private = await make_visible_result(sessions, storage_dir, private=True)
    assert fetch(f"{site}/images/{private}/0.webp").status == 404


@pytest.mark.parametrize(
    "path",
    [
        "/images/../../etc/passwd",
        "/images/{job}/..%2f..%2f0.webp",
        "/images/{job}/1.thumb.webp",
        "/images/%2e%2e/%2e%2e/etc/passwd",
        "/images/..%2f..%2fetc%2fpasswd",
        "/images/{job}/..%2f..%2f..%2fetc%2fpasswd.png",
        "/images/{job}/%2e%2e.png",
        "/images/{job}/-1.png",
        "/images/{job}/1e0.png",
        "/images/{job}/%D9%A1.png",  # an Arabic-Indic digit: int() reads it, the route does not
        "/images/not-a-uuid/1.png",
        "/static/../pyproject.toml",
        "/static/%2e%2e/pyproject.toml",
        "/jobs/../../etc/passwd",
        "/users/../etc/passwd",
    ],
)
async def test_no_url_reaches_a_file_outside_the_images(
    path: str, site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    job_id = await make_visible_result(sessions, storage_dir)
    reply = fetch(site + path.replace("{job}", str(job_id)))
    assert reply.status == 404, (path, reply.status)
    assert b"root:" not in reply.body and b"[project]" not in reply.body


async def test_a_row_with_an_unsafe_storage_key_is_not_followed(
    site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    from db.models import Image

    job_id = await make_visible_result(sessions, storage_dir)
    async with sessions.begin() as session:
        await session.execute(
            update(Image)
            .where(Image.job_id == job_id, Image.index == 1)
            .values(storage_key="../../../etc/passwd")
        )
    assert fetch(f"{site}/images/{job_id}/1.png").status == 404


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/?cursor=not-a-cursor", "page link is broken"),
        ("/?sort=best", "sort must be one of"),
        ("/?period=year", "period must be one of"),
        ("/?q=%21%21%21", "at least one word"),
        ("/users/1?cursor=AAAA", "page link is broken"),
    ],
)
async def test_bad_query_parameters_are_a_400_page(site: str, path: str, says: str) -> None:
    reply = fetch(site + path)
    assert reply.status == 400, reply.text
    assert says in reply.text
    assert reply.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("cursor=not-a-cursor", "page link is broken"),
        ("sort=best", "sort must be one of"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("user_id=-3", "user_id"),
        ("user_id=99999999999999999999", "user_id"),
    ],
)
async def test_bad_api_parameters_are_a_400_with_the_reason(site: str, query: str, says: str) -> None:
    reply = fetch(f"{site}/api/images?{query}")
    assert reply.status == 400, reply.text
    assert says in json.loads(reply.body)["detail"]


async def test_a_cursor_from_another_query_is_refused(
    site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    tag = word()
    for _ in range(3):
        await make_visible_result(sessions, storage_dir, prompt=f"cursor {tag}")
    cursor = json.loads(fetch(f"{site}/api/images?q={tag}&limit=1").body)["next_cursor"]
    assert fetch(f"{site}/api/images?q={tag}&sort=top&cursor={cursor}").status == 400


async def test_the_api_pages_through_every_result_once(
    site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    tag = word()
    user_id = new_id()
    start = utcnow() - dt.timedelta(minutes=10)
    made = [
        await make_visible_result(
            sessions,
            storage_dir,
            prompt=f"page {tag}",
            user_id=user_id,
            finished_at=start + dt.timedelta(seconds=n),
        )
        for n in range(5)
    ]
    seen: list[str] = []
    url = f"{site}/api/images?q={tag}&limit=2"
    pages = 0
    while True:
        body = json.loads(fetch(url).body)
        pages += 1
        seen += [item["job_id"] for item in body["items"]]
        if body["next_cursor"] is None:
            break
        url = f"{site}/api/images?q={tag}&limit=2&cursor={body['next_cursor']}"
    assert seen == [str(job_id) for job_id in reversed(made)]
    assert pages == 3
    item = json.loads(fetch(f"{site}/api/images?q={tag}&limit=1&user_id={user_id}").body)["items"][0]
    assert item["user_id"] == str(user_id)  # a string: 64-bit ids survive JavaScript
    assert item["image_url"] == f"/images/{made[-1]}/0.png"
    assert item["thumbnail_url"] == f"/images/{made[-1]}/0.webp"
    assert json.loads(fetch(f"{site}/api/images?q={tag}&user_id={new_id()}").body)["items"] == []


async def test_the_next_page_link_continues_the_html_gallery(
    site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    import html
    import re

    tag = word()
    start = utcnow() - dt.timedelta(minutes=10)
    made = [
        await make_visible_result(
            sessions, storage_dir, prompt=f"next {tag}", finished_at=start + dt.timedelta(seconds=n)
        )
        for n in range(30)  # one more than a page of 24
    ]
    first = fetch(f"{site}/?q={tag}").text
    link = re.search(r'rel="next" href="([^"]+)"', first)
    assert link is not None
    second = fetch(site + html.unescape(link.group(1))).text
    assert 'rel="next"' not in second
    found = re.findall(r'href="/jobs/([0-9a-f-]+)"', first) + re.findall(r'href="/jobs/([0-9a-f-]+)"', second)
    assert found == [str(job_id) for job_id in reversed(made)]


async def test_a_members_page_shows_only_their_public_work(
    site: str, sessions: async_sessionmaker[AsyncSession], storage_dir: Path
) -> None:
    user_id = new_id()
    theirs = await make_visible_result(sessions, storage_dir, user_id=user_id)
    private = await make_visible_result(sessions, storage_dir, user_id=user_id, private=True)
    someone_elses = await make_visible_result(sessions, storage_dir)
    page = fetch(f"{site}/users/{user_id}").text
    assert str(theirs) in page
    assert str(private) not in page and str(someone_elses) not in page
    for bad in ("abc", "0", "-1", "99999999999999999999", "1" * 5000):
        assert fetch(f"{site}/users/{bad}").status == 404, bad


async def test_the_api_is_documented(site: str) -> None:
    schema = json.loads(fetch(f"{site}/openapi.json").body)
    assert "/api/images" in schema["paths"]
    assert "/jobs/{job_id}" not in schema["paths"]  # pages are not API
    assert fetch(f"{site}/docs").status == 200


async def test_too_many_requests_from_one_address_get_429(database_url: str, data_dir: Path) -> None:
    with served(web_settings(database_url, data_dir, burst=3, requests_per_minute=1)) as url:
        replies = [fetch(f"{url}/api/images?limit=1") for _ in range(4)]
    assert [reply.status for reply in replies] == [200, 200, 200, 429]
    assert int(replies[-1].headers["Retry-After"]) >= 1
    assert replies[-1].headers["Content-Security-Policy"] == CSP


def test_token_buckets_refill_at_the_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(per_minute=60, burst=2, clock=lambda: now[0])
    assert [buckets.take("a"), buckets.take("a")] == [0.0, 0.0]
    assert buckets.take("a") == pytest.approx(1.0)
    assert buckets.take("b") == 0.0  # every address has its own bucket
    now[0] = 1.0
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
