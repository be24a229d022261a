"""Hardware-aware NAS: what an architecture costs (parameters, FLOPs, measured latency), per-op latency tables
(FBNet, ProxylessNAS), objectives over several metrics (MnasNet reward, constraints, Pareto) and export.

Modules: :mod:`.cost`, :mod:`.latency_table`, :mod:`.objectives`, :mod:`.export`.
"""
