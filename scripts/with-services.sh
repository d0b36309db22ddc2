#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL and Redis on loopback, installing them if absent
# (and Debian's Chromium, which the browser tests drive; never a browser downloaded at run time).
# Exports SOJOURN_TEST_DATABASE_URL and SOJOURN_TEST_REDIS_URL; stops both servers on exit.
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

# PostgreSQL refuses to run as root: run it as the postgres user when we are root.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" -eq 0 ]; then chown postgres "$work"; fi
chmod 755 "$work"

cleanup() {
  as_pg "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

as_pg "$pg_bin/initdb" -D "$work/pg" -U sojourn --auth=trust -E UTF8 >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-h 127.0.0.1 -p $pg_port -k $work -c fsync=off -c max_connections=300" start >/dev/null
as_pg "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U sojourn sojourn

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
  --dir "$work" --logfile "$work/redis.log" >/dev/null
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

export SOJOURN_TEST_DATABASE_URL="postgresql+asyncpg://sojourn@127.0.0.1:$pg_port/sojourn"
export SOJOURN_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
echo "postgres on 127.0.0.1:$pg_port, redis on 127.0.0.1:$redis_port"
"$@"
