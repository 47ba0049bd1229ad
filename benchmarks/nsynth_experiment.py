"""The NSynth classification experiment, reproduced on data we can make or have here.

Usage: .venv/bin/python benchmarks/nsynth_experiment.py [--task speech|drums ...]
       [--drums DIR] [--steps 200] [--work DIR] [--json OUT.json]

Tasks:
- speech: speaker identification on voices espeak-ng makes (Debian package espeak-ng): 10
  voices/variants speaking 30 sentences, each twice with a random speed (130-200 words/min),
  pitch and a little background noise (SNR 25-45 dB). Split by sentence: 18 sentences train,
  4 validate (model selection), 8 test, so no test sentence is ever heard in training.
- drums: the real one-shots of DIR (e.g. what ../shared/tools/real-samples unpacks), classes
  from the drum words in their names, files split 70/10/20 per class (seed 0).

Methods, each trained in this run on the same split and tested on the same held-out files:
- mfcc-logreg: 20 MFCCs (from our log-mel) averaged and spread over time, logistic regression;
- vae: our VAE on log-mel (small preset);
- wavenet-encoder: NSynth's encoder + classifier (small preset);
- wavenet-autoencoder: the whole autoencoder + classifier (small preset, class_weight 1);
each without and with noise augmentation (additive Gaussian noise at 10-30 dB SNR). The
neural models train --steps steps at batch 16 (the WaveNets at batch 8, learning rate 3e-3:
at 1e-3 the encoder stayed at chance for 200 steps; the VAE at its usual 1e-3), keeping the best
validation checkpoint.

Reported: test accuracy with its 95 % Wilson interval, training time, and for the
autoencoder its reconstruction loss (nats per sample; ln 256 = 5.55 is knowing nothing).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SENTENCE_WORDS = (
    "the quick brown fox jumps over a lazy dog near seven old bridges while distant "
    "thunder rolls across purple hills and gentle rain falls on silver roofs of quiet "
    "villages where children laugh loudly before supper every autumn evening"
).split()
VOICES = ("en-us+m1", "en-us+f2", "en-gb+m3", "en-gb+f4", "en-gb-scotland+m7",
          "en-029+f1", "en-gb-x-rp+m2", "en-us+f5", "en-gb-x-gbclan+m4", "en+croak")  # fmt: skip
TRAIN_SENTENCES, VAL_SENTENCES, TEST_SENTENCES = range(0, 18), range(18, 22), range(22, 30)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 0.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


# -- data --------------------------------------------------------------------------------------


def make_speech(root: Path) -> dict[str, list[tuple[str, str]]]:
    """Render the voices; (path, speaker) per split."""
    import soundfile as sf

    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is needed for the speech task (apt-get install espeak-ng)")
    rng = np.random.default_rng(0)
    sentences = [" ".join(rng.choice(SENTENCE_WORDS, size=int(rng.integers(6, 10))))
                 for _ in range(30)]  # fmt: skip
    split_of = {**{i: "train" for i in TRAIN_SENTENCES}, **{i: "val" for i in VAL_SENTENCES},
                **{i: "test" for i in TEST_SENTENCES}}  # fmt: skip
    out: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    for v, voice in enumerate(VOICES):
        speaker = f"voice{v:02d}"
        for i, text in enumerate(sentences):
            for take in range(2):
                path = root / speaker / f"s{i:02d}_{take}.wav"
                if not path.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    speed = int(rng.integers(130, 200))
                    pitch = int(rng.integers(30, 70))
                    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                                    "-w", str(path), text], check=True)  # fmt: skip
                    y, sr = sf.read(str(path), dtype="float32")
                    snr = rng.uniform(25, 45)
                    noise = rng.standard_normal(len(y)).astype(np.float32)
                    y = y + noise * np.sqrt(np.mean(y**2) / 10 ** (snr / 10))
                    sf.write(str(path), y, sr)
                out[split_of[i]].append((str(path), speaker))
    return out


def make_drums(folder: Path) -> dict[str, list[tuple[str, str]]]:
    from sampletool.data.dataset import survey_folders

    survey = survey_folders([folder], "names")
    if survey.problem:
        sys.exit(f"drums: {survey.problem}")
    rng = np.random.default_rng(0)
    out: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    for cls in survey.class_names:
        files = sorted(p for p, c in survey.items if c == cls)
        rng.shuffle(files)
        n_test = max(1, round(0.2 * len(files)))
        n_val = max(1, round(0.1 * len(files)))
        if len(files) < 3:
            continue
        out["test"] += [(p, cls) for p in files[:n_test]]
        out["val"] += [(p, cls) for p in files[n_test : n_test + n_val]]
        out["train"] += [(p, cls) for p in files[n_test + n_val :]]
    return out


def write_dataset(splits: dict[str, list[tuple[str, str]]], root: Path) -> Path:
    from sampletool.data.dataset import Survey, make_dataset

    items = splits["train"] + splits["val"]
    survey = Survey([str(Path(items[0][0]).parent.parent)], "subfolders", items=items)
    survey.splits = {p: s for s in ("train", "val") for p, _ in splits[s]}
    return make_dataset([], root.name, out=root, survey=survey, overwrite=True)


# -- methods -----------------------------------------------------------------------------------


NOISE = {"mode": "additive", "noise": "gaussian", "snr_db": [10.0, 30.0]}


def mfcc_stats(clips) -> np.ndarray:
    """Clips [N, samples] (torch) -> 20 MFCCs' mean and spread over time, [N, 40]."""
    from sampletool.features import AudioConfig, log_mel

    mel = log_mel(clips, AudioConfig()).numpy()  # [N, mels, T] in [0, 1]
    n = mel.shape[1]
    k = np.arange(20)[:, None]
    dct = np.cos(np.pi / n * (np.arange(n)[None, :] + 0.5) * k)  # DCT-II rows
    c = np.einsum("km,bmt->bkt", dct, mel)
    return np.concatenate([c.mean(-1), c.std(-1)], 1)


