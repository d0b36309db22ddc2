"""The community gallery on real Postgres: page latency at 10,000 and 100,000 public results.

Run with `scripts/with-services.sh .venv/bin/python bench/gallery.py`
(`--sizes 10000,100000 --requests 200 --seconds 20`).

For each size, a fresh migrated database is seeded with COPY (results every one of which the
gallery shows, four-image grids and some upscales, zipf-like ❤) and analysed; then each scenario
is timed one request at a time, after a warm-up, as `gallery_page` (limit 50), as the HTML page
`GET /` (its page of 24) and as `GET /api/images?limit=50`, both through the app in process.
A scenario stops after `--requests` requests or `--seconds` seconds, whichever comes first.
Last, `EXPLAIN (ANALYZE, BUFFERS)` of the statement `gallery_page` sends for new, top and the
search, with the time of the generic plan a pooled connection's prepared statement may switch to.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    import httpx
except ImportError:  # not a dependency of sojourn; the same client under its successor's name
    import httpx2 as httpx  # type: ignore[no-redef]

from db.migrate import upgrade_async
from db.models import JobKind, JobStatus
from db.session import make_engine, make_sessionmaker
from sojourn.services.gallery import GalleryQuery, gallery_page
from sojourn.settings import Settings, WebSettings
from tests.conftest import create_database
from web.app import create_app

USERS = 2_000
GUILDS = 20
SPAN = dt.timedelta(days=90)
UPSCALE_SHARE = 0.2
PAGE = 50
FIRST_USER = 300_000_000_000_000_000
FIRST_GUILD = 900_000_000_000_000_000

# Prompt vocabulary, most common first in each list: picked zipf-like, so a few words are frequent.
# fmt: off
SUBJECTS = (
    "castle", "lighthouse", "cat", "dragon", "forest", "city", "robot", "portrait", "ship", "mountain",
    "garden", "owl", "fox", "temple", "astronaut", "knight", "library", "train", "bridge", "whale",
    "tiger", "village", "waterfall", "samurai", "cathedral", "market", "lantern", "desert", "island",
    "wolf", "deer", "tower", "harbor", "violin", "clockwork", "greenhouse", "submarine", "volcano",
)
ADJECTIVES = (
    "ancient", "misty", "glowing", "tiny", "enormous", "abandoned", "golden", "quiet", "neon", "frozen",
    "floating", "ruined", "cozy", "mechanical", "crystal", "overgrown", "stormy", "luminous",
    "forgotten", "hidden", "painted", "velvet", "rusty", "silver",
)
PLACES = (
    "at dusk", "in the rain", "under the stars", "by the sea", "in autumn", "at sunrise",
    "in a snowstorm", "on the moon", "in a dense fog", "beside a river", "in the desert", "on a cliff",
    "in the clouds", "at midnight", "in spring",
)
STYLES = (
    "cinematic lighting", "watercolor", "oil painting", "studio ghibli style", "photorealistic",
    "isometric", "ukiyo-e woodblock", "pixel art", "charcoal sketch", "volumetric light", "35mm film",
    "art nouveau", "low poly", "concept art", "gouache", "vaporwave", "baroque", "matte painting",
    "long exposure", "tilt-shift",
)
# fmt: on
ASPECTS = ("", "", "", " --ar 16:9", " --ar 2:3", " --ar 1:1", " --chaos 20", " --stylize 250")
SEARCH_WORD = "lighthouse"  # second most common subject; `lighthouse:*` matches only it


def zipf_weights(count: int, exponent: float = 1.0) -> list[float]:
    return [1 / (rank + 1) ** exponent for rank in range(count)]


@dataclass
class Seeded:
    jobs: int
    images: int
    favorites: int
    generate_s: float
    copy_s: float
    analyze_s: float


def make_prompt(rng: random.Random, seed: int) -> str:
    subject = rng.choices(SUBJECTS, zipf_weights(len(SUBJECTS)))[0]
    adjective = rng.choices(ADJECTIVES, zipf_weights(len(ADJECTIVES)))[0]
    place = rng.choice(PLACES)
    styles = ", ".join(rng.sample(STYLES, rng.randint(1, 3)))
    return f"{adjective} {subject} {place}, {styles}{rng.choice(ASPECTS)} --seed {seed}"


def like_count(rng: random.Random) -> int:
    """❤ of one result: Pareto(1.2), so about half have none, the mean is ~3 and a few have hundreds."""
    return min(int(rng.paretovariate(1.2)), USERS) - 1


def generate_rows(size: int, now: dt.datetime, rng: random.Random) -> dict[str, list[tuple[Any, ...]]]:
    """Rows for `users`, `guild_settings`, `jobs`, `images` and `favorites`, as completion leaves them."""
    users = [FIRST_USER + n for n in range(USERS)]
    guilds = [FIRST_GUILD + n for n in range(GUILDS)]
    # A few prolific makers and servers, a long tail of occasional ones.
    makers = rng.choices(users, zipf_weights(USERS, 0.8), k=size)
    servers = rng.choices(guilds, zipf_weights(GUILDS, 0.7), k=size)
    jobs: list[tuple[Any, ...]] = []
    images: list[tuple[Any, ...]] = []
    favorites: list[tuple[Any, ...]] = []
    grids: list[uuid.UUID] = []
    for n in range(size):
        job_id = uuid.uuid4()
        finished = now - SPAN * rng.random() - dt.timedelta(seconds=1)
        seed = rng.randrange(2**32)
        upscale = bool(grids) and rng.random() < UPSCALE_SHARE
        parent, parent_index = (rng.choice(grids), rng.randint(1, 4)) if upscale else (None, None)
        spec = {"images": 1 if upscale else 4, "seed": seed, "steps": 30}
        if rng.random() < 0.3:
            spec["private"] = False  # said explicitly (`--public`) on some, absent on the rest
        jobs.append(
            (
                job_id,
                makers[n],
                JobKind.UPSCALE.value if upscale else JobKind.IMAGINE.value,
                f"u{parent_index}" if upscale else None,
                parent,
                parent_index,
                make_prompt(rng, seed),
                json.dumps(spec),
                JobStatus.SUCCEEDED.value,
                1 if upscale else 2,
                finished - dt.timedelta(seconds=rng.uniform(5, 120)),
                finished - dt.timedelta(seconds=rng.uniform(3, 5)),
                finished,
                servers[n],
                servers[n] + 1 + n % 7,
                FIRST_GUILD + 10**9 + n,
                finished + dt.timedelta(seconds=1),
                False,
                True,
            )
        )
        indexes = [1] if upscale else [0, 1, 2, 3, 4]
        if not upscale:
            grids.append(job_id)
        for index in indexes:
            side = 2048 if index == 0 else 1024
            images.append(
                (job_id, index, seed + index, side, side, f"jobs/{job_id}/{index}.png", True, finished)
            )
        likers = rng.sample(users, like_count(rng))
        for liker in likers:
            when = finished + (now - finished) * rng.random()
            liked = rng.sample(indexes, 2 if len(indexes) > 1 and rng.random() < 0.1 else 1)
            favorites.extend((liker, job_id, index, when) for index in liked)  # two images: still one ❤
    return {
        "users": [(user, "{}", 0, now - SPAN - dt.timedelta(days=1)) for user in users],
        "guild_settings": [
            (guild, True if n % 2 else None, now) for n, guild in enumerate(guilds)
        ],  # half said `web:on`, half never touched it
        "jobs": jobs,
        "images": images,
        "favorites": favorites,
    }


COLUMNS = {
    "users": ("id", "defaults", "balance", "created_at"),
    "guild_settings": ("guild_id", "web_gallery", "updated_at"),
    "jobs": (
        "id",
        "user_id",
        "kind",
        "action",
        "parent_job_id",
        "parent_image_index",
        "prompt",
        "spec",
        "status",
        "cost",
        "queued_at",
        "started_at",
        "finished_at",
        "guild_id",
        "channel_id",
        "message_id",
        "delivered_at",
        "age_restricted",
        "channel_public",
    ),
    "images": ("job_id", "index", "seed", "width", "height", "storage_key", "public", "created_at"),
    "favorites": ("user_id", "job_id", "image_index", "created_at"),
}


def driver_url(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def seed(database_url: str, size: int) -> Seeded:
    """Fills the database with `size` visible results in bulk (COPY), then ANALYZE."""
    started = time.perf_counter()
    tables = generate_rows(size, dt.datetime.now(dt.UTC), random.Random(size))
    generated = time.perf_counter()
    connection = await asyncpg.connect(driver_url(database_url))
    try:
        async with connection.transaction():
            for table, rows in tables.items():  # parents first: the foreign keys hold row by row
                await connection.copy_records_to_table(table, records=rows, columns=COLUMNS[table])
            # Each job's ❤, as the services keep them (`sojourn.services.like_counts`).
            await connection.execute(
                "UPDATE jobs SET likes = counted.likes FROM (SELECT job_id, count(DISTINCT user_id) AS likes"
                " FROM favorites GROUP BY job_id) AS counted WHERE counted.job_id = jobs.id"
            )
        copied = time.perf_counter()
        await connection.execute("ANALYZE")
        analysed = time.perf_counter()
    finally:
        await connection.close()
    return Seeded(
        jobs=len(tables["jobs"]),
        images=len(tables["images"]),
        favorites=len(tables["favorites"]),
        generate_s=generated - started,
        copy_s=copied - generated,
        analyze_s=analysed - copied,
    )


@dataclass(frozen=True)
class Scenario:
    label: str
    params: dict[str, str]  # the gallery's filters, as the web reads them
    page_two: bool = False


SCENARIOS = (
    Scenario("new · all", {"sort": "new", "period": "all"}),
    Scenario("new · week", {"sort": "new", "period": "week"}),
    Scenario("top · all", {"sort": "top", "period": "all"}),
    Scenario("top · week", {"sort": "top", "period": "week"}),
    Scenario(f"search {SEARCH_WORD!r} · new", {"sort": "new", "period": "all", "q": SEARCH_WORD}),
    Scenario("new · all · page 2", {"sort": "new", "period": "all"}, page_two=True),
    Scenario("top · all · page 2", {"sort": "top", "period": "all"}, page_two=True),
)


def gallery_query(params: dict[str, str], cursor: str | None = None, limit: int = PAGE) -> GalleryQuery:
    return GalleryQuery(
        sort=params["sort"], period=params["period"], search=params.get("q"), cursor=cursor, limit=limit
    )


@dataclass
class Timing:
    seconds: list[float] = field(default_factory=list)
    wall: float = 0.0


async def measure(call: Callable[[], Awaitable[object]], requests: int, budget_s: float) -> Timing:
    """`call` one at a time after a warm-up, until `requests` calls or `budget_s` seconds."""
    for _ in range(3):
        await call()
    timing = Timing()
    started = time.perf_counter()
    while len(timing.seconds) < requests and time.perf_counter() - started < budget_s:
        before = time.perf_counter()
        await call()
        timing.seconds.append(time.perf_counter() - before)
    timing.wall = time.perf_counter() - started
    return timing


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def row(label: str, timing: Timing) -> str:
    ms = [s * 1000 for s in timing.seconds]
    flag = "  > 50 ms" if percentile(ms, 99) > 50 else ""
    return (
        f"  {label:<32} n={len(ms):<4} median {statistics.median(ms):8.2f} ms   "
        f"p99 {percentile(ms, 99):8.2f} ms   {len(ms) / timing.wall:7.1f} req/s{flag}"
    )


class StatementTrap:
    """Keeps the last SELECT the engine sent (with its parameters), to EXPLAIN it afterwards."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statement: str | None = None
        self.parameters: Any = None
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.statement, self.parameters = statement, parameters


