"""Models: the zoo of offline-packaged models, handles, and batched scoring primitives."""
from biasboard.harness.models.handles import ModelHandle, ModelSpec, load_handle, resolve_model
from biasboard.harness.models.zoo import ZOO, pull

__all__ = ["ModelHandle", "ModelSpec", "ZOO", "load_handle", "pull", "resolve_model"]
