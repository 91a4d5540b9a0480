"""T080 and T121: pure, deterministic functions from validated rows to output records."""
