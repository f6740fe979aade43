"""Numba kernels: the same names and signatures as `minisnn.kernels.reference`."""
