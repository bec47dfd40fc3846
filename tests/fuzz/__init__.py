"""Fuzz harnesses (Hypothesis) of every decoder of hostile input: `harnesses.HARNESSES`, run briefly by
tests/fuzz/test_fuzz.py and for a set time by benchmarks/fuzz.py."""
