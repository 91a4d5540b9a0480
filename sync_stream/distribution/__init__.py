"""Distribution: produce output records to facade topics and wait for their acknowledgements."""
