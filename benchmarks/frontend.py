"""Front-end throughput: audio files -> 2 s log-mel features, in files/s, three pipelines.

Usage: .venv/bin/python benchmarks/frontend.py DIR [--workers 2] [--repeat 3] [--json]

Every file under DIR (recursively) goes to every pipeline, non-audio files included: each
pipeline must report those as failures, and its files/s counts only the files it decoded
(files decoded / wall time for the whole list, failures' cost included). The pipelines, all
with the same number of worker processes, the same multiprocessing start method as
sampletool.audio (forkserver, preloading sampletool.audio) and the same `imap` chunk size as
ClipLoader:

(a) ours: ``ClipLoader(N, transform=LogMelTransform()).load(paths)``: each worker reads 2 s,
    mixes to mono, resamples with soxr HQ to 16 kHz, pads, computes the log-mel features
    (torch, one thread) and sends them back as float16 -- the pipeline the feature cache and
    the scanner use, end to end. Measured:
    - warm pool (the headline, the same conditions as (b) and (c)): one loader made before
      timing and reused, as the app and the cache builder keep theirs;
    - start-up included: the loader is created and closed inside the timed region, as
      ``load_clips`` does (worker fork from the running forkserver and tear-down are timed;
      the forkserver's own start, once per process, is reported apart as "first scan").
(a') the earlier design, for comparison: workers send 2 s clips, the parent runs
    ``log_mel`` on them in batches of --feature-batch.
(b) decode-only: ``SoundFile(path).read(ceil(2 s * native rate), dtype="float32")`` per file in a
    Pool -- no mixing, no resampling, no features, and the samples are not sent back (only a
    frame count is): the floor that any pipeline reading these frames pays.
(c) SampleVAE-style per file in a Pool: ``librosa.load(path, sr=16000, duration=2.0)`` (its
    default resampler), pad to 2 s, ``librosa.feature.melspectrogram(n_fft=1024, hop_length=256,
    n_mels=128)``, ``librosa.power_to_db(ref=np.max, top_db=80)``; the features are sent back
    and stacked. Files librosa cannot read are skipped (counted as failures).

Pools for (b), (c) and the warm (a) are created, and warmed up (librosa imported and run once
in each worker, one untimed pass over all files for every pipeline), before timing: their
start-up is NOT timed, so the headline compares warm pools with warm pools. Files
are read once before anything is timed, so every run reads from the page cache. Runs are
interleaved (a, a-warm, b, c, a, a-warm, b, c, ...); the median of the repeats is reported.

Goals: ours >= 2x librosa and >= 0.7x decode-only, in files/s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

# Kept light on purpose: pool workers re-import this script (as __mp_main__) when they start,
# so torch and librosa are imported inside functions, never at module level.
from sampletool.audio import ClipLoader

SECONDS = 2.0
SAMPLE_RATE = 16000
FEATURE_BATCH = 256
GOAL_VS_LIBROSA = 2.0
GOAL_VS_DECODE = 0.7

Task = tuple[int, str]
Result = tuple[int, object]  # (input position, value or failure reason as str)


# -- worker functions (run in pool processes) ---------------------------------------------------


def _decode_only(task: Task) -> Result:
    """(b): read the first 2 s of frames at the native rate; return the frame count."""
    i, path = task
    try:
        with sf.SoundFile(path) as f:
            data = f.read(math.ceil(SECONDS * f.samplerate), dtype="float32", always_2d=True)
    except Exception as e:  # not audio, damaged, a folder...
        return i, f"{type(e).__name__}: {e}"
    if data.shape[0] == 0:
        return i, "no frames"
    return i, int(data.shape[0])


def _librosa_init() -> None:
    """Pool initializer for (c): import librosa and run each step once, untimed."""
    warnings.simplefilter("ignore")  # "PySoundFile failed. Trying audioread instead." etc.
    import librosa

    y = np.random.default_rng(0).standard_normal(round(SECONDS * SAMPLE_RATE)).astype(np.float32)
    _librosa_features(librosa, y)
    try:  # a non-audio file: exercises librosa's audioread fallback (imports audioread)
        librosa.load(__file__, sr=SAMPLE_RATE, duration=SECONDS)
    except Exception:
        pass


def _librosa_features(librosa, y: np.ndarray) -> np.ndarray:
    y = librosa.util.fix_length(y, size=round(SECONDS * SAMPLE_RATE))
    mel = librosa.feature.melspectrogram(
        y=y, sr=SAMPLE_RATE, n_fft=1024, hop_length=256, n_mels=128
    )
    return librosa.power_to_db(mel, ref=np.max, top_db=80.0)


def _librosa_task(task: Task) -> Result:
    """(c): SampleVAE's per-file pipeline; returns the dB mel spectrogram [128, 126]."""
    import librosa

    i, path = task
    try:
        y, _ = librosa.load(path, sr=SAMPLE_RATE, duration=SECONDS)
    except Exception as e:
        return i, f"{type(e).__name__}: {e}"
    return i, _librosa_features(librosa, y)