async def first_cursor(sessions: async_sessionmaker[AsyncSession], params: dict[str, str]) -> str:
    async with sessions() as session:
        cursor = (await gallery_page(session, gallery_query(params))).next_cursor
    assert cursor is not None, "the first page was the last: seed more results"
    return cursor


async def bench_service(
    sessions: async_sessionmaker[AsyncSession], cursors: dict[str, str], requests: int, budget_s: float
) -> None:
    print(f"gallery_page (limit {PAGE}), a session per call:")
    for scenario in SCENARIOS:
        query = gallery_query(scenario.params, cursors[scenario.label] if scenario.page_two else None)

        async def call(query: GalleryQuery = query) -> None:
            async with sessions() as session:
                page = await gallery_page(session, query)
            assert len(page.items) == PAGE, f"{len(page.items)} items for {query}"

        print(row(scenario.label, await measure(call, requests, budget_s)))


async def bench_http(
    client: httpx.AsyncClient,
    path: str,
    what: str,
    extra: dict[str, str],
    cursors: dict[str, str],
    requests: int,
    budget_s: float,
) -> None:
    print(f"GET {path}?{''.join(f'{k}={v}&' for k, v in extra.items())}… ({what}):")
    for scenario in SCENARIOS:
        params = scenario.params | extra
        if scenario.page_two:
            params["cursor"] = cursors[scenario.label]

        async def call(params: dict[str, str] = params) -> None:
            response = await client.get(path, params=params)
            assert response.status_code == 200, f"{response.status_code} for {path} {params}"

        print(row(scenario.label, await measure(call, requests, budget_s)))


