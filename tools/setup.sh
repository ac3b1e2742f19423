#!/usr/bin/env bash
# Create or reuse the development environments; safe to run again (a venv whose requirements file
# has not changed since it was built is left alone).
#   .venv    real Blender 4.5 as `bpy`, test, lint and type-check tools (requirements/dev.txt), and Ray
#            for `python -m inference batch` (requirements/batch.txt, installed with dev.txt as
#            constraints so Ray's dependencies cannot move a pinned package)
#   .venv50  real Blender 5.0 as `bpy`, to run the Blender tests again (requirements/blender50.txt)
#   .venv-mediapipe  MediaPipe's own Tasks API, the perception parity and speed referee; apart from
#            .venv because it needs numpy 2 and opencv-contrib (requirements/mediapipe.txt)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "Python 3.11 is required (Blender 4.5 and 5.0 embed 3.11); set PYTHON=/path/to/python3.11" >&2; exit 1; }

# ensure_venv DIR REQUIREMENTS [EXTRA...]: EXTRA files are installed after REQUIREMENTS, constrained
# by it; the stamp covers every file, so changing any of them rebuilds the venv.
ensure_venv() {
  local dir=$1 requirements=$2 stamp want extra
  shift 2
  stamp="$dir/.requirements.sha256"
  want=$(cat "$requirements" "$@" | sha256sum | cut -d' ' -f1)
  if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "setting up $dir from $requirements $*"
  [ -x "$dir/bin/python" ] || "$PYTHON" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  for extra in "$@"; do
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$extra" -c "$requirements"
  done
  echo "$want" > "$stamp"
}

ensure_venv .venv requirements/dev.txt requirements/batch.txt
ensure_venv .venv50 requirements/blender50.txt
ensure_venv .venv-mediapipe requirements/mediapipe.txt
