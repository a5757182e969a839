#!/usr/bin/env bash
# One command to run the platform: venv, Redis, database migrations, then a Celery worker, a baseline-attack
# worker, the scheduler (beat) and the web server under supervisord, which restarts any of them that exits (with back-off).
#   ./run-srs.sh                serve on http://127.0.0.1:5000 (FLASK_RUN_HOST / FLASK_RUN_PORT change it)
#   ./run-srs.sh --demo         also create the demo users (alice ... john, admin; password admin)
#   ./run-srs.sh --production   gunicorn (SRS_WEB_WORKERS, default 2 x CPUs + 1), SRS_CONFIG=production
#   ./run-srs.sh --web-only     only the web server (hosts with one role; migrations run here)
#   ./run-srs.sh --worker-only  only the worker and, unless --no-beat, the scheduler (no migrations)
#   ./run-srs.sh --no-beat      no scheduler here (run exactly one beat per deployment)
# Ctrl-C (or SIGTERM) stops every process it started.
set -euo pipefail
cd "$(dirname "$0")"

# --- options ---------------------------------------------------------------------------------------------
DEMO=0 PRODUCTION=0 WEB=1 WORKER=1 BEAT=1
for arg in "$@"; do
  case "$arg" in
    --demo) DEMO=1 ;;
    --production) PRODUCTION=1 ;;
    --web-only) WORKER=0 BEAT=0 ;;
    --worker-only) WEB=0 ;;
    --no-beat) BEAT=0 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "Unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done
if [ "$WEB$WORKER" = 00 ]; then echo "--web-only and --worker-only exclude each other." >&2; exit 2; fi
for setting in SRS_WORKER_NICE SRS_BASELINE_NICE; do  # nice would refuse them in a restart loop: say it once here
  if [ -n "${!setting:-}" ] && ! [[ "${!setting}" =~ ^[0-9]+$ && "${!setting}" -le 19 ]]; then
    echo "$setting=${!setting} is not a niceness: give a whole number from 0 (web server's priority) to 19." >&2
    exit 2
  fi
done

# --- environment -----------------------------------------------------------------------------------------
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
VENV="${SRS_VENV:-$PWD/venv}"
# SRS_SKIP_INSTALL=1 with SRS_VENV=/some/venv runs from an existing environment (the test suite does).
[ "${SRS_SKIP_INSTALL:-0}" = 1 ] && [ -x "$VENV/bin/python" ] || { ensure_venv requirements.txt; VENV="$PWD/venv"; }
export PATH="$VENV/bin:$PATH" SRS_PYTHON="$VENV/bin/python"
export FLASK_APP=srs.py

# --- production checks -----------------------------------------------------------------------------------
if [ "$PRODUCTION" = 1 ]; then
  export SRS_CONFIG=production
  # Several processes and hosts must share one key, so production never generates one: it must be set.
  if ! python -c 'import sys, config; key = config.Config.SECRET_KEY; sys.exit(not key or key in config.PUBLIC_SECRET_KEYS)'; then
    echo "Refusing --production with the default SECRET_KEY (unset or a public example): set SECRET_KEY (in the environment or .env)." >&2
    exit 1
  fi
fi

# --- Redis and database ----------------------------------------------------------------------------------
./run-redis.sh
if [ "$WEB" = 1 ]; then
  flask db upgrade
  if [ "$DEMO" = 1 ]; then flask populate-test-users; fi
fi

# --- supervised processes --------------------------------------------------------------------------------
LOG_DIR="$(python -c 'import config; print(config.Config.LOG_FOLDER)')"
RUN_DIR="${SRS_RUN_FOLDER:-$LOG_DIR/run}"
mkdir -p "$LOG_DIR" "$RUN_DIR"
# supervisord's control socket: in RUN_DIR unless that path is longer than a Unix socket's (108 bytes); then in a
# short folder named after RUN_DIR (one per site), readable by this user only.
SOCKET="$RUN_DIR/supervisor.sock"
if [ "${#SOCKET}" -gt 100 ]; then
  SOCKET_DIR="${XDG_RUNTIME_DIR:-/tmp}/srs-$(printf '%s' "$RUN_DIR" | sha256sum | cut -c1-16)"
  mkdir -p -m 0700 "$SOCKET_DIR"
  SOCKET="$SOCKET_DIR/supervisor.sock"
fi
HOST="${FLASK_RUN_HOST:-127.0.0.1}"
PORT="${FLASK_RUN_PORT:-5000}"
if [ "$PRODUCTION" = 1 ]; then
  WEB_WORKERS="${SRS_WEB_WORKERS:-$(( 2 * $(python -c 'import os; print(os.cpu_count() or 1)') + 1 ))}"
  # Uploads stream through the web process: the timeout must cover the largest upload on a slow link.
  WEB_COMMAND="gunicorn --workers $WEB_WORKERS --bind $HOST:$PORT --timeout ${SRS_WEB_TIMEOUT:-120}"
  WEB_COMMAND+=" --forwarded-allow-ips \"${FORWARDED_ALLOW_IPS:-127.0.0.1}\" --access-logfile - srs:app"
