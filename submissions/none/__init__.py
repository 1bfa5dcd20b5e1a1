"""The identity method: evaluates the model as it is (the reference row of every comparison)."""
from biasboard.harness.registry import FAMILIES, register_method
from biasboard.harness.specs import Method


@register_method
class NoMitigation(Method):
    name = "none"
    version = "1.0"
    description = "No mitigation: the pre-trained model as released."
    families = FAMILIES
    kind = "identity"
    params = {}

    def apply(self, handle, ctx):
        return handle
