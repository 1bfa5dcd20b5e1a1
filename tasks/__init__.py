"""Built-in tasks, registered by name through entry points (see pyproject.toml)."""
