"""Checks shared by the viz tests."""
from __future__ import annotations

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path) -> None:
    """The file exists, is a PNG and holds more than a bare header."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert len(data) > 2000, f"{path} is suspiciously small ({len(data)} bytes)"


def plot_axes(fig):
    """The figure's Axes, without colour-bar axes."""
    return [a for a in fig.axes if a.get_label() != "<colorbar>"]


def colorbars(fig):
    return [a for a in fig.axes if a.get_label() == "<colorbar>"]
