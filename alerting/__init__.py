"""Alerting: rules, the outbox, message composition, senders and delivery (no Dagster)."""
