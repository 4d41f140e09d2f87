"""StorePulse application shell: settings, warehouse connection, migrations, tenants, CLI."""

__version__ = "0.1.0"
