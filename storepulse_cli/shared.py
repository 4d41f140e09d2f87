"""What every command group uses: the warehouse engine, opened only when a command needs it
(`storepulse --help` must not pay for SQLAlchemy), and shared option types."""

from __future__ import annotations

import click

POSITIVE = click.FloatRange(min=0, min_open=True)


def warehouse_engine():
    from storepulse.warehouse import get_engine

    return get_engine()