EXPLAINED = (SCENARIOS[0], SCENARIOS[2], SCENARIOS[4])  # new · all, top · all, search


def sql_literal(value: object) -> str:
    """A parameter as a quoted literal for `EXECUTE` (Postgres casts it to the parameter's type)."""
    written = value.isoformat() if isinstance(value, dt.datetime) else str(value)
    return "'" + written.replace("'", "''") + "'"


async def explain(
    engine: AsyncEngine, trap: StatementTrap, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The plan for these parameters (custom), in full; and the time of the generic plan, which a
    pooled connection's prepared statement may switch to after five runs (`plan_cache_mode=auto`)."""
    for scenario in EXPLAINED:
        async with sessions() as session:
            await gallery_page(session, gallery_query(scenario.params))
        statement, parameters = trap.statement, trap.parameters
        assert statement is not None
        async with engine.connect() as connection:
            result = await connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plan = [line for (line,) in result]
            await connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
            await connection.exec_driver_sql("PREPARE gallery_bench AS " + statement)
            arguments = ", ".join(sql_literal(value) for value in parameters)
            result = await connection.exec_driver_sql(f"EXPLAIN ANALYZE EXECUTE gallery_bench({arguments})")
            generic = [line for (line,) in result]
            await connection.exec_driver_sql("DEALLOCATE gallery_bench")
            await connection.rollback()
        print(f"EXPLAIN (ANALYZE, BUFFERS) {scenario.label}, limit {PAGE}:")
        print("\n".join(f"    {line}" for line in plan))
        print(
            f"  {scenario.label}: custom plan {execution_ms(plan)}, generic plan {execution_ms(generic)} "
            f"(generic: {' / '.join(scans(generic))})"
        )


def execution_ms(plan: list[str]) -> str:
    return next((line.split(":", 1)[1].strip() for line in plan if line.startswith("Execution Time")), "?")


def scans(plan: list[str]) -> list[str]:
    """The plan's scans of `jobs`, the ones that decide its shape."""
    found = [line.strip().removeprefix("->").strip() for line in plan if " on jobs " in line]
    return [line.split("  (", 1)[0] for line in found]


async def prepared_plans(sessions: async_sessionmaker[AsyncSession]) -> None:
    """How Postgres planned the gallery's prepared statements on the (one) pooled connection."""
    async with sessions() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                    "WHERE statement LIKE '%FROM (SELECT jobs.id AS job_id%'"
                )
            )
        ).all()
    generic = sum(row[0] for row in rows)
    custom = sum(row[1] for row in rows)
    print(f"gallery statements on the pooled connection: {generic} generic plans, {custom} custom plans")


