"""Independent reference implementations used as test oracles (PyTorch + SpikingJelly).

Import only from tests; they need torch and spikingjelly, which minisnn itself never imports.
"""
