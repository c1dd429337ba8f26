"""Matplotlib for the reports' figures: loaded only by the commands that draw, without a display."""
from __future__ import annotations


def pyplot():
    """matplotlib.pyplot on the Agg backend (files, no window)."""
    import matplotlib  # noqa: PLC0415  (only the reports need it; a second of import)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def save(fig, path: str) -> str:
    """Writes the figure (110 dpi, the size the docs show) and frees it; returns ``path``."""
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path
