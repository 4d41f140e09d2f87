class StorePulseError(Exception):
    """An error whose message is meant for a person: the CLI prints it on one line, no traceback."""
