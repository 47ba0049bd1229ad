"""`sampletool generate`: blend sounds in latent space and write the result as WAV, made for a
DAW as the app's Save is (the silent tail cut, at 44.1 or 48 kHz; `sampletool.export`)."""

from __future__ import annotations

import argparse
import sys
import warnings

from sampletool.cli.common import (
    EXIT_BAD_FILES,
    EXIT_OK,
    UsageError,
    add_model_args,
    load_model,
    report,
    warn,
)
from sampletool.errors import AudioError

NAME = "generate"


def add_parser(sub) -> None:
    g = sub.add_parser(
        NAME,
        help="blend sounds in latent space and write the result as WAV",
        description="Blend the latent vectors of FILES (weighted), decode, write a WAV. "
        "With no FILES, decode a random latent.",
    )
    g.add_argument("files", nargs="*", metavar="FILES")
    add_model_args(g)
    g.add_argument("-o", "--out", default="generated.wav", help="output WAV (default: %(default)s)")
    g.add_argument(
        "--weights",
        nargs="+",
        type=float,
        metavar="W",
        help="one weight per file; the wrong count means equal weights",
    )
    g.add_argument(
        "--no-normalize",
        action="store_true",
        help="use weights as given (allows negative weights, subtraction)",
    )
    g.add_argument("--variance", type=float, default=0.0, help="latent noise variance")
    g.add_argument("--seed", type=int, help="seed for noise, random latents and phase")
    g.add_argument("--iterations", type=int, default=32, help="Griffin-Lim iterations (default 32)")
    g.add_argument(
        "--rate",
        default="44100",
        choices=["44100", "48000", "model"],
        help="sample rate of the WAV: a DAW's, or the model's own (default: %(default)s)",
    )
    g.add_argument(
        "--keep-tail",
        action="store_true",
        help="keep the whole clip (default: cut the silence after the sound, with a short fade)",
    )


def run(args: argparse.Namespace) -> int:
    if args.iterations < 0 or args.iterations > 10_000:
        raise UsageError("--iterations must be between 0 and 10000")
    if args.variance < 0:
        raise UsageError("--variance must be >= 0")
    import numpy as np

    from sampletool.audio import write_wav
    from sampletool.export import resample, trim_tail

    runtime = load_model(args)
    latents, weights, failed = [], [], 0
    given = list(args.weights) if args.weights else []
    for i, f in enumerate(args.files):
        try:
            latents.append(runtime.read(f).latents[0])
            if len(given) == len(args.files):
                weights.append(given[i])
        except AudioError as err:
            report(f, err.reason)
            failed += 1
    if args.files and not latents:
        print("sampletool: none of the files could be read; nothing generated", file=sys.stderr)
        return EXIT_BAD_FILES
    if given and len(given) != len(args.files):
        warn(f"{len(given)} weights for {len(args.files)} files: using equal weights")
    stacked = np.stack(latents) if latents else np.empty((0, *runtime.latent_shape), np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        z = runtime.blend(stacked, weights, not args.no_normalize, args.variance, args.seed)
    for w in caught:
        warn(w.message)
    seed = 0 if args.seed is None else args.seed
    audio = runtime.decode(z, seed=seed, iterations=args.iterations)[0]
    rate = runtime.sample_rate if args.rate == "model" else int(args.rate)
    if not args.keep_tail:
        audio = trim_tail(audio, runtime.sample_rate)
    write_wav(args.out, resample(audio, runtime.sample_rate, rate), rate)
    print(f"wrote {args.out} ({len(audio) / runtime.sample_rate:.2f} s at {rate} Hz)")
    return EXIT_BAD_FILES if failed else EXIT_OK
