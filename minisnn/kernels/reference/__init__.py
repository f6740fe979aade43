"""NumPy reference kernels: the readable specification of every compiled kernel."""
