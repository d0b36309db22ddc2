"""PostgreSQL and Redis servers of the fault suite's own: the faults stop and restart them.

They are started the way `scripts/with-services.sh` starts the shared ones (Debian's binaries;
PostgreSQL as the `postgres` user when we are root), each on a free port that it keeps across
restarts, so that clients reconnect to the same address by themselves.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's binaries, as `scripts/with-services.sh` finds them."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version)
    if not found or not (found[-1] / "initdb").exists():
        raise RuntimeError("PostgreSQL is not installed: run the suite with `make test`")
    return found[-1]


def as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.getuid() == 0 else command


def real_time_environment() -> dict[str, str]:
    """This environment for a server, without faketime's: under `make test-dates` the servers keep
    real time, as the suite's shared ones do (Redis and PostgreSQL do not start under faketime)."""
    return {
        name: value
        for name, value in os.environ.items()
        if name != "LD_PRELOAD" and not name.startswith("FAKETIME")
    }


def _run(command: list[str]) -> None:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=START_TIMEOUT, env=real_time_environment()
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )


class PrivatePostgres:
    """A PostgreSQL cluster in `root` (which the postgres user must own), listening on one port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = postgres_bin()
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.port = free_port()

    @property
    def admin_url(self) -> str:
        return f"postgresql+asyncpg://sojourn@127.0.0.1:{self.port}/sojourn"

    def create(self) -> None:
        """initdb, start, and the `sojourn` database that `admin_url` names."""
        _run(as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-U", "sojourn", "--auth=trust"]))
        self.start()
        _run(
            as_postgres(
                [
                    str(self.bin / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    "sojourn",
                    "sojourn",
                ]
            )
        )

    def _options(self) -> list[str]:
        server = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=300"
        return ["-D", str(self.data), "-l", str(self.log), "-w", "-t", str(int(START_TIMEOUT)), "-o", server]

    def start(self) -> None:
        _run(as_postgres([str(self.bin / "pg_ctl"), *self._options(), "start"]))

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session (clients see their connections drop); `immediate` is a crash."""
        _run(as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]))

    def restart(self, keep_data: bool = True) -> None:
        if keep_data:
            _run(as_postgres([str(self.bin / "pg_ctl"), *self._options(), "-m", "fast", "restart"]))
            return
        self.stop()
        shutil.rmtree(self.data)
        self.create()

    def running(self) -> bool:
        status = subprocess.run(
            as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "status"]),
            capture_output=True,
            timeout=START_TIMEOUT,
            env=real_time_environment(),
        )
        return status.returncode == 0

    def close(self) -> None:
        subprocess.run(
            as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
            timeout=START_TIMEOUT,
            env=real_time_environment(),
        )


class PrivateRedis:
    """A Redis server whose data (an append-only file, when `appendonly`) lives in `root/data`."""

    def __init__(self, root: Path, *, appendonly: bool = True) -> None:
        self.data = root / "data"
        self.log = root / "redis.log"
        self.appendonly = appendonly
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self.data.mkdir(parents=True, exist_ok=True)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "yes" if self.appendonly else "no",
                "--dir", str(self.data),
                "--logfile", str(self.log),
                "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=real_time_environment(),
        )  # fmt: skip
        client = redis.Redis.from_url(self.url(), socket_timeout=1.0)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self._process.kill()
                    raise RuntimeError(f"redis-server did not start:\n{self._log_tail()}") from None
                time.sleep(0.05)
        client.close()

    def stop(self, *, save: bool = True) -> None:
        """SHUTDOWN (which writes the append-only file out first); `save=False` skips any snapshot."""
        process, self._process = self._process, None
        if process is None:
            return
        client = redis.Redis.from_url(self.url(), socket_timeout=5.0)
        try:
            client.shutdown(save=save, nosave=not save)
        except redis.RedisError:
            process.kill()
        finally:
            client.close()
        try:
            process.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def lose_data(self) -> None:
        """While stopped: delete the server's files, so that it starts empty (every database)."""
        assert not self.running(), "stop the server first"
        shutil.rmtree(self.data)
        self.data.mkdir()

    def restart(self, keep_data: bool = True) -> None:
        """Stop and start on the same port; without `keep_data`, every key is lost."""
        self.stop(save=keep_data)
        if not keep_data:
            self.lose_data()
        self.start()

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else "(no log)"
