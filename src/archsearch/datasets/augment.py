"""Training-time augmentation on batches of normalised image tensors (N, C, H, W), seeded by a ``torch.Generator``.

* ``crop_flip``: random crop with zero padding (4 pixels at 32x32, scaled with the image size) and a random
  horizontal flip: the standard CIFAR augmentation (He et al., CVPR 2016). The images are normalised, so the padding
  is the mean colour rather than black;
* ``flip`` / ``crop``: one of the two;
* ``none``: nothing (digits: a flipped 2 is no longer a 2);
* cutout (DeVries & Taylor, 2017): one ``length`` x ``length`` square per image set to zero (the mean), its centre
  anywhere in the image, clipped at the border, as in the DARTS training code.

All of it runs on the tensors' device, vectorised over the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("none", "crop_flip", "crop", "flip")


def crop_padding(height: int) -> int:
    """4 pixels at 32x32 (CIFAR), 1 at 8x8."""
    return max(1, round(height / 8))


def random_crop(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    n, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return xp[batch, chans, rows, cols]


def random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flip = (torch.rand(x.shape[0], generator=gen) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def cutout(x: torch.Tensor, length: int, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=gen).to(x.device)
    cx = torch.randint(0, w, (n,), generator=gen).to(x.device)
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    in_y = (ys >= (cy[:, None] - length // 2)) & (ys < (cy[:, None] + length - length // 2))
    in_x = (xs >= (cx[:, None] - length // 2)) & (xs < (cx[:, None] + length - length // 2))
    mask = in_y[:, :, None] & in_x[:, None, :]
    return x.masked_fill(mask[:, None], 0.0)


def augment_batch(x: torch.Tensor, kind: str, gen: torch.Generator, cutout_length: int = 0) -> torch.Tensor:
    """Apply the named augmentation (and cutout when ``cutout_length`` > 0) to one training batch."""
    if kind not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {kind!r}; choose from: {', '.join(AUGMENTATIONS)}")
    if kind in ("crop_flip", "crop"):
        x = random_crop(x, crop_padding(x.shape[2]), gen)
    if kind in ("crop_flip", "flip"):
        x = random_flip(x, gen)
    if cutout_length > 0:
        x = cutout(x, cutout_length, gen)
    return x
