"""The application shell: the `storepulse` command and the demo it runs.

The top layer. It imports everything below it (the orchestration, the libraries and the
``storepulse`` core: settings, warehouse, migrations, tenants); nothing imports it.
"""
