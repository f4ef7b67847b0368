"""Helpers shared by the tests (``tests/``) and the benchmarks (``bench/``): real servers started
as processes (the ingest server, SeaweedFS, nginx, replica clusters), test accounts and databases,
the RSS sampler and the mixed-load runner. Both import from here; neither imports the other.
"""
