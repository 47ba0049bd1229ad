"""`sampletool`: the command line. One module per command, holding its parser and its handler.

Exit codes: 0 all went well; 1 some audio files could not be read (each reported on stderr,
the others processed); 2 a bad argument, a model folder that is not a model, or a library that
cannot be used (one line on stderr, no traceback); 130 interrupted or cancelled.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Sequence

from sampletool.cli import (
    classify,
    demo,
    duplicates,
    embed,
    generate,
    index,
    make_dataset,
    models,
    similar,
    train,
)
from sampletool.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Parser, UsageError
from sampletool.cli.wavenet import Embed as wavenet_embed
from sampletool.cli.wavenet import Generate as wavenet_generate
from sampletool.errors import SampleToolError, WorkerError
from sampletool.progress import Cancelled

# In the order `--help` lists them.
COMMANDS = (generate, classify, embed, make_dataset, train, index, similar, duplicates, demo,
            models, wavenet_embed, wavenet_generate)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    from sampletool import __version__

    parser = Parser(
        prog="sampletool",
        description="Embed, classify and blend audio samples with a neural model.",
        epilog="Exit codes: 0 ok, 1 some audio files unreadable, 2 bad arguments or model, "
        "130 stopped by Ctrl+C (an index carries on where it stopped when run again).",
    )
    parser.add_argument("--version", action="version", version=f"sampletool {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to sys.exit)."""
    # A file name that is not valid UTF-8 is printed as its own bytes, as `ls` and `find` print
    # it (Python does so itself under the C locale), never as an encoding error.
    if isinstance(sys.stdout, io.TextIOWrapper) and sys.stdout.errors == "strict":
        sys.stdout.reconfigure(errors="surrogateescape")
    parser = build_parser()
    handlers = {command.NAME: command.run for command in COMMANDS}
    try:
        args = parser.parse_args(argv)
        return handlers[args.command](args)
    except UsageError as e:
        print(f"sampletool: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Cancelled as e:  # Ctrl+C asked a long step to stop; its work so far is kept
        print(f"sampletool: {e}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except WorkerError as e:
        print(f"sampletool: error: {e}", file=sys.stderr)
        # multiprocessing's own clean-up at exit then talks to helper processes that never
        # ran and prints their broken pipes as "Exception ignored" tracebacks: the reason is
        # said above, once.
        sys.unraisablehook = lambda _unraisable: None
        return EXIT_USAGE
    except (SampleToolError, ValueError) as e:
        print(f"sampletool: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError as e:
        if _stdout_closed():  # `sampletool ... | head`: the reader has all it wants
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
        # Any other pipe (multiprocessing's helper processes that could not start or died,
        # a worker): a failure, not an early reader.
        print(f"sampletool: error: {e.strerror or 'broken pipe'}: a process this command "
              "works with (a worker or helper process) ended or could not start",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    except OSError as e:  # e.g. an output folder we may not write to
        print(f"sampletool: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("sampletool: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (the only quiet BrokenPipeError)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        pass
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no real stdout (captured), or no poll()
        return False


if __name__ == "__main__":
    sys.exit(main())
