"""Experiment: do a generator decoder's upsampling traces, simulated on real faces, teach the deep
head generated faces it never saw?

GAN and diffusion decoders upsample with learned (transposed) convolutions, which leave
periodic traces in the spectrum; a detector trained on real images passed through such an
upsampler, with no generator's output, has caught unseen GANs (Zhang, Karaman and Chang 2019,
"AutoGAN"). Here, label-free and honest for every fold:

1. a small autoencoder (two stride-2 convolutions down, two stride-2 transposed convolutions
   up) learns to reconstruct real face crops of the real-only training groups (no file any
   fold measures; 96 px patches of the deep crops, L1);
2. every real crop passed through it is one more pseudo-fake family, `upsampled` (in the real
   file's group, so it leaves training with it, and never measured), beside the self-blends;
3. the deep trainer's leave-one-family-out heads with and without it (`--stills-only`: only
   the real stills' copies).

    python -m engines.train.upsampler_probe --data DIR --steps 2000

Measured (2026-12-05, 2 cores; autoencoder 2000 steps of 16 patches, 16 min, 41.6 dB PSNR on
training crops; features of 196 real files' copies, 4 min; left-out file AUC on the deep
trainer's crops, head / fused with the spatial model):
- without (the shipped recipe): face swap 0.892 / 0.911, lip sync 0.923 / 0.934, talking head
  0.786 / 0.849, synthesis 0.939 / 0.946, GAN 0.789 / 0.802, diffusion 0.992 / 0.999 (mean
  0.887 / 0.907); 6 of 54 fake videos beyond every one of 123 real videos;
- with every real crop's copy: 0.887 / 0.907, 0.874 / 0.896, 0.794 / 0.869, 0.913 / 0.920,
  0.849 / 0.848, 0.971 / 0.990 (mean 0.881 / 0.905); 1 of 54 beyond every real;
- real stills' copies only: 0.852 / 0.864, 0.835 / 0.863, 0.746 / 0.825, 0.987 / 0.990,
  0.821 / 0.827, 0.953 / 0.966 (mean 0.866 / 0.889); 15 of 54.
GAN stills gain 0.03-0.06 and talking heads 0.02, lip sync, synthesis and diffusion lose as
much: one more family trades like the others did (README, Models). Not taken.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engines.train import deep

log = logging.getLogger("engines.train.upsampler_probe")

UPSAMPLED = "upsampled"
PATCH = 96


class Upsampler(nn.Module):
    """Down by 4 with strided convolutions, up by 4 with transposed ones (a decoder's traces)."""

    def __init__(self, width: int = 48) -> None:
        super().__init__()
        w = width
        self.encode = nn.Sequential(
            nn.Conv2d(3, w, 3, 1, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 4 * w, 3, 1, 1), nn.LeakyReLU(0.2))
        self.decode = nn.Sequential(
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 3, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def to_tensor(crops: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(crops.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2)


def to_crops(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1).permute(0, 2, 3, 1).numpy() + 1.0) * 127.5).round().astype(np.uint8)


def autoencoder_entries(entries, val_real: set[str]):
    """Real files of real-only training groups: no fold measures any of them."""
    fake_groups = {e.group for e in entries if e.is_fake}
    return [e for e in entries
            if not e.is_fake and e.group not in fake_groups and e.group not in val_real]


def train_upsampler(crops: np.ndarray, steps: int, seed: int = 0) -> tuple[Upsampler, float]:
    """The autoencoder fitted to random patches of the crops; (net, PSNR dB on 8 whole crops)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = Upsampler()
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    started = time.time()
    size = crops.shape[1]
    for step in range(steps):
        rows = rng.integers(0, len(crops), 16)
        y, x = rng.integers(0, size - PATCH, 2)
        batch = to_tensor(crops[rows, y:y + PATCH, x:x + PATCH])
        loss = F.l1_loss(net(batch), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == int(steps * 0.7):  # the last 30% at a quarter of the rate
            for group in opt.param_groups:
                group["lr"] = 5e-4
        if step % 200 == 0:
            log.info("upsampler step %d/%d: L1 %.4f (%.0f s)", step, steps, loss.item(),
                     time.time() - started)
    net.eval()
    with torch.no_grad():
        whole = to_tensor(crops[:8])
        psnr = float(10 * torch.log10(4.0 / F.mse_loss(net(whole).clamp(-1, 1), whole)))
    return net, psnr


def upsampled(net: Upsampler, crops: np.ndarray) -> np.ndarray:
    if not len(crops):
        return crops
    with torch.no_grad():
        return np.concatenate([to_crops(net(to_tensor(crops[i:i + 8])))
                               for i in range(0, len(crops), 8)])


def upsampled_files(files: list[deep.FileFeatures], features: dict[str, np.ndarray]
                    ) -> list[deep.FileFeatures]:
    """Each real file's upsampled copy as a pseudo-fake of family `upsampled`, in the real
    file's group (it leaves training with its file)."""
    out = []
    for f in files:
        x = features.get(f.entry.rel)
        if f.fold == "real" and not f.augmented and x is not None and len(x):
            fake = replace(f.entry, label="fake", method=f"{UPSAMPLED}:autoencoder")
            out.append(deep.FileFeatures(fake, UPSAMPLED, x))
    return out


def main(argv: list[str] | None = None) -> int:
    from engines.data.cache import build_cache, load_cached
    from engines.train.deep_features import FeatureExtractor, backbone_spec, cache_spec

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    deep.add_data_arguments(parser)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--stills-only", action="store_true",
                        help="add only the real stills' copies")
    args = deep.parse_data_arguments(parser, argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    data = deep.training_data(args.data, args.config, args.cache)
    cfg, entries, val_real, layout = data.cfg, data.entries, data.val_real, data.layout
    crops = build_cache(entries, cache_spec(cfg.as_cache_dict()), args.cache, workers=1)

    pool = [load_cached(crops[e.rel])["crops"] for e in autoencoder_entries(entries, val_real)
            if e.rel in crops]
    pool = np.concatenate([c[:: max(1, len(c) // 4)] for c in pool if len(c)])
    log.info("upsampler: %d crops of real-only training groups", len(pool))
    net, psnr = train_upsampler(pool, args.steps, cfg.seed)
    log.info("upsampler: %.1f dB PSNR on training crops", psnr)

    extractor = FeatureExtractor(backbone_spec(cfg.as_cache_dict()))
    layer_names = list(cfg.backbone.layers)
    copies: dict[str, np.ndarray] = {}
    reals = [e for e in entries if not e.is_fake and e.rel in crops
             and (e.kind != "video" or not args.stills_only)]
    for n, e in enumerate(reals):
        tokens = extractor(upsampled(net, load_cached(crops[e.rel])["crops"]))
        if len(tokens["cls"]):
            copies[e.rel] = layout.select(tokens, layer_names)
        if n % 25 == 0:
            log.info("upsampled features: %d/%d files", n, len(reals))

    files = data.files
    fusion = deep.spatial_fusion_data(entries, cfg, args.cache) if cfg.spatial_fusion else None
    for name, rows in (("without", files), ("with upsampled copies", files + upsampled_files(files, copies))):
        figures, _, heads = deep.leave_one_out(rows, val_real, cfg)
        if fusion is not None:
            deep.fused_leave_one_out(rows, val_real, heads, fusion, figures)
        beyond = deep.caught_beyond_reals(rows, val_real, cfg, heads)
        cells = [f"{fold} {fig['auc']:.3f}" + (f" / {fig['fused']['auc']:.3f}" if "fused" in fig else "")
                 for fold, fig in figures.items()]
        print(f"{name}: " + ", ".join(cells) + f"; beyond every real: {beyond['caught']} of "
              f"{beyond['fakes']} ({beyond['reals']} reals)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
