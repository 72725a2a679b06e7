"""DDP sharding: disjoint interleaved shares of each global batch, gradients equal to one
process's, and two gloo processes that end with one process's weights (SGD and AdamW)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from mlops_kit.training.distributed import epoch_permutation, shard_epoch  # noqa: E402
from mlops_kit.training.trainer import Trainer  # noqa: E402
from tests.training.conftest import REPO  # noqa: E402
from tests.training.ddp_worker import ddp_arrays, ddp_config  # noqa: E402

# -- the epoch's permutation ----------------------------------------------------------------


def test_epoch_permutation_is_a_pure_function_of_seed_and_epoch() -> None:
    p = epoch_permutation(50, seed=3, epoch=2)
    np.testing.assert_array_equal(np.sort(p), np.arange(50))
    np.testing.assert_array_equal(epoch_permutation(50, seed=3, epoch=2), p)
    assert not np.array_equal(epoch_permutation(50, seed=3, epoch=3), p)
    assert not np.array_equal(epoch_permutation(50, seed=4, epoch=2), p)


# -- shard_epoch ----------------------------------------------------------------------------


def _batches(shard) -> list[list[int]]:
    b = shard.bounds.tolist()
    return [shard.order[b[k] : b[k + 1]].tolist() for k in range(shard.n_batches)]


def test_two_ranks_interleave_each_global_batch() -> None:
    perm = np.array([10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20])  # 11 rows, batches 4, 4, 3
    r0, r1 = shard_epoch(perm, 4, 0, 2), shard_epoch(perm, 4, 1, 2)
    assert _batches(r0) == [[10, 12], [14, 16], [18, 20]]
    assert _batches(r1) == [[11, 13], [15, 17], [19]]
    assert r0.order.tolist() == [10, 12, 14, 16, 18, 20]
    assert r1.order.tolist() == [11, 13, 15, 17, 19]
    assert r0.bounds.tolist() == [0, 2, 4, 6] and r1.bounds.tolist() == [0, 2, 4, 5]
    for shard in (r0, r1):
        assert shard.n_batches == 3
        assert shard.global_rows.tolist() == [4, 4, 3]
        # 2 / rows of the global batch: the sum of each rank's losses times this, averaged
        # over the 2 ranks by DDP, is the mean over the global batch
        assert shard.loss_scale.tolist() == [0.5, 0.5, 2 / 3]


def test_a_one_row_last_batch_leaves_the_other_rank_an_empty_batch() -> None:
    perm = np.arange(9)  # batches 4, 4, 1
    r0, r1 = shard_epoch(perm, 4, 0, 2), shard_epoch(perm, 4, 1, 2)
    assert _batches(r0) == [[0, 2], [4, 6], [8]]
    assert _batches(r1) == [[1, 3], [5, 7], []]
    assert r1.global_rows.tolist() == [4, 4, 1] and r1.loss_scale.tolist() == [0.5, 0.5, 2.0]


def test_one_process_takes_the_permutation_whole() -> None:
    perm = epoch_permutation(10, seed=0, epoch=1)
    shard = shard_epoch(perm, 4, 0, 1)
    np.testing.assert_array_equal(shard.order, perm)
    assert shard.bounds.tolist() == [0, 4, 8, 10]
    assert shard.global_rows.tolist() == [4, 4, 2]
    assert shard.loss_scale.tolist() == [0.25, 0.25, 0.5]


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 300),
    batch_size=st.integers(1, 70),
    world_size=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_ranks_partition_every_global_batch(
    n: int, batch_size: int, world_size: int, seed: int
) -> None:
    perm = epoch_permutation(n, seed, epoch=1)
    shards = [shard_epoch(perm, batch_size, r, world_size) for r in range(world_size)]
    n_batches = -(-n // batch_size)
    sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    everything = np.concatenate([s.order for s in shards])
    # disjoint, and together exactly the epoch's permutation
    assert everything.size == n
    np.testing.assert_array_equal(np.sort(everything), np.arange(n))
    for rank, shard in enumerate(shards):
        assert shard.n_batches == n_batches
        assert shard.global_rows.tolist() == sizes
        np.testing.assert_array_equal(shard.loss_scale, world_size / np.array(sizes))
        assert shard.bounds[0] == 0 and shard.bounds[-1] == shard.order.size
        for k, rows in enumerate(_batches(shard)):
            glob = perm[k * batch_size : (k + 1) * batch_size]
            # every world_size-th row of the global batch, starting at the rank
            assert rows == glob[rank::world_size].tolist()
            assert len(rows) == len(range(rank, sizes[k], world_size))
    for k in range(n_batches):
        sizes_k = [len(_batches(s)[k]) for s in shards]
        assert sum(sizes_k) == sizes[k] and max(sizes_k) - min(sizes_k) <= 1


# -- the averaged gradient equals one process's -----------------------------------------------


def _grads(model, x, y, reduction: str, scale: float = 1.0) -> list:
    model.zero_grad(set_to_none=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y, reduction=reduction)
    (loss * scale).backward()
    return [p.grad.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize(
    ("n", "batch_size", "world_size"),
    [(23, 8, 2), (23, 8, 3), (17, 8, 2), (21, 5, 2), (7, 8, 3)],
)
def test_rank_losses_scaled_and_averaged_give_the_global_mean_gradient(
    n: int, batch_size: int, world_size: int
) -> None:
    """What DDP computes (each rank's summed loss times ``loss_scale``, gradients averaged
    over ranks) is, batch for batch, the gradient of the mean loss one process computes,
    also for the short last batch and for ranks left with no row of it."""
    gen = torch.Generator().manual_seed(n * 100 + batch_size)
    x = torch.randn(n, 5, generator=gen, dtype=torch.float64)
    y = (torch.rand(n, 1, generator=gen, dtype=torch.float64) > 0.6).to(torch.float64)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)
    ).double()
    perm = epoch_permutation(n, seed=1, epoch=1)
    single = shard_epoch(perm, batch_size, 0, 1)
    shards = [shard_epoch(perm, batch_size, r, world_size) for r in range(world_size)]
    for k, rows in enumerate(_batches(single)):
        want = _grads(model, x[rows], y[rows], "mean")
        per_rank = []
        for shard in shards:
            mine = _batches(shard)[k]
            per_rank.append(_grads(model, x[mine], y[mine], "sum", float(shard.loss_scale[k])))
        averaged = [sum(g) / world_size for g in zip(*per_rank, strict=True)]
        for got, expected in zip(averaged, want, strict=True):
            torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)


# -- two gloo processes against one process ---------------------------------------------------

DDP_TOLERANCE = 1e-6
"""Largest weight difference accepted between 2 gloo processes and one process: only the
order of floating-point sums differs (measured 6e-8 with SGD, 3e-8 with AdamW)."""

CASES = {
    # plain SGD: a halved or doubled gradient moves the weights by as much
    "sgd": {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0},
        "batch_size": 50,  # 403 rows: 8 batches of 50, then 3 rows (2 on rank 0, 1 on rank 1)
    },
    # AdamW, an odd global batch: every batch splits 23 / 22 (the last one, 43 rows, 22 / 21)
    "adamw": {"optimizer": {"name": "adamw", "lr": 3e-3}, "batch_size": 45},
}


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_two_gloo_processes_match_one_process(case: str, tmp_path: Path) -> None:
    overrides = CASES[case]
    out = tmp_path / f"{case}.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "tests.training.ddp_worker", str(out), json.dumps(overrides)],
        capture_output=True, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = torch.load(out, weights_only=False)
    assert ddp["backend"] == "gloo"
    assert ddp["process_group_size"] == 2 and ddp["world_size"] == 2

    arrays = ddp_arrays()
    single = Trainer(ddp_config(overrides)).fit_arrays(*arrays)
    assert single.world_size == 1
    diff = _max_diff(_state(single.model), ddp["state"])
    print(f"{case}: DDP x2 vs one process, max weight diff {diff:.2e}")
    assert diff < DDP_TOLERANCE

    # validation is sharded and gathered: the same metrics as one process, epoch by epoch
    assert [r["epoch"] for r in ddp["history"]] == [1, 2, 3]
    for mine, theirs in zip(single.history, ddp["history"], strict=True):
        assert theirs["val_loss"] == pytest.approx(mine["val_loss"], abs=1e-6)
        assert theirs["val_roc_auc"] == pytest.approx(mine["val_roc_auc"], abs=1e-3)
    assert ddp["metrics"]["loss"] == pytest.approx(single.metrics["loss"], abs=1e-6)

    if case == "sgd":
        # the tolerance separates a gradient off by a factor 2: half the learning rate is
        # what a halved gradient does under plain SGD
        halved = ddp_config({**overrides, "optimizer": {**overrides["optimizer"], "lr": 0.05}})
        slower = Trainer(halved).fit_arrays(*arrays)
        assert _max_diff(_state(slower.model), ddp["state"]) > 1000 * DDP_TOLERANCE
