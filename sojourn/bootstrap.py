"""Start-up helpers shared by `sojourn run` and `sojourn render`: models to use, the worker child."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from sojourn.settings import ModelPaths, Settings

log = logging.getLogger(__name__)


def gpu_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def tiny_models_dir(settings: Settings) -> Path:
    return (settings.data_dir / "models" / "tiny").resolve()


def ensure_runnable_models(settings: Settings) -> Settings:
    """Settings whose models can load here: the configured ones, or tiny random-weight models.

    The public hub ids cannot load on a machine with no GPU (too slow) or no hub access, so
    when nothing local is configured and no GPU is present we build (once) and use tiny models
    with the same architectures. This only chooses paths; the loading code is the same.
    """
    if settings.models.are_local() or gpu_available():
        return settings
    folder = tiny_models_dir(settings)
    if not (folder / "sdxl-base" / "model_index.json").exists():
        from inference.tiny_models import make_tiny_models

        log.info("no local models configured and no GPU: building tiny models in %s", folder)
        paths = make_tiny_models(folder)
    else:
        paths = ModelPaths(
            base=str(folder / "sdxl-base"),
            refiner=str(folder / "sdxl-refiner"),
            unclip=str(folder / "unclip"),
            vae=str(folder / "vae"),
        )
    # On stderr: `sojourn render` keeps stdout for its JSON lines.
    print(tiny_models_notice(folder), file=sys.stderr, flush=True)
    return settings.model_copy(update={"models": paths})


def tiny_models_notice(folder: Path) -> str:
    """What a run on the tiny models must say: its pictures are noise, and how to get real ones."""
    return (
        "NOTE: no GPU and no local models configured, so this runs on tiny random-weight TEST models\n"
        f"      ({folder}).\n"
        "      Their pictures are coloured noise, not images: they only show that every part works.\n"
        "      For real pictures (on a GPU): `sojourn models download` fetches SDXL base and refiner, the\n"
        "      fp16-fix VAE and Stable unCLIP (about 17 GB, once) and prints the SOJOURN_MODELS__BASE,\n"
        "      __REFINER, __UNCLIP and __VAE lines to put in .env; or point those settings at your own\n"
        "      folders."
    )


def settings_environment(settings: Settings) -> dict[str, str]:
    """Environment for a child process so it builds the same settings."""
    env = dict(os.environ)
    env.update(
        {
            "SOJOURN_DATA_DIR": str(settings.data_dir.resolve()),
            "SOJOURN_DATABASE_URL": settings.resolved_database_url,
            "SOJOURN_STORAGE_DIR": str(settings.resolved_storage_dir),
            "SOJOURN_MODELS__BASE": settings.models.base,
            "SOJOURN_MODELS__REFINER": settings.models.refiner,
            "SOJOURN_MODELS__UNCLIP": settings.models.unclip,
            "SOJOURN_MODELS__VAE": settings.models.vae,
            "SOJOURN_PREVIEW_EVERY": str(settings.preview_every),
            "SOJOURN_WORKER_NAME": settings.worker_name,
            **{
                f"SOJOURN_RECOVERY__{name.upper()}": str(value)
                for name, value in settings.recovery.model_dump().items()
            },
            **settings.storage.as_environment(),
        }
    )
    for name, value in settings.metrics.model_dump().items():
        variable = f"SOJOURN_METRICS__{name.upper()}"
        if value is None:  # off here: off in the child too, whatever this process's environment says
            env.pop(variable, None)
        else:
            env[variable] = str(value)
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    return env


def worker_log_path(settings: Settings) -> Path:
    return (settings.data_dir / "worker.log").resolve()


def web_log_path(settings: Settings) -> Path:
    return (settings.data_dir / "web.log").resolve()


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    """A real Celery worker as a child process (its own interpreter, so its CPU use never stalls ours).

    Its output goes to `worker.log` in the data directory.
    """
    return _start_child(settings, "worker", worker_log_path(settings))


def start_web(settings: Settings) -> subprocess.Popen[bytes]:
    """The web gallery (`sojourn web`) as a child process; its output goes to `web.log`."""
    return _start_child(settings, "web", web_log_path(settings))


def _start_child(settings: Settings, command: str, log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "sojourn", command],
            env=settings_environment(settings),
            stdout=output,
            stderr=output,
        )


def wait_until_ready(settings: Settings, process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Block until the worker answers a Celery ping; raise with its log's tail if it dies or stalls."""
    from sojourn.celery_app import make_celery

    app = make_celery(settings)
    deadline = time.monotonic() + timeout
    while not app.control.ping(timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = worker_log_path(settings).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the worker did not start:\n{tail}")


def stop_child(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
