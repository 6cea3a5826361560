"""A pbt trial: train a small PyTorch MLP on scikit-learn's digits for a few epochs, resuming
from the checkpoint in --checkpoint when one is there and leaving its own there at the end.

Run by examples/pbt-digits.yaml as
`python examples/programs/pbt_digits.py --lr=<lr> --weight-decay=<wd> --checkpoint=<dir>`.
pbt gives each trial its own directory, prepared as a copy of its parent trial's, so a
trial continues the weights (and momentum buffers) its parent left, under new
hyperparameters. The checkpoint also lists the trials that trained it (`lineage`, from
KATIB_TRIAL_NAME), which makes the inheritance visible. Prints `Validation-accuracy`
after every epoch in the metric line format the StdOut collector reads.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import torch
from torch import nn

from kubenas.metrics import format_metrics, now_rfc3339
from trainer.data import batches, load_dataset

CHECKPOINT_FILE = "training.pt"


def positive(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive number")
    return value


def model(input_size: int, classes: int, hidden: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(input_size, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    with torch.no_grad():
        return float((net(x).argmax(dim=1) == y).float().mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=positive, required=True, help="SGD learning rate")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="SGD weight decay")
    parser.add_argument("--checkpoint", required=True, help="directory to resume from and save to")
    parser.add_argument("--epochs", type=int, default=2, help="epochs this trial trains (>= 1)")
    parser.add_argument("--hidden", type=int, default=32, help="hidden units")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first weights and the batch order")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs: {args.epochs} — must be >= 1")
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    data = load_dataset("digits")
    c, h, w = data.input_shape
    net = model(c * h * w, data.num_classes, args.hidden)
    optimizer = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    path = Path(args.checkpoint) / CHECKPOINT_FILE
    done, lineage = 0, []
    if path.exists():
        saved = torch.load(path, weights_only=True)
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        for group in optimizer.param_groups:  # the new hyperparameters replace the parent's
            group["lr"], group["weight_decay"] = args.lr, args.weight_decay
        done, lineage = int(saved["epochs"]), list(saved["lineage"])
        print(f"resumed from {path}: {done} epochs by {', '.join(lineage) or 'unnamed trials'}")
    generator = torch.Generator().manual_seed(args.seed + done)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(done + 1, done + args.epochs + 1):
        net.train()
        for x, y in batches(data.train, 64, shuffle=True, generator=generator):
            optimizer.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            optimizer.step()
        valid = accuracy(net, data.valid.x, data.valid.y)
        print(f"epoch {epoch}")
        print(format_metrics({"Validation-accuracy": valid, "Train-loss": float(loss.detach())}, now_rfc3339()), flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    lineage.append(os.environ.get("KATIB_TRIAL_NAME", ""))
    tmp = path.with_suffix(".tmp")
    torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "epochs": done + args.epochs,
                "lineage": lineage}, tmp)
    os.replace(tmp, path)  # a trial killed while saving leaves its parent's copy whole
    return 0


if __name__ == "__main__":
    sys.exit(main())
