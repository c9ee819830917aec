"""Errors a user can cause: the mains turn them into one line on stderr and exit code 2."""


class UsageError(Exception):
    """Bad input from the user: an unknown name, missing data, a config that cannot build.

    The message is one line that says what is wrong and, where possible, how to fix it.
    """
