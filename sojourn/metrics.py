"""Prometheus metrics, each declared once here, and the `/metrics` endpoints that serve them.

Observed where they happen: render seconds (in the workers' pool processes, `inference.runner`)
and delivery lag (in the bot, `bot.delivery`). Read when Prometheus scrapes, by the bot's
`ClusterCollector`: jobs by state, credits held and settled and filter blocks from the database
(the one record, whichever process changed it), and each queue's depth from the broker. Those are
the whole cluster's, so only the bot serves them: a second bot process serves the same numbers
(aggregate them with `max`). A source that fails or answers late is left out of that scrape, and
`sojourn_source_up` says so; the endpoint itself always answers.

Celery forks the workers' pool processes: they write prometheus_client's multiprocess files into a
folder the worker's main process chose before forking, and serves (`inference.tasks`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from db.session import make_sessionmaker
from sojourn.celery_app import broker_census
from sojourn.clock import utcnow
from sojourn.services.cluster_state import ClusterState, read_cluster_state
from sojourn.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

TEXT_TO_IMAGE = "imagine"  # the render label of a job with no `JobSpec.action` (/imagine, 🔄)

# Not registered anywhere by default: each endpoint registers what its process observes.
RENDER_SECONDS = Histogram(
    "sojourn_render_seconds",
    "Seconds a worker spent on a job that succeeded, from its claim to its settlement, by worker "
    f"function ({TEXT_TO_IMAGE}: text-to-image)",
    ["action"],
    buckets=(0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600),
    registry=None,
)
DELIVERY_LAG_SECONDS = Histogram(
    "sojourn_delivery_lag_seconds",
    "Seconds from a job's end to its outcome first shown on Discord",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
    registry=None,
)


def observe_render(action: str | None, seconds: float) -> None:
    """A job that succeeded: `action` is its `JobSpec.action` (None: text-to-image)."""
    RENDER_SECONDS.labels(action=action or TEXT_TO_IMAGE).observe(seconds)


def observe_delivery(finished_at: dt.datetime) -> None:
    """A job's outcome is on Discord now; it ended at `finished_at`."""
    DELIVERY_LAG_SECONDS.observe(max(0.0, (utcnow() - finished_at).total_seconds()))


class QueueDepths(Protocol):
    """The broker's side: `sojourn.broker_census`'s Redis and folder readers."""

    def queue_depths(self) -> dict[str, int]: ...

    def close(self) -> None: ...


class ClusterCollector(Collector):
    """The cluster's numbers, read from the database and the broker at each scrape, each within
    `timeout` seconds. Scrapes run on the HTTP server's threads, never on the bot's event loop."""

    def __init__(self, database_url: str, broker: QueueDepths, timeout: float) -> None:
        self._broker = broker
        self._timeout = timeout
        self._failing: set[str] = set()  # sources whose last read failed: one log line per outage
        # A connection per scrape (each runs its own event loop), bounded on both sides of the wire.
        connect_args: dict[str, object] = {"timeout": timeout}
        if not database_url.startswith("sqlite"):
            connect_args["command_timeout"] = timeout
        self._engine: AsyncEngine = create_async_engine(
            database_url, poolclass=NullPool, connect_args=connect_args
        )

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "sojourn_source_up", "Whether this scrape could read the source", labels=["source"]
        )
        state = self._read("database", lambda: asyncio.run(self._read_database()))
        depths = self._read("broker", self._broker.queue_depths)
        up.add_metric(["database"], float(state is not None))
        up.add_metric(["broker"], float(depths is not None))
        yield up
        if state is not None:
            yield from _database_metrics(state)
        if depths is not None:
            queue_depth = GaugeMetricFamily(
                "sojourn_queue_depth", "Job messages waiting in the broker, by queue", labels=["queue"]
            )
            for queue, depth in depths.items():
                queue_depth.add_metric([queue], depth)
            yield queue_depth

    async def _read_database(self) -> ClusterState:
        async with asyncio.timeout(self._timeout), make_sessionmaker(self._engine)() as session:
            return await read_cluster_state(session)

    def _read(self, source: str, read: Callable[[], T]) -> T | None:
        try:
            value = read()
        except Exception as error:  # a scrape reports what it could read, never an error page
            if source not in self._failing:
                self._failing.add(source)
                log.warning("metrics: cannot read the %s (%s: %s)", source, type(error).__name__, error)
            return None
        if source in self._failing:
            self._failing.discard(source)
            log.info("metrics: the %s answers again", source)
        return value

    def close(self) -> None:
        self._broker.close()  # the engine holds no connection between scrapes (NullPool)


def _database_metrics(state: ClusterState) -> Iterable[Metric]:
    jobs = GaugeMetricFamily("sojourn_jobs", "Jobs in the database, by state", labels=["state"])
    for status, count in state.jobs.items():
        jobs.add_metric([status.value], count)
    active = GaugeMetricFamily(
        "sojourn_active_jobs", "Queued and running jobs, by state and mode", labels=["state", "mode"]
    )
    for (status, mode), count in state.active_jobs.items():
        active.add_metric([status.value, mode], count)
    yield jobs
    yield active
    yield GaugeMetricFamily(
        "sojourn_credits_held", "Credits held for queued and running jobs", value=state.credits_held
    )
    yield CounterMetricFamily(
        "sojourn_credits_settled", "Credits charged for jobs that succeeded", value=state.credits_settled
    )
    yield CounterMetricFamily(
        "sojourn_filter_blocks", "Prompts the word filter blocked", value=state.filter_blocks
    )


@dataclass
class MetricsEndpoint:
    """A running `/metrics` server."""

    server: WSGIServer
    thread: threading.Thread
    collector: ClusterCollector | None = None

    @property
    def port(self) -> int:
        return self.server.server_port

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5.0)
        if self.collector is not None:
            self.collector.close()


def serve_bot_metrics(settings: Settings) -> MetricsEndpoint | None:
    """The bot's `/metrics` (SOJOURN_METRICS__BOT_PORT): the cluster's numbers and delivery lag."""
    port = settings.metrics.bot_port
    if port is None:
        return None
    registry = CollectorRegistry()
    registry.register(DELIVERY_LAG_SECONDS)
    ProcessCollector(registry=registry)
    timeout = settings.metrics.scrape_timeout
    collector = ClusterCollector(
        settings.resolved_database_url, broker_census(settings, timeout=timeout), timeout
    )
    registry.register(collector)
    return _serve(registry, settings, port, collector)


def serve_worker_metrics(settings: Settings, folder: str) -> MetricsEndpoint | None:
    """A worker's `/metrics` (SOJOURN_METRICS__WORKER_PORT): what its processes recorded in `folder`."""
    port = settings.metrics.worker_port
    if port is None:
        return None
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)
    return _serve(registry, settings, port)


def _serve(
    registry: CollectorRegistry, settings: Settings, port: int, collector: ClusterCollector | None = None
) -> MetricsEndpoint | None:
    host = settings.metrics.host
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as error:  # metrics never stop the bot or a worker
        log.error("metrics: cannot listen on %s:%d (%s); running on without /metrics", host, port, error)
        if collector is not None:
            collector.close()
        return None
    log.info("metrics: serving http://%s:%d/metrics", host, port)
    return MetricsEndpoint(server, thread, collector)
