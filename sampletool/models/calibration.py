"""Honest confidence: temperature scaling, calibration error, and reading a class as sure or not.

A classifier trained with cross-entropy is usually over-confident: among the sounds it calls a
hi-hat at 99 %, far fewer than 99 % are hi-hats. Temperature scaling (Guo et al., 2017) divides
the logits by one number T > 0 fitted on held-out data (the validation split) so that the
probabilities mean what they say, without changing which class is likeliest. A bundle keeps T
in its metadata ("calibration"), and every runtime applies it, whatever the model kind:
softmax(logits / T) = p ** (1 / T), renormalised.

With calibrated probabilities a prediction under 50 % is more likely wrong than right; that is
where `UNSURE_BELOW` puts the line under which the app shows a class as unsure ("? kick, or
snare") and "Same kind only" does not filter on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

UNSURE_BELOW = 0.5
SILENT = 1e-6  # probabilities this close together: every class alike, nothing was heard
ECE_BINS = 15


@dataclass(frozen=True)
class Calibration:
    """How a model's class probabilities are corrected and read.

    Attributes:
        temperature: the logits are divided by it (1: as trained).
        unsure_below: a likeliest class with less probability than this is unsure.
    """

    temperature: float = 1.0
    unsure_below: float = UNSURE_BELOW

    @classmethod
    def from_metadata(cls, metadata: dict) -> Calibration:
        """The calibration a bundle's metadata names (none: temperature 1)."""
        doc = metadata.get("calibration") if isinstance(metadata, dict) else None
        if not isinstance(doc, dict):
            return cls()
        t = doc.get("temperature", 1.0)
        u = doc.get("unsure_below", UNSURE_BELOW)
        ok = isinstance(t, int | float) and math.isfinite(t) and 0.01 <= t <= 100
        ok_u = isinstance(u, int | float) and 0 <= u <= 1
        return cls(float(t) if ok else 1.0, float(u) if ok_u else UNSURE_BELOW)

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """Probabilities [B, classes] -> the same, temperature-scaled (float32)."""
        return scale(probs, self.temperature)


def scale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(probs) / temperature), row by row (float32)."""
    p = np.asarray(probs, np.float64)
    if temperature == 1.0 or p.size == 0:
        return p.astype(np.float32)
    logits = np.log(np.clip(p, 1e-30, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    p = np.asarray(probs, np.float64)[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(p, 1e-30, 1.0)).mean())


def fit_temperature(probs: np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of `labels` (class indices)
    under `probs` [n, classes], searched on log T in [1/20, 20] (the NLL is convex in 1/T)."""
    y = np.asarray(labels, np.int64)
    if len(y) == 0:
        return 1.0
    lo, hi = math.log(0.05), math.log(20.0)
    golden = (math.sqrt(5) - 1) / 2
    a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
    fa, fb = nll(scale(probs, math.exp(a)), y), nll(scale(probs, math.exp(b)), y)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - golden * (hi - lo)
            fa = nll(scale(probs, math.exp(a)), y)
        else:
            lo, a, fa = a, b, fb
            b = lo + golden * (hi - lo)
            fb = nll(scale(probs, math.exp(b)), y)
    return round(math.exp((lo + hi) / 2), 4)


