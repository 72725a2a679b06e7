"""Container entrypoint: ``python -m mlops_kit.training {train,export,build-table}``.

Exit status: 0 success, 2 invalid arguments or config, 3 ONNX parity gate failed,
1 any other mlops_kit error. Errors go to stderr as one line with their stable code.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from mlops_kit.errors import ConfigError, MlopsKitError

EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_PARITY = 3

_EPILOG = """\
examples:
  # build a training table from the local lake (after 'mlops-kit demo')
  python -m mlops_kit.training build-table --home .mlops_kit --out file:///tmp/train.parquet

  # train, checkpoint, export ONNX behind the parity gate
  python -m mlops_kit.training train --data file:///tmp/train.parquet \\
      --out file:///tmp/model --config training.yaml --set epochs=10

  # two processes with DDP (gloo on CPU, nccl on GPUs)
  torchrun --nproc_per_node=2 -m mlops_kit.training train --data ... --out ...

  # re-export an existing bundle with a stricter gate
  python -m mlops_kit.training export --model file:///tmp/model --atol 1e-6

exit status: 0 ok, 1 error, 2 bad arguments or config, 3 ONNX parity gate failed
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mlops_kit.training",
        description="Train a model on a training table, export it to ONNX and gate on parity.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,export,build-table}")

    t = sub.add_parser(
        "train",
        help="train a model on a training table and write the model bundle",
        description=(
            "Split the table by time, train with validation, early stopping and checkpoints, "
            "then write model.pt, preprocess.json, metrics.json and (behind the parity gate) "
            "model.onnx under --out. Resumes from <out>/checkpoints/last.pt when present."
        ),
    )
    t.add_argument("--data", required=True, help="training table: Parquet file or prefix URI")
    t.add_argument("--out", required=True, help="model bundle URI (file://, s3:// or a path)")
    t.add_argument("--config", help="YAML TrainConfig (local path or storage URI)")
    t.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, dotted for sections, YAML value "
        "(e.g. --set epochs=5 --set model.hidden_sizes=[32,16]); repeatable",
    )
    t.add_argument("--no-resume", action="store_true", help="ignore an existing last.pt")
    t.add_argument("--no-export", action="store_true", help="skip the ONNX export")
    t.add_argument("-q", "--quiet", action="store_true", help="no per-epoch log lines")

    e = sub.add_parser(
        "export",
        help="export a trained bundle to ONNX and run the parity gate",
        description=(
            "Load model.pt and preprocess.json from --model, export with a dynamic batch axis "
            "and the pinned opset, compare ONNX Runtime with PyTorch on held-out rows and "
            "write model.onnx and parity.json (model.onnx only when parity passes)."
        ),
    )
    e.add_argument("--model", required=True, help="model bundle URI written by 'train'")
    e.add_argument("--out", help="where model.onnx and parity.json go (default: --model)")
    e.add_argument(
        "--data",
        help="training table to take held-out rows from (its time-split validation part); "
        "default: the bundle's holdout.parquet",
    )
    e.add_argument("--atol", type=float, help="absolute tolerance (default from config: 1e-5)")
    e.add_argument("--rtol", type=float, help="relative tolerance (default 0)")
    e.add_argument("--opset", type=int, help="ONNX opset (default: the pinned one)")
    e.add_argument("--exporter", choices=["dynamo", "torchscript"], help="ONNX exporter")

    b = sub.add_parser(
        "build-table",
        help="build a point-in-time training table from the local lake",
        description=(
            "Join every labelled reading with its device's latest hourly features at or "
            "before the reading (as-of join) and write the table as Parquet."
        ),
    )
    b.add_argument("--home", help="mlops_kit home of the local profile (default: settings)")
    b.add_argument("--out", required=True, help="Parquet URI to write")
    return p


