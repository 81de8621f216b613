"""Helpers of the tests (and of the benchmarks): real servers, the asset graph driven against the
simulator, processes of their own, racing threads. No test lives here."""