def expected_calibration_error(
    probs: np.ndarray, labels: Sequence[int] | np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width confidence bins
    weighted by how many predictions fall in each (0 is perfectly calibrated)."""
    y = np.asarray(labels, np.int64)
    if len(y) == 0:
        return 0.0
    p = np.asarray(probs, np.float64)
    conf, pred = p.max(1), p.argmax(1)
    right = pred == y
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.sum() * abs(right[m].mean() - conf[m].mean())
    return float(total / len(y))


def calibration_summary(probs: np.ndarray, labels: Sequence[int] | np.ndarray) -> dict:
    """A bundle's "calibration" metadata from held-out probabilities and their true classes:
    the fitted temperature, the threshold, and the calibration error and NLL before and after."""
    y = np.asarray(labels, np.int64)
    t = fit_temperature(probs, y)
    after = scale(probs, t)
    return {
        "temperature": t,
        "unsure_below": UNSURE_BELOW,
        "ece_before": round(expected_calibration_error(probs, y), 4),
        "ece_after": round(expected_calibration_error(after, y), 4),
        "nll_before": round(nll(probs, y), 4),
        "nll_after": round(nll(after, y), 4),
        "fitted_on": f"the validation split ({len(y)} clips)",
    }


@dataclass(frozen=True)
class ClassReading:
    """One sound's class as the app shows it.

    Attributes:
        name: the class ("" for a model without a classifier, or when every class is as
            likely as the others: a silent clip).
        confidence: its probability (1.0 when the user set it).
        unsure: the model's likeliest class is below its threshold.
        runner_up: the second likeliest class ("" if none).
        runner_up_confidence: its probability.
        by_user: the user set the class; the model's reading is `model`.
        model: the model's own likeliest class (the same as `name` unless `by_user`).
    """

    name: str
    confidence: float
    unsure: bool = False
    runner_up: str = ""
    runner_up_confidence: float = 0.0
    by_user: bool = False
    model: str = ""

    @property
    def kind(self) -> str | None:
        """The class search may filter on: None when unsure."""
        return None if self.unsure or not self.name else self.name

    def text(self) -> str:
        """What to print: "kick", "? kick (or snare)", "kick (set by you)", or "?" when
        nothing was heard (a silent clip)."""
        if not self.name:
            return "?"
        if self.by_user:
            return f"{self.name} (set by you)"
        if self.unsure:
            return f"? {self.name} (or {self.runner_up})" if self.runner_up else f"? {self.name}"
        return self.name

    def explain(self) -> str:
        """The reading in a sentence: "Set by you: kick (the model says snare)", "Unsure:
        snare 41 %, or tom 33 %", "Silent: the model hears nothing to name", "kick, 90 % sure"."""
        if self.by_user:
            return f"Set by you: {self.name} (the model says {self.model or 'nothing'})"
        if not self.name:
            return "Silent: the model hears nothing to name"
        if self.unsure:
            return (f"Unsure: {self.name} {self.confidence:.0%}, or {self.runner_up} "
                    f"{self.runner_up_confidence:.0%}")  # fmt: skip
        return f"{self.name}, {self.confidence:.0%} sure"

    def as_dict(self) -> dict:
        return {
            "class": self.name, "confidence": round(self.confidence, 4), "unsure": self.unsure,
            "runner_up": self.runner_up or None,
            "runner_up_confidence": round(self.runner_up_confidence, 4),
            "set_by_user": self.by_user, "model_class": self.model or self.name,
        }  # fmt: skip


def read_class(
    probs: Sequence[float] | np.ndarray,
    class_names: Sequence[str],
    unsure_below: float = UNSURE_BELOW,
    user_label: str | None = None,
) -> ClassReading:
    """One row of (calibrated) probabilities -> the class to show (a user's label wins)."""
    p = np.asarray(probs, np.float64)
    if not len(class_names) or p.size == 0:
        return ClassReading(user_label or "", 1.0 if user_label else 0.0, by_user=bool(user_label))
    silent = np.ptp(p) < SILENT  # every class equally likely: the model heard nothing
    if silent:
        if user_label:
            return ClassReading(user_label, 1.0, by_user=True)
        return ClassReading("", float(p.max()), unsure=True)
    order = np.argsort(-p, kind="stable")
    best = class_names[order[0]]
    second = class_names[order[1]] if len(order) > 1 else ""
    second_p = float(p[order[1]]) if len(order) > 1 else 0.0
    if user_label:
        return ClassReading(user_label, 1.0, by_user=True, model=best)
    conf = float(p[order[0]])
    return ClassReading(best, conf, conf < unsure_below, second, second_p, False, best)
