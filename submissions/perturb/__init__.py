"""Weight perturbation (Baksi, Singh, Joshi 2024, arXiv 2408.00612): Gaussian noise on every weight tensor.

Each floating-point parameter tensor W gets ``W + sigma * std(W) * N(0, 1)``, where std is the population
standard deviation of that tensor (a one-element tensor has std 0 and stays unchanged). The noise is drawn from a
generator seeded by the cell seed, tensor by tensor in ``named_parameters`` order, so results are reproducible.
Baksi et al. (2024) leave the scale open; ``sigma`` is a parameter here, 0.01 by default (the quick matrix's
setting; 0.05 and 0.1 are the natural larger steps).
"""
import torch

from biasboard.harness.registry import register_method
from biasboard.harness.specs import Method


def perturb_module(module: torch.nn.Module, *, sigma: float, seed: int) -> torch.nn.Module:
    """Add scaled Gaussian noise to every floating parameter of ``module`` in place and return it."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, param in module.named_parameters():
            if not param.is_floating_point() or param.numel() == 0:
                continue
            scale = param.detach().float().std(correction=0) if param.numel() > 1 else torch.tensor(0.0)
            noise = torch.randn(param.shape, generator=gen, dtype=torch.float32)
            param.add_((sigma * scale * noise).to(param.dtype))
    return module


@register_method
class Perturb(Method):
    name = "perturb"
    version = "1.0"
    description = "Gaussian noise on every weight tensor, sigma times that tensor's standard deviation."
    citation = "Baksi, Singh, Joshi. Downstream bias mitigation is all you need. arXiv 2408.00612 (2024)."
    families = ("mlm", "clm", "encoder", "vision")
    kind = "weights"
    params = {"sigma": 0.01}

    def apply(self, handle, ctx):
        sigma = float(ctx.params.get("sigma", self.params["sigma"]))
        model = perturb_module(handle.clone_model(), sigma=sigma, seed=ctx.seed)
        model.eval()
        return handle.derive(model=model, step=f"perturb(sigma={sigma},seed={ctx.seed})")