def read_clips(paths: list[str], audio):
    import torch

    from sampletool.audio import load_clips

    batch = load_clips(paths, seconds=audio.seconds, sample_rate=audio.sample_rate, workers=0)
    if len(batch.indices) != len(paths):
        sys.exit(f"{len(paths) - len(batch.indices)} files could not be read")
    return torch.from_numpy(batch.audio)


def mfcc_logreg(splits, audio, augment: bool) -> tuple[float, list[int], float]:
    import torch

    from sampletool.data.augment import AugmentConfig
    from sampletool.data.augment import augment as add_noise

    t0 = time.perf_counter()
    classes = sorted({c for _, c in splits["train"]})
    clips = read_clips([p for p, _ in splits["train"]], audio)
    x = mfcc_stats(clips)
    y = np.array([classes.index(c) for _, c in splits["train"]])
    if augment:  # two noisy copies of each training clip
        cfg = AugmentConfig.from_dict(NOISE)
        noisy = [add_noise(clips, cfg, audio.sample_rate, torch.Generator().manual_seed(seed))
                 for seed in range(2)]  # fmt: skip
        x = np.concatenate([x, *(mfcc_stats(n) for n in noisy)])
        y = np.concatenate([y, y, y])
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt = torch.tensor((x - mu) / sd, dtype=torch.float64)
    yt = torch.tensor(y)
    w = torch.zeros(xt.shape[1], len(classes), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + 1e-3 * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    seconds = time.perf_counter() - t0
    xs = torch.tensor((mfcc_stats(read_clips([p for p, _ in splits["test"]], audio)) - mu) / sd)
    pred = (xs @ w + b).argmax(1).tolist()
    truth = [classes.index(c) for _, c in splits["test"]]
    return seconds, [int(p == t) for p, t in zip(pred, truth, strict=True)], math.nan


def neural(kind: str, splits, dataset: Path, work: Path, steps: int, augment: bool):
    from sampletool.models.kinds import get_kind
    from sampletool.models.runtime import load_runtime
    from sampletool.training.trainer import TrainConfig, Trainer

    model = get_kind(kind).preset("small")
    wavenet = kind.startswith("wavenet")
    batch = 8 if wavenet else 16
    logdir = work / f"{kind}{'-aug' if augment else ''}"
    shutil.rmtree(logdir, ignore_errors=True)
    cfg = TrainConfig(dataset=str(dataset), model=model, batch_size=batch, max_steps=steps,
                      lr=3e-3 if wavenet else 1e-3,
                      eval_every=max(10, steps // 8), patience=100,
                      augment=NOISE if augment else {"mode": "none"})  # fmt: skip
    t0 = time.perf_counter()
    Trainer(logdir, cfg, device="cpu").run()
    seconds = time.perf_counter() - t0
    runtime = load_runtime(logdir, device="cpu")
    clips = read_clips([p for p, _ in splits["test"]], runtime.audio).numpy()
    probs = runtime.encode_clips(clips).probs
    pred = [runtime.class_names[i] for i in probs.argmax(1)]
    right = [int(p == c) for p, (_, c) in zip(pred, splits["test"], strict=True)]
    recon = runtime.metadata.get("metrics", {}).get("val_recon", math.nan)
    return seconds, right, recon


def table(results: list[dict]) -> str:
    """The results as a Markdown table."""
    lines = ["| task | method | augmentation | test accuracy (95 % CI) | files | training |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        lo, hi = r["ci95"]
        lines.append(f"| {r['task']} | {r['method']} | {'noise' if r['augment'] else 'none'} | "
                     f"{r['accuracy']:.3f} ({lo:.3f} to {hi:.3f}) | {r['test_files']} | "
                     f"{r['train_seconds']:.0f} s |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", nargs="+", default=["speech", "drums"], choices=["speech", "drums"])
    p.add_argument("--drums", default="real-samples", help="a folder of real one-shots")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--methods", nargs="+", default=["mfcc-logreg", "vae", "wavenet-encoder",
                                                     "wavenet-autoencoder"])  # fmt: skip
    p.add_argument("--work", default="/tmp/nsynth-experiment")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--table", metavar="RESULTS.json", help="only print a Markdown table of "
                   "results written by --json")  # fmt: skip
    args = p.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())), end="")
        return 0
    import torch

    from sampletool.features import AudioConfig

    torch.set_num_threads(2)
    work = Path(args.work)
    results = []
    for task in args.task:
        splits = (make_speech(work / "speech-audio") if task == "speech"
                  else make_drums(Path(args.drums)))  # fmt: skip
        counts = {k: len(v) for k, v in splits.items()}
        classes = sorted({c for _, c in splits["train"]})
        print(f"== {task}: {len(classes)} classes, {counts}", flush=True)
        dataset = write_dataset(splits, work / f"{task}-dataset")
        for method in args.methods:
            for aug in (False, True):
                if method == "mfcc-logreg":
                    seconds, right, recon = mfcc_logreg(splits, AudioConfig(), aug)
                else:
                    seconds, right, recon = neural(method, splits, dataset, work / task,
                                                   args.steps, aug)  # fmt: skip
                k, n = sum(right), len(right)
                lo, hi = wilson(k, n)
                row = {"task": task, "method": method, "augment": aug, "accuracy": k / n,
                       "ci95": [lo, hi], "test_files": n, "train_seconds": seconds,
                       "val_recon": recon}  # fmt: skip
                results.append(row)
                print(f"{task:6} {method:20} {'noise' if aug else 'clean':5}  accuracy "
                      f"{k / n:.3f} [{lo:.3f}, {hi:.3f}]  ({k}/{n})  trained in {seconds:6.1f} s"
                      + (f"  recon {recon:.2f}" if not math.isnan(recon) else ""),
                      flush=True)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(table(results), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
