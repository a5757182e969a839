#!/usr/bin/env bash
# One command to run the tests: venv with test requirements, Redis, then pytest (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
ensure_venv requirements-test.txt
export PATH="$PWD/venv/bin:$PATH"
export CELERY_BROKER_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"
./run-redis.sh
exec python -m pytest "$@"
