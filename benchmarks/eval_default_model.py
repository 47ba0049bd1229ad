"""How good is the built-in model on real sounds it never saw? Classification of drums and of
melodic files, honest confidence, similarity, reconstruction and blends, each next to a
baseline measured in the same run.

Usage:
    .venv/bin/python benchmarks/eval_default_model.py REAL_SAMPLES [--model DIR]
        [--work DIR] [--out DIR] [--json] [--write-metadata]

REAL_SAMPLES is the folder `../shared/tools/real-samples` unpacks (lmms/ and sonic-pi/).

Test set: lmms/drums/* and Sonic Pi's bd_*, sn_*, drum_* and elec_* one-shots, labelled from
their file names by `sampletool.data.labels.drum_class`, keeping kick, snare, hihat, tom,
cymbal and clap. None of these files is in the default model's training data, and model
selection only looked at the recipe's own validation split, so the whole set is held out.

1. Classification: balanced accuracy over the six drum classes (the model's argmax over all
   its classes: a kick called "percussion" is wrong), next to the classic baseline, MFCC
   statistics (20 MFCCs and their deltas, mean and std over time: 80 numbers) + logistic
   regression trained on the same training data as the model (the recipe's dataset, train
   split; rebuilt in --work if missing).
2. Similarity: precision@10 among the test one-shots (the share of each one's 10 nearest
   neighbours, itself excluded, that have its class), for the model's search vectors (Euclidean,
   as the library index) and for standardised MFCC statistics. Classes smaller than 11 cap it,
   so the ceiling is printed too, and so is a 95% bootstrap interval (resampling the test
   clips) for the model's figure and for its gain over the baseline: with about 100 clips the
   figure itself is only known to a few hundredths.
3. Reconstruction: log-spectral distance (dB, the model's own STFT at its sample rate, each
   clip relative to its own peak, floored at -80 dB like the features) between the real clip
   and (a) encode -> decode -> Griffin-Lim, decoding what generation decodes (the clip's
   latent after the flows, `SoundSampleTool.latent`), (b) the oracle: Griffin-Lim straight from
   the true log-mel. The gap is what the model loses.
4. Blends: kick + snare pairs (and a few others) of real samples, 50/50, written as WAVs and a
   spectrogram PNG under --out for listening and looking; for each, its energy below 200 Hz
   and above 2 kHz and what the classifier hears in it (its probability of each parent's
   class), next to the parents'.

5. The melodic half (lmms instruments/, basses/, stringsnpads/; Sonic Pi guit_, bass_, ambi_:
   see `melodic_files`): the share heard as "tonal" and the share heard as a drum (kick,
   snare, hihat, tom, cymbal, clap or percussion), by the model's argmax, and the share heard
   as a drum with confidence (not unsure).
6. No instrument at all: lmms's waveforms/ (single cycles, a few cycles, LFO shapes) and test
   signals (silence, white noise, sines, a square wave): the share heard as a drum.
7. Calibration: expected calibration error (15 bins) on the labelled real clips (the drums
   with their class, the melodic files as "tonal"), with the bundle's temperature and without
   it (temperature 1), and the share of clips shown as unsure.
The MFCC baseline (MFCC statistics + logistic regression on the recipe's training data) is
measured beside each figure.

--write-metadata stores the figures in the bundle's config.json ("evaluation").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sampletool.audio import load_clips, write_wav
from sampletool.data.labels import drum_class
from sampletool.features import AudioConfig, features_to_audio, log_mel
from sampletool.models.calibration import SILENT

DRUMS = ("kick", "snare", "hihat", "tom", "cymbal", "clap")
DRUM_LIKE = (*DRUMS, "percussion")  # "heard as a drum": any of these
SONIC_PI_PREFIXES = ("bd_", "sn_", "drum_", "elec_")


def test_files(real: Path) -> tuple[list[Path], list[str]]:
    candidates = sorted((real / "lmms" / "drums").glob("*"))
    candidates += sorted(
        p for p in (real / "sonic-pi").glob("*") if p.name.startswith(SONIC_PI_PREFIXES)
    )
    files, labels = [], []
    for p in candidates:
        cls = drum_class(p.name)
        if cls in DRUMS:
            files.append(p)
            labels.append(cls)
    return files, labels


# The melodic half of the test set: folders and prefixes that hold notes of instruments, each
# file with the family a producer would file it under (for measuring whether a model tells
# families apart; `family_of` decides from the name).
MELODIC_FOLDERS = ("instruments", "basses", "stringsnpads")  # lmms
MELODIC_PREFIXES = ("guit_", "bass_", "ambi_")  # Sonic Pi
FAMILY_WORDS = (("bass", "bass"), ("cello", "strings-pads"), ("violin", "strings-pads"),
                ("organ", "keys"), ("piano", "keys"), ("harpsichord", "keys"),
                ("flute", "brass-wind"), ("trumpet", "brass-wind"), ("guit", "plucked"),
                ("choir", "vocal"), ("chorus", "vocal"))  # fmt: skip


def family_of(path: Path) -> str:
    name = path.name.lower()
    for word, family in FAMILY_WORDS:
        if word in name and not (word == "bass" and path.parent.name == "stringsnpads"):
            return family
    return "bass" if path.parent.name == "basses" else "strings-pads"


def melodic_files(real: Path) -> tuple[list[Path], list[str]]:
    """The melodic test files and their families."""
    files = [p for d in MELODIC_FOLDERS for p in sorted((real / "lmms" / d).glob("*"))]
    files += sorted(p for p in (real / "sonic-pi").glob("*") if p.name.startswith(MELODIC_PREFIXES))
    return files, [family_of(p) for p in files]


def labelled_clips(real: Path, cfg: AudioConfig, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The labelled real test clips, the drums then the melodic files (readable ones), and
    their classes as indices into `names` (the melodic files as "tonal")."""
    drums, classes = test_files(real)
    d_clips, _, _, d_kept = load_features(drums, cfg)
    m_clips, _, _, m_kept = load_features(melodic_files(real)[0], cfg)
    truth = [names.index(classes[i]) for i in d_kept] + [names.index("tonal")] * len(m_kept)
    return np.concatenate([d_clips, m_clips]), np.array(truth)


