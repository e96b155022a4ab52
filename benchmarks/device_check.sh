#!/usr/bin/env bash
# The GPU device check in one command: carried wheels (.whl/), vidssl from this tree
# without dependencies (nothing is downloaded), then benchmarks/device_check.py.
#
#   bash benchmarks/device_check.sh OUT_DIR [device_check.py options]
#
# Writes OUT_DIR/device_check.json and the logs beside it (pip.log, device_check.log,
# pytest_cuda.log, pytest_cuda.xml).
set -u
out=${1:?usage: bash benchmarks/device_check.sh OUT_DIR [device_check.py options]}
shift
mkdir -p "$out"
py=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then  # e.g. PyAV and faiss, downloaded beforehand (README, "GPU")
    $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        >"$out/pip.log" 2>&1 || { cat "$out/pip.log"; exit 1; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# an editable install without dependencies or build isolation; where the machine's setuptools
# cannot build it, the tree on PYTHONPATH serves the same code
$py -m pip install -q --no-index --no-deps --no-build-isolation -e . >>"$out/pip.log" 2>&1 \
    || export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
$py benchmarks/device_check.py --out "$out" "$@" 2>&1 | tee "$out/device_check.log"
exit "${PIPESTATUS[0]}"
