"""Training runs on disk: how each one stands, and the command that repeats it elsewhere.

A run is a log folder (see `sampletool.training.trainer`). While the Trainer works on one it
holds `run.lock` (so two processes never train one run; a crashed process's lock is free
again) and keeps `run.json` saying how it stands:

    {"status": "running" | "paused" | "stopped" | "converged" | "max_steps" | "failed",
     "step": 1200, "max_steps": 4000, "updated": "...", "message": "..."}

A run whose file says "running" or "paused" but whose lock nobody holds was cut short (the app
closed, the machine crashed): `run_state` calls it "interrupted". Interrupted, stopped and
failed runs are incomplete: `Trainer(logdir).run()` resumes them from their last checkpoint.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from sampletool.fileio import atomic_write_text, is_locked
from sampletool.models.bundle import TRAINING_LOCK

RUN_FILE = "run.json"
RUN_LOCK = TRAINING_LOCK
TRAIN_CONFIG = "train_config.json"
LIVE = ("running", "paused")
ENDED = ("converged", "max_steps")
INCOMPLETE = ("interrupted", "stopped", "failed")


@dataclass
class RunState:
    """How one run stands.

    Attributes:
        logdir: the run's log folder.
        status: one of `LIVE`, `ENDED`, `INCOMPLETE`, or "unknown" (a run from before runs
            kept their state).
        step: the last step checkpointed (or reached, once ended).
        max_steps: where it stops at the latest.
        updated: when the state was last written (ISO 8601).
        message: the error of a failed run.
        dataset: the run's dataset folder.
        has_model: the folder holds a usable bundle (written at the first validation).
    """

    logdir: Path
    status: str
    step: int = 0
    max_steps: int = 0
    updated: str = ""
    message: str = ""
    dataset: str = ""
    has_model: bool = False
    config: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.logdir.name

    @property
    def incomplete(self) -> bool:
        """Cut short, stopped or failed: it can be resumed."""
        return self.status in INCOMPLETE

    @property
    def live(self) -> bool:
        """A process is training it now."""
        return self.status in LIVE


def write_state(logdir: Path, status: str, step: int, max_steps: int, message: str = "") -> None:
    """Record how the run in `logdir` stands (atomically)."""
    doc = {"status": status, "step": int(step), "max_steps": int(max_steps),
           "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "message": message}  # fmt: skip
    atomic_write_text(logdir / RUN_FILE, json.dumps(doc, indent=2) + "\n")


def run_state(logdir: str | os.PathLike[str]) -> RunState | None:
    """How the run in `logdir` stands; None if the folder holds no run."""
    logdir = Path(logdir)
    try:
        config = json.loads((logdir / TRAIN_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    try:
        doc = json.loads((logdir / RUN_FILE).read_text(encoding="utf-8"))
        if not isinstance(doc, dict):
            doc = {}
    except (OSError, ValueError):
        doc = {}
    status = str(doc.get("status", "unknown"))
    if status in LIVE and not is_locked(logdir / RUN_LOCK):
        status = "interrupted"
    return RunState(
        logdir=logdir,
        status=status,
        step=int(doc.get("step", 0) or 0),
        max_steps=int(doc.get("max_steps", config.get("max_steps", 0)) or 0),
        updated=str(doc.get("updated", "")),
        message=str(doc.get("message", "")),
        dataset=str(config.get("dataset", "")),
        has_model=(logdir / "config.json").is_file() and (logdir / "weights.safetensors").is_file(),
        config=config,
    )


def find_runs(roots: list[Path]) -> list[RunState]:
    """Every run in the sub-folders of `roots` (the user's models folder), newest first."""
    found = []
    for root in roots:
        try:
            children = [p for p in Path(root).iterdir() if p.is_dir()]
        except OSError:
            continue
        for child in children:
            state = run_state(child)
            if state is not None:
                found.append(state)
    return sorted(found, key=lambda s: s.updated, reverse=True)


def train_command(config: dict, logdir: str | os.PathLike[str], nproc: int = 0) -> list[str]:
    """The `sampletool train` command line that runs `config` (a TrainConfig as a dict) into
    `logdir`; with `nproc`, its `torchrun` form on that many processes (GPUs).

    Settings the command line has no flag for (source weights, weight averaging, the pitch
    and spectrum augmentations) must be at their defaults.

    Raises:
        ValueError: a setting the command cannot express.
    """
    from sampletool.data.augment import AugmentConfig

    aug = AugmentConfig.from_dict(config.get("augment", {}))
    plain = AugmentConfig(mode=aug.mode, noise=aug.noise, snr_db=aug.snr_db, gain_db=aug.gain_db,
                          max_shift=aug.max_shift)  # fmt: skip
    if aug != plain or config.get("source_weights") or config.get("ema"):
        raise ValueError("this run uses settings the command line cannot give")
    args = ["train", "--logdir", str(logdir), "--dataset", str(config["dataset"])]
    model = dict(config.get("model", {"kind": "vae"}))
    if config.get("init_from"):
        args += ["--init-from", str(config["init_from"])]
    else:
        args += ["--model", str(model.pop("kind", "vae"))]
        model.pop("num_classes", None)
        if model:
            args += ["--model-options", json.dumps(model, separators=(",", ":"))]
    defaults = {"batch_size": 64, "lr": 1e-3, "min_lr": 1e-5, "eval_every": 250, "patience": 3,
                "seed": 0}  # fmt: skip
    args += ["--max-steps", str(int(config.get("max_steps", 100_000)))]
    for key, default in defaults.items():
        value = config.get(key, default)
        if value != default:
            args += ["--" + key.replace("_", "-"), f"{value:g}" if isinstance(value, float)
                     else str(value)]  # fmt: skip
    if aug.mode != "none":
        args += ["--augment", aug.mode, "--noise", aug.noise,
                 "--snr", f"{aug.snr_db[0]:g}", f"{aug.snr_db[1]:g}"]  # fmt: skip
    if aug.gain_db != (0.0, 0.0):
        args += ["--gain-db", f"{aug.gain_db[0]:g}", f"{aug.gain_db[1]:g}"]
    if aug.max_shift:
        args += ["--shift", f"{aug.max_shift:g}"]
    if nproc:
        return ["torchrun", "--nproc_per_node", str(nproc), "-m", "sampletool", *args]
    return ["sampletool", *args]


def shell_line(args: list[str]) -> str:
    """A command as one line to paste into a POSIX shell."""
    return shlex.join(args)
