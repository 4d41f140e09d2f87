"""Data quality: Great Expectations suites and the gates they drive (no Dagster here)."""
