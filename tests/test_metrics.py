"""The bot's `/metrics` endpoint over HTTP: the cluster's numbers from real Postgres and Redis (or
the embedded broker's folder), and a scrape that still answers when the database fails or hangs.

The worker's endpoint is tested in tests/worker/test_metrics.py, delivery lag in tests/bot.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Job, JobStatus
from sojourn.celery_app import make_celery
from sojourn.errors import PromptBlocked
from sojourn.metrics import RENDER_SECONDS, MetricsEndpoint, serve_bot_metrics
from sojourn.queue import CeleryJobQueue
from sojourn.services import lifecycle
from sojourn.services.submission import Origin, submit_prompt
from sojourn.settings import MetricsSettings, Settings
from tests.scrape import free_port, names, scrape, value

REDIS_DB = 12  # no worker reads it: what is sent stays in the queue
DASHBOARD = Path(__file__).resolve().parents[1] / "docker" / "grafana-dashboard.json"


def metrics_settings(**values: object) -> MetricsSettings:
    return MetricsSettings(bot_port=free_port(), **values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str, redis_base_url: str, tmp_path: Path) -> Settings:
    redis_url = redis_base_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    return Settings(
        database_url=database_url, redis_url=redis_url, data_dir=tmp_path, metrics=metrics_settings()
    )


@pytest.fixture
def endpoint(settings: Settings) -> Iterator[MetricsEndpoint]:
    served = serve_bot_metrics(settings)
    assert served is not None
    yield served
    served.close()


async def test_the_bot_serves_jobs_credits_blocks_and_queue_depths(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], endpoint: MetricsEndpoint
) -> None:
    queue = CeleryJobQueue(make_celery(settings))
    user_id = int(uuid.uuid4().int % 10**12)
    origin = Origin(guild_id=int(uuid.uuid4().int % 10**12), channel_id=1)

    async def submit(text: str) -> Job:
        (job,) = await submit_prompt(sessions, settings, queue, user_id=user_id, text=text, origin=origin)
        return job

    fast, relax, done = await submit("a fox"), await submit("a cat --relax"), await submit("an owl")
    with pytest.raises(PromptBlocked):  # the default word list, as every new server has it
        await submit("an nsfw poster")
    async with sessions.begin() as session:  # `done` ends as a worker ends it
        await session.execute(
            update(Job).where(Job.id == done.id).values(status=JobStatus.RUNNING, attempts=1)
        )
        assert await lifecycle.complete_job(session, done.id, 1, [])

    samples = await asyncio.to_thread(scrape, endpoint.port)

    assert value(samples, "sojourn_source_up", source="database") == 1.0
    assert value(samples, "sojourn_source_up", source="broker") == 1.0
    assert value(samples, "sojourn_jobs", state="queued") == 2
    assert value(samples, "sojourn_jobs", state="succeeded") == 1
    assert value(samples, "sojourn_jobs", state="failed") == 0
    assert value(samples, "sojourn_active_jobs", state="queued", mode="fast") == 1
    assert value(samples, "sojourn_active_jobs", state="queued", mode="relax") == 1
    assert value(samples, "sojourn_active_jobs", state="running", mode="fast") == 0
    assert value(samples, "sojourn_credits_held") == fast.cost + relax.cost
    assert value(samples, "sojourn_credits_settled_total") == done.cost > 0
    assert value(samples, "sojourn_filter_blocks_total") == 1
    # All three messages wait (no worker): `done` never left the broker, since it was ended here.
    assert value(samples, "sojourn_queue_depth", queue="fast") == 2
    assert value(samples, "sojourn_queue_depth", queue="relax") == 1
    # The bot's own, served from the start (this process's deliveries: other tests' bots count here too).
    assert value(samples, "sojourn_delivery_lag_seconds_count") is not None
    assert "process_resident_memory_bytes" in names(samples)


async def test_queue_depth_counts_every_priority(settings: Settings, endpoint: MetricsEndpoint) -> None:
    queue = CeleryJobQueue(make_celery(settings))
    await queue.enqueue(uuid.uuid4(), "relax")  # a new job: priority 3, a list of its own
    await queue.enqueue(uuid.uuid4(), "relax", dispatch=1)  # sent again: priority 0, the queue's own list
    samples = await asyncio.to_thread(scrape, endpoint.port)
    assert value(samples, "sojourn_queue_depth", queue="relax") == 2
    assert value(samples, "sojourn_queue_depth", queue="fast") == 0


async def test_the_embedded_broker_counts_its_files(database_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path, metrics=metrics_settings())
    queue = CeleryJobQueue(make_celery(settings))
    await queue.enqueue(uuid.uuid4(), "fast")
    await queue.enqueue(uuid.uuid4(), "relax")
    await queue.enqueue(uuid.uuid4(), "relax")
    endpoint = serve_bot_metrics(settings)
    assert endpoint is not None
    try:
        samples = await asyncio.to_thread(scrape, endpoint.port)
    finally:
        endpoint.close()
    assert value(samples, "sojourn_queue_depth", queue="fast") == 1
    assert value(samples, "sojourn_queue_depth", queue="relax") == 2


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers (a database that hangs)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


@pytest.mark.parametrize("database", ["refuses", "hangs"])
async def test_a_database_that_fails_or_hangs_is_left_out_of_the_scrape(
    database: str, settings: Settings, silent_server: int
) -> None:
    port = free_port() if database == "refuses" else silent_server
    broken = settings.model_copy(
        update={
            "database_url": f"postgresql+asyncpg://sojourn:x@127.0.0.1:{port}/sojourn",
            "metrics": metrics_settings(scrape_timeout=1.0),
        }
    )
    endpoint = serve_bot_metrics(broken)
    assert endpoint is not None
    try:
        started = time.monotonic()
        samples = await asyncio.to_thread(scrape, endpoint.port)
        took = time.monotonic() - started
    finally:
        endpoint.close()
    assert took < 5.0
    assert value(samples, "sojourn_source_up", source="database") == 0.0
    assert value(samples, "sojourn_source_up", source="broker") == 1.0
    assert not {"sojourn_jobs", "sojourn_credits_held", "sojourn_filter_blocks_total"} & names(samples)
    assert value(samples, "sojourn_queue_depth", queue="fast") == 0


def test_metrics_are_off_until_a_port_is_set(settings: Settings) -> None:
    assert MetricsSettings().bot_port is None and MetricsSettings().worker_port is None
    assert serve_bot_metrics(settings.model_copy(update={"metrics": MetricsSettings()})) is None


def test_a_port_in_use_leaves_the_bot_running_without_metrics(settings: Settings) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        blocked = settings.model_copy(update={"metrics": MetricsSettings(bot_port=port)})
        assert serve_bot_metrics(blocked) is None


def _family(sample_name: str) -> str:
    return re.sub(r"_(bucket|count|sum|total|created)$", "", sample_name)


async def test_the_grafana_dashboard_names_only_served_metrics(endpoint: MetricsEndpoint) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        _family(name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"sojourn_\w+", target["expr"])
    }
    served = {_family(name) for name in names(await asyncio.to_thread(scrape, endpoint.port))}
    served |= {family.name for family in RENDER_SECONDS.describe()}  # the workers'
    assert queried and queried <= served, queried - served