def signal_files(real: Path) -> list[Path]:
    """lmms's plain waveforms: single cycles, a few cycles, LFO shapes."""
    return sorted((real / "lmms" / "waveforms").glob("*"))


def test_signals(cfg: AudioConfig) -> tuple[np.ndarray, list[str]]:
    """Clips no instrument made: silence, white noise, sines (held at four pitches, gated to
    half a second, a 0.2 s burst at 60 Hz), a held square wave."""
    n = cfg.num_samples
    t = np.arange(n) / cfg.sample_rate
    rng = np.random.default_rng(0)
    clips = {
        "silence": np.zeros(n),
        "white noise": rng.uniform(-0.5, 0.5, n),
        "sine 440 Hz": 0.5 * np.sin(2 * np.pi * 440 * t),
        "sine 110 Hz": 0.5 * np.sin(2 * np.pi * 110 * t),
        "sine 1 kHz": 0.5 * np.sin(2 * np.pi * 1000 * t),
        "sine 4 kHz": 0.5 * np.sin(2 * np.pi * 4000 * t),
        "sine 440 Hz, 0.5 s": np.where(t < 0.5, 0.5 * np.sin(2 * np.pi * 440 * t), 0.0),
        "sine 60 Hz, 0.2 s": np.where(t < 0.2, 0.5 * np.sin(2 * np.pi * 60 * t), 0.0),
        "square 110 Hz": 0.3 * np.sign(np.sin(2 * np.pi * 110 * t)),
    }
    return np.stack(list(clips.values())).astype(np.float32), list(clips)


def load_features(paths: list[Path], cfg: AudioConfig) -> tuple[np.ndarray, np.ndarray, list]:
    """(clips [n, samples], log-mel features [n, mels, frames], failures) for readable files."""
    batch = load_clips(paths, seconds=cfg.seconds, sample_rate=cfg.sample_rate)
    feats = log_mel(torch.from_numpy(batch.audio), cfg).numpy()
    return batch.audio, feats, batch.failures, batch.indices


# -- the classic baseline ------------------------------------------------------------------------


