"""One epoch of a small U-Net on pre/post Sentinel-2 + Sentinel-1 chips of a stac-mmtp release, on CPU.

A smoke test of the whole path (index -> chips -> DataLoader -> model -> loss), not a claim of
accuracy: the sample release is synthetic and tiny.

    python examples/train_segmentation.py build/catalog --chips 64 --size 128 --workers 2
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from stac_mmtp.access.ml import ChipDataset
from stac_mmtp.dataset.annotations import CLASSES, IGNORE


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """Two-level U-Net: enough to exercise shapes, gradients and the ignore index."""

    def __init__(self, cin: int, classes: int, width: int = 16):
        super().__init__()
        self.down1, self.down2 = block(cin, width), block(width, 2 * width)
        self.bottom = block(2 * width, 4 * width)
        self.up2, self.dec2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2), block(4 * width, 2 * width)
        self.up1, self.dec1 = nn.ConvTranspose2d(2 * width, width, 2, stride=2), block(2 * width, width)
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.down1(x)
        d2 = self.down2(nn.functional.max_pool2d(d1, 2))
        b = self.bottom(nn.functional.max_pool2d(d2, 2))
        u2 = self.dec2(torch.cat([self.up2(b), d2], 1))
        u1 = self.dec1(torch.cat([self.up1(u2), d1], 1))
        return self.head(u1)


def stack(batch: dict) -> torch.Tensor:
    """[B, T, C, H, W] per modality -> [B, T*C summed over modalities, H, W]; nodata (NaN) -> 0."""
    parts = [img.flatten(1, 2) for img in batch["image"].values()]
    return torch.nan_to_num(torch.cat(parts, 1), nan=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("release", help="build directory, catalog.json or URL of a release")
    ap.add_argument("--chips", type=int, default=64, help="chips per epoch")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--split", default=None, help="train / validate / test (default: every split)")
    args = ap.parse_args()

    torch.manual_seed(0)
    ds = ChipDataset(args.release, modalities=("sentinel-2", "sentinel-1"), size=args.size, split=args.split,
                     length=args.chips, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, num_workers=args.workers, shuffle=True)
    channels = sum(len(s) * len(ds.bands[m]) for m, s in ds.scenes[0].items.items())
    model = UNet(channels, classes=max(CLASSES.values()) + 1)
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE)
    start, total, n = time.perf_counter(), 0.0, 0
    model.train()
    for batch in loader:
        logits = model(stack(batch))
        loss = loss_fn(logits, batch["mask"].long())
        optim.zero_grad()
        loss.backward()
        optim.step()
        total, n = total + loss.item(), n + 1
    print(f"epoch 1: {n} batches of {args.batch_size} chips ({args.size} px, {channels} channels), "
          f"mean loss {total / max(n, 1):.4f}, {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
