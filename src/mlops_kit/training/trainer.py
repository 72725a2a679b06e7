"""The training loop: validation, early stopping, checkpoints, resume, AMP and DDP.

:class:`Trainer` fits a :class:`~mlops_kit.training.model.FailureMLP` on two tables (the
time-based split of a training set); :func:`train` does the whole step from a training
table URI to a model bundle::

    <out>/model.pt          weights + model config (``load_model``)
    <out>/preprocess.json   feature order, means, scales (``Preprocessor.load``)
    <out>/metrics.json      per-epoch history, best epoch, final validation metrics, parity
    <out>/config.json       the resolved TrainConfig
    <out>/holdout.parquet   held-out validation rows used by the ONNX parity gate
    <out>/model.onnx        exported graph (only written when parity passes)
    <out>/parity.json       parity figures of the export
    <out>/checkpoints/      last.pt and best.pt (unless checkpoint_uri points elsewhere)

Each epoch ends with ``best.pt`` (when the monitored metric improved) and then ``last.pt``
written atomically by rank 0. They hold the weights, the optimiser, the early-stopping
state and every rank's RNG state; the shuffle of an epoch is a pure function of the seed
and the epoch number. A run restarted after a kill continues at the next epoch and ends
with the same weights as a run that was never interrupted.

The checkpoints are :mod:`mlops_kit.training.checkpoint`'s, early stopping is
:mod:`mlops_kit.training.early_stopping`'s, and the device, precision and batch feeding are
:mod:`mlops_kit.training.device`'s; this module holds the loop and the whole step.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from mlops_kit import storage
from mlops_kit._faults import maybe_fail
from mlops_kit._lazy import require
from mlops_kit.model.preprocess import Preprocessor
from mlops_kit.training import distributed as dist_utils
from mlops_kit.training.checkpoint import (
    BEST,
    CHECKPOINT_FORMAT_VERSION,
    LAST,
    Checkpoints,
    set_rng_state,
)
from mlops_kit.training.config import TrainConfig
from mlops_kit.training.data import labels, read_training_table, time_split
from mlops_kit.training.device import (
    BatchFeeder,
    resolve_device,
    resolve_precision,
    seed_everything,
)
from mlops_kit.training.distributed import DistContext
from mlops_kit.training.early_stopping import EarlyStopping
from mlops_kit.training.errors import TrainingError
from mlops_kit.training.metrics import binary_metrics
from mlops_kit.training.model import FailureMLP, build_model, save_model

torch = require("torch", "training")

log = logging.getLogger("mlops_kit.training")

_EVAL_CHUNK = 65_536


@dataclass
class TrainResult:
    """What a run produced (``model`` is the final model on CPU, in eval mode)."""

    history: list[dict[str, Any]]
    best_epoch: int
    best_score: float
    epochs_run: int
    stopped_early: bool
    resumed_from_epoch: int | None
    metrics: dict[str, float]
    device: str
    precision: str
    world_size: int
    train_samples_per_s: float
    checkpoint_uri: str | None
    model: FailureMLP = field(repr=False)
    preprocessor: Preprocessor = field(repr=False)
    parity: dict[str, Any] | None = None
    out_uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the model)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("model", "preprocessor")}
        return out


class Trainer:
    """Fits the failure model; one instance per run.

    Args:
        config: the run's configuration.
        checkpoint_uri: where ``last.pt`` / ``best.pt`` go (overrides
            ``config.checkpoint_uri``); None with no configured URI disables checkpoints.
        callbacks: called on rank 0 after every epoch with that epoch's record (metrics,
            timings), e.g. to log to a tracking server.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        checkpoint_uri: str | None = None,
        callbacks: Sequence[Callable[[dict[str, Any]], None]] = (),
    ) -> None:
        self.config = config
        self.checkpoint_uri = checkpoint_uri or config.checkpoint_uri
        self.callbacks = list(callbacks)

    # -- public ---------------------------------------------------------------------------

    def fit(self, train: pa.Table, validation: pa.Table, *, resume: bool = True) -> TrainResult:
        """Train on ``train``, validate on ``validation`` after every epoch.

        Args:
            train: training rows (feature columns and label named in ``config.data``).
            validation: held-out rows, later in time than ``train``.
            resume: continue from ``last.pt`` when the checkpoint URI holds one.

        Raises:
            TrainingError: unusable data, a checkpoint from another config or other data.
        """
        cfg = self.config
        pre = Preprocessor.fit(train, cfg.data.feature_columns)
        x_train, y_train = pre.transform(train), labels(train, cfg.data)
        x_val, y_val = pre.transform(validation), labels(validation, cfg.data)
        if cfg.monitor != "val_loss" and len(np.unique(y_val)) < 2:
            raise TrainingError(
                f"the validation split has only label {int(y_val[0])}, so {cfg.monitor} is "
                "undefined: use more data, another data.validation_fraction or monitor: val_loss"
            )
        return self.fit_arrays(x_train, y_train, x_val, y_val, pre, resume=resume)

    def fit_arrays(
        self,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_val: np.ndarray,
        y_val: np.ndarray,
        preprocessor: Preprocessor,
        *,
        resume: bool = True,
    ) -> TrainResult:
        """Train on preprocessed arrays (float32 features, 0/1 labels)."""
        cfg = self.config
        device_type = "cuda" if resolve_device(cfg).type == "cuda" else "cpu"
        ctx = dist_utils.init_distributed(device_type)
        try:
            return self._fit(ctx, x_train, y_train, x_val, y_val, preprocessor, resume)
        finally:
            dist_utils.shutdown(ctx)

    # -- internals ------------------------------------------------------------------------

    def _fit(
        self,
        ctx: DistContext,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_val: np.ndarray,
        y_val: np.ndarray,
        pre: Preprocessor,
        resume: bool,
    ) -> TrainResult:
        cfg = self.config
        device = resolve_device(cfg, ctx)
        precision = resolve_precision(cfg, device)
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        if cfg.deterministic:
            if device.type == "cuda":
                import os

                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
        n_train = int(x_train.shape[0])
        if n_train == 0:
            raise TrainingError("the training split is empty")

        seed_everything(cfg.seed)
        model = build_model(pre.n_features, cfg.model).to(device)
        optimizer = self._optimizer(model)
        checkpoints = Checkpoints(self.checkpoint_uri, cfg) if self.checkpoint_uri else None
        stopping = EarlyStopping.from_config(cfg)
        start_epoch = 1
        history: list[dict[str, Any]] = []
        best_state: dict[str, Any] | None = None
        resumed_from: int | None = None

        ckpt = checkpoints.load(pre, ctx) if resume and checkpoints is not None else None
        if ckpt is not None and checkpoints is not None:
            model.load_state_dict(ckpt["model_state"])
            optimizer.load_state_dict(ckpt["optimizer_state"])
            history = list(ckpt["history"])
            stopping.restore(ckpt)
            resumed_from = int(ckpt["epoch"])
            start_epoch = resumed_from + 1
            rngs = ckpt["rng"]
            set_rng_state(rngs[ctx.rank] if ctx.rank < len(rngs) else rngs[0])
            best_state = checkpoints.read_best_state()
            if ctx.is_main:
                log.info("resuming from %s at epoch %d", checkpoints.uri_of(LAST), start_epoch)
        else:
            torch.manual_seed(cfg.seed + 1 + ctx.rank)  # dropout streams, distinct per rank

        net = dist_utils.wrap_ddp(model, ctx, device)
        pos_weight = self._pos_weight(y_train, device)
        # one process: the batch mean; DDP: each rank's sum, scaled in _train_epoch so that
        # the gradient averaged over ranks is the mean over the global batch
        reduction = "sum" if ctx.is_distributed else "mean"
        loss_fn = torch.nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=pos_weight)
        feeder = BatchFeeder(x_train, y_train, device, cfg.placement)
        stopped = bool(ckpt and ckpt.get("stopped_early"))
        train_time, train_rows = 0.0, 0

        epoch = start_epoch
        while epoch <= cfg.epochs and not stopped:
            t0 = time.perf_counter()
            train_loss = self._train_epoch(
                net, optimizer, loss_fn, feeder, ctx, epoch, device, precision
            )
            t1 = time.perf_counter()
            train_time += t1 - t0
            train_rows += n_train
            val = self._evaluate(model, x_val, y_val, ctx, device, precision)
            improved = stopping.update(epoch, val)
            if improved:
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            stopped = stopping.exhausted
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                **{f"val_{k}": v for k, v in val.items()},
                "improved": improved,
                "train_seconds": t1 - t0,
                "epoch_seconds": time.perf_counter() - t0,
                "train_samples_per_s": n_train / max(t1 - t0, 1e-9),
            }
            history.append(record)
            if checkpoints is not None:
                checkpoints.save(
                    ctx,
                    model,
                    optimizer,
                    pre,
                    epoch,
                    history,
                    stopping,
                    improved,
                    stopped or epoch == cfg.epochs,
                    stopped,
                )
            if ctx.is_main:
                log.info(
                    "epoch %d/%d train_loss=%.4f val_loss=%.4f val_roc_auc=%.4f val_pr_auc=%.4f "
                    "val_f1=%.4f%s",
                    epoch,
                    cfg.epochs,
                    train_loss,
                    val["loss"],
                    val["roc_auc"],
                    val["pr_auc"],
                    val["f1"],
                    " *" if improved else "",
                )
                for callback in self.callbacks:
                    callback(dict(record))
            maybe_fail(f"training.after_epoch_{epoch}")
            epoch += 1

        if cfg.restore_best and best_state is not None:
            model.load_state_dict(best_state)
        final = self._evaluate(model, x_val, y_val, ctx, device, precision)
        cpu_model = build_model(pre.n_features, cfg.model)
        cpu_model.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
        best_score = stopping.best_score
        return TrainResult(
            history=history,
            best_epoch=stopping.best_epoch,
            best_score=float("nan") if best_score is None else float(best_score),
            epochs_run=len(history),
            stopped_early=stopped,
            resumed_from_epoch=resumed_from,
            metrics=final,
            device=str(device),
            precision=precision,
            world_size=ctx.world_size,
            train_samples_per_s=train_rows / train_time if train_time > 0 else float("nan"),
            checkpoint_uri=self.checkpoint_uri,
            model=cpu_model.eval(),
            preprocessor=pre,
        )

    def _optimizer(self, model: Any) -> Any:
        o = self.config.optimizer
        params = model.parameters()
        if o.name == "sgd":
            return torch.optim.SGD(
                params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay
            )
        cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
        return cls(params, lr=o.lr, weight_decay=o.weight_decay)

    def _pos_weight(self, y: np.ndarray, device: Any) -> Any:
        pw = self.config.pos_weight
        if pw is None:
            return None
        if pw == "auto":
            pos = float(y.sum())
            pw = (y.size - pos) / pos if pos > 0 else 1.0
        return torch.tensor([float(pw)], device=device)

    def _train_epoch(
        self,
        net: Any,
        optimizer: Any,
        loss_fn: Any,
        feeder: BatchFeeder,
        ctx: DistContext,
        epoch: int,
        device: Any,
        precision: str,
    ) -> float:
        cfg = self.config
        net.train()
        perm = dist_utils.epoch_permutation(feeder.n, cfg.seed, epoch)
        shard = dist_utils.shard_epoch(perm, cfg.batch_size, ctx.rank, ctx.world_size)
        xs, ys = feeder.epoch(shard.order)
        sharded = ctx.is_distributed
        scales = shard.loss_scale.tolist()
        bounds = shard.bounds.tolist()
        clip = cfg.optimizer.grad_clip_norm
        params = list(net.parameters()) if clip else []
        amp = precision == "bf16"
        copy = feeder.copy_batches
        total = torch.zeros((), device=device)
        for k in range(shard.n_batches):
            lo, hi = bounds[k], bounds[k + 1]
            xb, yb = xs[lo:hi], ys[lo:hi]
            if copy:
                xb = xb.to(device, non_blocking=True)
                yb = yb.to(device, non_blocking=True)
            if amp:
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                    logits = net(xb)
                loss = loss_fn(logits.float(), yb)
            else:
                loss = loss_fn(net(xb), yb)
            (loss * scales[k] if sharded else loss).backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            total += loss.detach()
        if not sharded:  # mean of the batch means
            return float(total.item()) / max(shard.n_batches, 1)
        dist_utils.all_reduce_sum(total, ctx)
        return float(total.item()) / feeder.n

    def _evaluate(
        self,
        model: Any,
        x: np.ndarray,
        y: np.ndarray,
        ctx: DistContext,
        device: Any,
        precision: str,
    ) -> dict[str, float]:
        model.eval()
        n = int(x.shape[0])
        rows = np.arange(ctx.rank, n, ctx.world_size)
        local = torch.from_numpy(x[rows]) if ctx.is_distributed else torch.from_numpy(x)
        outs = []
        amp = precision == "bf16"
        with torch.inference_mode():
            for lo in range(0, local.shape[0], _EVAL_CHUNK):
                xb = local[lo : lo + _EVAL_CHUNK].to(device, non_blocking=True)
                ctx_mgr = (
                    torch.autocast(device_type=device.type, dtype=torch.bfloat16)
                    if amp
                    else contextlib.nullcontext()
                )
                with ctx_mgr:
                    outs.append(model(xb).float().reshape(-1))
            logits = torch.cat(outs) if outs else torch.zeros(0, device=device)
        if ctx.is_distributed:
            gathered = dist_utils.all_gather_rows(logits, ctx).cpu().numpy()
            order = np.concatenate([np.arange(r, n, ctx.world_size) for r in range(ctx.world_size)])
            full = np.empty(n, dtype=np.float32)
            full[order] = gathered
        else:
            full = logits.cpu().numpy()
        model.train()
        return binary_metrics(y, full, self.config.threshold)


