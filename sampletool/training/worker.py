"""The training process the app starts: `python -m sampletool.training.worker COMMAND ...`.

The app keeps training out of its own process (the GIL and torch's threads would stall its
window): it runs this module, reads one JSON object per line from its stdout and writes
commands to its stdin. The work is the same `Trainer` as `sampletool train`.

    train LOGDIR [--config JSON] [--device D] [--nice N] [--kind-module MODULE...]
        train the run in LOGDIR (a new one from --config, a TrainConfig as JSON; without it,
        resume the run there)
    estimate --config JSON --classes N [--sizes small,medium,large] FILE...
        time a few real training steps of each size of the config's kind on FILEs

Events, on stdout:
    {"event": "started", "resuming": bool, "step": int, "config": {...}, "class_names": [...]}
    {"event": "log", "message": str}
    {"event": "cache", "done": int, "total": int}            reading the files (features)
    {"event": "metrics", "step": int, "metrics": {...}}      every 10 steps, and validations
    {"event": "state", "status": "paused" | "running"}
    {"event": "end", "reason": str, "step": int, "best_val_loss": float, "metrics": {...}}
    {"event": "estimate", "size": str, "measurement": {...}} or {..., "error": str}
    {"event": "error", "message": str}                       then exit status 1
Commands, on stdin: "pause", "resume", "stop". The end of stdin (the app closed or crashed)
stops the run the way "stop" does (a checkpoint is saved), and the run is then recorded as
"interrupted", not "stopped": the app offers to resume it when it starts again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

_out_lock = threading.Lock()
_out_ok = threading.Event()
_out_ok.set()


def emit(event: str, **fields: Any) -> None:
    """Write one event line; once the reader is gone, write nothing more."""
    if not _out_ok.is_set():
        return
    line = json.dumps({"event": event, **fields}, default=float)
    with _out_lock:
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, OSError, ValueError):
            _out_ok.clear()


def _listen(stop: threading.Event, pause: threading.Event, gone: threading.Event) -> None:
    """Apply the commands on stdin; at its end (`gone`), stop."""
    for line in sys.stdin:
        command = line.strip()
        if command == "pause":
            pause.set()
            emit("state", status="paused")
        elif command == "resume":
            pause.clear()
            emit("state", status="running")
        elif command == "stop":
            stop.set()
        elif command:
            emit("log", message=f"unknown command {command!r}")
    if not stop.is_set():
        gone.set()
    stop.set()
    pause.clear()


class _CacheProgress:
    """Forward the feature cache's progress, at most ten times a second."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, done: int, total: int, _message: str = "") -> None:
        now = time.monotonic()
        if done >= total or now - self.last >= 0.1:
            self.last = now
            emit("cache", done=done, total=total)


def _train(args: argparse.Namespace) -> int:
    from sampletool.errors import SampleToolError
    from sampletool.progress import Cancelled
    from sampletool.training.runs import run_state, write_state
    from sampletool.training.trainer import TrainConfig, Trainer

    stop, pause, gone = threading.Event(), threading.Event(), threading.Event()
    threading.Thread(target=_listen, args=(stop, pause, gone), daemon=True).start()
    config = TrainConfig.from_dict(json.loads(args.config)) if args.config else None

    def on_metrics(step: int, metrics: dict) -> None:
        emit("metrics", step=step, metrics=metrics)

    try:
        trainer = Trainer(args.logdir, config, device=args.device, on_metrics=on_metrics,
                          stop=stop, pause=pause, log=lambda m: emit("log", message=m),
                          cache_progress=_CacheProgress())  # fmt: skip
        before = run_state(args.logdir)
        emit("started", resuming=trainer.resuming, step=before.step if before else 0,
             config=asdict(trainer.config), class_names=trainer.dataset.class_names,
             device=str(trainer.device))  # fmt: skip
        result = trainer.run()
    except Cancelled:
        emit("end", reason="stopped", step=0, best_val_loss=float("inf"), metrics={})
        return 0
    except SampleToolError as e:
        emit("error", message=str(e))
        return 1
    except Exception as e:  # a bug: the app shows the message, the traceback goes to stderr
        traceback.print_exc()
        emit("error", message=f"{type(e).__name__}: {e}")
        return 1
    if gone.is_set() and result.reason == "stopped":
        write_state(trainer.logdir, "interrupted", result.step, trainer.config.max_steps,
                    "the app closed while it trained")  # fmt: skip
    emit("end", reason=result.reason, step=result.step, best_val_loss=result.best_val_loss,
         metrics=result.metrics)  # fmt: skip
    return 0


def _estimate(args: argparse.Namespace) -> int:
    from sampletool.errors import SampleToolError
    from sampletool.models.kinds import get_kind
    from sampletool.training.estimate import measure
    from sampletool.training.trainer import TrainConfig

    config = TrainConfig.from_dict(json.loads(args.config))
    sizes = [s for s in args.sizes.split(",") if s]
    for size in sizes or [""]:
        try:
            run = config
            if size and not config.init_from:
                kind = get_kind(config.model.get("kind", "vae"))
                run = TrainConfig.from_dict(asdict(config) | {"model": kind.preset(size)})
            m = measure(run, args.classes, args.files, steps=args.steps, device=args.device)
        except (SampleToolError, ValueError) as e:
            emit("estimate", size=size, error=str(e))
            continue
        emit("estimate", size=size, measurement=m.to_dict())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sampletool.training.worker",
                                description=__doc__.split("\n\n")[0])  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("logdir")
    t.add_argument("--config", help="a new run's TrainConfig as JSON")
    e = sub.add_parser("estimate")
    e.add_argument("files", nargs="+")
    e.add_argument("--config", required=True)
    e.add_argument("--classes", type=int, default=0)
    e.add_argument("--sizes", default="")
    e.add_argument("--steps", type=int, default=3)
    for s in (t, e):
        s.add_argument("--device", default="auto")
        s.add_argument("--nice", type=int, default=0, help="lower this process's priority")
        s.add_argument("--kind-module", action="append", default=[], metavar="MODULE",
                       help="a module defining a model kind registered at run time")  # fmt: skip
    args = p.parse_args(argv)
    if args.nice and hasattr(os, "nice"):
        os.nice(args.nice)
    from sampletool.models.kinds import register_module

    for module in args.kind_module:
        try:
            register_module(module)
        except ValueError as err:
            emit("error", message=str(err))
            return 1
    return _train(args) if args.command == "train" else _estimate(args)


if __name__ == "__main__":
    sys.exit(main())
