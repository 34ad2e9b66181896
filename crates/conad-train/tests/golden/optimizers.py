# Golden values for tests/optim_golden.rs: /usr/bin/python3 tests/golden/optimizers.py (torch 1.13).
# LARS is torchlars (kakaobrain) by its formula: weight decay hidden from the wrapped SGD,
# grad <- (grad + wd*p) * trust*|p|/(|g| + wd*|p| + eps), then SGD momentum.
import torch
torch.set_printoptions(precision=10)
def init():
    p1 = torch.nn.Parameter(torch.tensor([[0.5, -1.0, 0.25], [2.0, 0.0, -0.75]]))
    p2 = torch.nn.Parameter(torch.tensor([0.1, -0.2, 0.3]))
    return p1, p2
def grads(t):
    # step t gradient: a fixed smooth pattern that changes sign across steps
    g1 = torch.tensor([[0.3, -0.1, 0.2], [-0.4, 0.5, 0.05]]) * (1.0 + 0.5 * t) * (-1.0) ** t
    g2 = torch.tensor([0.01, -0.02, 0.5]) * (t + 1)
    return g1, g2
LRS = [0.1, 0.05, 0.2, 0.1]
def run(make, lars=None):
    p1, p2 = init()
    opt = make([p1, p2])
    for t, lr in enumerate(LRS):
        for g in opt.param_groups: g['lr'] = lr
        g1, g2 = grads(t)
        p1.grad, p2.grad = g1.clone(), g2.clone()
        if lars is not None:
            trust, eps = lars
            wd = opt.param_groups[0]['weight_decay']
            for p in (p1, p2):
                pn, gn = p.detach().norm(), p.grad.norm()
                a = trust * pn / (gn + wd * pn + eps) if (pn > 0 and gn > 0) else torch.tensor(1.0)
                p.grad.add_(p.detach(), alpha=wd).mul_(a)
            for g in opt.param_groups: g['weight_decay'] = 0.0
            opt.step()
            for g in opt.param_groups: g['weight_decay'] = wd
        else:
            opt.step()
    st = [opt.state[p] for p in (p1, p2)]
    print([x.detach().flatten().tolist() for x in (p1, p2)])
    print({k: [s[k].flatten().tolist() if torch.is_tensor(s[k]) else s[k] for s in st] for k in st[0]})
print("sgd_nesterov_wd"); run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2))
print("sgd_plain_momentum"); run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=5e-4))
print("adamw"); run(lambda ps: torch.optim.AdamW(ps, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2))
print("adam_l2"); run(lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2))
print("lars"); run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-2), lars=(0.001, 1e-8))
