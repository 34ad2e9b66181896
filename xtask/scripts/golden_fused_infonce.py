"""Golden values for conad-kernels' fused InfoNCE (crates/conad-kernels/tests/golden_pytorch.rs).

Run: /usr/bin/python3 xtask/scripts/golden_fused_infonce.py   (torch >= 1.13, float64)

Inputs are deterministic: z_raw[i, j] = sin(0.9 i + 1.7 j + 0.3) + 0.1 j, rows L2-normalised
(the same formula is in the Rust test). The loss follows HobbitLong/SupContrast's SupConLoss
(mask-based, self excluded from numerator and denominator, mean of log-prob over positives,
anchors without positives contribute 0 and count in the mean), generalised to explicit
positive/valid masks, and the L_in form -log(sum_p p_ip). Prints Rust constants (shortest
round-trip reprs) to paste into the test.
"""
import math

import torch

torch.set_default_dtype(torch.float64)


def z_input(rows, d):
    z = torch.tensor(
        [[math.sin(0.9 * i + 1.7 * j + 0.3) + 0.1 * j for j in range(d)] for i in range(rows)]
    )
    return torch.nn.functional.normalize(z, dim=1)


def generic_loss(q, k, pos, valid, tau, reduction="out"):
    logits = q @ k.T / tau
    logits = logits - logits.detach().masked_fill(~valid, -1e300).max(dim=1, keepdim=True).values.clamp(min=-1e300)
    exp = torch.exp(logits) * valid
    log_prob = logits - torch.log(exp.sum(1, keepdim=True).clamp(min=1e-300))
    posf = pos.to(q.dtype)
    cnt = posf.sum(1)
    if reduction == "out":
        per = -(posf * log_prob).sum(1) / cnt.clamp(min=1)
    else:
        lp = torch.where(pos, log_prob, torch.full_like(log_prob, -1e300))
        per = -torch.logsumexp(lp, dim=1)
        per = torch.where(cnt > 0, per, torch.zeros_like(per))
    return per.mean()


def masks(inst, lab, m, rule, shared=True):
    n = len(inst)
    pos = torch.zeros(m, n, dtype=torch.bool)
    valid = torch.zeros(m, n, dtype=torch.bool)
    for a in range(m):
        for c in range(n):
            is_self = shared and a == c
            same_i, same_l = inst[a] == inst[c], lab[a] == lab[c]
            if rule == "instance":
                r = same_i
            elif rule == "label":
                r = same_l
            else:
                r = same_i or (same_l and lab[a] >= 0)
            valid[a, c] = not is_self
            pos[a, c] = (not is_self) and r
    return pos, valid


def view_major(labels, views):
    n = len(labels)
    return [r % n for r in range(n * views)], [labels[r % n] for r in range(n * views)]


def emit(name, loss, grad=None):
    print(f"// {name}")
    print(f"const {name}_LOSS: f64 = {loss.item()!r};")
    if grad is not None:
        vals = ", ".join(repr(v) for v in grad.flatten().tolist())
        print(f"const {name}_GRAD: [f64; {grad.numel()}] = [{vals}];")


def case(name, rows, d, inst, lab, m, rule, tau, reduction="out", grad=True):
    z = z_input(rows, d).requires_grad_(True)
    pos, valid = masks(inst, lab, m, rule)
    loss = generic_loss(z[:m], z, pos, valid, tau, reduction)
    loss.backward()
    emit(name, loss, z.grad if grad else None)


# NT-Xent, 3 images x 2 views, tau = 0.5.
inst, lab = view_major([0, 1, 2], 2)
case("NTXENT", 6, 4, inst, inst, 6, "instance", 0.5)
# SupCon, one view, labels [0, 1, 0, 2, 1]: row 3 has no positive (contributes 0, counts).
case("SUPCON_EMPTY", 5, 4, list(range(5)), [0, 1, 0, 2, 1], 5, "label", 0.1)
# SupCon two views, labels [0, 1, 0, 2], L_in.
inst, lab = view_major([0, 1, 0, 2], 2)
case("SUPCON_LIN", 8, 3, inst, lab, 8, "label", 0.2, reduction="in")
# FIRM concat golden labels [1, 2, 2, -1, -1], two views, tau = 0.2.
inst, lab = view_major([1, 2, 2, -1, -1], 2)
case("FIRM_CONCAT", 10, 4, inst, lab, 10, "inlier", 0.2, grad=False)
# SupCon contrast_mode='one': anchors are the 4 view-0 rows of 4 images x 2 views.
inst, lab = view_major([0, 1, 1, 3], 2)
case("SUPCON_ONE", 8, 5, inst, lab, 4, "label", 0.3)
# FIRM pairwise NT-Xent: q = rows 0..3, k = rows 4..7 (no self pair), positive on the diagonal.
z = z_input(8, 4).requires_grad_(True)
q, k = z[:4], z[4:]
eye = torch.eye(4, dtype=torch.bool)
loss = generic_loss(q, k, eye, torch.ones(4, 4, dtype=torch.bool), 0.2)
loss.backward()
emit("PAIRWISE", loss, z.grad)
