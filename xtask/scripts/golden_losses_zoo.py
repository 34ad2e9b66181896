#!/usr/bin/python3
"""Golden fixtures for the conad-losses objective zoo (METHODS §1.3–§1.9), PyTorch float64.

Run from the repository root with Debian's Python (torch 1.13):

    /usr/bin/python3 xtask/scripts/golden_losses_zoo.py

Writes fixtures/losses/golden_zoo.npz. Every case stores its raw inputs (`<case>.input<i>`), the
loss (`<case>.loss`) and the gradient of the loss with respect to each raw input
(`<case>.grad<i>`); projections are L2-normalised inside the reference, as the Rust tests do.
Each reference is written from the METHODS prose (explicit loops over anchors and their
positive/denominator sets), and where a second formulation must agree (SupCon, SimCLR) the
script asserts it.
"""
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "losses")
torch.set_default_dtype(torch.float64)


def supcon(features, mask, temperature, base_temperature):
    """HobbitLong SupConLoss (METHODS §1.2) with an explicit image-pair mask, contrast_mode all."""
    bsz, n_views = features.shape[0], features.shape[1]
    contrast = torch.cat(torch.unbind(features, dim=1), dim=0)
    logits = contrast @ contrast.T / temperature
    logits = logits - logits.max(dim=1, keepdim=True)[0].detach()
    mask = mask.repeat(n_views, n_views)
    logits_mask = 1.0 - torch.eye(bsz * n_views)
    mask = mask * logits_mask
    log_prob = logits - torch.log((torch.exp(logits) * logits_mask).sum(1, keepdim=True))
    pos = mask.sum(1).clamp_min(1.0)
    return -(temperature / base_temperature) * ((mask * log_prob).sum(1) / pos).mean()


def pair_term(z, a, p, denominator, tau):
    """ℓ(z_a, z_p, Z) = −log(e^{z_a·z_p/τ} / Σ_{k ∈ denominator} e^{z_a·z_k/τ})."""
    logits = torch.stack([z[a] @ z[k] / tau for k in denominator])
    return -(z[a] @ z[p] / tau - torch.logsumexp(logits, 0))


def l_out(z, positives, tau):
    """Mean over anchors of the mean over positives of ℓ, denominator = all other rows."""
    n = z.shape[0]
    total = 0.0
    for a in range(n):
        others = [k for k in range(n) if k != a]
        if positives[a]:
            total = total + sum(pair_term(z, a, p, others, tau) for p in positives[a]) / len(positives[a])
    return total / n