def mfcc_stats(features: np.ndarray, cfg: AudioConfig, n_mfcc: int = 20) -> np.ndarray:
    """MFCC statistics from log-mel features: DCT-II (orthonormal) of the dB mel spectrum, as
    librosa.feature.mfcc does, then mean and std over time of the MFCCs and their deltas."""
    db = (features.astype(np.float64) - 1.0) * cfg.top_db  # [n, mels, frames]
    m = db.shape[1]
    k = np.arange(n_mfcc)[:, None]
    j = np.arange(m)[None, :]
    dct = np.cos(np.pi * k * (2 * j + 1) / (2 * m)) * np.sqrt(2 / m)
    dct[0] /= np.sqrt(2)
    mfcc = np.einsum("km,nmt->nkt", dct, db)
    delta = np.gradient(mfcc, axis=2)
    return np.concatenate([mfcc.mean(2), mfcc.std(2), delta.mean(2), delta.std(2)], axis=1).astype(
        np.float32
    )


def balanced_accuracy(y_true: list[str], y_pred: list[str], classes=DRUMS) -> tuple[float, dict]:
    per = {}
    for c in classes:
        idx = [i for i, y in enumerate(y_true) if y == c]
        if idx:
            per[c] = sum(y_pred[i] == c for i in idx) / len(idx)
    return float(np.mean(list(per.values()))), per