# -- pipelines (run in this process) ------------------------------------------------------------


def _chunksize(n: int, workers: int) -> int:
    # The same rule as ClipLoader.iter_clips, so every pool moves work in the same portions.
    return max(1, min(16, n // (workers * 8) or 1))


def _features(audio: np.ndarray, batch: int = FEATURE_BATCH):
    import torch

    from sampletool.features import log_mel

    with torch.inference_mode():
        out = [log_mel(torch.from_numpy(audio[i : i + batch])) for i in range(0, len(audio), batch)]
    return torch.cat(out) if out else torch.empty(0)


def _check(feats, indices: list[int]) -> None:
    if len(indices) and tuple(feats.shape) != (len(indices), 128, 125):
        raise RuntimeError(f"unexpected feature shape {tuple(feats.shape)}")


class Outcome:
    """What one run decoded: the positions of the files it read and the failure reasons."""

    def __init__(self, ok: list[int], failures: list[tuple[int, str]]) -> None:
        self.ok = ok
        self.failures = failures


def _loader(workers: int) -> ClipLoader:
    from sampletool.features import LogMelTransform

    return ClipLoader(workers, SECONDS, SAMPLE_RATE, transform=LogMelTransform())


def run_ours_cold(paths: Sequence[str], workers: int, feature_batch: int) -> Outcome:
    with _loader(workers) as loader:
        batch = loader.load(paths)
    _check(batch.audio, batch.indices)
    return Outcome(batch.indices, [(i, r) for i, _, r in batch.failures])


def run_ours_warm(paths: Sequence[str], loader: ClipLoader, feature_batch: int) -> Outcome:
    batch = loader.load(paths)
    _check(batch.audio, batch.indices)
    return Outcome(batch.indices, [(i, r) for i, _, r in batch.failures])


def run_ours_parent_features(
    paths: Sequence[str], loader: ClipLoader, feature_batch: int
) -> Outcome:
    """The earlier design, for comparison: workers send clips, the parent computes features."""
    batch = loader.load(paths)
    _check(_features(batch.audio, feature_batch), batch.indices)
    return Outcome(batch.indices, [(i, r) for i, _, r in batch.failures])


def run_pool(paths: Sequence[str], pool, fn: Callable[[Task], Result], workers: int) -> Outcome:
    ok: list[int] = []
    failures: list[tuple[int, str]] = []
    rows: list[np.ndarray] = []
    chunk = _chunksize(len(paths), workers)
    for i, value in pool.imap(fn, enumerate(paths), chunksize=chunk):
        if isinstance(value, str):
            failures.append((i, value))
        else:
            ok.append(i)
            if isinstance(value, np.ndarray):
                rows.append(value)
    if rows:
        np.stack(rows)  # (c) ends with a feature batch, like (a)
    return Outcome(ok, failures)


# -- measurement --------------------------------------------------------------------------------


def collect(directory: Path) -> list[str]:
    return sorted(str(p) for p in directory.rglob("*") if p.is_file())


def _timed(fn: Callable[[], Outcome]) -> tuple[float, Outcome]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _reason_kind(reason: str) -> str:
    """Group failure reasons: ours say 'damaged or unsupported OGG file (...)', keep the head."""
    return reason.split(" (", 1)[0].split(":", 1)[0][:60]


def measure(
    paths: list[str], workers: int, repeat: int, feature_batch: int, log: Callable[[str], None]
) -> dict:
    import torch

    from sampletool.audio import _context  # the start method and preload ClipLoader uses

    for p in paths:  # one read of every file: every run then reads from the page cache
        try:
            Path(p).read_bytes()
        except OSError:
            pass
    _features(np.zeros((2, round(SECONDS * SAMPLE_RATE)), np.float32))  # build torch kernels

    log("first scan of this process (starts the forkserver)...")
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    first_s, first = _timed(lambda: run_ours_cold(paths, workers, feature_batch))

    ctx = _context()
    log("starting and warming the pools...")
    warm_loader = _loader(workers)
    clip_loader = ClipLoader(workers=workers, seconds=SECONDS, sample_rate=SAMPLE_RATE)
    decode_pool = ctx.Pool(workers)
    librosa_pool = ctx.Pool(workers, initializer=_librosa_init)
    pipelines: dict[str, Callable[[], Outcome]] = {
        "ours": lambda: run_ours_cold(paths, workers, feature_batch),
        "ours_warm": lambda: run_ours_warm(paths, warm_loader, feature_batch),
        "ours_parent_features": lambda: run_ours_parent_features(paths, clip_loader, feature_batch),
        "decode_only": lambda: run_pool(paths, decode_pool, _decode_only, workers),
        "librosa": lambda: run_pool(paths, librosa_pool, _librosa_task, workers),
    }
    runs: dict[str, list[float]] = {k: [] for k in pipelines}
    outcomes: dict[str, Outcome] = {}
    try:
        for name in ("ours_warm", "ours_parent_features", "decode_only", "librosa"):  # warm-up
            pipelines[name]()
        for r in range(repeat):
            log(f"repeat {r + 1}/{repeat}...")
            for name, fn in pipelines.items():
                seconds, out = _timed(fn)
                runs[name].append(seconds)
                outcomes[name] = out
    finally:
        warm_loader.close()
        clip_loader.close()
        for pool in (decode_pool, librosa_pool):
            pool.terminate()
            pool.join()

    results: dict[str, dict] = {}
    for name, times in runs.items():
        out = outcomes[name]
        rates = [len(out.ok) / t for t in times]
        results[name] = {
            "decoded": len(out.ok),
            "skipped": len(out.failures),
            "median_s": statistics.median(times),
            "median_files_per_s": statistics.median(rates),
            "runs_s": times,
            "runs_files_per_s": rates,
            "skipped_by_reason": dict(Counter(_reason_kind(r) for _, r in out.failures)),
        }
    ref = set(outcomes["ours"].ok)
    disagreements = {
        name: {
            "decoded_only_here": [paths[i] for i in sorted(set(o.ok) - ref)],
            "decoded_only_by_ours": [paths[i] for i in sorted(ref - set(o.ok))],
        }
        for name, o in outcomes.items()
        if set(o.ok) != ref
    }

    def ratio(a: str, b: str) -> float | None:
        den = results[b]["median_files_per_s"]
        return results[a]["median_files_per_s"] / den if den else None  # None: b decoded nothing

    import librosa

    return {
        "benchmark": "frontend",
        "files": len(paths),
        "workers": workers,
        "repeat": repeat,
        "torch_threads": torch.get_num_threads(),
        "feature_batch": feature_batch,
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "librosa": librosa.__version__,
        "start_method": ctx.get_start_method(),
        "chunksize": _chunksize(len(paths), workers),
        "pipelines": results,
        "first_scan": {
            "seconds": first_s,
            "files_per_s": len(first.ok) / first_s,
            "note": "ours with start-up, first pool of the process: includes forkserver start",
        },
        "ratios": {
            "ours_vs_librosa": ratio("ours", "librosa"),
            "ours_vs_decode_only": ratio("ours", "decode_only"),
            "ours_warm_vs_librosa": ratio("ours_warm", "librosa"),
            "ours_warm_vs_decode_only": ratio("ours_warm", "decode_only"),
        },
        "goals": {"ours_vs_librosa": GOAL_VS_LIBROSA, "ours_vs_decode_only": GOAL_VS_DECODE},
        "disagreements": disagreements,
    }


# -- report -------------------------------------------------------------------------------------

_LABELS = {
    "ours_warm": "(a) ours, warm pool",
    "ours": "(a) ours, pool start-up timed",
    "ours_parent_features": "(a') clips to parent, log_mel there",
    "decode_only": "(b) decode-only, warm pool",
    "librosa": "(c) librosa per file, warm pool",
}


def print_table(res: dict, directory: str) -> None:
    print(
        f"frontend: {res['files']} files under {directory}; {res['workers']} workers "
        f"({res['start_method']}, chunksize {res['chunksize']}), {res['repeat']} interleaved "
        f"repeats; log_mel in batches of {res['feature_batch']}, torch {res['torch']} "
        f"({res['torch_threads']} threads), librosa "
        f"{res['librosa']}; {res['cpu_count']} CPUs"
    )
    print()
    print(f"{'pipeline':33} {'decoded':>7} {'skipped':>7} {'median s':>9} {'files/s':>8}  runs")
    for name, label in _LABELS.items():
        p = res["pipelines"][name]
        runs = " ".join(f"{x:.0f}" for x in p["runs_files_per_s"])
        print(
            f"{label:33} {p['decoded']:7d} {p['skipped']:7d} {p['median_s']:9.3f} "
            f"{p['median_files_per_s']:8.0f}  {runs}"
        )
    fs = res["first_scan"]
    print(
        f"{'first scan of the process (a)':33} {'':7} {'':7} {fs['seconds']:9.3f} "
        f"{fs['files_per_s']:8.0f}  (includes starting the forkserver)"
    )
    print()
    r = res["ratios"]
    for key, goal in (("librosa", GOAL_VS_LIBROSA), ("decode_only", GOAL_VS_DECODE)):
        cold = r[f"ours_vs_{key}"]
        head = r[f"ours_warm_vs_{key}"]
        if head is None or cold is None:
            print(f"ours / {key:12}   n/a (nothing decoded)")
            continue
        verdict = "met" if head >= goal else "NOT met"
        print(
            f"ours / {key:12} {head:5.2f}x   goal >= {goal}x: {verdict}   "
            f"(with our pool's start-up timed: {cold:.2f}x)"
        )
    print()
    reasons = res["pipelines"]["ours_warm"]["skipped_by_reason"]
    print("skipped by ours: " + "; ".join(f"{n} {k}" for k, n in reasons.items()))
    for name, d in res["disagreements"].items():
        print(
            f"note: {name} decoded {len(d['decoded_only_here'])} files ours did not and missed "
            f"{len(d['decoded_only_by_ours'])} that ours decoded"
        )
    print(
        "timed: (a warm), (a'), (b), (c): the work only, pools started and warmed beforehand;"
        " (a) start-up: also pool start-up and tear-down (not the forkserver)."
    )
    before, after = res["load_average_before"], res["load_average_after"]
    if before is not None and after:
        print(
            f"1-min load average {before:.2f} before, {after[0]:.2f} after the runs "
            f"(on {res['cpu_count']} CPUs; other load makes the figures noisy)"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Files/s of our audio->log-mel front end vs decode-only and librosa.",
        epilog="Goals: ours >= 2x librosa and >= 0.7x decode-only (see the module docstring).",
    )
    parser.add_argument("directory", type=Path, help="folder of samples (read recursively)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each pipeline (default 3)")
    parser.add_argument(
        "--feature-batch",
        type=int,
        default=FEATURE_BATCH,
        help=f"clips per log_mel call in (a) (default {FEATURE_BATCH})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.repeat < 1 or args.feature_batch < 1:
        parser.error("--workers, --repeat and --feature-batch must be >= 1")
    if not args.directory.is_dir():
        parser.error(f"{args.directory} is not a folder")
    try:
        import librosa  # noqa: F401
    except ImportError:
        sys.exit("librosa is missing; install the benchmark extra: pip install -e .[bench]")
    paths = collect(args.directory)
    if not paths:
        sys.exit(f"no files under {args.directory}")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    res = measure(paths, args.workers, args.repeat, args.feature_batch, log)
    res["directory"] = str(args.directory)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print_table(res, str(args.directory))


if __name__ == "__main__":
    main()
