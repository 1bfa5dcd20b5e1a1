"""Method adapters: our reference implementations and outside submissions. Importing registers them."""
