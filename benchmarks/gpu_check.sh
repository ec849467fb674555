#!/usr/bin/env bash
# GPU check (issue #14), under 8 minutes on one GPU. Prints one JSON line per figure:
#   gpu_tests        pytest -m gpu (tests/gpu/): CUDA vs CPU physics, training, inference, LSQML
#   train            training throughput (patterns/s) on the standard scene, batch 8 and 64
#   infer            inference + stitching at 1k and 100k patterns (streamed HDF5 scenes)
#   lsqml            pty-chi LSQML on the GPU (standard scene, test half), with snapshots
#   time_to_quality  benchmarks/time_to_quality.py on the standard scene, short budget
# and one {"part": ..., "status": ok|failed|timeout|skipped} line per part.
#
#   bash benchmarks/gpu_check.sh            # from the repository root (or anywhere)
#
# Runs the package from the source tree (PYTHONPATH=src). Wheels in ./.whl/ (e.g. pty-chi, or
# anything the machine's Python lacks) are installed first, offline and without dependencies.
# Parts whose dependencies are missing are skipped with a JSON line saying so. Without a GPU
# (or without torch) it prints one line and exits 0. Environment: PYTHON (default python3),
# GPU_CHECK_WORK (work directory, default a new temporary one), GPU_CHECK_BUDGET_S (default 460).
set -u

cd "$(dirname "$0")/.." || exit 1
PY=${PYTHON:-python3}

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
        >/dev/null 2>&1; then
    echo '{"gpu_check": "skipped", "reason": "no GPU found (torch.cuda.is_available() is false or torch is not importable)"}'
    exit 0
fi

START=$(date +%s)
DEADLINE=$((START + ${GPU_CHECK_BUDGET_S:-460}))
WORK=${GPU_CHECK_WORK:-$(mktemp -d /tmp/gpu_check.XXXXXX)}
mkdir -p "$WORK"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

json() {  # json PART KEY=VALUE... (values are strings; numbers/booleans via KEY:=JSON)
    "$PY" - "$@" <<'EOF'
import json, sys
part, *kv = sys.argv[1:]
d = {"part": part}
for item in kv:
    k, v = item.split("=", 1)
    if k.endswith(":"):
        d[k[:-1]] = json.loads(v)
    else:
        d[k] = v
print(json.dumps(d))
EOF
}

have() {  # have MODULE... : all importable (found) by this Python
    "$PY" -c 'import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in sys.argv[1:]) else 1)' "$@"
}

if compgen -G ".whl/*.whl" >/dev/null; then
    if "$PY" -m pip install --no-deps --no-index --quiet .whl/*.whl >"$WORK/wheels.log" 2>&1; then
        json wheels status=ok "installed=$(cd .whl && echo *.whl)"
    else
        json wheels status=failed "error=$(tail -n 1 "$WORK/wheels.log")"
    fi
fi

run_part() {  # run_part NAME BUDGET_S "MODULES" COMMAND... : time-boxed, JSON lines to stdout
    local name=$1 budget=$2 mods=$3
    shift 3
    local missing=()
    for m in $mods; do have "$m" || missing+=("$m"); done
    if ((${#missing[@]})); then
        json "$name" status=skipped "reason=missing Python module(s): ${missing[*]}"
        return
    fi
    local left=$((DEADLINE - $(date +%s)))
    if ((left < 20)); then
        json "$name" status=skipped "reason=time budget used up"
        return
    fi
    ((budget > left - 5)) && budget=$((left - 5))
    local t0 rc
    t0=$(date +%s)
    timeout --kill-after=10 "$budget" "$@" >"$WORK/$name.out" 2>"$WORK/$name.log"
    rc=$?
    grep '^{"part"' "$WORK/$name.out"
    if ((rc == 124 || rc == 137)); then
        json "$name" status=timeout "timeout_s:=$budget" "log=$WORK/$name.log"
    elif ((rc != 0)); then
        json "$name" status=failed "rc:=$rc" "error=$(grep -v '^\s*$' "$WORK/$name.log" | tail -n 1)" \
            "log=$WORK/$name.log"
    else
        json "$name" status=ok "seconds:=$(($(date +%s) - t0))"
    fi
}

CORE="numpy scipy lightning h5py skimage safetensors yaml tqdm"
json gpu_check status=started "work=$WORK" "budget_s:=$((DEADLINE - START))" \
    "gpu=$("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))' 2>/dev/null)"

run_part gpu_tests 75 "$CORE pytest" "$PY" benchmarks/gpu_check.py tests "$WORK"
run_part train 80 "$CORE" "$PY" benchmarks/gpu_check.py train "$WORK" --seconds 20
run_part infer 110 "$CORE" "$PY" benchmarks/gpu_check.py infer "$WORK" --sizes 1000,100000
run_part lsqml 60 "$CORE ptychi" "$PY" benchmarks/gpu_check.py lsqml "$WORK" --epochs 50
run_part time_to_quality_run 150 "$CORE ptychi matplotlib" "$PY" benchmarks/time_to_quality.py \
    --out "$WORK/ttq" --minutes 1 --lsqml-epochs 100 --snapshot-every 5
if [ -f "$WORK/ttq/time_to_quality.json" ]; then
    "$PY" benchmarks/gpu_check.py ttq-summary "$WORK/ttq/time_to_quality.json"
    cat "$WORK/ttq/time_to_quality.md" >&2
fi

json gpu_check status=done "seconds:=$(($(date +%s) - START))" "work=$WORK"
exit 0
