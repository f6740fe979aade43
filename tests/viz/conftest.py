"""Viz tests render with the Agg backend (no display needed)."""
import matplotlib

matplotlib.use("Agg")
