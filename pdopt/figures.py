"""Figures for pdopt's outputs: matplotlib's pyplot on the Agg backend, and a figure rendered to PNG bytes.

One place for what every plot needs (the fidelity plot, the horizon plot, the benchmark, sweep and report
figures): no display is used, and matplotlib (a second of CPU to import) is loaded only when a figure is drawn,
never by ``import pdopt`` or a command that draws nothing.
"""

from __future__ import annotations

import io
from typing import Any

__all__ = ["png", "pyplot"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (files only, no display), imported here on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig: Any, dpi: int, tight: bool = False, pad_inches: float | None = None,
        metadata: dict[str, Any] | None = None) -> bytes:
    """The figure as PNG bytes at ``dpi``; with ``tight``, cropped to what is drawn (no label cut at the edge,
    ``pad_inches`` around it); ``metadata`` for the PNG's text fields. The figure is closed."""
    options: dict[str, Any] = {"format": "png", "dpi": dpi}
    if tight:
        options["bbox_inches"] = "tight"
    if pad_inches is not None:
        options["pad_inches"] = pad_inches
    if metadata is not None:
        options["metadata"] = metadata
    buf = io.BytesIO()
    fig.savefig(buf, **options)
    pyplot().close(fig)
    return buf.getvalue()
