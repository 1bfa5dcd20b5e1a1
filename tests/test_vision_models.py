"""Vision backbones: ResNet-18 layout compatible with torchvision state dicts, user weights through the model
resolver, the zoo EfficientNet-Lite0, and predictions that do not depend on the batch size."""
import numpy as np
import pytest
import torch

from biasboard.harness.errors import BiasboardError
from biasboard.harness.models import load_handle
from biasboard.harness.models.vision import ARCHS, ResNet18, build_backbone, builtin_handle


def test_resnet18_has_torchvision_layout():
    net = ResNet18()
    keys = net.state_dict().keys()
    # torchvision resnet18: 11,689,512 parameters; 122 state-dict entries (incl. BN running stats and counters)
    assert sum(p.numel() for p in net.parameters()) == 11_689_512
    assert len(keys) == 122
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                "layer2.0.downsample.1.num_batches_tracked", "layer4.1.bn2.bias", "fc.weight", "fc.bias"):
        assert key in keys


def test_resnet18_user_weights_load_through_resolver(tmp_path):
    torch.manual_seed(0)
    net = ResNet18()
    path = tmp_path / "resnet18.pth"
    torch.save({"module." + k: v for k, v in net.state_dict().items()}, path)  # DataParallel-style prefix
    handle = load_handle({"id": str(path), "family": "vision"})
    assert handle.extras["arch"] == "resnet18" and handle.extras["pretrained"]
    assert torch.equal(handle.model.net.layer3[1].conv2.weight, net.layer3[1].conv2.weight)
    feats = handle.model(torch.rand(2, 3, 64, 64))
    assert [f.shape[1] for f in feats] == list(ARCHS["resnet18"].stage_dims)


def test_wrong_weights_are_a_clear_error(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(BiasboardError, match="bad.pth"):
        build_backbone("resnet18", path)
    with pytest.raises(BiasboardError, match="unknown vision"):
        load_handle("vision:vgg16")


def test_builtin_ids_resolve_through_load_handle():
    h = load_handle("vision:small-cnn")
    assert h.family == "vision" and h.extras["stage_dims"] == (16, 32, 64, 128) and h.weights_sha256
    assert load_handle("vision:resnet18").weights_sha256 != h.weights_sha256


def test_predictions_do_not_depend_on_batch_size():
    from biasboard.harness.training.vision import CrossEntropy, TrainConfig, Trainer
    from biasboard.tasks.vision_data import make_colored_digits

    h = builtin_handle("small-cnn")
    data = make_colored_digits(rho=0.9)
    trainer = Trainer(backbone=h.model, stage_dims=h.extras["stage_dims"], data=data,
                      config=TrainConfig("vision", epochs=1, selection="last"), normalize=(h.extras["mean"], h.extras["std"]))
    model = trainer.fit(CrossEntropy(), indices=np.arange(128)).model
    a = trainer.outputs(model, "test", keys=("logits",), batch_size=1)["logits"]
    b = trainer.outputs(model, "test", keys=("logits",), batch_size=97)["logits"]
    assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.slow
def test_efficientnet_lite0_zoo_weights():
    h = load_handle("zoo:efficientnet-lite0")
    assert h.extras["arch"] == "efficientnet-lite0" and h.extras["pretrained"]
    x = torch.rand(2, 3, 224, 224)
    with torch.inference_mode():
        feats = h.model(x)
        logits = h.model.net(x)
    assert [f.shape for f in feats] == [torch.Size([2, d]) for d in (24, 40, 112, 1280)]
    # the stage wrapper reproduces the package's own feature path: pooled head features match extract_features
    with torch.inference_mode():
        ref = h.model.net.extract_features(x).mean(dim=(2, 3))
    assert torch.allclose(feats[-1], ref, atol=1e-5)
    # real ImageNet weights: the 1000-way classifier is not at its random init (near-uniform softmax)
    assert logits.shape == (2, 1000) and torch.softmax(logits, 1).max() > 0.01
