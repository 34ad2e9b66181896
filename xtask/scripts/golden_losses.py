#!/usr/bin/python3
"""Golden fixtures for conad-losses: loss values and gradients from PyTorch (float64).

Run from the repository root with Debian's Python (torch 1.13):

    /usr/bin/python3 xtask/scripts/golden_losses.py

Writes fixtures/losses/golden_losses.npz. Every case stores its inputs, the loss and the gradient
of the loss with respect to the raw (un-normalised) inputs. The references are written directly
from the prose of METHODS §0–§1.2 (HobbitLong/SupContrast `SupConLoss` semantics, the SimCLR
2N×2N cross-entropy, FIRM's pairwise N×N NT-Xent, and a plain masked log-softmax for the generic
kernel), and where two formulations must agree the script asserts it.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "losses")
torch.set_default_dtype(torch.float64)


def supcon_reference(features, labels=None, mask=None, temperature=0.07, base_temperature=0.07,
                     contrast_mode="all"):
    """HobbitLong/SupContrast SupConLoss, restated from METHODS §1.2 steps 1–8."""
    bsz, n_views = features.shape[0], features.shape[1]
    if labels is None and mask is None:
        mask = torch.eye(bsz)
    elif labels is not None:
        labels = labels.view(-1, 1)
        mask = torch.eq(labels, labels.T).double()
    contrast = torch.cat(torch.unbind(features, dim=1), dim=0)
    if contrast_mode == "one":
        anchor, anchor_count = features[:, 0], 1
    else:
        anchor, anchor_count = contrast, n_views
    logits = anchor @ contrast.T / temperature
    logits = logits - logits.max(dim=1, keepdim=True)[0].detach()
    mask = mask.repeat(anchor_count, n_views)
    logits_mask = torch.ones_like(mask)
    idx = torch.arange(bsz * anchor_count)
    logits_mask[idx, idx] = 0
    mask = mask * logits_mask
    log_prob = logits - torch.log((torch.exp(logits) * logits_mask).sum(1, keepdim=True))
    pos = mask.sum(1)
    pos = torch.where(pos < 1e-6, torch.ones_like(pos), pos)
    mean_log_prob_pos = (mask * log_prob).sum(1) / pos
    loss = -(temperature / base_temperature) * mean_log_prob_pos
    return loss.view(anchor_count, bsz).mean()


def simclr_reference(z1, z2, temperature):
    """SimCLR/CSI NT_xent: 2N×2N logits, diagonal removed, cross-entropy on the partner row."""
    n = z1.shape[0]
    z = torch.cat([z1, z2])
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, target)


def firm_pairwise_reference(z1, z2, temperature):
    """FIRM NTXentLoss: logits z1 z2ᵀ/τ, row-wise cross-entropy on the diagonal (view-1 anchors)."""
    logits = z1 @ z2.T / temperature
    return F.cross_entropy(logits, torch.arange(z1.shape[0]))


def generic_reference(q, k, valid, w, temperature, reduction, empty):
    """Masked multi-positive InfoNCE of METHODS §0, straight from the definition."""
    logits = (q @ k.T / temperature).masked_fill(~valid, float("-inf"))
    log_p = torch.log_softmax(logits, dim=1)
    has = w.sum(1) > 0
    if reduction == "mean_log_prob":
        terms = (w * log_p.masked_fill(~valid, 0.0)).sum(1)
        per = -terms / torch.where(has, w.sum(1), torch.ones_like(w.sum(1)))
    else:
        ww = w / torch.where(has, w.sum(1), torch.ones_like(w.sum(1)))[:, None] if reduction == "log_mean_prob" else w
        log_w = torch.where(ww > 0, torch.log(ww.clamp_min(1e-300)), torch.full_like(ww, float("-inf")))
        t = torch.where(ww > 0, log_p + log_w, torch.full_like(ww, float("-inf")))
        per = -torch.logsumexp(t, dim=1)
        per = torch.where(has, per, torch.zeros_like(per))
    if empty == "count_as_zero":
        return per.sum() / per.shape[0]
    return per[has].sum() / has.sum()


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(20240611)
    out = {}

    def grad_case(name, inputs, fn):
        leaves = [x.clone().requires_grad_(True) for x in inputs]
        loss = fn(*leaves)
        loss.backward()
        out[f"{name}.loss"] = loss.detach().numpy().reshape(())
        for i, (x, leaf) in enumerate(zip(inputs, leaves)):
            out[f"{name}.input{i}"] = x.numpy()
            out[f"{name}.grad{i}"] = leaf.grad.numpy()
        return loss.item()

    # 1. Symmetric NT-Xent (SimCLR), N = 6, d = 5, τ = 0.5; raw h, normalised inside.
    h1, h2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    a = grad_case("ntxent_sym", [h1, h2],
                  lambda x, y: simclr_reference(F.normalize(x, dim=1), F.normalize(y, dim=1), 0.5))
    b = supcon_reference(torch.stack([F.normalize(h1, dim=1), F.normalize(h2, dim=1)], 1),
                         temperature=0.5, base_temperature=0.5).item()
    assert abs(a - b) < 1e-12, (a, b)

    # 2. FIRM pairwise NT-Xent, N = 7, d = 4, τ = 0.2.
    h1, h2 = torch.randn(7, 4, generator=g), torch.randn(7, 4, generator=g)
    grad_case("ntxent_pair", [h1, h2],
              lambda x, y: firm_pairwise_reference(F.normalize(x, dim=1), F.normalize(y, dim=1), 0.2))

    # 3. SupCon, labels, all views as anchors, τ = 0.1, τ_base = 0.07; features bsz × 2 × d raw.
    labels = torch.tensor([0, 1, 0, 2, 1, 3, 0, 2])
    out["supcon_all.labels"] = labels.numpy()
    f = torch.randn(8, 2, 6, generator=g)
    grad_case("supcon_all", [f],
              lambda x: supcon_reference(F.normalize(x, dim=2), labels, temperature=0.1,
                                         base_temperature=0.07))

    # 4. SupCon, contrast_mode 'one', τ = 0.2, τ_base = 0.07, same labels, new features.
    out["supcon_one.labels"] = labels.numpy()
    f = torch.randn(8, 2, 6, generator=g)
    grad_case("supcon_one", [f],
              lambda x: supcon_reference(F.normalize(x, dim=2), labels, temperature=0.2,
                                         base_temperature=0.07, contrast_mode="one"))

    # 5. SupCon, one view, singleton labels 1 and 3 → anchors without positives (count as 0).
    lab5 = torch.tensor([0, 0, 1, 2, 2, 3])
    out["supcon_v1.labels"] = lab5.numpy()
    f = torch.randn(6, 1, 5, generator=g)
    grad_case("supcon_v1", [f],
              lambda x: supcon_reference(F.normalize(x, dim=2), lab5, temperature=0.07))

    # 6. SupCon, three views, τ = τ_base = 0.3.
    lab6 = torch.tensor([4, 5, 4, 6, 5])
    out["supcon_v3.labels"] = lab6.numpy()
    f = torch.randn(5, 3, 4, generator=g)
    grad_case("supcon_v3", [f],
              lambda x: supcon_reference(F.normalize(x, dim=2), lab6, temperature=0.3,
                                         base_temperature=0.3))

    # 7. Generic kernel: M = 5 anchors, M' = 7 keys, d = 4, τ = 0.3, random valid mask and
    # weights; row 3 has no positive. Raw q and k (no normalisation).
    q, k = torch.randn(5, 4, generator=g), torch.randn(7, 4, generator=g)
    valid = torch.rand(5, 7, generator=g) > 0.25
    valid[:, 0] = True
    w = torch.rand(5, 7, generator=g) * 2.0
    w = torch.where(torch.rand(5, 7, generator=g) > 0.5, w, torch.zeros_like(w)) * valid
    w[0, 0] = 1.5
    w[3] = 0.0
    w = w.float().double()  # exactly representable in f32 (conad stores mask weights as f32)
    out["generic.valid"] = valid.double().numpy()
    out["generic.weights"] = w.numpy()
    for red in ["mean_log_prob", "log_sum_prob", "log_mean_prob"]:
        for empty in ["count_as_zero", "drop"]:
            grad_case(f"generic.{red}.{empty}", [q, k],
                      lambda x, y, red=red, empty=empty: generic_reference(x, y, valid, w, 0.3, red, empty))

    path = os.path.join(OUT, "golden_losses.npz")
    np.savez(path, **{k: np.asarray(v) for k, v in out.items()})
    print(path, os.path.getsize(path), "bytes,", len(out), "arrays")


if __name__ == "__main__":
    main()