def _overrides(items: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got '{item}'")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw else None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: '{part}' is not a section")
        node[parts[-1]] = value
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _config(args: argparse.Namespace) -> Any:
    import yaml

    from mlops_kit import storage
    from mlops_kit.training.config import parse_train_config

    data: dict[str, Any] = {}
    source = ""
    if args.config:
        source = f" in '{args.config}'"
        loaded = yaml.safe_load(storage.read_bytes(args.config))
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"invalid training config{source}: expected a mapping")
        data = dict(loaded or {})
    data = _merge(data, _overrides(args.overrides))
    if args.no_export:
        data = _merge(data, {"export": {"enabled": False}})
    return parse_train_config(data, source)


def _cmd_train(args: argparse.Namespace) -> int:
    from mlops_kit.training.distributed import env_context
    from mlops_kit.training.trainer import train

    config = _config(args)
    main = env_context().is_main
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("mlops_kit").setLevel(
        logging.WARNING if args.quiet or not main else logging.INFO
    )
    result = train(config, args.data, args.out, resume=not args.no_resume)
    if main:
        summary = {
            "out": args.out,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "stopped_early": result.stopped_early,
            "resumed_from_epoch": result.resumed_from_epoch,
            "metrics": result.metrics,
            "device": result.device,
            "precision": result.precision,
            "world_size": result.world_size,
            "train_samples_per_s": result.train_samples_per_s,
            "parity": result.parity,
        }
        print(json.dumps(summary, indent=2, default=str))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from mlops_kit import storage
    from mlops_kit.model.preprocess import Preprocessor
    from mlops_kit.training.config import parse_train_config
    from mlops_kit.training.data import read_training_table, time_split
    from mlops_kit.training.model import load_model
    from mlops_kit.training.onnx_export import export_and_verify

    bundle = args.model
    config_uri = storage.join(bundle, "config.json")
    config = parse_train_config(
        storage.read_json(config_uri) if storage.exists(config_uri) else {}, f" in '{config_uri}'"
    )
    export = config.export.model_copy(
        update={
            k: v
            for k, v in {
                "atol": args.atol,
                "rtol": args.rtol,
                "opset": args.opset,
                "exporter": args.exporter,
            }.items()
            if v is not None
        }
    )
    export = type(export).model_validate(export.model_dump())
    model = load_model(storage.join(bundle, "model.pt"))
    pre = Preprocessor.load(storage.join(bundle, "preprocess.json"))
    if args.data:
        split = time_split(read_training_table(args.data, config.data), config.data)
        holdout = split.validation.slice(0, export.parity_rows)
    else:
        holdout = storage.read_parquet(storage.join(bundle, "holdout.parquet"))
    report = export_and_verify(model, pre, holdout, args.out or bundle, export)
    print(json.dumps(report.to_dict(), indent=2))
    return 0


def _cmd_build_table(args: argparse.Namespace) -> int:
    from mlops_kit import storage
    from mlops_kit.config import load_settings
    from mlops_kit.training.data import build_training_table, write_training_table

    settings = load_settings(home=args.home) if args.home else load_settings()
    storage.configure_from_settings(settings)
    table = build_training_table(settings)
    write_training_table(table, args.out)
    positives = int(sum(v or 0 for v in table["label"].to_pylist()))
    print(json.dumps({"out": args.out, "rows": table.num_rows, "positives": positives}))
    return 0


def _report(exc: Exception) -> None:
    """``error [CODE]: message`` in one write, so that ranks sharing a log do not interleave
    inside the line (the local launcher reads the reason from it)."""
    sys.stderr.write(f"error [{getattr(exc, 'code', type(exc).__name__)}]: {exc}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = _parser().parse_args(argv)
    handlers = {"train": _cmd_train, "export": _cmd_export, "build-table": _cmd_build_table}
    try:
        return handlers[args.command](args)
    except ConfigError as exc:
        _report(exc)
        return EXIT_CONFIG
    except MlopsKitError as exc:
        _report(exc)
        return EXIT_PARITY if exc.code == "ONNX_PARITY_FAILED" else EXIT_ERROR


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
