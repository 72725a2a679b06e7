"""Inference: ONNX Runtime vs torch eager, rows/s at batch 1, 32, 256 and 4096.

The model is the trainer's MLP (36 features, hidden [64, 32] by default), exported by
``mlops_kit.training.onnx_export`` (dynamic batch axis, pinned opset) and checked for parity
at every batch size before timing. ONNX Runtime runs with one intra-op thread, sequential
execution, as the serving replicas do; torch eager runs under ``inference_mode`` with one
thread (like for like) and with torch's default thread count. Each cell runs for at least
``--seconds`` per repetition; repetitions are interleaved across engines; medians.

With ``--device cuda`` the torch rows run on the GPU (synchronised per call) and ONNX Runtime
uses its CUDA provider when ``onnxruntime-gpu`` is installed (otherwise those rows are
skipped). Without onnx / onnxruntime only the torch rows are measured.

Usage:
    python benchmarks/inference.py                  # CPU, writes docs/benchmarks.md
    python benchmarks/inference.py --device cuda --out-json inf_gpu.json --no-doc
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
SECTION = "inference"
BATCHES = (1, 32, 256, 4096)


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--hidden", default="64,32", help="hidden sizes, comma separated")
    p.add_argument("--seconds", type=float, default=0.4, help="minimum time per cell and rep")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--exporter", choices=["dynamo", "torchscript"], default="dynamo")
    p.add_argument("--out-json", help="write the raw figures here")
    p.add_argument("--no-doc", action="store_true", help="do not touch docs/benchmarks.md")
    return p.parse_args(argv)


def _rate(call: Callable[[], Any], rows: int, seconds: float) -> float:
    call()  # warm-up
    n, t0 = 0, time.perf_counter()
    while True:
        call()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and n >= 3:
            return n * rows / elapsed


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    sys.path.insert(0, str(REPO / "src"))
    import torch

    from mlops_kit._lazy import is_installed
    from mlops_kit.model.preprocess import Preprocessor
    from mlops_kit.training.config import ModelConfig
    from mlops_kit.training.model import build_model

    t_start = time.perf_counter()
    n_features = 36
    hidden = [int(h) for h in args.hidden.split(",") if h]
    torch.manual_seed(0)
    model = build_model(n_features, ModelConfig(hidden_sizes=hidden, dropout=0.0)).eval()
    pre = Preprocessor(
        feature_names=tuple(f"f{i}" for i in range(n_features)),
        means=(0.0,) * n_features,
        scales=(1.0,) * n_features,
    )
    rng = np.random.default_rng(0)
    inputs = {b: rng.normal(size=(b, n_features)).astype(np.float32) for b in BATCHES}
    default_threads = torch.get_num_threads()

    engines: dict[str, Callable[[int], Callable[[], Any]]] = {}
    parity: dict[str, Any] = {}
    have_ort = all(is_installed(m) for m in ("onnx", "onnxruntime")) and (
        args.exporter == "torchscript" or is_installed("onnxscript")
    )
    if have_ort:
        import onnxruntime as ort

        from mlops_kit.training.onnx_export import check_parity, export_onnx, onnx_session

        graph = export_onnx(model, pre, exporter=args.exporter)
        for b in BATCHES:
            parity[str(b)] = check_parity(model, graph, inputs[b]).to_dict()
        providers = ["CPUExecutionProvider"]
        if args.device == "cuda":
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
            else:
                providers = []
        if providers:
            sess = onnx_session(graph, threads=1, providers=providers)
            label = "onnxruntime CUDA" if args.device == "cuda" else "onnxruntime, 1 thread"

            def ort_call(b: int) -> Callable[[], Any]:
                x = inputs[b]
                return lambda: sess.run(["probability"], {"features": x})

            engines[label] = ort_call

    device = torch.device(args.device)
    dev_model = build_model(n_features, ModelConfig(hidden_sizes=hidden, dropout=0.0))
    dev_model.load_state_dict(model.state_dict())
    dev_model = dev_model.to(device).eval()

    def torch_call(threads: int | None) -> Callable[[int], Callable[[], Any]]:
        def make(b: int) -> Callable[[], Any]:
            x = torch.from_numpy(inputs[b])

            def call() -> Any:
                with torch.inference_mode():
                    out = torch.sigmoid(dev_model(x.to(device, non_blocking=True)))
                    return out.cpu().numpy()

            return call

        return make

    if args.device == "cuda":
        engines["torch eager CUDA"] = torch_call(None)
    else:
        engines["torch eager, 1 thread"] = torch_call(1)
        engines[f"torch eager, {default_threads} threads"] = torch_call(default_threads)

    threads_of = {
        "torch eager, 1 thread": 1,
        f"torch eager, {default_threads} threads": default_threads,
    }
    rates: dict[str, dict[str, list[float]]] = {e: {str(b): [] for b in BATCHES} for e in engines}
    for rep in range(args.reps):
        order = list(engines) if rep % 2 == 0 else list(reversed(engines))
        for b in BATCHES:
            for name in order:
                torch.set_num_threads(threads_of.get(name, default_threads))
                rates[name][str(b)].append(_rate(engines[name](b), b, args.seconds))
    torch.set_num_threads(default_threads)
    med = {e: {b: statistics.median(v) for b, v in r.items()} for e, r in rates.items()}
    info = _machine(args.device)
    info["onnxruntime"] = __import__("onnxruntime").__version__ if have_ort else None
    cmd = "python benchmarks/inference.py " + " ".join(
        shlex.quote(a) for a in (argv or sys.argv[1:])
    )
    res = {
        "device": args.device,
        "command": cmd.strip(),
        "when": time.strftime("%Y-%m-%d", time.gmtime()),
        "hidden": hidden,
        "machine": info,
        "rows_per_s": rates,
        "median": med,
        "parity": parity,
        "seconds": time.perf_counter() - t_start,
    }
    print(render(res))
    if args.out_json:
        Path(args.out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out_json).write_text(json.dumps(res, indent=2))
    if not args.no_doc:
        write_doc(res)
    return 0


def _machine(device: str) -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def render(res: dict[str, Any]) -> str:
    m, med = res["machine"], res["median"]
    engines = list(med)
    base = next((e for e in engines if e.startswith("torch eager")), engines[0])
    where = (
        m.get("gpu")
        if res["device"] == "cuda"
        else f"{m['cpu']}, {m['cores']} cores, load average {m.get('load_avg_1m')} at the end"
    )
    lines = [
        f"### {res['device'].upper()}",
        "",
        f"Command: `{res['command']}`. Machine: {where}; Python {m['python']}, torch "
        f"{m['torch']}, onnxruntime {m.get('onnxruntime')}. Recorded {res['when']}. "
        f"Model: MLP 36 -> {res['hidden']} -> 1 (+ sigmoid), float32.",
        "",
        "| engine | " + " | ".join(f"batch {b}" for b in BATCHES) + " |",
        "|---|" + "---:|" * len(BATCHES),
    ]
    for e in engines:
        cells = []
        for b in BATCHES:
            v = med[e][str(b)]
            ratio = v / med[base][str(b)]
            cells.append(f"{v:,.0f} ({ratio:.1f}x)")
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"rows/s, median of the repetitions; in brackets: vs {base}. Batch 1 latency: "
        + ", ".join(f"{e} {1e6 / med[e]['1']:.1f} us" for e in engines)
        + "."
    )
    if res["parity"]:
        worst = max(p["max_abs_diff"] for p in res["parity"].values())
        lines.append(
            f"Parity at every batch size before timing: max abs diff {worst:.2e} "
            f"(gate {next(iter(res['parity'].values()))['atol']:g}), opset "
            f"{next(iter(res['parity'].values()))['opset']}."
        )
    return "\n".join(lines)


def write_doc(res: dict[str, Any]) -> None:
    dev = res["device"]
    block = f"<!-- inference:{dev}:start -->\n{render(res)}\n<!-- inference:{dev}:end -->"
    start, end = f"<!-- {SECTION}:start -->", f"<!-- {SECTION}:end -->"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        body, tail = rest.split(end, 1)
    else:
        head, tail = text.rstrip("\n") + "\n\n", "\n"
        body = (
            "\n## Inference: ONNX Runtime vs torch eager\n\n"
            "Written by `benchmarks/inference.py` (one block per device).\n"
        )
    sub_start, sub_end = f"<!-- inference:{dev}:start -->", f"<!-- inference:{dev}:end -->"
    if sub_start in body and sub_end in body:
        pre, rest = body.split(sub_start, 1)
        _old, post = rest.split(sub_end, 1)
        body = pre + block + post
    else:
        body = body.rstrip("\n") + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(head + start + body + end + tail)


if __name__ == "__main__":
    sys.exit(main())
