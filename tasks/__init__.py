"""Built-in tasks. Importing this package registers them."""
from tasks import bios, glue, wiki_toxicity  # noqa: F401
