"""The `sojourn` command: run, bot, worker, web, migrate, parse, render, models make-tiny."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sojourn.errors import UserError
from sojourn.settings import Settings

EXAMPLE_PROMPT = "a lighthouse in a storm --ar 16:9 --seed 7"
EXIT_BAD_INPUT = 2


def main(argv: list[str] | None = None) -> int:
    # Library chatter (download bars, optional-backend notices) is noise on a console that
    # never downloads anything; SOJOURN_LOG_LEVEL=INFO still shows our own logs.
    for variable, value in (
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
        ("TRANSFORMERS_VERBOSITY", "error"),
        ("DIFFUSERS_VERBOSITY", "error"),
    ):
        os.environ.setdefault(variable, value)
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("SOJOURN_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s"
    )
    return int(args.handler(args) or 0)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sojourn", description="A self-hosted, Midjourney-style image bot.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="set up and run everything on embedded defaults")
    run.set_defaults(handler=_cmd_run)

    bot = commands.add_parser("bot", help="run the Discord bot (needs DISCORD_TOKEN)")
    bot.set_defaults(handler=_cmd_bot)

    worker = commands.add_parser("worker", help="run a Celery GPU worker")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(handler=_cmd_worker)

    migrate = commands.add_parser("migrate", help="upgrade the database to the latest schema")
    migrate.set_defaults(handler=_cmd_migrate)

    web = commands.add_parser("web", help="serve the read-only web gallery (SOJOURN_WEB__HOST/PORT)")
    web.set_defaults(handler=_cmd_web)

    thumbnails = commands.add_parser(
        "thumbnails", help="make the web gallery's thumbnails of results made before it had them"
    )
    thumbnails.set_defaults(handler=_cmd_thumbnails)
    audit = commands.add_parser(
        "audit", help="check the money and the jobs on the database (read-only); exit 1 on a violation"
    )
    audit.add_argument("--json", action="store_true", help="print the report as one JSON object")
    audit.set_defaults(handler=_cmd_audit)

    parse = commands.add_parser("parse", help="print the job specs a prompt expands to, as JSON")
    parse.add_argument("prompt")
    parse.set_defaults(handler=_cmd_parse)

    render = commands.add_parser("render", help="render a prompt end to end and print one JSON line per job")
    render.add_argument("prompt")
    render.add_argument(
        "--user", type=int, default=None, help="the user id to bill (default: the local user)"
    )
    render.add_argument(
        "--worker",
        choices=("auto", "yes", "no"),
        default="auto",
        help="start a worker child process (auto: when no Redis broker is configured)",
    )
    render.add_argument("--timeout", type=float, default=600.0)
    render.set_defaults(handler=_cmd_render)

    models = commands.add_parser("models", help="model utilities")
    models_commands = models.add_subparsers(required=True, metavar="ACTION")
    make_tiny = models_commands.add_parser(
        "make-tiny", help="build tiny random-weight models (real architectures)"
    )
    make_tiny.add_argument("directory", type=Path)
    make_tiny.set_defaults(handler=_cmd_make_tiny)
    download = models_commands.add_parser(
        "download",
        help="fetch the real models (SDXL base and refiner, the fp16-fix VAE, Stable unCLIP) from the "
        "Hugging Face hub and print the SOJOURN_MODELS__* lines that use them",
    )
    download.add_argument(
        "--to",
        type=Path,
        default=None,
        metavar="DIR",
        help="put each model in DIR/<name> (default: the Hugging Face cache, $HF_HOME/hub, "
        "which workers can share)",
    )
    download.set_defaults(handler=_cmd_models_download)
    return parser


def _cmd_migrate(_args: argparse.Namespace) -> int:
    from db.migrate import upgrade

    upgrade(Settings().resolved_database_url)
    print("database is at the latest schema")
    return 0


def _cmd_web(_args: argparse.Namespace) -> int:
    import uvicorn

    from web.app import create_app

    settings = Settings()
    print(f"the gallery is at http://{settings.web.host}:{settings.web.port}/")
    # proxy_headers: behind a reverse proxy on this host, the rate limit counts the client's address.
    uvicorn.run(create_app(settings), host=settings.web.host, port=settings.web.port, proxy_headers=True)
    return 0


def _cmd_thumbnails(_args: argparse.Namespace) -> int:
    from db.session import make_engine, make_sessionmaker
    from sojourn.services.gallery.thumbnails import make_missing_thumbnails
    from sojourn.storage import make_storage

    settings = Settings()

    async def make() -> int:
        engine = make_engine(settings.resolved_database_url)
        try:
            storage = make_storage(settings)
            count = await make_missing_thumbnails(make_sessionmaker(engine), storage)
        finally:
            await engine.dispose()
        missing = f", {count.missing_original} without their image file" if count.missing_original else ""
        print(f"thumbnails: {count.made} made, {count.present} already there{missing}")
        return 0

    return asyncio.run(make())


def _cmd_audit(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from db.session import make_engine, make_sessionmaker
    from sojourn.services.audit import audit_database
    from sojourn.storage import make_storage

    settings = Settings()
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        # Connecting would create an empty database: say so instead, and write nothing.
        print(f"no database at {url.database}: check SOJOURN_DATABASE_URL", file=sys.stderr)
        return EXIT_BAD_INPUT

    async def audit() -> int:
        engine = make_engine(settings.resolved_database_url, pool_size=1)
        try:
            report = await audit_database(make_sessionmaker(engine), settings, make_storage(settings))
        finally:
            await engine.dispose()
        if args.json:
            print(json.dumps(report.as_json()))
        else:
            for violation in report.violations:
                print(violation)
            print(report.summary())
        return 0 if report.ok else 1

    return asyncio.run(audit())


def _cmd_parse(args: argparse.Namespace) -> int:
    from sojourn.prompt import PromptError, PromptRules, parse_prompt

    try:
        specs = parse_prompt(args.prompt, PromptRules.from_settings(Settings()))
    except PromptError as error:
        print(error.message, file=sys.stderr)
        return EXIT_BAD_INPUT
    for spec in specs:
        print(json.dumps(spec.model_dump(mode="json")))
    return 0


def _cmd_make_tiny(args: argparse.Namespace) -> int:
    from inference.tiny_models import make_tiny_models

    paths = make_tiny_models(args.directory)
    print(json.dumps(paths.model_dump()))
    return 0


def _cmd_models_download(args: argparse.Namespace) -> int:
    # ~17 GB wants its progress bars, which main() turns off for every other command; the hub
    # library reads the variable when it is first imported, below.
    os.environ.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    from sojourn.model_download import ModelDownloadError, download_models, settings_lines

    try:
        paths = download_models(Settings().models, to=args.to)
    except ModelDownloadError as error:
        print(error.message, file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(
            "\ninterrupted: run `sojourn models download` again to resume where it stopped", file=sys.stderr
        )
        return 130
    print(
        "\nAll models are in place. Use them with these lines (in .env, or every worker's environment):",
        file=sys.stderr,
    )
    for line in settings_lines(paths):
        print(line)
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from sojourn.celery_app import make_celery
    from sojourn.queue import QUEUES

    settings = Settings()
    argv = [
        "worker",
        f"--loglevel={args.loglevel}",
        "--concurrency=1",
        "--pool=prefork",
        "-Q",
        ",".join(QUEUES),
        "-n",
        settings.worker_name,
        # Workers find each other through the database (`inference.recovery`), not Celery's
        # gossip, whose consumer step fails to restart after the broker comes back.
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    ]
    make_celery(settings).worker_main(argv)
    return 0


def _cmd_bot(_args: argparse.Namespace) -> int:
    settings = Settings()
    if settings.discord_token is None:
        print(
            "DISCORD_TOKEN is not set: create a bot at https://discord.com/developers/applications",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    return _run_bot(settings)


def _run_bot(settings: Settings) -> int:
    """Run the Discord bot until it is stopped (Ctrl-C or SIGTERM)."""
    import discord

    from bot import create_bot
    from sojourn.celery_app import make_celery
    from sojourn.queue import CeleryJobQueue

    assert settings.discord_token is not None
    bot = create_bot(settings, queue=CeleryJobQueue(make_celery(settings)))
    try:
        # Our logging is configured already; the token is passed on, never printed or logged.
        bot.run(settings.discord_token.get_secret_value(), log_handler=None)
    except discord.LoginFailure:
        print(
            "Discord refused DISCORD_TOKEN: copy the bot token again from the developer portal.",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    return 0


def _cmd_run(_args: argparse.Namespace) -> int:
    from db.migrate import upgrade
    from sojourn.bootstrap import (
        ensure_runnable_models,
        start_web,
        stop_child,
        web_log_path,
        worker_log_path,
    )
    from sojourn.bootstrap import start_worker as spawn_worker

    settings = Settings()
    upgrade(settings.resolved_database_url)
    settings = ensure_runnable_models(settings)
    if settings.discord_token is not None:
        worker = spawn_worker(settings)
        web = start_web(settings)
        print(
            f"sojourn is starting: a worker (log: {worker_log_path(settings)}), the Discord bot, and the web "
            f"gallery at http://{settings.web.host}:{settings.web.port}/ (log: {web_log_path(settings)})."
        )
        if settings.gallery_url is None:
            print(
                "Set SOJOURN_WEB__PUBLIC_URL to the gallery's public address to give results a 🔗 Web button."
            )
        try:
            return _run_bot(settings)
        finally:
            stop_child(web)
            stop_child(worker)
    print(f"No DISCORD_TOKEN set: rendering the example prompt on embedded defaults:\n  {EXAMPLE_PROMPT}")
    code = _render(
        settings, EXAMPLE_PROMPT, user_id=settings.cli_user_id, start_worker=not settings.redis_url
    )
    if code == 0:
        print(
            "\nTo connect Discord: create an application and bot at https://discord.com/developers/applications,\n"
            "invite it with the applications.commands and bot scopes, then run `DISCORD_TOKEN=... make run`."
        )
    return code


def _cmd_render(args: argparse.Namespace) -> int:
    from db.migrate import upgrade
    from sojourn.bootstrap import ensure_runnable_models

    settings = Settings()
    upgrade(settings.resolved_database_url)
    settings = ensure_runnable_models(settings)
    spawn = {"auto": not settings.redis_url, "yes": True, "no": False}[args.worker]
    user_id = args.user if args.user is not None else settings.cli_user_id
    return _render(settings, args.prompt, user_id=user_id, start_worker=spawn, timeout=args.timeout)


def _render(
    settings: Settings, prompt: str, *, user_id: int, start_worker: bool, timeout: float = 600.0
) -> int:
    from sojourn.bootstrap import start_worker as spawn_worker
    from sojourn.bootstrap import stop_child, worker_log_path

    worker = spawn_worker(settings) if start_worker else None

    def worker_alive() -> bool:
        if worker is None or worker.poll() is None:
            return True
        print(
            f"the worker stopped (exit code {worker.returncode}): see {worker_log_path(settings)}",
            file=sys.stderr,
        )
        return False

    try:
        return asyncio.run(_submit_and_wait(settings, prompt, user_id, timeout, worker_alive))
    finally:
        if worker is not None:
            stop_child(worker)


async def _submit_and_wait(
    settings: Settings, prompt: str, user_id: int, wait_seconds: float, worker_alive: Callable[[], bool]
) -> int:
    from db.session import make_engine, make_sessionmaker
    from sojourn.celery_app import make_celery
    from sojourn.queue import CeleryJobQueue
    from sojourn.services.results import job_report, wait_for_jobs
    from sojourn.services.submission import submit_prompt

    engine = make_engine(settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    try:
        try:
            jobs = await submit_prompt(
                sessions, settings, CeleryJobQueue(make_celery(settings)), user_id=user_id, text=prompt
            )
        except UserError as error:
            print(error.message, file=sys.stderr)
            return EXIT_BAD_INPUT
        job_ids: list[uuid.UUID] = [job.id for job in jobs]
        deadline = time.monotonic() + wait_seconds
        finished = await wait_for_jobs(sessions, job_ids, deadline=deadline, keep_waiting=worker_alive)
        failed = False
        for job_id in job_ids:
            report = await job_report(sessions, settings, job_id)
            failed |= report["status"] != "succeeded"
            print(json.dumps(report), flush=True)
        if not finished and worker_alive():
            print(
                f"timed out after {wait_seconds:.0f} s; the jobs stay queued and run when a worker is up",
                file=sys.stderr,
            )
        return 1 if failed else 0
    finally:
        await engine.dispose()
