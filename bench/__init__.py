"""End-to-end benchmarks of the gateway against a fast fake upstream, side by side with baselines.

``python -m bench run [SCENARIO...]``; see bench/README.md.
"""
