"""Experiment: does tuning the LayerNorms of CLIP's last four blocks lift left-out families?

The issue's remaining lever for the deep model, measured on the CPU (no GPU lent):

1. tokens: the residual stream entering block 9 (all 197 tokens) of every cached crop and
   every self-blend crop (the trainer's seeds), from the INT8 backbone, cached per file;
2. blocks 9-12 rebuilt in torch from the INT8 graph (weights de-quantized to FP32; their class
   tokens agree with the INT8 graph's at cosine 0.995-0.9996);
3. per fold, with `verity train deep`'s split and training rows: the shipped recipe's head
   (sklearn MLP) on the FP32 blocks' features, copied into torch, then its LayerNorms and head
   tuned together (weighted BCE + the head's L2, `--crops` crops per file per epoch); the
   left-out fold's file AUC as the trainer measures it, after each epoch.

    python -m engines.train.deep_ln_probe --data DIR --folds talking_head,face_swap --epochs 2 --lr 3e-4

Measured (2026-12-05, 2 cores, ~10 min of tokens and frozen features, then ~7.5 min per
epoch per fold), shipped recipe (INT8) / same head on FP32 features / after epochs 1 and 2:
talking head 0.786 / 0.806 / 0.821 / 0.833; face swap 0.892 / 0.882 / 0.889 / 0.891; lip
sync 0.923 / 0.890 / 0.923 / 0.929; talking-head synthesis 0.939 / 0.929 / 0.939 / 0.920;
GAN stills 0.789 / 0.613 / 0.693 / 0.663; diffusion 0.992 / 0.991 / 0.997 / 0.997. Tuning
recovers what the FP32 rebuild loses and little more (GAN stills lose 0.13): not taken
(README, deep section).
Needs torch (the `train` extra).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from engines import metrics
from engines.backbone import feature_graph, locate
from engines.data.cache import build_cache, load_cached
from engines.runtime.sessions import cpu_session
from engines.train import deep
from engines.train.deep_features import cache_spec

log = logging.getLogger(__name__)
FIRST = 8  # 0-based index of the first tuned block (block 9)
BLOCKS = 4


def token_files(entries, cfg, cache: Path) -> tuple[dict, dict]:
    spec = cache_spec(cfg.as_cache_dict())
    crops = build_cache(entries, spec, cache, workers=1)
    out_real, out_sbi = cache / "ln-probe" / "tokens", cache / "ln-probe" / "tokens-sbi"
    out_real.mkdir(parents=True, exist_ok=True)
    out_sbi.mkdir(parents=True, exist_ok=True)
    session = None
    from engines.synthesis.sbi import SBIParams, self_blend

    def run(batch: np.ndarray) -> np.ndarray:
        nonlocal session
        if session is None:
            g = feature_graph(cfg.backbone, locate(cfg.backbone), ["layer8"])
            session = cpu_session(g.SerializeToString(), 2)
        return np.concatenate([session.run(["layer8"], {"crops": batch[i:i + 1]})[0]
                               for i in range(len(batch))]).astype(np.float16) if len(batch) else \
            np.zeros((0, 197, 768), np.float16)

    real, sbi = {}, {}
    t = time.time()
    for n, e in enumerate(entries):
        if e.rel not in crops:
            continue
        c = load_cached(crops[e.rel])
        target = out_real / f"{e.key}.npy"
        if not target.is_file():
            np.save(target, run(np.ascontiguousarray(c["crops"])))
        real[e.rel] = target
        if not e.is_fake and cfg.self_blends:
            target = out_sbi / f"{e.key}.npy"
            if not target.is_file():
                rng = np.random.default_rng([cfg.seed, int(hashlib.sha1(e.rel.encode()).hexdigest()[:8], 16)])
                blends = [self_blend(crop, mesh, SBIParams.sample(rng), rng)[0]
                          for crop, mesh in zip(c["crops"], c["mesh"]) if np.isfinite(mesh).all()]
                np.save(target, run(np.stack(blends)) if blends else np.zeros((0, 197, 768), np.float16))
            sbi[e.rel] = target
        if n % 100 == 0:
            log.info("tokens %d/%d %.0f s", n, len(entries), time.time() - t)
    return real, sbi


class Block(nn.Module):
    def __init__(self, w: dict[str, np.ndarray]):
        super().__init__()
        t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
        self.ln1 = nn.LayerNorm(768, eps=1e-5)
        self.ln2 = nn.LayerNorm(768, eps=1e-5)
        for ln, k in ((self.ln1, "layer_norm1"), (self.ln2, "layer_norm2")):
            ln.weight.data = t(w[f"{k}.weight"])
            ln.bias.data = t(w[f"{k}.bias"])
        self.mats = {k: t(w[k]) for k in ("q", "k", "v", "o", "fc1", "fc2")}
        self.bias = {k: t(w[f"{k}.bias"]) for k in ("q", "k", "v", "o", "fc1", "fc2")}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, b = self.mats, self.bias
        B, T, D = x.shape
        y = self.ln1(x)
        q = (y @ m["q"] + b["q"]).view(B, T, 12, 64).transpose(1, 2)
        k = (y @ m["k"] + b["k"]).view(B, T, 12, 64).transpose(1, 2)
        v = (y @ m["v"] + b["v"]).view(B, T, 12, 64).transpose(1, 2)
        a = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        x = x + (a.transpose(1, 2).reshape(B, T, D) @ m["o"] + b["o"])
        h = self.ln2(x) @ m["fc1"] + b["fc1"]
        h = h * torch.sigmoid(1.702 * h)
        return x + (h @ m["fc2"] + b["fc2"])


def load_blocks(path: Path) -> nn.ModuleList:
    model = onnx.load(str(path))
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    proj = {"self_attn/q_proj": "q", "self_attn/k_proj": "k", "self_attn/v_proj": "v",
            "self_attn/out_proj": "o", "mlp/fc1": "fc1", "mlp/fc2": "fc2"}
    blocks = []
    for i in range(FIRST, FIRST + BLOCKS):
        w: dict[str, np.ndarray] = {}
        for node in model.graph.node:
            if node.op_type != "MatMulInteger" or f"/layers.{i}/" not in node.name:
                continue
            key = next(v for k, v in proj.items() if f"/{k}/" in node.name)
            base = node.input[1][: -len("_quantized")]
            q = init[node.input[1]].astype(np.float32)
            zp = init[node.input[3]].astype(np.float32)
            w[key] = (q - zp) * init[base + "_scale"]
        for k, v in proj.items():
            w[f"{v}.bias"] = init[f"vision_model.encoder.layers.{i}.{k.replace('/', '.')}.bias"]
        for ln in ("layer_norm1", "layer_norm2"):
            for p in ("weight", "bias"):
                w[f"{ln}.{p}"] = init[f"vision_model.encoder.layers.{i}.{ln}.{p}"]
        blocks.append(Block(w))
    return nn.ModuleList(blocks)


class Model(nn.Module):
    def __init__(self, blocks: nn.ModuleList, mean: np.ndarray, std: np.ndarray, hidden: int = 64):
        super().__init__()
        self.blocks = blocks
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.head = nn.Sequential(nn.Linear(768 * BLOCKS, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        cls = []
        x = tokens
        for blk in self.blocks:
            x = blk(x)
            cls.append(x[:, 0])
        return torch.cat(cls, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head((self.features(tokens) - self.mean) / self.std).squeeze(1)


def load_tokens(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.load(path).astype(np.float32))


@torch.no_grad()
def frozen_features(model: Model, files, where, batch=32) -> list[np.ndarray]:
    out = []
    for f in files:
        tok = load_tokens(where(f))
        out.append(torch.cat([model.features(tok[i:i + batch]) for i in range(0, len(tok), batch)]).numpy()
                   if len(tok) else np.zeros((0, 768 * BLOCKS), np.float32))
    return out


def fold_auc(model: Model, test, where, feats=None) -> float:
    model.eval()
    scores = []
    with torch.no_grad():
        for n, f in enumerate(test):
            if feats is not None:
                z = (torch.tensor(feats[n]) - model.mean) / model.std
                logit = model.head(z).squeeze(1)
            else:
                logit = torch.cat([model(t) for t in load_tokens(where(f)).split(32)])
            scores.append(float(logit.mean()))
    return metrics.auc([f.y for f in test], scores)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    deep.add_data_arguments(ap)
    ap.add_argument("--folds", default="talking_head")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--crops", type=int, default=8, help="crops per file per epoch")
    ap.add_argument("--tune", default="ln", help="ln | ln+bias")
    ap.add_argument("--out", type=Path, help="write each fold's tuned weights here")
    args = deep.parse_data_arguments(ap, argv)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    data = deep.training_data(args.data, args.config, args.cache)
    cfg, entries, paths, files, val_real = data.cfg, data.entries, data.paths, data.files, data.val_real
    tok_real, tok_sbi = token_files(entries, cfg, args.cache)

    def where(f: deep.FileFeatures) -> Path:
        """The file's cached tokens (a self-blend row shares its real file's rel)."""
        return tok_sbi[f.entry.rel] if f.fold == deep.SELF_BLEND else tok_real[f.entry.rel]

    blocks_path = locate(cfg.backbone)

    # sanity: FP32 torch blocks vs the INT8 graph's cached class tokens
    probe_model = Model(load_blocks(blocks_path), np.zeros(3072), np.ones(3072))
    f0 = next(f for f in files if f.fold == "real" and len(np.load(where(f))) > 1)
    mine = frozen_features(probe_model, [f0], where)[0].reshape(-1, BLOCKS, 768)
    theirs = np.load(paths[f0.entry.rel])["cls"][:, FIRST:FIRST + BLOCKS].astype(np.float32)
    cos = (mine * theirs).sum(-1) / np.linalg.norm(mine, axis=-1) / np.linalg.norm(theirs, axis=-1)
    log.info("FP32 blocks vs INT8 class tokens: cosine per block %s", np.round(cos.mean(0), 4))

    frozen_path = args.cache / "ln-probe" / "frozen.npz"
    if frozen_path.is_file():
        with np.load(frozen_path, allow_pickle=True) as z:
            frozen = z["frozen"].item()
    else:
        t = time.time()
        feats = frozen_features(probe_model, files, where)
        frozen = {(f.fold == deep.SELF_BLEND, f.entry.rel): x for f, x in zip(files, feats)}
        np.savez(frozen_path, frozen=np.array(frozen, dtype=object))
        log.info("FP32 frozen features of %d files (%.0f s)", len(files), time.time() - t)

    for fold in args.folds.split(","):
        _, train, test = deep.fold_sets(files, fold, val_real)
        # reference: the shipped recipe (sklearn head, INT8 features)
        head = deep.fit_head(train, cfg.head, cfg.seed)
        ref = metrics.auc([f.y for f in test], [deep.file_score(head.logits(f.x)) for f in test])
        log.info("fold %s: %d train files, %d test; shipped recipe AUC %.3f", fold, len(train), len(test), ref)

        model = Model(load_blocks(blocks_path), np.zeros(3072), np.ones(3072))
        fp32 = [dataclasses.replace(f, x=frozen[(f.fold == deep.SELF_BLEND, f.entry.rel)]) for f in train]
        fp32_test = [dataclasses.replace(f, x=frozen[(False, f.entry.rel)]) for f in test]
        head = deep.fit_head(fp32, cfg.head, cfg.seed)
        base = metrics.auc([f.y for f in fp32_test], [deep.file_score(head.logits(f.x)) for f in fp32_test])
        log.info("fold %s: shipped recipe on FP32 blocks' features AUC %.3f", fold, base)
        model.mean.copy_(torch.tensor(head.mean, dtype=torch.float32))
        model.std.copy_(torch.tensor(head.std, dtype=torch.float32))
        (w1, b1), (w2, b2) = head.layers
        model.head[0].weight.data = torch.tensor(w1.T, dtype=torch.float32)
        model.head[0].bias.data = torch.tensor(b1, dtype=torch.float32)
        model.head[2].weight.data = torch.tensor(w2.T, dtype=torch.float32)
        model.head[2].bias.data = torch.tensor(b2, dtype=torch.float32)
        check = fold_auc(model, fp32_test, where, [f.x for f in fp32_test])
        log.info("fold %s: torch copy of that head AUC %.3f", fold, check)
        n_rows = sum(len(f.x) for f in train)
        l2 = cfg.head.alpha / (2 * n_rows)

        for blk in model.blocks:
            for name, p in blk.named_parameters():
                p.requires_grad = name.startswith("ln")
        params = [p for p in model.blocks.parameters() if p.requires_grad]
        if args.tune == "ln+bias":
            for blk in model.blocks:
                for k in blk.bias:
                    blk.bias[k] = nn.Parameter(blk.bias[k])
                    params.append(blk.bias[k])
        opt = torch.optim.AdamW([{"params": params, "lr": args.lr, "weight_decay": 0.0},
                                 {"params": model.head.parameters(), "lr": 1e-4, "weight_decay": 0.0}])
        weights = deep.row_weights(train)
        offsets = np.cumsum([0] + [len(f.x) for f in train])
        rng = np.random.default_rng(0)
        for epoch in range(args.epochs):
            model.train()
            t = time.time()
            picks = []  # (file index, crop index, weight)
            for i, f in enumerate(train):
                n = len(f.x)
                for c in rng.choice(n, size=min(n, args.crops), replace=False):
                    picks.append((i, c, weights[offsets[i] + c] * n / min(n, args.crops)))
            order = rng.permutation(len(picks))
            total = 0.0
            for s in range(0, len(order), 16):
                chunk = [picks[j] for j in order[s:s + 16]]
                toks = []
                for i, c, _ in chunk:
                    toks.append(np.load(where(train[i]), mmap_mode="r")[c])
                x = torch.from_numpy(np.stack(toks).astype(np.float32))
                y = torch.tensor([train[i].y for i, _, _ in chunk], dtype=torch.float32)
                w = torch.tensor([wt for _, _, wt in chunk], dtype=torch.float32)
                loss = (nn.functional.binary_cross_entropy_with_logits(model(x), y, reduction="none") * w).mean()
                loss = loss + l2 * (model.head[0].weight.pow(2).sum() + model.head[2].weight.pow(2).sum())
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(chunk)
                if s % 800 == 0:
                    log.info("  epoch %d: %d/%d crops, loss %.4f (%.0f s)", epoch, s, len(order), total / max(s + len(chunk), 1), time.time() - t)
            auc = fold_auc(model, test, where)
            log.info("fold %s: epoch %d tuned AUC %.3f (frozen %.3f, shipped recipe %.3f; %.0f s)",
                     fold, epoch, auc, base, ref, time.time() - t)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), args.out / f"tuned-{fold}.pt")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
