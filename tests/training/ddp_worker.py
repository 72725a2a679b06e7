"""One rank of the DDP comparison in ``test_distributed.py``, started by ``torchrun``.

``python -m torch.distributed.run --standalone --nproc_per_node=2 -m tests.training.ddp_worker
OUT OVERRIDES_JSON`` trains ``Trainer.fit_arrays`` on :func:`ddp_arrays` with the config of
:func:`ddp_config`; rank 0 saves ``OUT`` (``torch.save``) with the final weights, the
history, the metrics, the world size and the process-group backend seen while training.
One training per ``torchrun``, as in a real job: a second process group joined by the same
workers was seen to stall.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mlops_kit.training import Preprocessor, parse_train_config, synthetic_training_table
from mlops_kit.training.config import TrainConfig

TRAIN_ROWS = 403
VAL_ROWS = 200
N_FEATURES = 8


def ddp_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Preprocessor]:
    """Preprocessed train and validation arrays (the same in every process)."""
    names = [f"f{i}" for i in range(N_FEATURES)]
    train = synthetic_training_table(TRAIN_ROWS, names, seed=11)
    val = synthetic_training_table(VAL_ROWS, names, seed=12)
    pre = Preprocessor.fit(train, names)
    y_train = np.asarray(train["label"].to_numpy(), dtype=np.float32)
    y_val = np.asarray(val["label"].to_numpy(), dtype=np.float32)
    return pre.transform(train), y_train, pre.transform(val), y_val, pre


def ddp_config(overrides: dict[str, Any]) -> TrainConfig:
    """A small deterministic configuration (no dropout, so ranks draw no random masks)."""
    base: dict[str, Any] = {
        "model": {"hidden_sizes": [16, 8], "dropout": 0.0},
        "epochs": 3,
        "patience": None,
        "restore_best": False,
        "seed": 4,
        "device": "cpu",
        "num_threads": 1,
        "export": {"enabled": False},
    }
    return parse_train_config({**base, **overrides})


def main(out: Path, overrides: dict[str, Any]) -> None:
    import torch

    from mlops_kit.training.trainer import Trainer

    seen: dict[str, Any] = {}

    def during_training(_record: dict[str, Any]) -> None:
        dist = torch.distributed
        seen["backend"] = dist.get_backend() if dist.is_initialized() else None
        seen["process_group_size"] = dist.get_world_size() if dist.is_initialized() else 1

    trainer = Trainer(ddp_config(overrides), callbacks=[during_training])
    result = trainer.fit_arrays(*ddp_arrays())
    if int(os.environ["RANK"]) == 0:
        torch.save(
            {
                "state": result.model.state_dict(),
                "history": result.history,
                "metrics": result.metrics,
                "world_size": result.world_size,
                **seen,
            },
            out,
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), json.loads(sys.argv[2]))
