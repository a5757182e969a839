#!/usr/bin/env bash
# One command to run the platform: venv, Redis, database migrations, a Celery worker and the web server.
#   ./run-srs.sh          serve on http://127.0.0.1:5000 (FLASK_RUN_HOST / FLASK_RUN_PORT change it)
#   ./run-srs.sh --demo   also create the demo users (alice ... john, admin; password admin)
# Ctrl-C (or SIGTERM) stops every process it started.
set -euo pipefail
cd "$(dirname "$0")"
DEMO=0
for arg in "$@"; do
  case "$arg" in
    --demo) DEMO=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "Unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
VENV="${SRS_VENV:-$PWD/venv}"
# SRS_SKIP_INSTALL=1 with SRS_VENV=/some/venv runs from an existing environment (the test suite does).
[ "${SRS_SKIP_INSTALL:-0}" = 1 ] && [ -x "$VENV/bin/python" ] || { ensure_venv requirements.txt; VENV="$PWD/venv"; }
export PATH="$VENV/bin:$PATH" SRS_PYTHON="$VENV/bin/python"
export FLASK_APP=srs.py

./run-redis.sh
flask db upgrade
[ "$DEMO" = 1 ] && flask populate-test-users

mkdir -p logs
PIDS=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup INT TERM EXIT

celery -A srs.celery worker --beat --schedule "logs/celerybeat-schedule" \
  --concurrency "${SRS_WORKER_CONCURRENCY:-2}" --loglevel "${SRS_WORKER_LOGLEVEL:-info}" &
PIDS+=($!)
HOST="${FLASK_RUN_HOST:-127.0.0.1}"
PORT="${FLASK_RUN_PORT:-5000}"
flask run --host "$HOST" --port "$PORT" --no-reload &
PIDS+=($!)
echo "Secret Race Strolling is at http://$HOST:$PORT/ (Ctrl-C stops it)."
wait -n "${PIDS[@]}" || true
