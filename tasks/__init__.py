"""Built-in tasks. Importing this package registers them."""
from tasks import crows_pairs  # noqa: F401
from tasks import worst_group  # noqa: F401
from tasks import bios, glue, wiki_toxicity  # noqa: F401
from tasks import seat, stereoset  # noqa: F401
