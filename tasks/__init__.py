"""Built-in tasks. Importing this package registers them."""
