# Golden values for tests/schedule_golden.rs: /usr/bin/python3 tests/golden/schedules.py (torch 1.13).
import torch, warnings
warnings.filterwarnings("ignore")
def run(make, steps, mom=False):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    s = make(opt)
    out = []
    for _ in range(steps):
        g = opt.param_groups[0]
        out.append((g['lr'], g['momentum']) if mom else g['lr'])
        opt.step(); s.step()
    return out
print("cosine", run(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001), 10))
oc = run(lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.01, total_steps=200, pct_start=0.05), 200, mom=True)
print("onecycle", [(i, oc[i][0], oc[i][1]) for i in (0, 3, 9, 10, 57, 104, 150, 199)])
def seq(o):
    a = torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=4)
    b = torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8, eta_min=0.0)
    return torch.optim.lr_scheduler.SequentialLR(o, [a, b], milestones=[4])
print("warmcos", run(seq, 12))
