"""Binary classification metrics in numpy (no scikit-learn needed).

The definitions match scikit-learn's ``roc_auc_score`` (ties count one half),
``average_precision_score`` (the PR-AUC as a step-wise sum over distinct thresholds) and
``f1_score`` at a fixed threshold.
"""

from __future__ import annotations

import numpy as np


def _checked(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape[0]} vs {s.shape[0]}")
    return y, s


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y, s = _checked(y_true, scores)
    pos = y > 0.5
    n_pos = int(pos.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    avg_rank = upper - (counts - 1) / 2.0  # 1-based average rank of each distinct score
    rank_sum = float(avg_rank[inverse][pos].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def pr_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (area under the precision-recall curve); NaN without positives."""
    y, s = _checked(y_true, scores)
    n_pos = float((y > 0.5).sum())
    if n_pos == 0:
        return float("nan")
    uniq, inverse = np.unique(s, return_inverse=True)
    tp_at = np.bincount(inverse, weights=(y > 0.5).astype(np.float64), minlength=uniq.size)
    n_at = np.bincount(inverse, minlength=uniq.size).astype(np.float64)
    tp = np.cumsum(tp_at[::-1])  # thresholds from the highest score down
    predicted = np.cumsum(n_at[::-1])
    precision = tp / predicted
    recall = tp / n_pos
    recall_prev = np.concatenate([[0.0], recall[:-1]])
    return float(np.sum((recall - recall_prev) * precision))


def f1(y_true: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of the predictions ``scores >= threshold`` (0 when nothing is predicted or true)."""
    y, s = _checked(y_true, scores)
    pred = s >= threshold
    truth = y > 0.5
    tp = float(np.sum(pred & truth))
    denom = float(pred.sum() + truth.sum())
    return 0.0 if denom == 0 else 2.0 * tp / denom


def log_loss(y_true: np.ndarray, logits: np.ndarray) -> float:
    """Mean binary cross-entropy computed from logits (numerically stable)."""
    y, z = _checked(y_true, logits)
    if y.size == 0:
        return float("nan")
    return float(np.mean(np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))))


def binary_metrics(
    y_true: np.ndarray, logits: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """``loss``, ``roc_auc``, ``pr_auc``, ``f1``, ``positive_rate`` and ``n`` from logits."""
    y, z = _checked(y_true, logits)
    prob = 1.0 / (1.0 + np.exp(-z))
    return {
        "loss": log_loss(y, z),
        "roc_auc": roc_auc(y, z),
        "pr_auc": pr_auc(y, z),
        "f1": f1(y, prob, threshold),
        "positive_rate": float(np.mean(y > 0.5)) if y.size else float("nan"),
        "n": float(y.size),
    }


__all__ = ["binary_metrics", "f1", "log_loss", "pr_auc", "roc_auc"]
