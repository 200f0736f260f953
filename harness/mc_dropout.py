"""Monte Carlo dropout at evaluation: N stochastic passes with dropout active (BatchNorm in inference mode)."""

from __future__ import annotations

import numpy as np

from harness.backend import Backend


def softmax_float64(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis in float64, computed in place in one float64 copy of ``logits``: the passes'
    logits and that copy are the whole peak (12 bytes a float32 logit), which the preflight's memory floor counts
    (harness.preflight); a temporary per step would triple it."""
    probs = logits.astype(np.float64)
    probs -= probs.max(axis=-1, keepdims=True)
    np.exp(probs, out=probs)
    probs /= probs.sum(axis=-1, keepdims=True)
    return probs


def mc_dropout_metrics(
    backend: Backend, x: np.ndarray, y: np.ndarray, passes: int, seed: int, batch_size: int
) -> dict[str, float]:
    return mc_metrics_from_logits(backend.predict_mc(x, passes, seed, batch_size), y)


def mc_metrics_from_logits(logits: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """What the lesson reports of N stochastic passes (axis 0), summarised over the test samples: the accuracy of
    the mean probability, the mean probability of the class it predicts, and that probability's std over passes.

    The std is, per test sample, the standard deviation over passes of the probability given to the class the mean
    predicts, averaged over samples: 0 when dropout changes nothing.
    """
    probs = softmax_float64(logits)  # (passes, n, classes)
    mean = probs.mean(axis=0)
    predicted = mean.argmax(axis=1)
    chosen = probs[:, np.arange(len(predicted)), predicted]  # (passes, n)
    return {
        "mc_test_acc": float((predicted == y).mean()),
        "mc_mean_prob": float(chosen.mean(axis=0).mean()),
        "mc_pred_std": float(chosen.std(axis=0).mean()),
    }
