"""Method adapters: our reference implementations and outside submissions. Importing registers them."""
from submissions import proxy_scrub, random_init, resample, scrub  # noqa: F401