def csi_reference(h, logits, n, k, tau, lam):
    """METHODS §1.3: NT-Xent over 2KN rows (positive r ± KN) + λ·CE on block shift labels."""
    z = F.normalize(h, dim=1)
    rows = 2 * k * n
    positives = [[(r + k * n) % rows] for r in range(rows)]
    con = l_out(z, positives, tau)
    labels = torch.tensor([(r % (k * n)) // n for r in range(rows)])
    cls = F.cross_entropy(logits, labels)
    # SimCLR cross-entropy form (diagonal removed, target = partner row) must agree.
    sim = (z @ z.T / tau).masked_fill(torch.eye(rows, dtype=torch.bool), float("-inf"))
    target = torch.tensor([(r + k * n) % rows for r in range(rows)])
    assert abs(F.cross_entropy(sim, target).item() - con.item()) < 1e-12
    return con + lam * cls


def con2_reference(hc, hn, n, tau_c, tau_n, alpha):
    """METHODS §1.4: (1/K) Σ over ordered same-context pairs + α·(1/12N) Σ over same-source pairs."""
    zc, zn = F.normalize(hc, dim=1), F.normalize(hn, dim=1)
    rows = 4 * n
    sample = [r % (2 * n) for r in range(rows)]
    ctx = [s // n for s in sample]
    src = [s % n for s in sample]
    others = lambda a: [k for k in range(rows) if k != a]
    pairs_c = [(a, p) for a in range(rows) for p in range(rows) if p != a and ctx[p] == ctx[a]]
    assert len(pairs_c) == 4 * n * (2 * n - 1)
    l_ctx = sum(pair_term(zc, a, p, others(a), tau_c) for a, p in pairs_c) / len(pairs_c)
    pairs_n = [(a, p) for a in range(rows) for p in range(rows) if p != a and src[p] == src[a]]
    assert len(pairs_n) == 12 * n
    l_cnt = sum(pair_term(zn, a, p, others(a), tau_n) for a, p in pairs_n) / (12 * n)
    # L_Context = SupCon with context labels, L_Content = SupCon with source labels (τ_base = τ).
    lab_c = torch.tensor([s // n for s in range(2 * n)])
    lab_n = torch.tensor([s % n for s in range(2 * n)])
    fc = torch.stack([zc[: 2 * n], zc[2 * n:]], 1)
    fn = torch.stack([zn[: 2 * n], zn[2 * n:]], 1)
    mc = (lab_c[:, None] == lab_c[None, :]).double()
    mn = (lab_n[:, None] == lab_n[None, :]).double()
    assert abs(supcon(fc, mc, tau_c, tau_c).item() - l_ctx.item()) < 1e-12
    assert abs(supcon(fn, mn, tau_n, tau_n).item() - l_cnt.item()) < 1e-12
    return l_ctx + alpha * l_cnt


def uniclr_positives(inlier):
    m = len(inlier)
    rows = 2 * m
    pos = []
    for a in range(rows):
        if inlier[a % m]:
            pos.append([p for p in range(rows) if p != a and inlier[p % m]])
        else:
            pos.append([(a + m) % rows])
    return pos


def uniclr_reference(h1, h2, inlier, tau):
    """METHODS §1.5 eqs. 1, 4–5: inliers attract all inlier views, outliers only their pair."""
    z = torch.cat([F.normalize(h1, dim=1), F.normalize(h2, dim=1)])
    loss = l_out(z, uniclr_positives(inlier), tau)
    inl = torch.tensor(inlier)
    mask = ((inl[:, None] & inl[None, :]) | torch.eye(len(inlier), dtype=torch.bool)).double()
    f = torch.stack([z[: len(inlier)], z[len(inlier):]], 1)
    assert abs(supcon(f, mask, tau, tau).item() - loss.item()) < 1e-12
    return loss


def sa_weights(z, rows, tau_w):
    """Eq. 7 over the inlier views `rows`, detached, rescaled to mean 1."""
    zd = z.detach()
    num = torch.stack([sum(torch.exp(zd[i] @ zd[j] / tau_w) for j in rows if j != i) for i in rows])
    return len(rows) * num / num.sum()


def uniclr_sa_reference(h1, h2, inlier, tau, tau_w, equal=False):
    """METHODS §1.5 / §6.6: pair weights ω_i ω_j, global normalisation over inlier pairs."""
    m = len(inlier)
    z = torch.cat([F.normalize(h1, dim=1), F.normalize(h2, dim=1)])
    rows = [r for r in range(2 * m) if inlier[r % m]]
    w = torch.ones(len(rows)) if equal else sa_weights(z, rows, tau_w)
    where = {r: i for i, r in enumerate(rows)}
    pos = uniclr_positives(inlier)
    others = lambda a: [k for k in range(2 * m) if k != a]
    num, den = 0.0, 0.0
    for a in rows:
        for p in pos[a]:
            pi = w[where[a]] * w[where[p]]
            num = num + pi * pair_term(z, a, p, others(a), tau)
            den = den + pi
    inlier_part = num / den
    outlier_sum = sum(pair_term(z, a, pos[a][0], others(a), tau) for a in range(2 * m) if not inlier[a % m])
    return (len(rows) * inlier_part + outlier_sum) / (2 * m), w


def uniclr_sa_anchor_reference(h1, h2, inlier, tau, tau_w):
    """UniCon-HA eq. 6 normalised per anchor: for inlier anchor x,
    −Σ_{x'∈D⁺} w_x w_x' log p(x'|x) / Σ_{x'∈D⁺} w_x w_x' (the w_x w_x' the extracted eq. 6 puts
    inside the log adds only a constant for detached weights and is left out); eq. 7 weights
    (their scale cancels); outlier anchors as in UniCLR; mean over the 2M anchors (eq. 4)."""
    m = len(inlier)
    z = torch.cat([F.normalize(h1, dim=1), F.normalize(h2, dim=1)])
    rows = [r for r in range(2 * m) if inlier[r % m]]
    zd = z.detach()
    w = {i: sum(torch.exp(zd[i] @ zd[j] / tau_w) for j in rows if j != i) for i in rows}
    pos = uniclr_positives(inlier)
    others = lambda a: [k for k in range(2 * m) if k != a]
    total = 0.0
    for a in range(2 * m):
        if inlier[a % m]:
            num = sum(w[a] * w[p] * pair_term(z, a, p, others(a), tau) for p in pos[a])
            total = total + num / sum(w[a] * w[p] for p in pos[a])
        else:
            total = total + pair_term(z, a, pos[a][0], others(a), tau)
    return total / (2 * m)


def unicon_ha_reference(stages, inlier, tau, tau_w, lambdas):
    """UniCon-HA eq. 9: (1/4) Σ_i λ_i L_UniCLR(T_i), soft aggregation (eq. 6) at the last stage."""
    total = 0.0
    for i, ((h1, h2), lam) in enumerate(zip(stages, lambdas)):
        last = i == len(stages) - 1
        l = uniclr_sa_anchor_reference(h1, h2, inlier, tau, tau_w) if last else uniclr_reference(h1, h2, inlier, tau)
        total = total + lam * l
    return total / 4


def firm_pairwise_reference(h1, h2, labels, tau):
    """FIRMLoss: view-1 anchors, soft targets uniform over same-class inlier keys (incl. j = i)."""
    z1, z2 = F.normalize(h1, dim=1), F.normalize(h2, dim=1)
    n = len(labels)
    target = torch.zeros(n, n)
    for i in range(n):
        if labels[i] >= 0:
            cols = [j for j in range(n) if labels[j] == labels[i]]
        else:
            cols = [i]
        target[i, cols] = 1.0 / len(cols)
    log_q = torch.log_softmax(z1 @ z2.T / tau, dim=1)
    return -(target * log_q).sum(1).mean()


def firm_concat_reference(h1, h2, labels, tau):
    """FIRMLossv2 (METHODS §1.6): 2N×2N, self logit large negative, same-class inliers or own pair."""
    n = len(labels)
    z = torch.cat([F.normalize(h1, dim=1), F.normalize(h2, dim=1)])
    logits = (z @ z.T / tau) - 1e9 * torch.eye(2 * n)
    lab = labels + labels
    pos = torch.zeros(2 * n, 2 * n)
    for a in range(2 * n):
        for b in range(2 * n):
            if a != b and ((a % n) == (b % n) or (lab[a] >= 0 and lab[a] == lab[b])):
                pos[a, b] = 1.0
    assert (pos.sum(1) > 0).all()
    log_p = torch.log_softmax(logits, dim=1)
    loss = -((pos * log_p).sum(1) / pos.sum(1)).mean()
    y = torch.tensor(labels)
    mask = (((y[:, None] == y[None, :]) & (y[:, None] >= 0)) | torch.eye(n, dtype=torch.bool)).double()
    f = torch.stack([z[:n], z[n:]], 1)
    assert abs(supcon(f, mask, tau, tau).item() - loss.item()) < 1e-9
    return loss


def ke_reference(ha, hp, hn, tau, in_batch, per_anchor=False):
    """KE eq. 1: −(1/|x⁺|) log(Σ_{x⁺} e^{s/τ} / Σ_{D(x)} e^{s/τ}); D(x) own transforms (+ batch)."""
    n, p, d = hp.shape
    q = hn.shape[1]
    za = F.normalize(ha, dim=1)
    zp = F.normalize(hp, dim=2)
    zn = F.normalize(hn, dim=2)
    keys = torch.cat([za, zp.reshape(n * p, d), zn.reshape(n * q, d)])
    owner = list(range(n)) + [i // p for i in range(n * p)] + [i // q for i in range(n * q)]
    kind = ["a"] * n + ["p"] * (n * p) + ["n"] * (n * q)
    losses = []
    for i in range(n):
        pos = [j for j in range(len(keys)) if kind[j] == "p" and owner[j] == i]
        den = [j for j in range(len(keys)) if j != i and (owner[j] == i or in_batch)]
        s = lambda j: za[i] @ keys[j] / tau
        losses.append(-(torch.logsumexp(torch.stack([s(j) for j in pos]), 0)
                        - torch.logsumexp(torch.stack([s(j) for j in den]), 0)) / p)
    losses = torch.stack(losses)
    return losses if per_anchor else losses.mean()


def conv_reference(h, a, b, k, tau):
    """MIL-Conv eq. 6 with τ, given convex-combination weights (M × N)."""
    z = F.normalize(h, dim=1)
    za, zb, zk = (F.normalize(w @ z, dim=1) for w in (a, b, k))
    pos = (za * zb).sum(1) / tau
    neg = (za * zk).sum(1) / tau
    return (-torch.log(torch.exp(pos) / (torch.exp(pos) + torch.exp(neg)))).mean()


def mil_mean_reference(h1, h2, c, tau):
    """MIL-Conv eq. 7: NT-Xent on the re-centred features (eq. 8) − f(x)ᵀ f̄, averaged over the 2N
    anchors (f̄ = the fixed centre c)."""
    f1, f2 = F.normalize(h1, dim=1), F.normalize(h2, dim=1)
    n = f1.shape[0]
    f = torch.cat([f1, f2])
    g = F.normalize(f - c, dim=1)
    others = lambda a: [k for k in range(2 * n) if k != a]
    con = sum(pair_term(g, a, (a + n) % (2 * n), others(a), tau) for a in range(2 * n)) / (2 * n)
    return con - (f @ c).mean()


def msc_reference(h1, h2, c, tau):
    """MSC: NT-Xent on normalise(f − c) (2N×2N, diagonal removed) + mean‖f1−c‖² + mean‖f2−c‖²."""
    f1, f2 = F.normalize(h1, dim=1), F.normalize(h2, dim=1)
    n = f1.shape[0]
    g = F.normalize(torch.cat([f1, f2]) - c, dim=1)
    sim = (g @ g.T / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    con = F.cross_entropy(sim, target)
    ang = ((f1 - c) ** 2).sum(1).mean() + ((f2 - c) ** 2).sum(1).mean()
    # Angular term = 2 − 2 f·c per row for unit vectors.
    assert abs(ang.item() - (2 - 2 * (f1 @ c)).mean().item() - (2 - 2 * (f2 @ c)).mean().item()) < 1e-12
    return con + ang


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(20261122)
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

    # CSI: N = 2 images, K = 4 rotations, 2 views → 16 rows, d = 6; λ = 1, τ = 0.5.
    grad_case("csi", [torch.randn(16, 6, generator=g), torch.randn(16, 4, generator=g)],
              lambda h, lg: csi_reference(h, lg, 2, 4, 0.5, 1.0))

    # CON2: N = 3 → 12 rows, d = 5; τ_context 0.1, τ_content 0.2, step 3 of 10 → α = 0.3.
    grad_case("con2", [torch.randn(12, 5, generator=g), torch.randn(12, 5, generator=g)],
              lambda c, t: con2_reference(c, t, 3, 0.1, 0.2, 0.3))

    # UniCLR: M = 8 samples (2 inliers, 6 virtual outliers), d = 5, τ = 0.5.
    inlier = [True, False, False, False, True, False, False, False]
    out["uniclr.inlier"] = np.array(inlier, dtype=np.int64)
    grad_case("uniclr", [torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)],
              lambda x, y: uniclr_reference(x, y, inlier, 0.5))

    # UniCLR with soft aggregation: M = 8 (3 inliers), τ = τ_ω = 0.5.
    inlier_sa = [True, False, True, False, False, True, False, False]
    out["uniclr_sa.inlier"] = np.array(inlier_sa, dtype=np.int64)
    h1, h2 = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    grad_case("uniclr_sa", [h1, h2], lambda x, y: uniclr_sa_reference(x, y, inlier_sa, 0.5, 0.5)[0])
    out["uniclr_sa.weights"] = uniclr_sa_reference(h1, h2, inlier_sa, 0.5, 0.5)[1].numpy()
    eq = uniclr_sa_reference(h1, h2, inlier_sa, 0.5, 0.5, equal=True)[0].item()
    assert abs(eq - uniclr_reference(h1, h2, inlier_sa, 0.5).item()) < 1e-12
    # The same inputs under eq. 6's per-anchor normalisation (conad's default).
    grad_case("uniclr_sa_anchor", [h1, h2], lambda x, y: uniclr_sa_anchor_reference(x, y, inlier_sa, 0.5, 0.5))

    # UniCon-HA eq. 9: three stages (2, 3, 4), λ = (1, 0.5, 2), M = 8 (2 inliers), d = 5, /4.
    inlier_ha = [True, False, False, False, True, False, False, False]
    out["unicon_ha.inlier"] = np.array(inlier_ha, dtype=np.int64)
    out["unicon_ha.lambdas"] = np.array([1.0, 0.5, 2.0])
    # Cases added later draw from their own generator so the earlier cases keep their inputs.
    g2 = torch.Generator().manual_seed(20261206)
    grad_case("unicon_ha", [torch.randn(8, 5, generator=g2) for _ in range(6)],
              lambda a, b, c, d, e, f: unicon_ha_reference([(a, b), (c, d), (e, f)], inlier_ha, 0.5, 0.5,
                                                           [1.0, 0.5, 2.0]))

    # FIRM pairwise: N = 6, one inlier class (0) and outliers (−1), τ = 0.2.
    lab_p = [0, -1, 0, -1, -1, 0]
    out["firm_pair.labels"] = np.array(lab_p, dtype=np.int64)
    grad_case("firm_pair", [torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)],
              lambda x, y: firm_pairwise_reference(x, y, lab_p, 0.2))

    # FIRM concat, multi-class golden labels of METHODS §1.6, τ = 0.2.
    lab_c = [1, 2, 2, -1, -1]
    out["firm_concat.labels"] = np.array(lab_c, dtype=np.int64)
    grad_case("firm_concat", [torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)],
              lambda x, y: firm_concat_reference(x, y, lab_c, 0.2))

    # KE: N = 3 anchors, 2 positive and 2 negative transforms, d = 4, τ = 0.2, both readings.
    ke_in = [torch.randn(3, 4, generator=g), torch.randn(3, 2, 4, generator=g),
             torch.randn(3, 2, 4, generator=g)]
    grad_case("ke_own", ke_in, lambda a, p, n: ke_reference(a, p, n, 0.2, False))
    grad_case("ke_batch", ke_in, lambda a, p, n: ke_reference(a, p, n, 0.2, True))

    # MIL-Conv L_Conv with fixed Dirichlet combinations: N = 8 rows, M = 4 triplets, C = 3, τ = 0.5.
    # S_a = rows {6, 7}, S_n = rows 0..5.
    rng = np.random.default_rng(7)
    def combos(support):
        w = np.zeros((4, 8))
        for t in range(4):
            rows = rng.choice(support, size=3, replace=True)
            for r, x in zip(rows, rng.dirichlet(np.ones(3))):
                w[t, r] += x
        return torch.tensor(w)
    ca, cb, ck = combos(np.arange(6)), combos(np.arange(6)), combos(np.array([6, 7]))
    out["conv.a"], out["conv.b"], out["conv.k"] = ca.numpy(), cb.numpy(), ck.numpy()
    h = torch.randn(8, 5, generator=g)
    grad_case("conv", [h], lambda x: conv_reference(x, ca, cb, ck, 0.5))
    # Eq. 6 literally has no temperature: τ = 1 (conad's default).
    grad_case("conv_t1", [h], lambda x: conv_reference(x, ca, cb, ck, 1.0))
    # Pseudo-normality scores (K = 2 most similar other rows) of the same normalised rows.
    z = F.normalize(h, dim=1)
    sim = z @ z.T - 10.0 * torch.eye(8)
    out["conv.scores_k2"] = sim.topk(2, dim=1).values.mean(1).numpy()

    # MSC: N = 4, d = 5, fixed centre, τ = 0.25.
    c = F.normalize(torch.randn(5, generator=g), dim=0)
    out["msc.center"] = c.numpy()
    grad_case("msc", [torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)],
              lambda x, y: msc_reference(x, y, c, 0.25))

    # MIL-Conv's L_Mean (eq. 7): same centre, τ = 0.5, centre term −fᵀf̄.
    grad_case("mil_mean", [torch.randn(4, 5, generator=g2), torch.randn(4, 5, generator=g2)],
              lambda x, y: mil_mean_reference(x, y, c, 0.5))

    # Rotation cross-entropy: 8 rows, 4 classes.
    rot_labels = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    out["rot.labels"] = rot_labels.numpy()
    grad_case("rot", [torch.randn(8, 4, generator=g) * 3.0],
              lambda lg: F.cross_entropy(lg, rot_labels))

    path = os.path.join(OUT, "golden_zoo.npz")
    np.savez(path, **{k: np.asarray(v) for k, v in out.items()})
    print(path, os.path.getsize(path), "bytes,", len(out), "arrays")


if __name__ == "__main__":
    main()
