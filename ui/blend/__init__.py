"""The blend panel, by part: `panel` (the panel and its generation), `slot` (one sample and its
weight), `history` (the session's results) and `scheduler` (latest wins, Qt-free)."""

from ui.blend.panel import MAX_SLOTS, BlendPanel

__all__ = ["MAX_SLOTS", "BlendPanel"]
