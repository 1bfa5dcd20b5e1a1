"""Subcommands of the ``biasboard`` CLI, one module each (``add_parser(subparsers)``)."""
