"""Method adapters, ours and outside ones; built-ins register by name through entry points (see pyproject.toml)."""
