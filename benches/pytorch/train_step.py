#!/usr/bin/env python3
"""PyTorch's side of benches/compare.sh: images per second of one training step
(forward, cross-entropy, backward, optimizer, optional mask enforcement) of
ResNet-20 (CIFAR, batch 128) or LeNet-300-100 (batch 60) on the CPU (or a CUDA GPU with --device cuda), on a fixed
synthetic batch, with the same architectures and optimizer settings as the
crate (examples/train_step_throughput.rs).

Prints one line per run in the same format as the crate's example:
    RESULT impl=pytorch-2.x model=resnet20 batch=128 optimizer=sgd mask=none threads=2 ...

    python3 benches/pytorch/train_step.py --model resnet20 --threads 2 --steps 5
    python3 benches/pytorch/train_step.py --model lenet --optimizer adam --steps 200
"""

import argparse
import os
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut (1x1 conv + BN where the shape
    changes), ReLU: as src/models/resnet.rs."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + residual)


class ResNet(nn.Module):
    """CIFAR ResNet of depth 6N + 2, widths 16/32/64 (ResNet-20: N = 3)."""

    def __init__(self, depth=20, num_classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for stage, width in enumerate([16, 32, 64]):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(cin, width, stride))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = self.blocks(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


class LeNet(nn.Module):
    """LeNet-300-100 on flattened 28x28 images."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


# Trainable parameter counts of the crate's models (src/models/).
EXPECTED_PARAMS = {"resnet20": 272_474, "lenet300100": 266_610}


def magnitude_masks(model, sparsity):
    """One global-magnitude mask over every weight of rank >= 2 (conv and
    linear weights), as the crate's default ParamSelector and pruner."""
    weights = [p for p in model.parameters() if p.dim() >= 2]
    if sparsity == 0.0:
        return [(p, torch.ones_like(p)) for p in weights]
    flat = torch.cat([p.detach().abs().flatten() for p in weights])
    k = round(sparsity * flat.numel())
    threshold = flat.kthvalue(k).values if k > 0 else flat.min() - 1
    return [(p, (p.detach().abs() > threshold).float()) for p in weights]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["resnet20", "lenet"], default="resnet20")
    ap.add_argument("--optimizer", choices=["sgd", "adam"])
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--mask", default="none", help="none, or a sparsity in [0, 1)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--phases", action="store_true", help="also time each phase")
    ap.add_argument(
        "--sync-every", type=int, default=1,
        help="read the loss (loss.item(), a sync) every this many steps; each step's time is its window's over n",
    )
    ap.add_argument(
        "--device", default="cpu", help="cpu or cuda (loss.item() synchronizes every step)"
    )
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    name = "resnet20" if args.model == "resnet20" else "lenet300100"
    model = ResNet() if args.model == "resnet20" else LeNet()
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert n_params == EXPECTED_PARAMS[name], (name, n_params)
    device = torch.device(args.device)
    model.to(device).train()
    optimizer_name = args.optimizer or ("sgd" if args.model == "resnet20" else "adam")
    batch = args.batch_size or (128 if args.model == "resnet20" else 60)
    if optimizer_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1.2e-3)
    shape = (batch, 3, 32, 32) if args.model == "resnet20" else (batch, 1, 28, 28)
    n = 1
    for d in shape:
        n *= d
    images = ((torch.arange(n, dtype=torch.int64) * 7919) % 255).float().div(127.5).sub(1.0)
    images = images.reshape(shape)
    images = images.to(device)
    labels = (torch.arange(batch) % 10).to(device)
    masks = None
    if args.mask != "none":
        masks = magnitude_masks(model, float(args.mask))
        with torch.no_grad():
            for p, m in masks:
                p.mul_(m)

    every = max(1, args.sync_every)
    warmup = -(-args.warmup // every) * every
    steps = -(-args.steps // every) * every
    times, phases = [], [0.0, 0.0, 0.0, 0.0]
    cpu_start = None
    window_start = time.perf_counter()
    pending = []
    for i in range(warmup + steps):
        if i == warmup:
            cpu_start = time.process_time()
            window_start = time.perf_counter()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), labels)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if masks is not None:
            for p, m in masks:
                p.grad.mul_(m)
        opt.step()
        t3 = time.perf_counter()
        if masks is not None:
            with torch.no_grad():
                for p, m in masks:
                    p.mul_(m)
        pending.append(loss.detach())
        if (i + 1) % every == 0:
            values = torch.stack(pending).tolist()
            pending = []
            assert all(v == v for v in values), "loss is NaN"
        t4 = time.perf_counter()
        if i >= warmup:
            for j, d in enumerate([t1 - t0, t2 - t1, t3 - t2, t4 - t3]):
                phases[j] += d
            if (i + 1) % every == 0:
                times.extend([(t4 - window_start) / every] * every)
        if (i + 1) % every == 0:
            window_start = t4

    cpu_per_step = (time.process_time() - cpu_start) / steps
    median = statistics.median(times)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(
        f"RESULT impl=pytorch-{torch.__version__.split('+')[0]} model={name} batch={batch} "
        f"optimizer={optimizer_name} mask={args.mask} device={args.device} threads={torch.get_num_threads()} "
        f"steps={steps} sync_every={every} median_s={median:.6f} mean_s={statistics.mean(times):.6f} "
        f"cpu_s={cpu_per_step:.6f} "
        f"images_per_s={batch / median:.1f} peak_rss_mib={peak_mib:.1f} "
        f"load1={os.getloadavg()[0]:.2f}",
        flush=True,
    )
    if args.phases:
        ms = [1e3 * p / steps for p in phases]
        print(
            f"PHASES impl=pytorch model={name} mask={args.mask} forward_ms={ms[0]:.2f} "
            f"backward_ms={ms[1]:.2f} mask_grads_and_optimizer_ms={ms[2]:.2f} "
            f"mask_weights_ms={ms[3]:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