def train(
    config: TrainConfig,
    data: str | pa.Table,
    out_uri: str | None = None,
    *,
    resume: bool = True,
    callbacks: Sequence[Callable[[dict[str, Any]], None]] = (),
) -> TrainResult:
    """The whole training step: read, split by time, fit, write the bundle, export ONNX.

    Args:
        config: the run's configuration.
        data: a training table, or the storage URI of one (Parquet file or prefix).
        out_uri: where the model bundle goes (rank 0 writes); None keeps it in memory only.
        resume: continue from the last checkpoint when there is one.
        callbacks: per-epoch hooks (see :class:`Trainer`).

    Raises:
        TrainingError: unusable data or checkpoints.
        ParityError: the exported ONNX graph disagrees with the model beyond the tolerance
            (``model.onnx`` is then not written; ``parity.json`` records the figures).
        MissingExtraError: export is enabled but the ``onnx`` extra is not installed.
    """
    from mlops_kit._lazy import is_installed

    if config.export.enabled and out_uri is not None:
        for module in ("onnx", "onnxruntime") + (
            ("onnxscript",) if config.export.exporter == "dynamo" else ()
        ):
            if not is_installed(module):
                require(module, "the ONNX export (or set export.enabled: false)")
    table = data if isinstance(data, pa.Table) else read_training_table(data, config.data)
    split = time_split(table, config.data)
    ckpt_uri = config.checkpoint_uri
    if ckpt_uri is None and out_uri is not None:
        ckpt_uri = storage.join(out_uri, "checkpoints")
    trainer = Trainer(config, checkpoint_uri=ckpt_uri, callbacks=callbacks)
    result = trainer.fit(split.train, split.validation, resume=resume)
    result.out_uri = out_uri
    if out_uri is None or dist_utils.env_context().rank != 0:
        return result
    cfg = config
    holdout = split.validation.slice(0, cfg.export.parity_rows)
    storage.write_parquet(storage.join(out_uri, "holdout.parquet"), holdout)
    result.preprocessor.save(storage.join(out_uri, "preprocess.json"))
    save_model(
        result.model,
        storage.join(out_uri, "model.pt"),
        extra={"feature_names": list(result.preprocessor.feature_names)},
    )
    storage.write_json(storage.join(out_uri, "config.json"), cfg.model_dump(mode="json"))
    summary = result.to_dict()
    summary["split"] = {
        "train_rows": split.train.num_rows,
        "validation_rows": split.validation.num_rows,
        "cutoff": split.cutoff,
        "dropped_for_gap": split.dropped_for_gap,
    }
    parity_error: Exception | None = None
    if cfg.export.enabled:
        from mlops_kit.training.errors import ParityError
        from mlops_kit.training.onnx_export import export_and_verify

        try:
            report = export_and_verify(
                result.model, result.preprocessor, holdout, out_uri, cfg.export
            )
            result.parity = report.to_dict()
        except ParityError as exc:
            result.parity = {"passed": False, **exc.details}
            parity_error = exc
        summary["parity"] = result.parity
    storage.write_json(storage.join(out_uri, "metrics.json"), summary)
    if parity_error is not None:
        raise parity_error
    return result


__all__ = [
    "BEST",
    "CHECKPOINT_FORMAT_VERSION",
    "LAST",
    "TrainResult",
    "Trainer",
    "resolve_device",
    "resolve_precision",
    "seed_everything",
    "train",
]
