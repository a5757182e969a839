# Sourced by run-srs.sh and run-tests.sh: create or refresh ./venv with the given requirements file.
# uv (pinned, installed into the venv by pip) installs the requirements in seconds where pip takes a minute; pip
# does it alone wherever uv cannot (no wheel for the platform, an index only pip is configured for).
SRS_UV_VERSION=0.9.30
# The venv is installed without compiled bytecode: Python writes it as each module is first imported, once, which
# costs a few seconds of the first run instead of compiling every installed module (half a minute). Where the
# environment says not to write bytecode, every process would compile what it imports at every start: not here.
unset PYTHONDONTWRITEBYTECODE
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
    if venv/bin/python -m pip install --quiet "uv==$SRS_UV_VERSION" 2>/dev/null \
      && venv/bin/uv pip install --quiet --python venv/bin/python -r "$requirements"; then
      :
    else
      echo "uv could not install $requirements; installing with pip instead (a minute or two) ..." >&2
      venv/bin/python -m pip install --quiet --upgrade pip
      venv/bin/python -m pip install --quiet -r "$requirements"
    fi
    touch "$stamp"
  fi
}
