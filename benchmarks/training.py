"""Trainer overhead: samples/s of mlops_kit's training loop vs a bare PyTorch loop.

Both loops train the same model (the trainer's MLP, same seed, same optimiser settings) on
the same synthetic data in one process, in interleaved repetitions. The bare loop is the
idiomatic hand-written one: shuffle, index a batch, forward, loss, backward, step.
Ours is a whole ``Trainer.fit_arrays`` call: the same steps plus validation with
ROC-AUC / PR-AUC / F1 after every epoch, ``last.pt``/``best.pt`` checkpoints written
atomically, early-stopping bookkeeping, restoring the best weights and a final evaluation.
samples/s is training rows processed divided by the wall time of the whole call.

CPU (default): fp32, ``--threads`` intra-op threads for both loops. CUDA (``--device cuda``):
bf16 autocast for both loops; the bare loop keeps the data in GPU memory, ours runs with
its default placement (also on the GPU for a table this size) and, as a second row, with
pinned host memory and asynchronous copies. With more than one GPU, ``--ddp N`` (default:
all GPUs) also runs both loops under DDP (torchrun, NCCL).

Standalone: needs only torch, numpy, pyarrow and the mlops_kit checkout (synthetic data,
no lake). Writes its section of docs/benchmarks.md between the training markers unless
``--no-doc``; ``--out-json`` saves the raw figures, ``--from-json`` renders saved figures
(e.g. from a GPU machine) into the doc.

Usage:
    python benchmarks/training.py                         # CPU, writes docs/benchmarks.md
    python benchmarks/training.py --device cuda --out-json gpu.json --no-doc
    python benchmarks/training.py --from-json gpu.json    # record GPU figures in the doc
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
SECTION = "training"
TARGET_RATIO = 0.90

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {"rows": 120_000, "val_rows": 12_000, "batch_size": 256, "hidden": "64,32",
            "epochs": 3, "reps": 5},
    "cuda": {"rows": 2_000_000, "val_rows": 200_000, "batch_size": 4096,
             "hidden": "512,256,128", "epochs": 3, "reps": 5},
}  # fmt: skip


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    p.add_argument("--rows", type=int, help="training rows (default per device)")
    p.add_argument("--val-rows", type=int, help="validation rows (default per device)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--hidden", help="hidden sizes, comma separated")
    p.add_argument("--epochs", type=int)
    p.add_argument("--reps", type=int, help="interleaved repetitions of each loop")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads on CPU")
    p.add_argument("--ddp", type=int, default=None, help="processes for the DDP run")
    p.add_argument("--out-json", help="write the raw figures here")
    p.add_argument("--no-doc", action="store_true", help="do not touch docs/benchmarks.md")
    p.add_argument("--from-json", help="render saved figures into the doc and exit")
    p.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.from_json:
        return args
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    preset = PRESETS[args.device]
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


# -- data and the two loops ----------------------------------------------------------------


def make_data(args: argparse.Namespace) -> dict[str, Any]:
    from mlops_kit.model.preprocess import Preprocessor
    from mlops_kit.training.config import DataConfig
    from mlops_kit.training.data import labels, synthetic_training_table

    table = synthetic_training_table(args.rows + args.val_rows, seed=1)
    train, val = table.slice(0, args.rows), table.slice(args.rows)
    cols = DataConfig().feature_columns
    pre = Preprocessor.fit(train, cols)
    data_cfg = DataConfig()
    return {
        "pre": pre,
        "x": pre.transform(train),
        "y": labels(train, data_cfg),
        "xv": pre.transform(val),
        "yv": labels(val, data_cfg),
    }


def config(args: argparse.Namespace, ckpt: str | None = None, **over: Any) -> Any:
    from mlops_kit.training.config import TrainConfig

    hidden = [int(h) for h in args.hidden.split(",") if h]
    return TrainConfig.model_validate(
        {
            "model": {"hidden_sizes": hidden, "dropout": 0.0},
            "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-4},
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "patience": None,
            "seed": 0,
            "device": args.device,
            "precision": "bf16" if args.device == "cuda" else "fp32",
            "checkpoint_uri": ckpt,
            "export": {"enabled": False},
            **over,
        }
    )


def bare_loop(args: argparse.Namespace, d: dict[str, Any], rank: int = 0, world: int = 1) -> float:
    """The hand-written loop; returns training samples/s (all ranks together)."""
    import torch

    from mlops_kit.training.model import build_model

    cfg = config(args)
    local = int(os.environ.get("LOCAL_RANK", rank))
    device = torch.device("cuda", local) if args.device == "cuda" else torch.device("cpu")
    torch.manual_seed(0)
    model = build_model(d["x"].shape[1], cfg.model).to(device)
    net: Any = model
    if world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel
        net = ddp(model, device_ids=[local]) if device.type == "cuda" else ddp(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x = torch.from_numpy(d["x"]).to(device)
    y = torch.from_numpy(d["y"]).reshape(-1, 1).to(device)
    n, bs = x.shape[0], args.batch_size
    local_bs = bs // world
    gen = torch.Generator(device=device).manual_seed(0)
    amp = device.type == "cuda"
    _sync(device)
    t0 = time.perf_counter()
    for _epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(n, device=device, generator=gen)
        # each rank takes its contiguous slice of every global batch (like DistributedSampler)
        for i in range(0, n - bs + 1 if world > 1 else n, bs):
            idx = (
                perm[i + rank * local_bs : i + (rank + 1) * local_bs]
                if world > 1
                else perm[i : i + bs]
            )
            xb, yb = x[idx], y[idx]
            if amp:
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                    out = net(xb)
                loss = loss_fn(out.float(), yb)
            else:
                loss = loss_fn(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    _sync(device)
    return n * args.epochs / (time.perf_counter() - t0)


def ours(args: argparse.Namespace, d: dict[str, Any], **over: Any) -> tuple[float, float]:
    """A whole Trainer run; returns (samples/s of the whole call, of the training steps)."""
    import torch

    from mlops_kit.training.trainer import Trainer

    with tempfile.TemporaryDirectory(prefix="mlk-bench-") as tmp:
        trainer = Trainer(config(args, ckpt=tmp, **over))
        device = torch.device("cuda") if args.device == "cuda" else torch.device("cpu")
        _sync(device)
        t0 = time.perf_counter()
        result = trainer.fit_arrays(d["x"], d["y"], d["xv"], d["yv"], d["pre"], resume=False)
        _sync(device)
        wall = time.perf_counter() - t0
    n = d["x"].shape[0] * args.epochs
    return n / wall, result.train_samples_per_s


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def run_pair(
    args: argparse.Namespace, d: dict[str, Any], variants: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Interleave bare and our loops ``args.reps`` times after one warm-up each."""
    bare_loop(args, d)
    for over in variants.values():
        ours(args, d, **over)
    reps: dict[str, list[float]] = {"bare": [], **{k: [] for k in variants}}
    steps_only: dict[str, list[float]] = {k: [] for k in variants}
    for rep in range(args.reps):
        names = ["bare", *variants]
        if rep % 2:
            names.reverse()
        for name in names:
            if name == "bare":
                reps["bare"].append(bare_loop(args, d))
            else:
                whole, steps = ours(args, d, **variants[name])
                reps[name].append(whole)
                steps_only[name].append(steps)
    med = {k: statistics.median(v) for k, v in reps.items()}
    return {
        "samples_per_s": reps,
        "median": med,
        "ratio_vs_bare": {k: med[k] / med["bare"] for k in variants},
        "steps_only_median": {k: statistics.median(v) for k, v in steps_only.items()},
    }


