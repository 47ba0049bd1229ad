"""Generation latency: a blend of 4 latents -> 2 s of audio, median and p90 in ms.

Usage: .venv/bin/python benchmarks/generate.py [--model DIR] [--repeat 30] [--threads 2] [--json]

Timed end to end: ``SoundSampleTool.generate(None, latents=<4 x latent>, weights=[...])`` --
latent blend, decoder forward, mel inverse (pseudo-inverse), fast Griffin-Lim (32 iterations,
momentum 0.99), peak-normalisation; no file is written. The latents are fresh random numbers
for every call (drawn outside the timed region). torch runs with ``--threads`` threads.

Also timed, interleaved with it in the same run (one of each per repeat):
- the decoder forward alone (``model.decode`` on one latent);
- fast Griffin-Lim alone (32 iterations, momentum 0.99) on one magnitude spectrogram;
- the baseline: classic Griffin-Lim (momentum 0) at 100 iterations, alone and end to end (the
  same path as ``generate`` with it in place of the fast variant), which is what similar quality
  would need without the fast variant. The spectral convergence of each is printed once
  (lower is better), so the two can be compared on quality too.
A few untimed calls come first (kernel caches, allocator); the very first call is reported apart.

Model: --model DIR, else the built-in default (sampletool/resources/models/default), else --
while there is no default model yet -- a bundle of the full-size default architecture
(``VAEConfig()`` with 9 classes, ``AudioConfig()``) with random weights, written to a temporary
folder. The timing depends on the architecture, not on the weights; the output says which model
was used.

Goal: median end-to-end <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from sampletool.errors import SampleToolError
from sampletool.features import AudioConfig, griffin_lim, mel_to_linear
from sampletool.models.bundle import CONFIG_FILE, save_bundle
from sampletool.models.kinds import build_model
from sampletool.models.vae import VAEConfig
from sampletool.paths import BUILTIN_MODELS_DIR, DEFAULT_MODEL_NAME
from sampletool.tool import SoundSampleTool

GOAL_MS = 100.0
N_LATENTS = 4
WEIGHTS = [0.4, 0.3, 0.2, 0.1]
FAST_ITERS = 32
CLASSIC_ITERS = 100
PEAK = 10 ** (-0.3 / 20)  # what ModelRuntime.decode normalises to


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _random_bundle(directory: Path) -> Path:
    torch.manual_seed(0)
    config = VAEConfig(num_classes=9)
    audio = AudioConfig()
    model = build_model(config, audio)
    metadata = {"name": "random-weights", "description": "benchmark: default size, untrained"}
    return save_bundle(
        directory / "random", model, config, audio, [f"class{i}" for i in range(9)], metadata
    )


def _spectral_convergence(audio: torch.Tensor, mag: torch.Tensor, cfg: AudioConfig) -> float:
    """|| |STFT(audio)| - target || / || target ||: how consistent the phase reconstruction is."""
    window = torch.hann_window(cfg.n_fft, device=audio.device)
    spec = torch.stft(
        audio,
        cfg.n_fft,
        cfg.hop_length,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    ).abs()
    t = min(spec.shape[-1], mag.shape[-1])
    diff = torch.linalg.vector_norm(spec[..., :t] - mag[..., :t])
    return float(diff / torch.linalg.vector_norm(mag[..., :t]).clamp_min(1e-12))


def _stats(times_s: list[float]) -> dict:
    ms = np.asarray(times_s) * 1e3
    return {
        "median_ms": float(np.median(ms)),
        "p90_ms": float(np.percentile(ms, 90)),
        "min_ms": float(ms.min()),
        "runs_ms": [round(float(x), 3) for x in ms],
    }


def measure(tool: SoundSampleTool, repeat: int, warmup: int, log: Callable[[str], None]) -> dict:
    cfg = tool.runtime.audio
    device = tool.runtime.device
    rng = np.random.default_rng(0)

    def latents() -> np.ndarray:
        return rng.standard_normal((N_LATENTS, tool.latent_dim)).astype(np.float32)

    # Fixed inputs for the parts timed alone (their cost does not depend on the values).
    with torch.inference_mode():
        z = torch.from_numpy(tool.runtime.blend(latents(), WEIGHTS)).to(device)[None]
        feats = tool.runtime.module.decode(z)
        mag = mel_to_linear(feats, cfg)

    def end_to_end() -> None:
        tool.generate(None, latents=lat, weights=WEIGHTS)

    @torch.inference_mode()
    def baseline_end_to_end() -> None:
        # ModelRuntime.decode's steps, with classic Griffin-Lim in place of the fast one.
        zz = torch.from_numpy(tool.runtime.blend(lat, WEIGHTS)).to(device)[None]
        f = tool.runtime.module.decode(zz)
        audio = griffin_lim(mel_to_linear(f, cfg), cfg, n_iter=CLASSIC_ITERS, momentum=0.0)
        audio = torch.nan_to_num(audio).float().cpu().numpy()
        peak = np.abs(audio).max(axis=1, keepdims=True)
        (audio * np.where(peak > 1e-9, PEAK / np.maximum(peak, 1e-9), 0.0)).astype(np.float32)

    @torch.inference_mode()
    def decoder() -> None:
        tool.runtime.module.decode(z)

    @torch.inference_mode()
    def mel_inverse() -> None:
        mel_to_linear(feats, cfg)

    @torch.inference_mode()
    def gl_fast() -> None:
        griffin_lim(mag, cfg, n_iter=FAST_ITERS)

    @torch.inference_mode()
    def gl_classic() -> None:
        griffin_lim(mag, cfg, n_iter=CLASSIC_ITERS, momentum=0.0)

    parts: dict[str, Callable[[], None]] = {
        "generate": end_to_end,
        "decoder": decoder,
        "mel_inverse": mel_inverse,
        "griffin_lim_fast": gl_fast,
        "griffin_lim_classic": gl_classic,
        "baseline_end_to_end": baseline_end_to_end,
    }

    lat = latents()
    t0 = time.perf_counter()
    end_to_end()
    _sync(device)
    first_s = time.perf_counter() - t0

    log(f"warming up ({warmup} untimed calls of each)...")
    for _ in range(warmup):
        for fn in parts.values():
            lat = latents()
            fn()
    _sync(device)

    log(f"timing {repeat} repeats...")
    runs: dict[str, list[float]] = {k: [] for k in parts}
    for _ in range(repeat):
        for name, fn in parts.items():
            lat = latents()
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            runs[name].append(time.perf_counter() - t0)

    with torch.inference_mode():
        quality = {
            f"fast_{FAST_ITERS}": _spectral_convergence(
                griffin_lim(mag, cfg, n_iter=FAST_ITERS), mag, cfg
            ),
            f"classic_{CLASSIC_ITERS}": _spectral_convergence(
                griffin_lim(mag, cfg, n_iter=CLASSIC_ITERS, momentum=0.0), mag, cfg
            ),
            f"classic_{FAST_ITERS}": _spectral_convergence(
                griffin_lim(mag, cfg, n_iter=FAST_ITERS, momentum=0.0), mag, cfg
            ),
        }
    stats = {k: _stats(v) for k, v in runs.items()}
    med = {k: v["median_ms"] for k, v in stats.items()}
    return {
        "first_call_ms": first_s * 1e3,
        "timings": stats,
        "ratios": {
            "griffin_lim_classic_vs_fast": med["griffin_lim_classic"] / med["griffin_lim_fast"],
            "baseline_vs_generate": med["baseline_end_to_end"] / med["generate"],
            "griffin_lim_share_of_generate": med["griffin_lim_fast"] / med["generate"],
        },
        "spectral_convergence": quality,
        "goal_median_ms": GOAL_MS,
        "goal_met": med["generate"] <= GOAL_MS,
    }


_LABELS = {
    "generate": f"generate(): blend {N_LATENTS} -> 2 s audio",
    "decoder": "  decoder forward",
    "mel_inverse": "  mel inverse",
    "griffin_lim_fast": f"  Griffin-Lim fast, {FAST_ITERS} it",
    "griffin_lim_classic": f"baseline: Griffin-Lim classic, {CLASSIC_ITERS} it",
    "baseline_end_to_end": f"baseline end to end (classic {CLASSIC_ITERS} it)",
}


def print_table(res: dict) -> None:
    print(
        f"generate: model {res['model']['name']!r} ({res['model']['source']}), "
        f"{res['model']['parameters'] / 1e6:.2f} M parameters, device {res['device']}, "
        f"torch {res['torch']} with {res['threads']} threads; {res['repeat']} interleaved repeats"
    )
    if res["model"]["source"].startswith("random"):
        print(
            "note: no default model yet; random weights in the default architecture "
            "(timing depends on the architecture, not the weights)"
        )
    print()
    print(f"{'':44} {'median ms':>9} {'p90 ms':>8} {'min ms':>8}")
    for name, label in _LABELS.items():
        t = res["timings"][name]
        print(f"{label:44} {t['median_ms']:9.2f} {t['p90_ms']:8.2f} {t['min_ms']:8.2f}")
    print(f"{'first call (untimed caches cold)':44} {res['first_call_ms']:9.2f}")
    print()
    r = res["ratios"]
    med = res["timings"]["generate"]["median_ms"]
    verdict = "met" if res["goal_met"] else "NOT met"
    print(f"median generate {med:.1f} ms   goal <= {GOAL_MS:.0f} ms: {verdict}")
    print(
        f"classic GL {CLASSIC_ITERS} it / fast GL {FAST_ITERS} it: "
        f"{r['griffin_lim_classic_vs_fast']:.2f}x; end to end: {r['baseline_vs_generate']:.2f}x; "
        f"Griffin-Lim is {100 * r['griffin_lim_share_of_generate']:.0f}% of generate()"
    )
    q = res["spectral_convergence"]
    print(
        "spectral convergence (lower is better): "
        + ", ".join(f"{k.replace('_', ' ')} it {v:.3f}" for k, v in q.items())
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Latency of SoundSampleTool.generate (4-latent blend -> 2 s of audio).",
        epilog=f"Goal: median <= {GOAL_MS:.0f} ms (see the module docstring).",
    )
    parser.add_argument("--model", type=Path, help="model bundle folder (default: built-in)")
    parser.add_argument("--repeat", type=int, default=30, help="timed calls (default 30)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.threads < 1 or args.warmup < 0:
        parser.error("--repeat and --threads must be >= 1, --warmup >= 0")
    torch.set_num_threads(args.threads)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    default = BUILTIN_MODELS_DIR / DEFAULT_MODEL_NAME
    with tempfile.TemporaryDirectory(prefix="sampletool-bench-") as tmp:
        if args.model is not None:
            model_dir, source = args.model, f"--model {args.model}"
        elif (default / CONFIG_FILE).is_file():
            model_dir, source = default, f"built-in default ({default})"
        else:
            model_dir = _random_bundle(Path(tmp))
            source = "random weights, default architecture (no built-in default model yet)"
        try:
            tool = SoundSampleTool(model_dir, device=args.device)
        except (SampleToolError, ValueError) as e:
            sys.exit(f"cannot load the model: {e}")
        res = measure(tool, args.repeat, args.warmup, log)
    res = {
        "benchmark": "generate",
        "model": {
            "name": tool.runtime.name,
            "source": source,
            "parameters": sum(p.numel() for p in tool.runtime.module.parameters()),
        },
        "device": str(tool.runtime.device),
        "threads": torch.get_num_threads(),
        "repeat": args.repeat,
        "warmup": args.warmup,
        "cpu_count": os.cpu_count(),
        "load_average_after": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        **res,
    }
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print_table(res)


if __name__ == "__main__":
    main()
