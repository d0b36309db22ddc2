#!/usr/bin/env python
"""A container's health check (docker/Dockerfile, docker/compose.yaml): exit 0 healthy, 1 not.

    sojourn-healthcheck services   the database answers, and Redis where one is set (the bot)
    sojourn-healthcheck web        the web gallery answers on its port
    sojourn-healthcheck worker     this container's Celery worker answers a ping
    sojourn-healthcheck http URL   the URL answers (Flower's /healthcheck)

It reads the settings `sojourn` reads; a failure prints one line saying why (`docker inspect`
shows it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from sojourn.settings import Settings

TIMEOUT = 5.0  # seconds for each answer; the HEALTHCHECK's own timeout is longer


class Unhealthy(Exception):
    """What is wrong, in one line."""


def check_services(settings: Settings, _args: argparse.Namespace) -> None:
    _check_database(settings.resolved_database_url)
    if settings.redis_url:
        import redis

        try:
            redis.Redis.from_url(
                settings.redis_url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
            ).ping()
        except redis.RedisError as error:
            raise Unhealthy(f"Redis does not answer: {error}") from error


def _check_database(url: str) -> None:
    from sqlalchemy.engine import make_url

    from db.session import make_engine

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # Connecting would create an empty database file.
        if parsed.database and not Path(parsed.database).exists():
            raise Unhealthy(f"no database at {parsed.database}")
        return

    async def select_one() -> None:
        engine = make_engine(url, pool_size=1)
        try:
            async with engine.connect() as connection:
                await connection.exec_driver_sql("SELECT 1")
        finally:
            await engine.dispose()

    try:
        asyncio.run(asyncio.wait_for(select_one(), TIMEOUT))
    except Exception as error:  # refused, timed out, a wrong password: all mean unhealthy
        raise Unhealthy(f"the database does not answer: {error!r}") from error


def check_web(settings: Settings, _args: argparse.Namespace) -> None:
    host = settings.web.host if settings.web.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    _check_url(f"http://{host}:{settings.web.port}/")


def check_worker(settings: Settings, _args: argparse.Namespace) -> None:
    from celery.utils.nodenames import default_nodename, host_format

    from sojourn.celery_app import make_celery

    # As `celery worker -n` expands the name (`%h`: this host), so each replica pings itself.
    node = host_format(default_nodename(settings.worker_name))
    if not make_celery(settings).control.ping([node], timeout=TIMEOUT):
        raise Unhealthy(f"the worker {node} does not answer a ping")


def check_http(_settings: Settings, args: argparse.Namespace) -> None:
    _check_url(args.url)


def _check_url(url: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            status = response.status
    except OSError as error:  # URLError and HTTPError (4xx, 5xx) are OSErrors
        raise Unhealthy(f"{url} does not answer: {error}") from error
    if status >= 400:
        raise Unhealthy(f"{url} answered {status}")


CHECKS: dict[str, Callable[[Settings, argparse.Namespace], None]] = {
    "services": check_services,
    "web": check_web,
    "worker": check_worker,
    "http": check_http,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sojourn-healthcheck", description=__doc__.splitlines()[0])
    checks = parser.add_subparsers(dest="check", required=True)
    for name in CHECKS:
        command = checks.add_parser(name)
        if name == "http":
            command.add_argument("url")
    args = parser.parse_args(argv)
    try:
        CHECKS[args.check](Settings(), args)
    except Unhealthy as problem:
        print(f"unhealthy: {problem}")
        return 1
    print("healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
