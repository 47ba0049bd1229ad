"""What every command shares: the exit codes, errors as one line, common arguments, a progress
bar and Ctrl+C handling."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

EXIT_OK, EXIT_BAD_FILES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A bad argument, reported as one line and exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's default prints the whole usage block
        raise UsageError(f"{message} (see '{self.prog} --help')")


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        metavar="DIR",
        help="model bundle folder or installed model name (default: the built-in model)",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")


def add_db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="PATH",
        help="catalogue file (default: in the user's data folder, keyed by the library folder)",
    )


def load_model(args: argparse.Namespace):
    """The model runtime that --model and --device name."""
    from sampletool.models.runtime import load_runtime

    return load_runtime(args.model, args.device)


def index_command(args: argparse.Namespace) -> str:
    """The `sampletool index` command line that indexes the library these arguments name."""
    import shlex

    return " ".join(shlex.quote(str(a)) for a in (
        "sampletool", "index", args.library,
        *(("--model", args.model) if args.model else ()), *(("--db", args.db) if args.db else ()),
    ))  # fmt: skip


def open_library(args: argparse.Namespace, rebuild: bool = False, indexed: bool = False):
    """The library that --library (or the positional LIBRARY_DIR), --db and --model name.
    With `indexed` (a command that only reads it), one never indexed is refused before a
    catalogue is made for it."""
    from pathlib import Path

    from sampletool.library import Library, default_db_path

    if indexed:
        root = Path(args.library).expanduser().absolute()
        db = Path(args.db) if args.db else default_db_path(root)
        if root.is_dir() and not db.exists():
            raise UsageError(f"the library is not indexed yet: index it first "
                             f"({index_command(args)})")  # fmt: skip
    return Library(args.library, load_model(args), db_path=args.db,
                   segmentation=getattr(args, "segment", None), rebuild=rebuild)  # fmt: skip


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
NAMES_HELP = ("A file name holding a tab, newline or other control character is printed in "
              "double quotes with C escapes (\\t, \\n, \\\\, \\\"), so each line stays one "
              "entry.")  # fmt: skip


def quote_name(name: object) -> str:
    """A file name for line- and tab-separated output: as it is, unless it holds a control
    character (a newline or tab would split its line or field) or starts with a double quote;
    then in double quotes with C escapes, as git prints such names ("new\\nline.wav")."""
    text = str(name)
    if not text.startswith('"') and not any(c < " " or c == "\x7f" for c in text):
        return text
    out = [_ESCAPES.get(c) or (f"\\x{ord(c):02x}" if c < " " or c == "\x7f" else c) for c in text]
    return '"' + "".join(out) + '"'


def report(path: object, reason: str) -> None:
    """One unreadable file, on stderr (one line, whatever its name holds)."""
    print(f"sampletool: {quote_name(path)}: {reason}", file=sys.stderr)


def warn(message: object) -> None:
    print(f"sampletool: warning: {message}", file=sys.stderr)


class ProgressBar:
    """A one-line progress bar on stderr (only when it is a terminal); a `Progress` callable."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.tty = sys.stderr.isatty()
        self.shown = False

    def __call__(self, done: int, total: int, _msg: str = "") -> None:
        if not self.tty or total <= 0:
            return
        width = 30
        filled = int(width * done / total)
        bar = "#" * filled + "-" * (width - filled)
        print(f"\r{self.label} [{bar}] {done}/{total}", end="", file=sys.stderr, flush=True)
        self.shown = True

    def close(self) -> None:
        if self.shown:
            print(file=sys.stderr)
            self.shown = False


def stop_on_ctrl_c(event: threading.Event, when: str) -> Callable[[], object]:
    """Until the returned function is called, the first Ctrl+C sets `event` (the work stops
    cleanly after `when`) and a second one aborts. Off the main thread it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_sigint(signum, frame) -> None:
        print(f"\nsampletool: stopping after {when} (Ctrl+C again to abort)", file=sys.stderr)
        event.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_sigint)
    return lambda: signal.signal(signal.SIGINT, previous)