# -- DDP -----------------------------------------------------------------------------------


def ddp_worker(args: argparse.Namespace) -> None:
    """Run under torchrun: bare DDP loop vs ours under DDP, rank 0 writes --out-json."""
    import torch
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if args.device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
    else:
        torch.set_num_threads(args.threads)
    d = make_data(args)
    out: dict[str, list[float]] = {"bare_ddp": [], "ours_ddp": []}
    for rep in range(args.reps + 1):
        backend = "nccl" if args.device == "cuda" else "gloo"
        dist.init_process_group(backend)
        bare = bare_loop(args, d, rank, world)
        dist.destroy_process_group()
        whole, _steps = ours(args, d)  # the trainer joins and leaves the group itself
        if rep:  # the first repetition warms up
            out["bare_ddp"].append(bare)
            out["ours_ddp"].append(whole)
    if rank == 0 and args.out_json:
        Path(args.out_json).write_text(json.dumps(out))


def run_ddp(args: argparse.Namespace, nproc: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ddp.json"
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}", __file__, "--ddp-worker", "--no-doc",
            "--device", args.device, "--rows", str(args.rows), "--val-rows", str(args.val_rows),
            "--batch-size", str(args.batch_size), "--hidden", args.hidden,
            "--epochs", str(args.epochs), "--reps", str(args.reps),
            "--threads", str(args.threads), "--out-json", str(out),
        ]  # fmt: skip
        env = {
            **os.environ,
            "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        }
        subprocess.run(cmd, check=True, env=env)
        raw = json.loads(out.read_text())
    med = {k: statistics.median(v) for k, v in raw.items()}
    return {
        "processes": nproc,
        "samples_per_s": raw,
        "median": med,
        "ratio_vs_bare": med["ours_ddp"] / med["bare_ddp"],
    }


# -- environment and the doc ---------------------------------------------------------------


def machine(device: str) -> dict[str, Any]:
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
        "numpy": np.__version__,
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpus"] = torch.cuda.device_count()
        info["cuda"] = torch.version.cuda
    return info


def render(res: dict[str, Any]) -> str:
    a, m = res["args"], res["machine"]
    dev = res["device"]
    where = (
        f"{m.get('gpu', '?')} x{m.get('gpus', 1)}, CUDA {m.get('cuda')}"
        if dev == "cuda"
        else (
            f"{m['cpu']}, {m['cores']} cores, {a['threads']} torch thread(s), load average "
            f"{m.get('load_avg_1m')} at the end (this run included)"
        )
    )
    prec = "bf16 autocast" if dev == "cuda" else "fp32"
    lines = [
        f"### {dev.upper()} ({prec})",
        "",
        f"Command: `{res['command']}`. Machine: {where}; Python {m['python']}, "
        f"torch {m['torch']}, numpy {m['numpy']}. Recorded {res['when']}.",
        f"Data: {a['rows']:,} training + {a['val_rows']:,} validation rows x 36 features "
        f"(synthetic); MLP hidden [{a['hidden']}], AdamW, batch {a['batch_size']}, "
        f"{a['epochs']} epochs; {a['reps']} interleaved repetitions after a warm-up, medians.",
        "",
        "| loop | samples/s (median) | vs bare | reps (samples/s) |",
        "|---|---:|---:|---|",
    ]
    p = res["pair"]
    lines.append(
        f"| bare PyTorch loop | {p['median']['bare']:,.0f} | 1.00x | "
        + ", ".join(f"{v:,.0f}" for v in p["samples_per_s"]["bare"])
        + " |"
    )
    labels = {
        "ours": "**mlops_kit Trainer** (validation + metrics + checkpoints every epoch)",
        "ours_host": "mlops_kit Trainer, pinned host memory + async copies",
    }
    for k, ratio in p["ratio_vs_bare"].items():
        lines.append(
            f"| {labels.get(k, k)} | {p['median'][k]:,.0f} | **{ratio:.2f}x** | "
            + ", ".join(f"{v:,.0f}" for v in p["samples_per_s"][k])
            + " |"
        )
    if res.get("ddp"):
        dd = res["ddp"]
        lines.append(
            f"| bare loop, DDP x{dd['processes']} | {dd['median']['bare_ddp']:,.0f} | 1.00x | |"
        )
        lines.append(
            f"| mlops_kit Trainer, DDP x{dd['processes']} | {dd['median']['ours_ddp']:,.0f} | "
            f"**{dd['ratio_vs_bare']:.2f}x** | |"
        )
    steps = p["steps_only_median"].get("ours")
    if steps:
        lines += [
            "",
            f"Training steps alone inside the Trainer (validation and checkpoints excluded): "
            f"{steps:,.0f} samples/s. Target: the whole Trainer call at least "
            f"{TARGET_RATIO:.2f}x the bare loop ({'met' if p['ratio_vs_bare']['ours'] >= TARGET_RATIO else 'NOT met'}).",
        ]
    return "\n".join(lines)


def write_doc(res: dict[str, Any]) -> None:
    dev = res["device"]
    block = f"<!-- training:{dev}:start -->\n{render(res)}\n<!-- training:{dev}:end -->"
    start, end = f"<!-- {SECTION}:start -->", f"<!-- {SECTION}:end -->"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        body, tail = rest.split(end, 1)
    else:
        head, body, tail = text.rstrip("\n") + "\n\n", "", "\n"
        body = (
            "\n## Training: mlops_kit Trainer vs a bare PyTorch loop\n\n"
            "Written by `benchmarks/training.py` (one block per device).\n"
        )
    sub_start, sub_end = f"<!-- training:{dev}:start -->", f"<!-- training:{dev}:end -->"
    if sub_start in body and sub_end in body:
        pre, rest = body.split(sub_start, 1)
        _old, post = rest.split(sub_end, 1)
        body = pre + block + post
    else:
        body = body.rstrip("\n") + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(head + start + body + end + tail)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.from_json:
        write_doc(json.loads(Path(args.from_json).read_text()))
        print(f"wrote the {json.loads(Path(args.from_json).read_text())['device']} block of {DOC}")
        return 0
    sys.path.insert(0, str(REPO / "src"))
    import torch

    if args.ddp_worker:
        ddp_worker(args)
        return 0
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    elif not torch.cuda.is_available():
        print("--device cuda but torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    d = make_data(args)
    variants: dict[str, dict[str, Any]] = {"ours": {}}
    if args.device == "cuda":
        variants["ours_host"] = {"placement": "host"}
    pair = run_pair(args, d, variants)
    ddp = None
    nproc = (
        args.ddp
        if args.ddp is not None
        else (torch.cuda.device_count() if args.device == "cuda" else 0)
    )
    if nproc > 1:
        ddp = run_ddp(args, nproc)
    cmd = "python benchmarks/training.py " + " ".join(
        shlex.quote(a) for a in (argv or sys.argv[1:])
    )
    res = {
        "device": args.device,
        "command": cmd.strip(),
        "when": time.strftime("%Y-%m-%d", time.gmtime()),
        "args": {
            k: getattr(args, k)
            for k in ("rows", "val_rows", "batch_size", "hidden", "epochs", "reps", "threads")
        },
        "machine": machine(args.device),
        "pair": pair,
        "ddp": ddp,
        "seconds": time.perf_counter() - t0,
    }
    print(render(res))
    print(f"\n(total {res['seconds']:.1f} s)")
    if args.out_json:
        Path(args.out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out_json).write_text(json.dumps(res, indent=2))
    if not args.no_doc:
        write_doc(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