else
  WEB_COMMAND="flask run --host $HOST --port $PORT --no-reload"
fi
QUEUE="$(python -c 'import config; print(config.Config.CELERY_TASK_QUEUE)')"
# CPU priority: the web server answers first, then validation, then the baseline attack (nice 0 / 5 / 15), so a
# deadline rush on a shared host keeps uploads fast and feedback ahead of privacy estimates.
# numpy asks the kernel for 2 MB pages for its large arrays; getting them the first time costs a fresh worker about
# 0.4 s of CPU on a 6 M-row upload (the first upload after a start took 1.7x the next ones), for no gain after.
WORKER_COMMAND="env NUMPY_MADVISE_HUGEPAGE=0 nice -n ${SRS_WORKER_NICE:-5} celery -A srs.celery worker --queues $QUEUE --concurrency ${SRS_WORKER_CONCURRENCY:-2}"
WORKER_COMMAND+=" --loglevel ${SRS_WORKER_LOGLEVEL:-info} --without-gossip --without-mingle"
# The baseline attack (a privacy estimate of every accepted defence) has its own queue and worker, one task at
# a time (each uses both cores for seconds: about 6 s at 6 M rows, 20 s at most), so validation and scoring are
# never queued behind it.
# (%%h: supervisord expands % itself; celery receives %h, the host name.)
# SRS_BASELINE_CONCURRENCY=0 starts none here (run one on another worker host).
# Blocks of 4 MB and more are mapped from the system and handed back when freed: the C library's default raises
# that bound as large arrays are freed, and then keeps the freed batches of Arrow's and the trees' threads in their
# arenas, which made a long-lived worker's peak at 6 M rows 750 MB instead of 530 (for about 10 % more CPU time).
BASELINE_CONCURRENCY="${SRS_BASELINE_CONCURRENCY:-1}"
BASELINE_COMMAND="env MALLOC_MMAP_THRESHOLD_=4194304 nice -n ${SRS_BASELINE_NICE:-15} celery -A srs.celery worker --queues $QUEUE.baseline --concurrency $BASELINE_CONCURRENCY"
BASELINE_COMMAND+=" --hostname baseline@%%h --loglevel ${SRS_WORKER_LOGLEVEL:-info} --without-gossip --without-mingle"
BEAT_COMMAND="celery -A srs.celery beat --schedule $RUN_DIR/celerybeat-schedule --pidfile="
BEAT_COMMAND+=" --loglevel ${SRS_WORKER_LOGLEVEL:-info}"

# One [program] block; a program that exits is started again, after 1 s, 2 s, 3 s... while it keeps failing
# within its first seconds. Output goes to this terminal when there is one, else to LOG_FOLDER/NAME.log
# (reopening a redirected stdout would truncate the caller's file).
program() {
  local log="$LOG_DIR/$1.log" keep=5 size=10MB
  if [ -t 1 ]; then log=/dev/stdout keep=0 size=0; fi
  cat <<EOF

[program:$1]
command=$2
directory=$PWD
autostart=true
autorestart=true
startsecs=${SRS_START_SECONDS:-5}
startretries=${SRS_START_RETRIES:-1000}
stopsignal=TERM
stopwaitsecs=$3
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=$log
stdout_logfile_maxbytes=$size
stdout_logfile_backups=$keep
EOF
}
CONF="$RUN_DIR/supervisord.conf"
{
  cat <<EOF
; Generated by run-srs.sh on every start: edit run-srs.sh, not this file.
[supervisord]
nodaemon=true
logfile=$LOG_DIR/supervisord.log
pidfile=$RUN_DIR/supervisord.pid
childlogdir=$RUN_DIR

[unix_http_server]
file=$SOCKET
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$SOCKET
EOF
  # acks_late: a worker stopped mid-task hands the task back, so stopping need not wait for it to finish.
  if [ "$WORKER" = 1 ]; then program worker "$WORKER_COMMAND" 20; fi
  if [ "$WORKER" = 1 ] && [ "$BASELINE_CONCURRENCY" != 0 ]; then program baseline-worker "$BASELINE_COMMAND" 20; fi
  if [ "$BEAT" = 1 ]; then program beat "$BEAT_COMMAND" 10; fi
  if [ "$WEB" = 1 ]; then program web "$WEB_COMMAND" 20; fi
} > "$CONF"

[ "$WEB" = 0 ] || echo "Secret Race Strolling is at http://$HOST:$PORT/ (Ctrl-C stops it)."
echo "Processes: supervisorctl -c $CONF status"
exec supervisord -n -c "$CONF"
