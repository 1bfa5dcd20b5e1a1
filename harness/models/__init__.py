"""Models: the zoo of offline-packaged models, handles, and batched scoring primitives."""
from harness.models.handles import ModelHandle, ModelSpec, load_handle, resolve_model
from harness.models.zoo import ZOO, pull

__all__ = ["ModelHandle", "ModelSpec", "ZOO", "load_handle", "pull", "resolve_model"]
