"""fs2split's benchmark: ``./dev bench`` (see BENCHMARKS.md)."""
