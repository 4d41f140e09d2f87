"""Ingestion library: source specs, readers, validation, quarantine, COPY loader, sample data.

Plain Python; knows nothing about Dagster. Functions receive connections, paths and specs.
"""
