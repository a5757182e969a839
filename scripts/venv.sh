# Sourced by run-srs.sh and run-tests.sh: create or refresh ./venv with the given requirements file.
ensure_venv() {
  local requirements="$1"
  local py="${PYTHON:-python3}"
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Python 3.11 or newer is needed (found: $("$py" --version 2>&1)). Set PYTHON=/path/to/python3.11." >&2
    exit 1
  fi
  [ -x venv/bin/python ] || "$py" -m venv venv
  local stamp="venv/.installed-$(basename "$requirements")"
  if [ ! -f "$stamp" ] || [ "$requirements" -nt "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
    echo "Installing $requirements into ./venv ..."
    venv/bin/python -m pip install --quiet --upgrade pip
    venv/bin/python -m pip install --quiet -r "$requirements"
    touch "$stamp"
  fi
}
