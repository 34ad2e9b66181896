"""The PyTorch pieces the benchmark references compare conad's against (imported by
`bench_train.py`, `bench_score.py`, `bench_epoch.py`): NT-Xent (`nt_xent`) and the ResNet-18 — BasicBlock stages of widths 64/128/256/512 times the width
multiplier, the CIFAR stem (3x3 stride-1 convolution, no max-pool) or the ImageNet stem (7x7
stride-2 convolution, 3x3 stride-2 max-pool), global average pooling, Kaiming-normal (fan-out)
convolution weights. The architecture of `conad_models::ResNet`.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNet18(nn.Module):
    def __init__(self, in_channels, width=1.0, imagenet_stem=False):
        super().__init__()
        widths = [max(1, round(c * width)) for c in (64, 128, 256, 512)]
        if imagenet_stem:
            self.conv1 = nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.pool = imagenet_stem
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
            cin = w
        self.layers = nn.Sequential(*layers)
        self.dim = widths[-1]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        if self.pool:
            x = F.max_pool2d(x, 3, 2, 1)
        x = self.layers(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def nt_xent(z, tau):
    """Symmetric NT-Xent over 2N L2-normalised projections (views i and i + N are positives)."""
    n2 = z.shape[0]
    n = n2 // 2
    logits = z @ z.t() / tau
    logits = logits.masked_fill(torch.eye(n2, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, n2), torch.arange(0, n)])
    return F.cross_entropy(logits, target)


def conv_macs(model, in_channels, side):
    """Multiply-adds of every convolution of `model` for one image of side x side (a forward
    pass with hooks) — the count `bench_train_step.rs` computes analytically for conad."""
    total = [0]

    def hook(m, _inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        total[0] += m.in_channels * m.out_channels * k * out.shape[2] * out.shape[3]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, in_channels, side, side))
    model.train(was_training)
    for h in handles:
        h.remove()
    return total[0]
