"""Method adapters: our reference implementations and outside submissions. Importing registers them."""
from submissions import none, perturb  # noqa: F401
from submissions import debiasify, jtt, vision_erm, vision_group_dro  # noqa: F401
from submissions import proxy_scrub, random_init, resample, scrub  # noqa: F401
from submissions import bias_vector, erm, group_dro, robust_debias, topk_ae_dro, topk_dro  # noqa: F401
