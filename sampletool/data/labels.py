"""Drum classes from names: 'Kick Hard 1', 'hihat_closed02', 'bd_haus', 'Sabian Crash Flink'.

Used to label real drum kits for training (Hydrogen's instrument names) and real one-shots for
evaluation (file names). The rules are generic drum vocabulary, not tuned to any one kit.
"""

from __future__ import annotations

import re

# (class, pattern) in order: the first match wins. Patterns run on the normalised name (lower
# case, words split at punctuation, digits and camelCase humps).
_RULES: list[tuple[str | None, str]] = [
    # Left out: not one class, or between two (a rimshot or side stick is half snare).
    (None, r"\b(roll|click|whistle|main|snaps?|metronome|loop|break|stick|sidestick|rim|"
           r"rimclick)\b"),
    ("kick", r"\b(kick|kik|bassdrum|bd)\b|\bbass drum\b|\bdrum bass\b"),
    ("snare", r"\b(snare|snr|sn|sd)\b"),
    ("clap", r"\b(clap|claps|handclap)\b"),
    ("hihat", r"\b(hihat|hat|hats|hh|chh|ohh|phh)\b|\bhi hat\b|\bcymbal (closed|open|pedal)\b"),
    ("tom", r"\btom(?!bourin)"),  # not "Tombourine", a common misspelling
    ("cymbal", r"\b(crash|ride|splash|china|cymbal|cym)\b"),
    ("percussion", r"\b(cowbell|clave|claves|clav|shaker|conga|bongo|maraca|tambourine|"
                   r"tambourin|tambo|tombourine|"
                   r"woodblock|wood|cajon|djembe|sangban|dununba|kenkeni|waterglass|triangle|"
                   r"guiro|agogo|timbale|cabasa|tabla)\b"),
    ("fx", r"\b(zap|fx|laser|sweep|riser)\b"),
]  # fmt: skip
_COMPILED = [(c, re.compile(p)) for c, p in _RULES]


def normalise_name(name: str) -> str:
    """'BassDrum_01.wav' -> 'bass drum'; 'hihat_closed02' -> 'hihat closed'."""
    name = re.sub(r"\.(wav|flac|ogg|aiff?|mp3)$", "", name, flags=re.I)
    name = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    name = re.sub(r"[^A-Za-z]+", " ", name).lower()
    # Joined words that sample packs like: "bassdrum" stays one token (matched above).
    return " ".join(name.split())


def drum_class(name: str) -> str | None:
    """The class a drum name means, or None when it names none (or something to leave out,
    such as a roll or a loop)."""
    text = normalise_name(name)
    for cls, pattern in _COMPILED:
        if pattern.search(text):
            return cls
    return None


def folder_class(name: str) -> str | None:
    """The drum class a folder's name means; folders are often plural ("Kicks", "Hats")."""
    cls = drum_class(name)
    if cls is None and name.lower().endswith("s"):
        cls = drum_class(name[:-1])
    return cls


def names_drums(names: list[str] | tuple[str, ...]) -> bool:
    """Whether every one of these class names (sub-folder names, say) names a drum class."""
    return bool(names) and all(folder_class(n) is not None for n in names)