async def bench_size(admin_url: str, size: int, requests: int, budget_s: float) -> None:
    print(f"\n=== {size:,} public results ===")
    database_url = await create_database(admin_url)
    await upgrade_async(database_url)
    seeded = await seed(database_url, size)
    print(
        f"seeded {seeded.jobs:,} jobs, {seeded.images:,} images, {seeded.favorites:,} favorites in "
        f"{seeded.generate_s + seeded.copy_s + seeded.analyze_s:.1f} s (rows {seeded.generate_s:.1f} s, "
        f"COPY {seeded.copy_s:.1f} s, ANALYZE {seeded.analyze_s:.1f} s)"
    )
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    trap = StatementTrap(engine)
    async with engine.connect() as connection:
        hits = (
            await connection.exec_driver_sql(
                "SELECT count(*) FROM jobs WHERE to_tsvector('simple', prompt) @@ to_tsquery('simple', $1)",
                (f"{SEARCH_WORD}:*",),
            )
        ).scalar_one()
        server = (
            await connection.exec_driver_sql(
                "SELECT current_setting('server_version'), current_setting('jit'), "
                "current_setting('shared_buffers'), current_setting('work_mem')"
            )
        ).one()
    print("PostgreSQL {}: jit {}, shared_buffers {}, work_mem {}".format(*server))
    print(f"search {SEARCH_WORD!r} matches {hits:,} results; this week holds ~{size * 7 // 90:,}")
    cursors = {s.label: await first_cursor(sessions, s.params) for s in SCENARIOS if s.page_two}

    await bench_service(sessions, cursors, requests, budget_s)
    await prepared_plans(sessions)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            database_url=database_url,
            data_dir=Path(data_dir),
            web=WebSettings(requests_per_minute=10**9, burst=10**9),  # never a 429 here
        )
        app = create_app(settings)
        async with (
            app.router.lifespan_context(app),  # ASGITransport sends no lifespan events
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gallery") as client,
        ):
            html = f"HTML, its page of {GalleryQuery().limit}"
            await bench_http(client, "/", html, {}, cursors, requests, budget_s)
            await bench_http(client, "/api/images", "JSON", {"limit": str(PAGE)}, cursors, requests, budget_s)
    await explain(engine, trap, sessions)
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000", help="public results, comma-separated")
    parser.add_argument("--requests", type=int, default=200, help="per scenario (after a warm-up)")
    parser.add_argument("--seconds", type=float, default=20.0, help="at most, per scenario")
    args = parser.parse_args()
    started = time.perf_counter()
    for size in (int(part) for part in args.sizes.split(",")):
        await bench_size(os.environ["SOJOURN_TEST_DATABASE_URL"], size, args.requests, args.seconds)
    print(f"\nwhole run {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
