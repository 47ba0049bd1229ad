"""What the train wizard stands on: folder surveys, run states, pause, the training process and
its protocol, the step-time estimate, and the command that repeats a run elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from sampletool.cli import build_parser
from sampletool.cli.train import _new_run
from sampletool.data.dataset import MIN_CLASS_FILES, load_dataset, make_dataset, survey_folders
from sampletool.fileio import exclusive_lock
from sampletool.training.estimate import Measurement, estimate_seconds, measure, plan_steps
from sampletool.training.runs import RUN_LOCK, find_runs, run_state, shell_line, train_command
from sampletool.training.trainer import TrainConfig, Trainer, TrainingError
from tests.helpers import class_sound, make_class_folders, write

TINY = {"kind": "vae", "conv_channels": [4, 8], "pool_sizes": [[4, 4], [4, 4]], "hidden": 32,
        "latent": 8, "flow_length": 1, "flow_hidden": 8}  # fmt: skip


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    data = make_class_folders(tmp_path_factory.mktemp("data") / "drums", per_class=10)
    return make_dataset([data], "three", out=tmp_path_factory.mktemp("ds") / "three",
                        train_ratio=0.7, classes_from_subfolders=True, workers=0)  # fmt: skip


def config(dataset: Path, **kw) -> TrainConfig:
    base = dict(dataset=str(dataset), model=dict(TINY), batch_size=8, max_steps=20,
                eval_every=5, workers=0)  # fmt: skip
    return TrainConfig(**(base | kw))


# -- surveys -----------------------------------------------------------------------------------


def test_survey_labels_from_names_and_folders_and_counts_repeats_once(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "Pack"
    for name in ("Kick_01.wav", "Kick_02.wav", "BD hard.wav", "SD Tight 3.aif",
                 "snare_02.wav", "Pad warm.wav"):  # fmt: skip
        fmt = {"format": "AIFF"} if name.endswith(".aif") else {}
        write(root / name, class_sound("low", rng), **fmt)
    write(root / "Hats" / "01.wav", class_sound("noise", rng))  # the folder says it
    write(root / "Hats" / "02.wav", class_sound("noise", rng))
    s = survey_folders([root, root / "Hats"], "names", workers=0)  # Hats reached twice
    assert s.ok, s.problem
    assert s.counts == {"hihat": 2, "kick": 3, "snare": 2}
    assert s.repeated == 2 and [Path(p).name for p in s.unlabelled] == ["Pad warm.wav"]
    assert any("1 files have no drum word" in w for w in s.warnings)


def test_survey_says_what_is_wrong_without_raising(tmp_path):
    data = make_class_folders(tmp_path / "d", per_class=12, classes=("kick", "snare"))
    write(data / "tom" / "only.wav", np.full(800, 0.1, np.float32))
    for i in range(2):
        write(data / "clap" / f"c{i}.wav", np.full(800, 0.1, np.float32))
    (data / "snare" / "broken.wav").write_bytes(os.urandom(400))
    s = survey_folders([data], "subfolders", workers=0)
    assert s.ok and s.counts == {"clap": 2, "kick": 12, "snare": 12}
    assert s.small == {"tom": 1} and any(f"({MIN_CLASS_FILES} or more" in w for w in s.warnings)
    assert any("unbalanced" in w and "'clap' only 2" in w for w in s.warnings)
    assert [Path(p).name for p, _ in s.failed] == ["broken.wav"]
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        "does not exist": survey_folders([tmp_path / "gone"], "none", workers=0),
        "no audio files": survey_folders([empty], "none", workers=0),
        "has no sub-folders": survey_folders([empty], "subfolders", workers=0),
        "at least 2 classes": survey_folders([data / "kick"], "names", workers=0),
    }
    for expected, survey in cases.items():
        assert not survey.ok and expected in survey.problem
    bad = tmp_path / "bad"
    for i in range(3):
        write(bad / "kick" / f"{i}.wav", np.zeros(10, np.float32))
        (bad / "kick" / f"{i}.wav").write_bytes(os.urandom(200))
    assert "none of the 3" in survey_folders([bad], "subfolders", workers=0).problem


def test_a_survey_makes_the_dataset_without_reading_the_files_again(tmp_path, monkeypatch):
    data = make_class_folders(tmp_path / "d", per_class=4)
    survey = survey_folders([data], "subfolders", workers=0)
    import sampletool.data.dataset as ds_module

    monkeypatch.setattr(ds_module, "_probe_all", lambda *a, **k: pytest.fail("read again"))
    root = make_dataset([data], "x", out=tmp_path / "ds", survey=survey)
    summary = json.loads((root / "summary.json").read_text())
    assert summary["labels"] == "subfolders" and summary["files"] == 12
    assert load_dataset(root).class_names == ["high", "low", "noise"]


def test_cli_make_dataset_takes_classes_from_names(tmp_path, capsys):
    from sampletool.cli import main

    rng = np.random.default_rng(1)
    for i in range(3):
        write(tmp_path / "d" / f"Kick {i}.wav", class_sound("low", rng))
        write(tmp_path / "d" / f"hihat_{i}.wav", class_sound("noise", rng))
    out = tmp_path / "ds"
    assert main(["make-dataset", str(tmp_path / "d"), "--name", "n", "--out", str(out),
                 "--classes-from-names", "--workers", "0"]) == 0  # fmt: skip
    assert load_dataset(out).class_names == ["hihat", "kick"]
    assert "kick: " in capsys.readouterr().out


# -- runs: state, lock, pause ------------------------------------------------------------------


def test_a_run_records_how_it_stands_and_one_process_trains_it_at_a_time(dataset, tmp_path):
    log = tmp_path / "run"
    states = []

    def watch(step, metrics):
        if "val_loss" in metrics:
            states.append(run_state(log).status)

    result = Trainer(log, config(dataset), device="cpu", on_metrics=watch).run()
    assert result.reason == "max_steps" and set(states) == {"running"}
    s = run_state(log)
    assert (s.status, s.step, s.max_steps, s.has_model, s.incomplete) == (
        "max_steps", 20, 20, True, False)  # fmt: skip
    with exclusive_lock(log / RUN_LOCK), pytest.raises(TrainingError, match="another process"):
        Trainer(log, max_steps=30, device="cpu").run()
    assert run_state(tmp_path / "nothing") is None
    assert [r.logdir for r in find_runs([tmp_path])] == [log]


def test_a_run_cut_short_is_interrupted_and_a_stopped_one_incomplete(dataset, tmp_path):
    log = tmp_path / "run"
    stop = threading.Event()
    Trainer(log, config(dataset, max_steps=1000), device="cpu", stop=stop,
            on_metrics=lambda step, m: stop.set() if step >= 10 else None).run()  # fmt: skip
    s = run_state(log)
    assert s.status == "stopped" and s.incomplete and s.step >= 10
    # What a crash leaves: "running" in run.json, and nobody holding the lock.
    doc = json.loads((log / "run.json").read_text()) | {"status": "running"}
    (log / "run.json").write_text(json.dumps(doc))
    assert run_state(log).status == "interrupted"
    with exclusive_lock(log / RUN_LOCK):  # a live trainer holds it
        assert run_state(log).status == "running" and run_state(log).live
    result = Trainer(log, max_steps=30, device="cpu").run()  # resumes
    assert result.step > s.step and run_state(log).status == result.reason
    assert result.reason in ("max_steps", "converged")


def test_pause_holds_training_until_resumed_and_leaves_pauses_out_of_the_clock(dataset, tmp_path):
    log = tmp_path / "run"
    pause, seen = threading.Event(), []

    def on_metrics(step, m):
        seen.append((step, m.get("elapsed"), run_state(log).status))
        if step == 10:
            pause.set()
            threading.Timer(1.5, pause.clear).start()

    t0 = time.perf_counter()
    Trainer(log, config(dataset, eval_every=100, max_steps=20), device="cpu", pause=pause,
            on_metrics=on_metrics).run()  # fmt: skip
    wall = time.perf_counter() - t0
    after = next(e for step, e, _ in seen if step == 20 and e is not None)
    assert wall > 1.5 and after < wall - 1.4  # the paused 1.5 s are not training time
    lines = (log / "run.json").read_text()
    assert json.loads(lines)["status"] == "max_steps"


def test_pause_then_stop_ends_the_run(dataset, tmp_path):
    pause, stop = threading.Event(), threading.Event()

    def on_metrics(step, m):
        if step == 10:
            pause.set()
            threading.Timer(0.5, stop.set).start()

    result = Trainer(tmp_path / "run", config(dataset, max_steps=1000, eval_every=100),
                     device="cpu", pause=pause, stop=stop, on_metrics=on_metrics).run()  # fmt: skip
    assert result.reason == "stopped" and result.step == 11  # the step in hand, then it stops


# -- the command line that repeats a run -------------------------------------------------------


@pytest.mark.parametrize("variant", ["fresh", "augmented", "fine-tune"])
def test_train_command_gives_the_cli_the_same_run(dataset, tmp_path, variant):
    cfg = config(dataset, batch_size=16, lr=3e-4, max_steps=777, eval_every=33)
    if variant == "augmented":
        cfg.augment = {"mode": "both", "noise": "gmm", "snr_db": [5.0, 25.0]}
    elif variant == "fine-tune":
        Trainer(tmp_path / "base", config(dataset, max_steps=2), device="cpu").run()
        from sampletool.models.bundle import read_bundle_config

        base = read_bundle_config(tmp_path / "base")
        cfg.init_from = str(tmp_path / "base")
        cfg.model = {k: v for k, v in base["model"].items() if k != "num_classes"}
        cfg.audio = base["audio"]
    cfg.workers = None
    line = train_command(asdict(cfg), tmp_path / "log")
    assert line[:2] == ["sampletool", "train"]
    args = build_parser().parse_args(line[1:])
    again = _new_run(args)
    assert asdict(again) == asdict(cfg) | {"augment": again.augment}
    from sampletool.data.augment import AugmentConfig

    assert AugmentConfig.from_dict(again.augment) == AugmentConfig.from_dict(cfg.augment)
    torchrun = train_command(asdict(cfg), tmp_path / "log", nproc=4)
    assert torchrun[:5] == ["torchrun", "--nproc_per_node", "4", "-m", "sampletool"]
    assert torchrun[5:] == line[1:]
    assert "'" in shell_line(line) or "--model-options" not in line


def test_train_command_refuses_settings_it_cannot_give(dataset, tmp_path):
    cfg = config(dataset, ema=0.99)
    with pytest.raises(ValueError, match="cannot give"):
        train_command(asdict(cfg), tmp_path)


# -- estimates ---------------------------------------------------------------------------------


def test_plan_steps_scales_with_the_data_within_bounds():
    assert plan_steps(10, 64, False) == (200, 10)  # a tiny set: the floor
    assert plan_steps(6400, 64, False) == (10_000, 100)  # 100 epochs of 100 steps
    assert plan_steps(6400, 64, True) == (3_000, 100)  # fine-tuning: 30 epochs
    assert plan_steps(10**6, 64, False) == (20_000, 250)


def test_measure_times_real_steps_and_bigger_models_take_longer(dataset):
    ds = load_dataset(dataset)
    small = measure(config(dataset, batch_size=8), 3, ds.paths, steps=2, device="cpu")
    wider = config(dataset, batch_size=8)
    wider.model = TINY | {"conv_channels": [32, 64], "hidden": 256}
    big = measure(wider, 3, ds.paths, steps=2, device="cpu")
    assert 0 < small.step < big.step and small.parameters < big.parameters
    assert small.cache_file > 0 and small.val_file > 0
    with pytest.raises(TrainingError, match="could be read"):
        measure(config(dataset), 3, [str(dataset / "manifest.csv")], device="cpu")
    m = Measurement(step=0.5, val_file=0.01, cache_file=0.004, parameters=1, device="cpu")
    # 1000 files on 2 cores, 200 steps, 20 validations of 100 files
    assert estimate_seconds(m, 1000, 100, 200, 10, cores=2) == pytest.approx(2 + 100 + 20)


# -- the training process ----------------------------------------------------------------------


def _worker(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sampletool.training.worker", *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _events(proc: subprocess.Popen, until: str, timeout: float = 120) -> list[dict]:
    out, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        out.append(json.loads(line))
        if out[-1]["event"] == until:
            break
    return out


def test_the_training_process_reports_metrics_and_stops_on_command(dataset, tmp_path):
    cfg = config(dataset, max_steps=100_000, eval_every=10)
    proc = _worker("train", str(tmp_path / "run"), "--config", json.dumps(asdict(cfg)),
                   "--device", "cpu")  # fmt: skip
    try:
        first = _events(proc, "metrics")
        assert first[0]["event"] == "started" and first[0]["resuming"] is False
        assert first[0]["class_names"] == ["high", "low", "noise"]
        events = first + _events(proc, "metrics")  # a validation, with its confusion matrix
        while not any("val_loss" in e.get("metrics", {}) for e in events):
            events += _events(proc, "metrics")
        val = next(e for e in events if "val_loss" in e.get("metrics", {}))["metrics"]
        assert np.array(val["confusion"]).shape == (3, 3)
        proc.stdin.write("pause\n")
        proc.stdin.flush()
        assert _events(proc, "state")[-1] == {"event": "state", "status": "paused"}
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        end = _events(proc, "end")[-1]
        assert end["reason"] == "stopped" and proc.wait(60) == 0
    finally:
        proc.kill()
    assert run_state(tmp_path / "run").status == "stopped"


def test_the_training_process_stops_cleanly_when_the_app_goes(dataset, tmp_path):
    cfg = config(dataset, max_steps=100_000, eval_every=10)
    proc = _worker("train", str(tmp_path / "run"), "--config", json.dumps(asdict(cfg)),
                   "--device", "cpu")  # fmt: skip
    try:
        _events(proc, "metrics")
        proc.stdin.close()  # what the app's crash looks like from here
        assert proc.wait(60) == 0
    finally:
        proc.kill()
    state = run_state(tmp_path / "run")
    assert state.status == "interrupted" and state.incomplete and state.has_model
    assert state.step >= 10 and "app closed" in state.message


def test_the_training_process_says_why_it_cannot_start(tmp_path):
    proc = _worker("train", str(tmp_path / "run"), "--config",
                   json.dumps({"dataset": str(tmp_path / "nowhere")}))  # fmt: skip
    try:
        events = _events(proc, "error")
        assert proc.wait(60) == 1
    finally:
        proc.kill()
    assert events[-1]["event"] == "error" and "not a dataset folder" in events[-1]["message"]


def test_the_estimate_process_times_each_size(dataset):
    ds = load_dataset(dataset)
    cfg = config(dataset, batch_size=8)
    proc = _worker("estimate", "--config", json.dumps(asdict(cfg)), "--classes", "3",
                   "--sizes", "small,medium", "--steps", "1", "--device", "cpu",
                   *ds.paths[:8])  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["size"] for r in rows] == ["small", "medium"]
    small, medium = (r["measurement"] for r in rows)
    assert small["parameters"] < medium["parameters"]
