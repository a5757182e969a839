#!/usr/bin/env bash
# One command to run the tests: venv with test requirements, Redis, then pytest (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
ensure_venv requirements-test.txt
# requirements-test.txt installs the `srs` client (./client), which ships a copy of app/evaluation: reinstall it
# whenever either changed since, so the installed `srs` (and tests/client/test_packaging.py) see the current code.
client_stamp=venv/.installed-client
if [ ! -f "$client_stamp" ] || [ -n "$(find client app/evaluation -name __pycache__ -prune -o -newer "$client_stamp" -print -quit)" ]; then
  echo "Installing the srs client (./client) into ./venv ..."
  if [ -x venv/bin/uv ]; then
    venv/bin/uv pip install --quiet --python venv/bin/python --no-deps --no-build-isolation --reinstall ./client
  else
    venv/bin/python -m pip install --quiet --no-deps --no-build-isolation --force-reinstall ./client
  fi
  touch "$client_stamp"
fi
export PATH="$PWD/venv/bin:$PATH" SRS_RUN_TESTS=1  # the installed client is current (tests/client/test_packaging.py)
export CELERY_BROKER_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"
./run-redis.sh
# Test files run in parallel processes (pytest-xdist), a file's tests in one process so that its module fixtures
# (a live site, a served app) start once, in the order tests/conftest.py gives them (the longest first, not xdist's
# most-tests-first); SRS_TEST_PROCESSES=0 runs everything in this process.
exec python -m pytest -n "${SRS_TEST_PROCESSES:-auto}" --dist loadfile --no-loadscope-reorder "$@"