def query_precision(
    vectors: np.ndarray, labels: list[str], k: int = 10, kinds: np.ndarray | None = None
) -> np.ndarray:
    """Each vector's precision@k: the share of its k nearest others (Euclidean) in its class.

    kinds: each clip's predicted class, to search as "Same kind only" does (only clips of the
    query's predicted class are neighbours); a list shorter than k counts its empty places as
    misses, so the figure stays out of k.
    """
    v = vectors.astype(np.float64)
    d = ((v[:, None, :] - v[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    if kinds is not None:
        d[kinds[:, None] != kinds[None, :]] = np.inf
    lab = np.array(labels)
    nn = np.argsort(d, axis=1)[:, :k]
    listed = np.isfinite(np.take_along_axis(d, nn, axis=1))
    return ((lab[nn] == lab[:, None]) & listed).sum(1) / k


def bootstrap_interval(values: np.ndarray, n: int = 10000, seed: int = 0) -> tuple[float, float]:
    """The 95% interval of the mean of per-query `values`, resampling the queries (so it says
    how far another set of this size from the same sources could move the mean)."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n, len(values)))].mean(1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def precision_at_k(
    vectors: np.ndarray, labels: list[str], k: int = 10
) -> tuple[float, float, dict]:
    """(mean precision@k, its ceiling given the class sizes, {class: (its mean precision@k,
    its ceiling)}), Euclidean, self excluded."""
    return summarise_precision(query_precision(vectors, labels, k), labels, k)


def summarise_precision(
    precision: np.ndarray, labels: list[str], k: int = 10
) -> tuple[float, float, dict]:
    """`precision_at_k`'s figures from per-query precisions (`query_precision`)."""
    lab = np.array(labels)
    # A class of n clips can give each of them at most n - 1 same-class neighbours.
    cap = {c: min(k, int((lab == c).sum()) - 1) / k for c in set(labels)}
    ceiling = np.array([cap[c] for c in labels])
    order = sorted(cap, key=lambda c: (DRUMS.index(c) if c in DRUMS else len(DRUMS), c))
    per = {c: (float(precision[lab == c].mean()), cap[c]) for c in order}
    return float(precision.mean()), float(ceiling.mean()), per


def confusion(y_true: list[str], y_pred: list[str], cols: list[str]) -> list[list[int]]:
    m = np.zeros((len(DRUMS), len(cols)), int)
    for t, p in zip(y_true, y_pred, strict=True):
        if p in cols:
            m[DRUMS.index(t), cols.index(p)] += 1
    return m.tolist()


# -- reconstruction ------------------------------------------------------------------------------


def lsd_db(reference: np.ndarray, estimate: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """Log-spectral distance per clip in dB, each spectrum relative to its own peak, floor -80."""

    def spec_db(x: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32)
        s = torch.stft(x, cfg.n_fft, cfg.hop_length, window=torch.hann_window(cfg.n_fft),
                       return_complex=True).abs().square()  # fmt: skip
        db = 10 * torch.log10(s.clamp_min(1e-12))
        peak = db.amax(dim=(1, 2), keepdim=True)
        return torch.maximum(db, peak - cfg.top_db)

    a, b = spec_db(reference), spec_db(estimate)
    per_frame = (a - b).square().mean(1).sqrt()  # [n, frames]
    # Frames where both are at the floor (silence after a short hit) say nothing: leave them out.
    active = (a.amax(1) > a.amax((1, 2))[:, None] - cfg.top_db + 1) | (
        b.amax(1) > b.amax((1, 2))[:, None] - cfg.top_db + 1
    )
    out = (per_frame * active).sum(1) / active.sum(1).clamp_min(1)
    return out.numpy()


# -- blends --------------------------------------------------------------------------------------


def band_shares(clip: np.ndarray, cfg: AudioConfig) -> tuple[float, float]:
    """(share of energy below 200 Hz, share above 2 kHz): a kick lives low, a snare's or a
    hat's noise high, so a blend of both should have some of each."""
    spec = np.abs(np.fft.rfft(clip)) ** 2
    f = np.fft.rfftfreq(len(clip), 1 / cfg.sample_rate)
    total = spec.sum() + 1e-20
    return round(float(spec[f < 200].sum() / total), 3), round(
        float(spec[f > 2000].sum() / total), 3
    )


def write_blends(tool, files: list[Path], labels: list[str], out: Path, cfg: AudioConfig) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def first(cls: str, n: int = 0) -> tuple[Path, str]:
        return [f for f, lab in zip(files, labels, strict=True) if lab == cls][n], cls

    pairs = [
        (first("kick"), first("snare")),
        (first("kick", 3), first("snare", 5)),
        (first("kick", 7), first("hihat", 2)),
        (first("tom"), first("cymbal")),
    ]
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(len(pairs), 3, figsize=(12, 3 * len(pairs)))
    done = []
    for row, ((a, a_cls), (b, b_cls)) in enumerate(pairs):
        blend = tool.generate(None, [a, b], weights=[0.5, 0.5], seed=0)
        name = f"blend_{row}_{a.stem}+{b.stem}.wav"
        write_wav(out / name, blend, cfg.sample_rate)
        clips = np.stack([tool.runtime.clip(a), tool.runtime.clip(b), blend])
        feats = log_mel(torch.from_numpy(clips), cfg).numpy()
        for col, (title, f) in enumerate(zip([a.name, b.name, "50/50 blend"], feats, strict=True)):
            ax = axes[row, col]
            ax.imshow(f, origin="lower", aspect="auto", cmap="magma")
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        shares = [band_shares(c, cfg) for c in clips]
        pair = [tool.class_names.index(a_cls), tool.class_names.index(b_cls)]
        probs = tool.runtime.encode_clips(clips).probs[:, pair]
        heard = {k: [round(float(v), 2) for v in row_p]
                 for k, row_p in zip(("a", "b", "blend"), probs, strict=True)}  # fmt: skip
        done.append({"a": a.name, "b": b.name, "wav": name, "classes": [a_cls, b_cls],
                     "low_high_energy_share": {"a": shares[0], "b": shares[1],
                                               "blend": shares[2]},
                     "class_probabilities": heard})  # fmt: skip
    fig.tight_layout()
    fig.savefig(out / "blends.png", dpi=80)
    plt.close(fig)
    return done


# -- the baseline's training data ------------------------------------------------------------------


def training_features(work: Path, cfg: AudioConfig) -> tuple[np.ndarray, list[str]]:
    """MFCC statistics and labels of the recipe's training split (built in `work` if missing)."""
    from sampletool.data.cache import DONE, FeatureCache
    from sampletool.data.dataset import load_dataset
    from sampletool.training import recipe

    if not (work / "dataset" / "manifest.csv").is_file():
        recipe.build_data(work, recipe.DEFAULT_PER_CLASS, 0)
    ds = load_dataset(recipe.make_default_dataset(work, 0))
    cache = FeatureCache(ds, cfg)
    if not cache.is_complete("features"):
        cache.build(False)
    ok = cache.status("features") == DONE
    idx = [i for i in ds.indices("train") if ok[i]]
    feats = cache.features()
    stats = np.concatenate(
        [mfcc_stats(feats[idx[s : s + 256]], cfg) for s in range(0, len(idx), 256)]
    )
    return stats, [ds.class_names[ds.labels[i]] for i in idx]


# -- the melodic half, no-instrument signals, calibration -----------------------------------------


def ece_floor(probs: np.ndarray, draws: int = 2000, seed: int = 0, bins: int = 15) -> float:
    """The ECE a perfectly calibrated model with these confidences would show on this many
    clips, on average: each prediction drawn right with its own confidence. With a couple of
    hundred clips, binning alone leaves a few hundredths."""
    conf = probs.max(1)
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)
    rng = np.random.default_rng(seed)
    right = rng.random((draws, len(conf))) < conf
    gaps = np.zeros(draws)
    for b in np.unique(which):
        m = which == b
        gaps += m.sum() * np.abs(right[:, m].mean(1) - conf[m].mean())
    return float(gaps.mean() / len(conf))


def heard(probs: np.ndarray, names: list[str], unsure_below: float) -> dict:
    """Shares of clips heard as tonal, as a drum, as a drum with confidence, and unsure."""
    best = probs.argmax(1)
    conf = probs.max(1)
    heard_nothing = np.ptp(probs, axis=1) < SILENT  # every class alike (the model's silence)
    drum = np.isin(np.array(names)[best], DRUM_LIKE) & ~heard_nothing
    tonal = np.array(names)[best] == "tonal"
    return {
        "tonal": float(tonal.mean()), "drum": float(drum.mean()),
        "drum_confident": float((drum & (conf >= unsure_below)).mean()),
        "unsure": float((conf < unsure_below).mean()),
    }  # fmt: skip


def other_sets(real: Path, tool, cfg: AudioConfig, baseline_probs, drums: tuple) -> dict:
    """Sections 5-7 of the module docstring, for the model and the baseline. `drums`: the drum
    test set's (clips, model probabilities, baseline probabilities, labels)."""
    drum_clips, drum_probs, drum_base, drum_labels = drums
    from sampletool.models.calibration import (
        Calibration,
        expected_calibration_error,
        fit_temperature,
        scale,
    )

    runtime = tool.runtime
    names = tool.class_names
    unsure_below = runtime.calibration.unsure_below
    files, families = melodic_files(real)
    m_clips, m_feats, m_failed, kept = load_features(files, cfg)
    files = [files[i] for i in kept]
    m_probs = runtime.encode_clips(m_clips).probs
    m_base = baseline_probs(mfcc_stats(m_feats, cfg))
    drums_heard = [f.name for f, p in zip(files, m_probs, strict=True)
                   if names[int(p.argmax())] in DRUM_LIKE]  # fmt: skip
    wave_files = signal_files(real)
    w_clips, w_feats, _w_failed, w_kept = load_features(wave_files, cfg)
    wave_files = [wave_files[i] for i in w_kept]
    t_clips, t_names = test_signals(cfg)
    t_feats = log_mel(torch.from_numpy(t_clips), cfg).numpy()
    s_clips = np.concatenate([w_clips, t_clips])
    s_probs = runtime.encode_clips(s_clips).probs
    s_base = baseline_probs(mfcc_stats(np.concatenate([w_feats, t_feats]), cfg))
    s_names = [f.name for f in wave_files] + t_names
    # Calibration: the labelled clips, with and without the bundle's temperature.
    kept_cal = runtime.calibration
    runtime.calibration = Calibration(1.0, kept_cal.unsure_below)
    try:
        raw = np.concatenate([runtime.encode_clips(c).probs for c in (drum_clips, m_clips)])
    finally:
        runtime.calibration = kept_cal
    truth = np.array([names.index(c) for c in drum_labels] + [names.index("tonal")] * len(files))
    calibrated = np.concatenate([drum_probs, m_probs])
    base_all = np.concatenate([drum_base, m_base])
    # The best one temperature could do: fitted on these very clips, so a bound, not a result.
    oracle_t = fit_temperature(raw, truth)
    return {
        "melodic": {
            "files": len(files), "unreadable": len(m_failed),
            "families": {f: families.count(f) for f in sorted(set(families))},
            "model": heard(m_probs, names, unsure_below),
            "baseline_mfcc_logreg": heard(m_base, names, 0.5),
            "heard_as_a_drum": drums_heard,
        },
        "no_instrument": {
            "files": len(s_names),
            "model": heard(s_probs, names, unsure_below),
            "baseline_mfcc_logreg": heard(s_base, names, 0.5),
            "each": {n: f"{names[int(p.argmax())]} {p.max():.2f}" if np.ptp(p) >= SILENT
                     else "nothing (every class alike)"
                     for n, p in zip(s_names, s_probs, strict=True)},
        },
        "calibration": {
            "clips": len(truth), "temperature": kept_cal.temperature,
            "unsure_below": unsure_below,
            "ece_before": expected_calibration_error(raw, truth),
            "ece_after": expected_calibration_error(calibrated, truth),
            "baseline_mfcc_logreg_ece": expected_calibration_error(base_all, truth),
            "oracle_temperature": oracle_t,
            "ece_oracle": expected_calibration_error(scale(raw, oracle_t), truth),
            "ece_floor": ece_floor(calibrated),
            "unsure_share": float((calibrated.max(1) < unsure_below).mean()),
            "accuracy": float((calibrated.argmax(1) == truth).mean()),
        },
    }  # fmt: skip


def print_others(o: dict) -> None:
    m, s, c = o["melodic"], o["no_instrument"], o["calibration"]

    def row(d: dict) -> str:
        return (f"tonal {d['tonal']:.1%}  drum {d['drum']:.1%}  "
                f"drum, sure {d['drum_confident']:.1%}  unsure {d['unsure']:.1%}")  # fmt: skip

    print(f"melodic files ({m['files']}: {m['families']}), heard as (goals: tonal > 90 %, "
          "a drum < 5 %):")  # fmt: skip
    print(f"  model                 {row(m['model'])}")
    print(f"  MFCC + logistic reg.  {row(m['baseline_mfcc_logreg'])}")
    if m["heard_as_a_drum"]:
        print(f"  heard as a drum by the model: {', '.join(m['heard_as_a_drum'])}")
    print(f"no instrument ({s['files']}: lmms waveforms and test signals), heard as:")
    print(f"  model                 {row(s['model'])}")
    print(f"  MFCC + logistic reg.  {row(s['baseline_mfcc_logreg'])}")
    drums = {k: v for k, v in s["each"].items() if v.split()[0] in DRUM_LIKE}
    if drums:
        listed = ", ".join(f"{k} ({v})" for k, v in drums.items())
        print(f"  heard as a drum by the model: {listed}")
    print(f"calibration on {c['clips']} labelled real clips (goal: ECE < 0.05):")
    print(f"  model, temperature {c['temperature']:g}: ECE {c['ece_after']:.3f} (before, "
          f"temperature 1: {c['ece_before']:.3f}); accuracy {c['accuracy']:.1%}; "
          f"unsure (< {c['unsure_below']:.0%}) {c['unsure_share']:.1%}")  # fmt: skip
    print(f"  MFCC + logistic reg.  ECE {c['baseline_mfcc_logreg_ece']:.3f}")
    print(
        f"  bound: a temperature fitted on these clips themselves "
        f"({c['oracle_temperature']:.3g}) would give ECE {c['ece_oracle']:.3f};"
        " a perfectly calibrated model with these "
        f"confidences would show {c['ece_floor']:.3f} on {c['clips']} clips, on average"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("real", type=Path, help="the real-samples folder (lmms/, sonic-pi/)")
    p.add_argument("--model", default=None, help="bundle (default: the built-in model)")
    p.add_argument("--work", type=Path, default=Path("/tmp/sampletool-default-model"),
                   help="the recipe's work folder, for the baseline's training data")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("eval-default-model"),
                   help="where blends and spectrograms go")  # fmt: skip
    p.add_argument("--json", action="store_true")
    p.add_argument("--write-metadata", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(2)

    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from sampletool.models.bundle import CONFIG_FILE, resolve_model
    from sampletool.tool import SoundSampleTool

    t0 = time.perf_counter()
    model_dir = resolve_model(args.model)
    tool = SoundSampleTool(model_dir, device="cpu")
    cfg = tool.runtime.audio
    files, labels = test_files(args.real)
    clips, feats, failures, kept = load_features(files, cfg)
    files = [files[i] for i in kept]
    labels = [labels[i] for i in kept]
    counts = {c: labels.count(c) for c in DRUMS}

    # 1. classification
    reading = tool.runtime.encode_clips(clips)
    probs = reading.probs
    pred = [tool.class_names[i] for i in probs.argmax(1)]
    bal, per = balanced_accuracy(labels, pred)
    train_x, train_y = training_features(args.work, cfg)
    scaler = StandardScaler().fit(train_x)
    logreg = LogisticRegression(max_iter=3000, C=1.0, class_weight="balanced")
    logreg.fit(scaler.transform(train_x), train_y)
    test_stats = mfcc_stats(feats, cfg)
    base_pred = list(logreg.predict(scaler.transform(test_stats)))
    base_bal, base_per = balanced_accuracy(labels, base_pred)

    def baseline_probs(stats: np.ndarray) -> np.ndarray:
        """The baseline's probabilities in the model's class order (0 for classes it lacks)."""
        p = logreg.predict_proba(scaler.transform(stats))
        out = np.zeros((len(stats), len(tool.class_names)), np.float64)
        for j, c in enumerate(logreg.classes_):
            if c in tool.class_names:
                out[:, tool.class_names.index(c)] = p[:, j]
        return out

    # 5-7. the melodic half, no-instrument signals, calibration
    others = other_sets(args.real, tool, cfg, baseline_probs,
                        (clips, probs, baseline_probs(test_stats), labels))  # fmt: skip

    # 2. similarity
    vectors = reading.vectors
    model_q = query_precision(vectors, labels)
    base_q = query_precision(StandardScaler().fit_transform(test_stats), labels)
    p10, ceiling, p10_per = summarise_precision(model_q, labels)
    base_p10, _, base_p10_per = summarise_precision(base_q, labels)
    p10_interval, gain_interval = bootstrap_interval(model_q), bootstrap_interval(model_q - base_q)
    kind_q = query_precision(vectors, labels, kinds=probs.argmax(1))  # the app's filter

    # 3. reconstruction
    with torch.no_grad():
        x = torch.from_numpy(feats)
        vae = tool.runtime.module
        recon = vae.decode(vae.decoder_latent(vae.encode(x)))
        audio_model = features_to_audio(recon, cfg, n_iter=32, seed=0).numpy()
        audio_oracle = features_to_audio(x, cfg, n_iter=32, seed=0).numpy()
        feat_mse = float((recon - x).square().mean())
    lsd_model = lsd_db(clips, audio_model, cfg)
    lsd_oracle = lsd_db(clips, audio_oracle, cfg)

    # 4. blends
    blends = write_blends(tool, files, labels, args.out, cfg)

    result = {
        "model": str(model_dir),
        "test_files": len(files),
        "unreadable": [(path, reason) for _i, path, reason in failures],
        "per_class_count": counts,
        "classification": {
            "balanced_accuracy": bal, "per_class_recall": per,
            "confusion": {"rows": list(DRUMS), "columns": tool.class_names,
                          "matrix": confusion(labels, pred, tool.class_names)},
            "baseline_mfcc_logreg": {"balanced_accuracy": base_bal, "per_class_recall": base_per},
        },
        "similarity": {"precision_at_10": p10, "interval_95": p10_interval, "ceiling": ceiling,
                       "per_class": {c: v[0] for c, v in p10_per.items()},
                       "per_class_ceiling": {c: v[1] for c, v in p10_per.items()},
                       "baseline_mfcc_precision_at_10": base_p10,
                       "gain_over_baseline_interval_95": gain_interval,
                       "same_kind_precision_at_10": float(kind_q.mean()),
                       "same_kind_interval_95": bootstrap_interval(kind_q)},
        "reconstruction": {
            "lsd_db_model_median": float(np.median(lsd_model)),
            "lsd_db_model_mean": float(lsd_model.mean()),
            "lsd_db_oracle_median": float(np.median(lsd_oracle)),
            "lsd_db_oracle_mean": float(lsd_oracle.mean()),
            "feature_mse": feat_mse,
        },
        "blends": blends,
        **others,
        "seconds": time.perf_counter() - t0,
    }  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"model: {model_dir}")
        print(f"test set: {len(files)} real drum one-shots {counts}; "
              f"{len(failures)} unreadable, skipped")  # fmt: skip
        for _i, path, reason in failures:
            print(f"  unreadable: {path}: {reason}")
        print("classification, balanced accuracy over the six drum classes (goal >= 0.85):")
        print(f"  model                 {bal:.3f}  " + _fmt(per))
        print(f"  MFCC + logistic reg.  {base_bal:.3f}  " + _fmt(base_per))
        print("  confusion (rows true, columns predicted):")
        names = tool.class_names
        print("    " + " ".join(f"{n[:5]:>5}" for n in names))
        for c, row in zip(DRUMS, confusion(labels, pred, names), strict=True):
            print(f"    {c[:6]:<6}" + " ".join(f"{v:>5}" for v in row))
        print(f"similarity, precision@10 (goal >= 0.85 and above the baseline; ceiling "
              f"{ceiling:.3f} from the class sizes):")  # fmt: skip
        rows = (("model vectors", p10, p10_per), ("MFCC statistics", base_p10, base_p10_per))
        for name, value, per_class in rows:
            print(f"  {name:<20}  {value:.3f}  " + _fmt({c: v[0] for c, v in per_class.items()}))
        print(f"  {'ceiling':<20}  {ceiling:.3f}  " + _fmt({c: v[1] for c, v in p10_per.items()}))
        sk_lo, sk_hi = result["similarity"]["same_kind_interval_95"]
        print(f"  with Same kind only   {kind_q.mean():.3f}  (95% interval {sk_lo:.3f} to "
              f"{sk_hi:.3f}): the app's filter, neighbours of")  # fmt: skip
        print("    the query's predicted class only; a short list's empty places count as misses")
        print(f"  95% intervals, resampling the test clips: model {p10_interval[0]:.3f} to "
              f"{p10_interval[1]:.3f}; model minus baseline {gain_interval[0]:+.3f} to "
              f"{gain_interval[1]:+.3f}")  # fmt: skip
        print("reconstruction, log-spectral distance in dB (median / mean, lower is better):")
        print(f"  model (encode -> decode -> Griffin-Lim)  {np.median(lsd_model):.2f} / "
              f"{lsd_model.mean():.2f}")  # fmt: skip
        print(f"  oracle (Griffin-Lim from the true mel)   {np.median(lsd_oracle):.2f} / "
              f"{lsd_oracle.mean():.2f}")  # fmt: skip
        print(f"blends written to {args.out}/ (blends.png shows each pair and its blend);")
        print("  energy share below 200 Hz / above 2 kHz (a, b, blend), and the classifier's")
        print("  probability of (a's class, b's class) for each:")
        for bl in blends:
            sh, pr, cls = bl["low_high_energy_share"], bl["class_probabilities"], bl["classes"]
            print(f"  {bl['a']} + {bl['b']}: {sh['a']}  {sh['b']}  -> {sh['blend']};  "
                  f"P({'/'.join(cls)}) {pr['a']}  {pr['b']}  -> {pr['blend']}")  # fmt: skip
        print_others(others)
        print(f"({result['seconds']:.0f} s)")
    if args.write_metadata:
        path = model_dir / CONFIG_FILE
        doc = json.loads(path.read_text(encoding="utf-8"))
        keys = (
            "test_files",
            "per_class_count",
            "classification",
            "similarity",
            "reconstruction",
            "melodic",
            "no_instrument",
            "calibration",
        )
        evaluation = {k: result[k] for k in keys}
        evaluation["command"] = "python benchmarks/eval_default_model.py REAL_SAMPLES"
        evaluation["test_set"] = (
            "lmms drums + Sonic Pi bd_/sn_/drum_/elec_ one-shots; lmms instruments, basses, "
            "stringsnpads + Sonic Pi guit_/bass_/ambi_; lmms waveforms and test signals; "
            "never trained on"
        )
        doc.setdefault("metadata", {})["evaluation"] = evaluation
        from sampletool.fileio import atomic_write_text

        atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
        print(f"evaluation written into {path}")
    return 0


def _fmt(per: dict) -> str:
    return " ".join(f"{c}={v:.2f}" for c, v in per.items())


if __name__ == "__main__":
    sys.exit(main())
