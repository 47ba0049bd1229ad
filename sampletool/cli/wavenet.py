"""`sampletool wavenet-embed` and `wavenet-generate`: NSynth's embedding scripts.

wavenet-embed writes each file's WaveNet embedding over time, `[frames, dims]`, to its own
.npy; wavenet-generate decodes such embeddings (or a weighted mix of them) back to audio with
the autoencoder's incremental generation, several files at once.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from sampletool.cli.common import (
    EXIT_BAD_FILES,
    EXIT_OK,
    ProgressBar,
    UsageError,
    add_model_args,
    load_model,
    report,
    stop_on_ctrl_c,
    warn,
)
from sampletool.errors import AudioError

MAX_SECONDS = 600.0


class Embed:
    NAME = "wavenet-embed"

    @staticmethod
    def add_parser(sub) -> None:
        p = sub.add_parser(
            Embed.NAME,
            help="write each file's WaveNet embedding over time to a .npy",
            description="Encode each file whole (up to --max-seconds) with a wavenet-encoder or "
            "wavenet-autoencoder model and write OUT_DIR/<name>.npy, float32 [frames, dims]: "
            "one frame every hop samples (NSynth: 16 dims every 512 samples at 16 kHz).",
        )
        p.add_argument("files", nargs="+", metavar="FILES")
        add_model_args(p)
        p.add_argument("-o", "--out", required=True, metavar="OUT_DIR", help="output folder")
        p.add_argument("--max-seconds", type=float, default=MAX_SECONDS,
                       help="encode at most this much of each file (%(default)g)")  # fmt: skip

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        if not 0 < args.max_seconds <= 3600:
            raise UsageError("--max-seconds must be in (0, 3600]")

        from sampletool.audio import load_clip, open_audio

        runtime = _wavenet(load_model(args))
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        sr, failed = runtime.sample_rate, 0
        names: set[str] = set()
        for f in args.files:
            try:
                with open_audio(f) as sf:
                    seconds = min(sf.frames / sf.samplerate, args.max_seconds)
                clip = load_clip(f, 0.0, max(seconds, 1 / sr), sr)
            except AudioError as e:
                report(f, e.reason)
                failed += 1
                continue
            emb = runtime.embed_audio(clip)  # [latent, frames]
            target = out / f"{_free(Path(f).stem, names)}.npy"
            _save(target, emb.T.copy())
            print(f"{f}\t{target}\t{emb.shape[1]} frames")
        return EXIT_BAD_FILES if failed else EXIT_OK


class Generate:
    NAME = "wavenet-generate"

    @staticmethod
    def add_parser(sub) -> None:
        p = sub.add_parser(
            Generate.NAME,
            help="decode WaveNet embeddings (.npy) back to audio",
            description="Decode each EMBEDDINGS.npy ([frames, dims], as wavenet-embed writes "
            "them) with a wavenet-autoencoder's decoder to OUT_DIR/<name>.wav, frames x hop "
            "samples long, several at once. With --mix, decode one weighted mix of them "
            "instead (shorter ones are held at their last frame).",
        )
        p.add_argument("embeddings", nargs="+", metavar="EMBEDDINGS.npy")
        add_model_args(p)
        p.add_argument("-o", "--out", required=True, metavar="OUT_DIR", help="output folder")
        p.add_argument("--mix", action="store_true", help="decode one mix of the embeddings")
        p.add_argument("--weights", nargs="+", type=float, metavar="W",
                       help="with --mix: a weight per embedding (normalised)")  # fmt: skip
        p.add_argument("--temperature", type=float, default=1.0,
                       help="1 samples the predicted levels, 0 takes the likeliest")  # fmt: skip
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--batch-size", type=int, default=8, help="files generated at once")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        if args.temperature < 0 or not math.isfinite(args.temperature):
            raise UsageError("--temperature must be >= 0")
        if args.batch_size < 1:
            raise UsageError("--batch-size must be >= 1")
        if args.weights and not args.mix:
            raise UsageError("--weights goes with --mix")
        import threading

        import numpy as np

        from sampletool.audio import write_wav
        from sampletool.models.runtime import effective_weights
        from sampletool.models.wavenet import stack_frames

        runtime = _wavenet(load_model(args))
        if not runtime.can_generate:
            raise UsageError(f"model {runtime.name!r} has no decoder: use a wavenet-autoencoder")
        items: list[tuple[str, np.ndarray]] = []
        failed = 0
        for f in args.embeddings:
            try:
                emb = np.load(f, allow_pickle=False)
            except (OSError, ValueError) as e:
                report(f, f"not a .npy array ({e})")
                failed += 1
                continue
            if emb.ndim != 2 or emb.shape[1] != runtime.vector_dim or not len(emb):
                report(f, f"not an embedding [frames, {runtime.vector_dim}] (its shape is "
                          f"{list(emb.shape)})")  # fmt: skip
                failed += 1
                continue
            if not np.isfinite(emb).all():
                report(f, "holds NaN or infinite values")
                failed += 1
                continue
            items.append((Path(f).stem, emb.astype(np.float32)))
        if not items:
            print("sampletool: no embedding could be read; nothing generated")
            return EXIT_BAD_FILES
        if args.mix:
            stacked = stack_frames([e for _, e in items])
            w, note = effective_weights(len(items), args.weights, True)
            if note:
                warn(note)
            items = [("mix", np.tensordot(w, stacked, axes=1).astype(np.float32))]
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stop = threading.Event()
        restore = stop_on_ctrl_c(stop, "this batch")
        names: set[str] = set()
        try:
            for i in range(0, len(items), args.batch_size):
                batch = items[i : i + args.batch_size]
                bar = ProgressBar(f"generating {len(batch)} file(s)")
                audio = runtime.generate([e for _, e in batch], seed=args.seed + i,
                                         temperature=args.temperature, progress=bar,
                                         cancel=stop)  # fmt: skip
                bar.close()
                for (name, _), a in zip(batch, audio, strict=True):
                    target = out / f"{_free(name, names)}.wav"
                    write_wav(target, a, runtime.sample_rate)
                    print(f"wrote {target} ({len(a) / runtime.sample_rate:.2f} s)")
        finally:
            restore()
        return EXIT_BAD_FILES if failed else EXIT_OK


def _wavenet(runtime):
    from sampletool.models.wavenet import WaveNetRuntime

    if not isinstance(runtime, WaveNetRuntime):
        raise UsageError(
            f"model {runtime.name!r} is a {runtime.kind} model, not a WaveNet "
            "(train one with sampletool train --model wavenet-autoencoder)"
        )
    return runtime


def _save(path: Path, array) -> None:
    import numpy as np

    from sampletool.fileio import atomic_write

    atomic_write(path, lambda p: np.save(p, array))


def _free(stem: str, taken: set[str]) -> str:
    """`stem`, or `stem-2`, `stem-3`... when two inputs share a name."""
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}"
    taken.add(name)
    return name
