"""Neural-network building blocks (filled in by `module.py`, `layers.py`, ...)."""
