"""`python -m storepulse_cli`: the `storepulse` command."""

from storepulse_cli.commands import main

main()
