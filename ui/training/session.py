"""One training run driven from the app: the training process, and what it has said so far.

The run trains in its own process (`sampletool.training.worker`, the same Trainer as
`sampletool train`), started as an `EngineProcess`; this object turns its events into the
figures the wizard shows (steps per second, time left) and keeps them, so a page that opens
late, or a resumed run, shows the whole history.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ui.workers import EngineProcess

WORKER = "sampletool.training.worker"
# The training process runs at a lower priority, so the window (and the rest of the desktop)
# stays responsive while it takes every core.
NICE = 5
RATE_WINDOW_S = 60.0  # steps per second over the last minute of training


def plugin_args() -> list[str]:
    """The worker's arguments that make kinds registered in this process known there too."""
    from sampletool.models.kinds import plugin_modules

    return [a for module in plugin_modules() for a in ("--kind-module", module)]


@dataclass
class History:
    """What a run has reported: training losses, validations, the latest confusion matrix."""

    train: list[tuple[int, float]] = field(default_factory=list)  # (step, train loss)
    validations: list[dict] = field(default_factory=list)  # metrics.jsonl rows
    confusion: dict | None = None  # {"classes", "matrix", "step"}

    @classmethod
    def read(cls, logdir: Path) -> History:
        """A run's history from its log folder (its validations and last confusion matrix)."""
        h = cls()
        try:
            for line in (logdir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash
                if isinstance(row, dict) and "step" in row:
                    h.validations.append(row)
                    if "train_loss" in row:
                        h.train.append((int(row["step"]), float(row["train_loss"])))
        except OSError:
            pass
        try:
            doc = json.loads((logdir / "confusion_matrix.json").read_text(encoding="utf-8"))
            if isinstance(doc, dict) and isinstance(doc.get("matrix"), list):
                h.confusion = doc
        except (OSError, ValueError):
            pass
        return h


class TrainingSession(QObject):
    """A training run in its own process.

    Signals:
        started(dict): the process is training (the event: resuming, step, config, classes).
        cache(done, total): reading the files into the feature cache.
        step(int, dict): the training terms every 10 steps ("train_loss", "lr", ...).
        validated(int, dict): a validation's metrics ("val_loss", "val_accuracy", ...).
        confusion(dict): the confusion matrix of a validation.
        log(str): a line worth showing.
        paused(bool): paused (True) or training again (False).
        ended(str, dict): it finished: the reason ("converged", "max_steps", "stopped") and
            the last validation's metrics.
        failed(str): it could not start or go on (the message).
    """

    started = Signal(object)
    cache = Signal(int, int)
    step = Signal(int, object)
    validated = Signal(int, object)
    confusion = Signal(object)
    log = Signal(str)
    paused = Signal(bool)
    ended = Signal(str, object)
    failed = Signal(str)

    def __init__(self, logdir: str | Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.logdir = Path(logdir)
        self.history = History.read(self.logdir)
        self.process: EngineProcess | None = None
        self.config: dict = {}
        self.class_names: list[str] = []
        self.current_step = self.history.validations[-1]["step"] if self.history.validations else 0
        self.max_steps = 0
        self.lr: float | None = None
        self.is_paused = False
        self.outcome: str | None = None  # how it ended, once it has
        self._rate: deque[tuple[float, int]] = deque()  # (seconds trained, step)
        self._error: str | None = None

    # -- control --------------------------------------------------------------------------------

    def start(self, config: dict | None = None, device: str = "auto") -> None:
        """Start training: a new run from `config` (a TrainConfig as a dict), or without it
        resume the run in the log folder."""
        args = ["train", str(self.logdir), "--device", device, "--nice", str(NICE), *plugin_args()]
        if config is not None:
            args += ["--config", json.dumps(config)]
            self.config = dict(config)
            self.max_steps = int(config.get("max_steps", 0))
        self.outcome, self._error, self.is_paused = None, None, False
        self._rate.clear()
        self.process = EngineProcess(WORKER, args, self)
        self.process.event.connect(self._event)
        self.process.finished.connect(self._finished)
        self.process.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def pause(self) -> None:
        if self.process is not None:
            self.process.send("pause")

    def resume(self) -> None:
        if self.process is not None:
            self.process.send("resume")

    def stop(self) -> None:
        """Stop after the step in hand: the run validates, keeps its best model and saves a
        checkpoint to resume from."""
        if self.process is not None:
            self.process.send("stop")
            if self.is_paused:
                self.process.send("resume")

    def stop_and_wait(self, msecs: int) -> bool:
        """Stop as the app quits, and block until the process has saved and ended; True if it
        ended in time. Otherwise it is killed: the run resumes from its last checkpoint."""
        proc = self.process
        if proc is None or not proc.running:
            return True
        proc.close_input()  # "the app is gone": the run stops and is recorded as interrupted
        if proc.wait(msecs):
            return True
        proc.kill()
        return False

    # -- figures --------------------------------------------------------------------------------

    @property
    def steps_per_second(self) -> float | None:
        if len(self._rate) < 2:
            return None
        (t0, s0), (t1, s1) = self._rate[0], self._rate[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 and s1 > s0 else None

    @property
    def seconds_left(self) -> float | None:
        """At most this long to go (it may converge sooner)."""
        rate = self.steps_per_second
        if rate is None or not self.max_steps:
            return None
        return max(self.max_steps - self.current_step, 0) / rate

    @property
    def error(self) -> str | None:
        return self._error

    # -- events ---------------------------------------------------------------------------------

    def _event(self, e: dict) -> None:
        kind = e.get("event")
        if kind == "started":
            self.config = dict(e.get("config", {}))
            self.max_steps = int(self.config.get("max_steps", self.max_steps))
            self.class_names = list(e.get("class_names", []))
            self.current_step = int(e.get("step", 0))
            self.started.emit(e)
        elif kind == "cache":
            self.cache.emit(int(e["done"]), int(e["total"]))
        elif kind == "metrics":
            self._metrics(int(e["step"]), dict(e.get("metrics", {})))
        elif kind == "log":
            self.log.emit(str(e.get("message", "")))
        elif kind == "state":
            self.is_paused = e.get("status") == "paused"
            self.paused.emit(self.is_paused)
        elif kind == "end":
            self.outcome = str(e.get("reason", "stopped"))
            self.current_step = int(e.get("step", self.current_step)) or self.current_step
            self.is_paused = False
        elif kind == "error":
            self._error = str(e.get("message", "training failed"))

    def _metrics(self, step: int, m: dict) -> None:
        self.current_step = step
        if "lr" in m:
            self.lr = float(m["lr"])
        if "val_loss" in m:
            confusion = m.pop("confusion", None)
            self.history.validations.append({"step": step, **m})
            self.validated.emit(step, m)
            if confusion is not None:
                self.history.confusion = {"classes": self.class_names, "matrix": confusion,
                                          "step": step}  # fmt: skip
                self.confusion.emit(self.history.confusion)
            return
        if "train_loss" in m:
            self.history.train.append((step, float(m["train_loss"])))
        if "elapsed" in m:
            self._rate.append((float(m["elapsed"]), step))
            while len(self._rate) > 2 and self._rate[-1][0] - self._rate[0][0] > RATE_WINDOW_S:
                self._rate.popleft()
        self.step.emit(step, m)

    def _finished(self, code: int, stderr: str) -> None:
        if self.outcome is not None and code == 0:
            self.ended.emit(self.outcome, self.history.validations[-1]
                            if self.history.validations else {})  # fmt: skip
            return
        message = self._error or _last_line(stderr) or f"the training process ended ({code})"
        self._error = message
        self.failed.emit(message)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
