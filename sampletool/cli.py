"""`sampletool`: the command line.

Exit codes: 0 all went well; 1 some audio files could not be read (each reported on stderr,
the others processed); 2 a bad argument or a model folder that is not a model (one line on
stderr, no traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from sampletool.errors import AudioError, SampleToolError

EXIT_OK, EXIT_BAD_FILES, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad argument, reported as one line and exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints the whole usage block
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        metavar="DIR",
        help="model bundle folder or installed model name (default: the built-in model)",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sampletool",
        description="Embed, classify and blend audio samples with a neural model.",
        epilog="Exit codes: 0 ok, 1 some audio files unreadable, 2 bad arguments or model.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    g = sub.add_parser(
        "generate",
        help="blend sounds in latent space and write the result as WAV",
        description="Blend the latent vectors of FILES (weighted), decode, write a WAV. "
        "With no FILES, decode a random latent.",
    )
    g.add_argument("files", nargs="*", metavar="FILES")
    _model_arg(g)
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

    c = sub.add_parser(
        "classify",
        help="print each file's predicted class",
        description="Classify each file with the model's classifier.",
    )
    c.add_argument("files", nargs="+", metavar="FILES")
    _model_arg(c)
    c.add_argument("--offset", type=float, default=0.0, help="start, in seconds, in each file")
    c.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list, one object per file in order: path, class, probabilities "
        "(class name -> probability), or path and error",
    )

    e = sub.add_parser(
        "embed",
        help="write the latent vectors of files to a .npy file",
        description="Write one row per file, in order, to a float32 .npy array [files, latent]. "
        "Rows of unreadable files are NaN.",
    )
    e.add_argument("files", nargs="+", metavar="FILES")
    _model_arg(e)
    e.add_argument("-o", "--out", required=True, help="output .npy file")
    e.add_argument("--workers", type=int, help="decoding processes (default: one per core)")

    m = sub.add_parser(
        "models",
        help="list the installed model bundles",
        description="List model bundles found in $SAMPLETOOL_MODEL_PATH, the user's models "
        "folder and the built-in models.",
    )
    m.add_argument("--json", action="store_true", help="print a JSON list")
    return parser


def _version() -> str:
    from sampletool import __version__

    return f"sampletool {__version__}"


def _tool(args: argparse.Namespace):
    from sampletool.tool import SoundSampleTool

    return SoundSampleTool(args.model, device=args.device)


def _report(path: object, reason: str) -> None:
    print(f"sampletool: {path}: {reason}", file=sys.stderr)


def cmd_generate(args: argparse.Namespace) -> int:
    if args.iterations < 0 or args.iterations > 10_000:
        raise UsageError("--iterations must be between 0 and 10000")
    if args.variance < 0:
        raise UsageError("--variance must be >= 0")
    tool = _tool(args)
    latents, weights, failed = [], [], 0
    given = list(args.weights) if args.weights else []
    for i, f in enumerate(args.files):
        try:
            latents.append(tool.embed(f))
            if len(given) == len(args.files):
                weights.append(given[i])
        except AudioError as err:
            _report(f, err.reason)
            failed += 1
    if args.files and not latents:
        print("sampletool: none of the files could be read; nothing generated", file=sys.stderr)
        return EXIT_BAD_FILES
    if given and len(given) != len(args.files):
        print(
            f"sampletool: warning: {len(given)} weights for {len(args.files)} files: "
            "using equal weights",
            file=sys.stderr,
        )
    import numpy as np

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tool.generate(
            args.out,
            latents=np.stack(latents) if latents else None,
            weights=weights,
            normalize_weights=not args.no_normalize,
            variance=args.variance,
            seed=args.seed,
            griffin_lim_iters=args.iterations,
        )
    for w in caught:
        print(f"sampletool: warning: {w.message}", file=sys.stderr)
    print(f"wrote {args.out}")
    return EXIT_BAD_FILES if failed else EXIT_OK


def cmd_classify(args: argparse.Namespace) -> int:
    if args.offset < 0:
        raise UsageError("--offset must be >= 0")
    tool = _tool(args)
    tool._require_classifier()
    results, failed = [], 0
    for f in args.files:
        try:
            probs, cls = tool.predict(f, args.offset)
        except AudioError as err:
            _report(f, err.reason)
            results.append({"path": f, "error": err.reason})
            failed += 1
            continue
        results.append(
            {
                "path": f,
                "class": cls,
                "probabilities": {
                    n: round(float(p), 6) for n, p in zip(tool.class_names, probs, strict=True)
                },
            }
        )
        if not args.json:
            print(f"{f}\t{cls}\t{float(probs.max()):.3f}")
    if args.json:
        print(json.dumps(results, indent=2))
    return EXIT_BAD_FILES if failed else EXIT_OK


def cmd_embed(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 0:
        raise UsageError("--workers must be >= 0")
    out = Path(args.out)
    if out.suffix != ".npy":
        raise UsageError(f"the output must be a .npy file, got {args.out}")
    import numpy as np

    tool = _tool(args)
    vectors, rows, failures = tool.embed_files(args.files, workers=args.workers)
    result = np.full((len(args.files), tool.latent_dim), np.nan, np.float32)
    result[rows] = vectors
    for _, path, reason in failures:
        _report(path, reason)
    if out.parent != Path():
        out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.npy")
    np.save(tmp, result)
    os.replace(tmp, out)
    print(f"wrote {out}: {len(rows)} of {len(args.files)} files, {tool.latent_dim} dimensions")
    return EXIT_BAD_FILES if failures else EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from sampletool.registry import find_bundles

    infos = find_bundles()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": i.name,
                        "path": str(i.path),
                        "kind": i.kind,
                        "classes": list(i.class_names),
                        "description": i.description,
                    }
                    for i in infos
                ],
                indent=2,
            )
        )
        return EXIT_OK
    if not infos:
        print("no model bundles found")
    for i in infos:
        classes = ", ".join(i.class_names) if i.class_names else "no classifier"
        print(f"{i.name}\t{i.kind}\t{classes}\t{i.path}")
    return EXIT_OK


COMMANDS = {
    "generate": cmd_generate,
    "classify": cmd_classify,
    "embed": cmd_embed,
    "models": cmd_models,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to sys.exit)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as e:
        print(f"sampletool: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (SampleToolError, ValueError) as e:
        print(f"sampletool: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:  # e.g. an output folder we may not write to
        print(f"sampletool: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("sampletool: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
