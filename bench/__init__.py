"""Benchmarks: hera-sessions against the obvious way of doing the same work (``python -m bench``).

Every figure is a ratio measured in one run against a reference implementation kept in :mod:`bench.reference`,
with medians over repeated runs (the machine is shared and noisy). ``python -m bench --quick`` runs everything
with small counts (CI runs it so the benchmarks cannot rot; nothing ever asserts a timing).

Nothing is imported here: cold-start children import ``bench.reference`` modules and must not pay for more.
"""
