#!/usr/bin/env bash
# GPU check of the trainer, for a machine with an NVIDIA GPU and this repository checked out.
#
#   OUT=/path/to/results bash benchmarks/gpu_check.sh
#
# 1. a virtualenv (reusing system site-packages, so a preinstalled CUDA torch is kept) with
#    torch==2.13.0 numpy pyarrow polars pydantic pydantic-settings pyyaml typer rich boto3
#    duckdb, and mlops_kit from this checkout (PYTHONPATH=src when pip cannot install);
# 2. nvidia-smi and the torch/CUDA versions;
# 3. a smoke run of the Trainer on CUDA (bf16 autocast, device and pinned-host placement,
#    checkpoint + resume);
# 4. benchmarks/training.py --device cuda (ours vs the bare loop; DDP when >1 GPU);
# 5. benchmarks/inference.py --device cuda (torch eager on the GPU; ONNX Runtime CUDA when
#    onnxruntime-gpu and onnx are installed, skipped otherwise).
# Stage limits (seconds): SMOKE_TIMEOUT (240), TRAIN_TIMEOUT (420), INFER_TIMEOUT (180).
# Everything lands under $OUT (default ./gpu-results). Total: about 2-4 minutes on an H200.
# Afterwards, on any machine: python benchmarks/training.py --from-json $OUT/training_gpu.json
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-$REPO/gpu-results}
mkdir -p "$OUT"
LOG=$OUT/gpu_check.log
log() { echo "[gpu_check $(date +%H:%M:%S)] $*" | tee -a "$LOG"; }
status=0

log "nvidia-smi"
nvidia-smi 2>&1 | tee "$OUT/nvidia-smi.txt" || log "nvidia-smi failed"

VENV=${VENV:-${TMPDIR:-/tmp}/mlops-kit-gpu-venv}
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv --system-site-packages "$VENV" || { log "venv failed"; exit 1; }
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
PKGS="torch==2.13.0 numpy pyarrow polars pydantic pydantic-settings pyyaml typer rich boto3 duckdb"
if python -c "import torch, numpy, pyarrow, polars, pydantic, pydantic_settings, yaml, typer, rich, boto3, duckdb" 2>/dev/null; then
  log "dependencies already importable; not reinstalling"
else
  log "pip install $PKGS"
  # shellcheck disable=SC2086
  timeout 600 python -m pip install -q $PKGS 2>&1 | tail -5 | tee -a "$LOG" \
    || log "pip install failed (offline?); continuing with what is installed"
fi
timeout 120 python -m pip install -q --no-deps -e . >>"$LOG" 2>&1 \
  || log "editable install failed; using PYTHONPATH=src"
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"

log "torch environment"
python - <<'PYEOF' 2>&1 | tee "$OUT/torch_env.txt"
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("cuda available", torch.cuda.is_available(), "devices", torch.cuda.device_count())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())
PYEOF

log "smoke: Trainer on CUDA (bf16, both placements, resume)"
timeout "${SMOKE_TIMEOUT:-240}" python - <<'PYEOF' 2>&1 | tee "$OUT/smoke_gpu.txt"
import json, sys, tempfile, time
import torch
from mlops_kit.training import DataConfig, TrainConfig, synthetic_training_table, time_split
from mlops_kit.training.trainer import Trainer

assert torch.cuda.is_available(), "no CUDA device"
table = synthetic_training_table(200_000, seed=3)
split = time_split(table, DataConfig())
out = {}
for placement in ("device", "host"):
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(epochs=3, batch_size=1024, device="cuda", placement=placement,
                          patience=None, export={"enabled": False})
        t0 = time.perf_counter()
        r = Trainer(cfg, checkpoint_uri=tmp).fit(split.train, split.validation)
        more = Trainer(cfg.model_copy(update={"epochs": 4}), checkpoint_uri=tmp)
        r2 = more.fit(split.train, split.validation)
        out[placement] = {
            "precision": r.precision, "device": r.device, "roc_auc": r.metrics["roc_auc"],
            "pr_auc": r.metrics["pr_auc"], "train_samples_per_s": r.train_samples_per_s,
            "resumed_from_epoch": r2.resumed_from_epoch, "epochs_after_resume": r2.epochs_run,
            "seconds": time.perf_counter() - t0,
        }
print(json.dumps(out, indent=2))
ok = all(v["precision"] == "bf16" and v["roc_auc"] > 0.8 and v["resumed_from_epoch"] == 3
         for v in out.values())
print("SMOKE", "OK" if ok else "FAILED")
sys.exit(0 if ok else 1)
PYEOF
[ "${PIPESTATUS[0]}" -eq 0 ] || { log "smoke FAILED"; status=1; }

log "benchmarks/training.py --device cuda"
timeout "${TRAIN_TIMEOUT:-420}" python benchmarks/training.py --device cuda --out-json "$OUT/training_gpu.json" --no-doc \
  2>&1 | tee "$OUT/training_gpu.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { log "training benchmark FAILED"; status=1; }

log "benchmarks/inference.py --device cuda"
timeout "${INFER_TIMEOUT:-180}" python benchmarks/inference.py --device cuda --seconds 0.3 --reps 2 \
  --out-json "$OUT/inference_gpu.json" --no-doc 2>&1 | tee "$OUT/inference_gpu.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { log "inference benchmark FAILED (not required)"; }

log "done (status $status); results in $OUT"
ls -l "$OUT" | tee -a "$LOG"
exit $status
