#!/usr/bin/python3
"""Golden fixtures for conad-models: torchvision-style ResNet-18 outputs from PyTorch.

Run from the repository root with Debian's Python (torch 1.13, torchvision 0.14):

    /usr/bin/python3 xtask/scripts/golden_models.py

Writes, under fixtures/models/:
  resnet18_cifar_w0125.safetensors     weights (F16, torchvision names incl. num_batches_tracked)
  resnet18_cifar_w0125_io.safetensors  input + outputs (F32)
  resnet18_imagenet_w0125_c1.safetensors / ..._io.safetensors   (1 input channel, ImageNet stem)

The network is assembled from torchvision's own `BasicBlock` with torchvision's module names; at
width 1 with the ImageNet stem its state_dict keys are asserted equal to `torchvision.models.resnet18()`.
Width 1/8 keeps the weight files at ~350 kB each (the fixture budget is < 1 MB in total); the
width multiplier is a plain channel count, so the code path is the one used at 1/4 or 1.

Weights are stored in F16 and the PyTorch model runs on exactly those (F16-rounded) values in F32,
so the comparison tolerance reflects the forward computation only. BN affine parameters and running
statistics are randomised so that evaluation mode really exercises the running statistics.
"""
import json
import os
import struct
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "models")


class ResNetTV(nn.Module):
    """torchvision ResNet with a width multiplier and a CIFAR/ImageNet stem (same module names)."""

    def __init__(self, stem, in_ch, width, blocks=(2, 2, 2, 2), num_classes=None, momentum=0.1):
        super().__init__()
        w = [int(round(c * width)) for c in (64, 128, 256, 512)]
        if stem == "cifar":
            self.conv1 = nn.Conv2d(in_ch, w[0], 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_ch, w[0], 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(w[0], momentum=momentum)
        self.relu = nn.ReLU(inplace=True)
        inplanes = w[0]
        for i, (planes, n) in enumerate(zip(w, blocks)):
            stride = 1 if i == 0 else 2
            layers = []
            for b in range(n):
                s = stride if b == 0 else 1
                down = None
                if s != 1 or inplanes != planes:
                    down = nn.Sequential(
                        nn.Conv2d(inplanes, planes, 1, s, bias=False),
                        nn.BatchNorm2d(planes, momentum=momentum),
                    )
                layers.append(BasicBlock(inplanes, planes, s, down))
                inplanes = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.fc = nn.Linear(w[3], num_classes) if num_classes else None

    def forward_stages(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        r1 = self.layer1(x)
        r2 = self.layer2(r1)
        r3 = self.layer3(r2)
        r4 = self.layer4(r3)
        return r1, r2, r3, r4


def check_names_match_torchvision():
    ours = ResNetTV("imagenet", 3, 1.0, num_classes=1000).state_dict().keys()
    ref = torchvision.models.resnet18().state_dict().keys()
    assert list(ours) == list(ref), set(ours) ^ set(ref)


def randomise_and_round(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.num_batches_tracked.fill_(7)
        for t in list(model.parameters()) + [b for n, b in model.named_buffers() if "running" in n]:
            t.copy_(t.half().float())


DTYPES = {np.float16: "F16", np.float32: "F32", np.int64: "I64"}


def write_safetensors(path, tensors, metadata=None):
    """Minimal safetensors writer (the `safetensors` Python package is not installed)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.array(tensors[name], order="C")  # keeps 0-d shapes (ascontiguousarray makes them 1-d)
        dt = DTYPES[a.dtype.type]
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def make_fixture(tag, stem, in_ch, width, shape, num_classes, seed):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = ResNetTV(stem, in_ch, width, num_classes=num_classes)
    randomise_and_round(model, gen)
    sd = model.state_dict()
    weights = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            weights[k] = v.numpy().astype(np.int64).reshape(())
        else:
            weights[k] = v.numpy().astype(np.float16)
    write_safetensors(os.path.join(OUT, f"{tag}.safetensors"), weights,
                      {"generator": "xtask/scripts/golden_models.py"})

    x = torch.randn(shape, generator=gen)
    io = {"input": x.numpy()}
    model.eval()
    with torch.no_grad():
        r = model.forward_stages(x)
        for i, t in enumerate(r):
            io[f"eval.res{i + 1}"] = t.numpy()
        pooled = r[3].mean((2, 3))
        io["eval.pooled"] = pooled.numpy()
        if model.fc is not None:
            io["eval.logits"] = model.fc(pooled).numpy()

    # Training mode: batch statistics, running statistics updated once, gradient of a fixed
    # linear functional of the pooled feature with respect to two conv weights.
    model.train()
    proj = torch.randn(pooled.shape[1], generator=gen)
    io["train.projection"] = proj.numpy()
    r = model.forward_stages(x)
    pooled = r[3].mean((2, 3))
    io["train.pooled"] = pooled.detach().numpy()
    io["train.res2"] = r[1].detach().numpy()
    loss = (pooled @ proj).pow(2).sum()
    loss.backward()
    io["train.loss"] = loss.detach().numpy().reshape(())
    for name in ["conv1.weight", "layer3.0.downsample.0.weight", "layer1.1.bn2.weight"]:
        io[f"train.grad.{name}"] = dict(model.named_parameters())[name].grad.numpy()
    for name in ["bn1.running_mean", "bn1.running_var", "layer4.1.bn2.running_var",
                 "layer2.0.downsample.1.running_mean"]:
        io[f"train.{name}"] = model.state_dict()[name].numpy()
    io = {k: np.asarray(v, dtype=np.float32) for k, v in io.items()}
    write_safetensors(os.path.join(OUT, f"{tag}_io.safetensors"), io,
                      {"generator": "xtask/scripts/golden_models.py",
                       "config": json.dumps({"stem": stem, "in_channels": in_ch, "width_multiplier": width,
                                             "num_classes": num_classes})})


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    check_names_match_torchvision()
    make_fixture("resnet18_cifar_w0125", "cifar", 3, 0.125, (2, 3, 16, 16), 10, seed=0)
    make_fixture("resnet18_imagenet_w0125_c1", "imagenet", 1, 0.125, (2, 1, 48, 48), None, seed=1)
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))


if __name__ == "__main__":
    main()
