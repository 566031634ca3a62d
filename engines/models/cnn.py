"""A small residual CNN, plain torch, sized for CPU training and inference.

Stem (3x3 conv, stride `stem_stride`) then stages of residual basic blocks (two 3x3 convs, BN,
ReLU; the first block of each stage halves the resolution), global average pooling, dropout
and one linear logit. Input: float NCHW RGB, already normalised (the exported ONNX graph does
the uint8 BGR -> normalised RGB step, see engines.export).

Options (all off in the 1.0 model; see configs/train/spatial-sbi.yaml for what ships):

- `highpass`: fixed (not learned) high-frequency residuals of the input, x - GaussianBlur(x),
  concatenated to the RGB channels before the stem, so a network trained from scratch starts
  with the noise/edge signal that blending leaves instead of having to discover it.
- `decoder` (channels, 0: off): a light top-down path (FPN-like: 1x1 lateral convs, nearest
  upsampling, one 3x3 conv) from the last stage back to `map_stride` (4 or 8) that predicts the
  blending-boundary map B = 4 M (1 - M) (Face X-ray) densely. Without it the boundary map is a
  1x1 conv on stage `aux_stage` (the 1.0 design).
- `map_logit`: the crop logit also reads the predicted boundary map (a learned affine of its
  soft maximum, log-mean-exp), so the exported logit is tied to the dense evidence; the map
  head then ships inside the ONNX graph. Off: the map is a training-only target.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

# ImageNet statistics (RGB, 0..1): a conventional normalisation; the model trains from scratch.
MEAN_RGB = (0.485, 0.456, 0.406)
STD_RGB = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.act(y + self.skip(x))


class HighPass(nn.Module):
    """x -> concat(x, gain * (x - GaussianBlur(x, sigma))): a fixed depthwise convolution."""

    def __init__(self, channels: int = 3, sigma: float = 1.0, gain: float = 4.0) -> None:
        super().__init__()
        radius = max(1, int(math.ceil(2.5 * sigma)))
        t = torch.arange(-radius, radius + 1, dtype=torch.float32)
        g = torch.exp(-(t**2) / (2 * sigma**2))
        g = g / g.sum()
        kernel = -torch.outer(g, g) * gain
        kernel[radius, radius] += gain  # gain * (delta - gaussian)
        self.register_buffer("weight", kernel.expand(channels, 1, -1, -1).contiguous())
        self.channels, self.radius = channels, radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = F.conv2d(F.pad(x, [self.radius] * 4, mode="replicate"), self.weight,
                            groups=self.channels)
        return torch.cat([x, residual], 1)


class BoundaryDecoder(nn.Module):
    """Top-down path from the deepest features to stride `out_index`'s features -> 1 map."""

    def __init__(self, in_widths: list[int], channels: int) -> None:
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(w, channels, 1, bias=False) for w in in_widths)
        self.smooth = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        self.out = nn.Conv2d(channels, 1, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """feats: finest first. Returns map logits at the finest features' resolution."""
        y = self.laterals[-1](feats[-1])
        for lateral, f in zip(reversed(self.laterals[:-1]), reversed(feats[:-1])):
            y = F.interpolate(y, scale_factor=2.0, mode="nearest") + lateral(f)
        return self.out(self.smooth(y))


class VerityCNN(nn.Module):
    def __init__(
        self,
        widths: tuple[int, ...] = (24, 48, 96, 160),
        depths: tuple[int, ...] = (1, 2, 2, 1),
        stem_stride: int = 2,
        dropout: float = 0.2,
        aux_stage: int = 2,
        highpass: bool = False,
        decoder: int = 0,
        map_stride: int = 4,
        map_logit: bool = False,
        map_pool_tau: float = 1.0,
    ) -> None:
        super().__init__()
        if len(widths) != len(depths):
            raise ValueError("widths and depths must have the same length")
        stem = widths[0]
        self.highpass = HighPass(3) if highpass else None
        self.stem = nn.Sequential(
            nn.Conv2d(6 if highpass else 3, stem, 3, stem_stride, 1, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
        )
        stages: list[nn.Module] = []
        strides: list[int] = []
        stride_now = stem_stride
        cin = stem
        for i, (width, depth) in enumerate(zip(widths, depths)):
            blocks: list[nn.Module] = []
            for j in range(depth):
                stride = 2 if j == 0 and (i > 0 or stem_stride == 1) else 1
                stride_now *= stride
                blocks.append(BasicBlock(cin, width, stride))
                cin = width
            stages.append(nn.Sequential(*blocks))
            strides.append(stride_now)
        self.stages = nn.ModuleList(stages)
        self.strides = strides
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cin, 1)
        self.decoder: BoundaryDecoder | None = None
        self.map_logit = bool(map_logit)
        self.map_pool_tau = float(map_pool_tau)
        if decoder:
            if map_stride not in strides:
                raise ValueError(f"map_stride {map_stride} is not a stage stride {strides}")
            self.map_from = strides.index(map_stride)
            self.decoder = BoundaryDecoder(list(widths[self.map_from :]), int(decoder))
            self.aux_stage = self.map_from
            self.aux_head = None
        else:
            if map_logit:
                raise ValueError("map_logit needs the decoder")
            # Training-only auxiliary head (1.0 design): a per-location blending-boundary map
            # predicted from the stage `aux_stage` features. Not exported.
            self.aux_stage = min(aux_stage, len(widths) - 1) if aux_stage >= 0 else len(widths) + aux_stage
            self.aux_head = nn.Conv2d(widths[self.aux_stage], 1, 1)
        if map_logit:
            # logit = head(features) + scale * (softmax-pool(map) - offset)
            self.map_scale = nn.Parameter(torch.tensor(1.0))
            self.map_offset = nn.Parameter(torch.tensor(-3.0))
        self._init()

    def _init(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():  # zero-init the last BN of each residual branch
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)
        out = self.decoder.out if self.decoder is not None else self.aux_head
        nn.init.normal_(out.weight, std=0.01)
        nn.init.constant_(out.bias, -3.0)  # the boundary covers a few % of the crop

    def _pool_map(self, logits_map: torch.Tensor) -> torch.Tensor:
        """Soft maximum of the map logits: tau * log(mean(exp(map / tau)))."""
        tau = self.map_pool_tau
        flat = torch.flatten(logits_map, 1) / tau
        return tau * (torch.logsumexp(flat, 1) - math.log(flat.shape[1]))

    def _forward(self, x: torch.Tensor, with_map: bool):
        """(logits (N,), boundary-map logits (N, 1, h, w) or None, pooled features (N, C))."""
        if self.highpass is not None:
            x = self.highpass(x)
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        aux = None
        if with_map or self.map_logit:
            if self.decoder is not None:
                aux = self.decoder(feats[self.map_from :])
            else:
                aux = self.aux_head(feats[self.aux_stage])
        pooled = torch.flatten(self.pool(x), 1)
        logit = self.head(self.dropout(pooled)).squeeze(1)
        if self.map_logit:
            logit = logit + self.map_scale * (self._pool_map(aux.float()) - self.map_offset)
        return logit, aux, pooled

    def forward_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (N,), boundary-map logits (N, 1, h, w))."""
        logit, aux, _ = self._forward(x, True)
        return logit, aux

    def forward_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (N,), embedding (N, C)): the globally pooled last-stage features, which the
        out-of-distribution check measures (engines.ood)."""
        logit, _, pooled = self._forward(x, False)
        return logit, pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(x, False)[0]


MODEL_KEYS = ("widths", "depths", "stem_stride", "dropout", "aux_stage", "highpass", "decoder",
              "map_stride", "map_logit", "map_pool_tau")


def build_model(config: dict) -> VerityCNN:
    """From a config's `model` section."""
    arch = config.get("arch", "verity_cnn")
    if arch != "verity_cnn":
        raise ValueError(f"unknown model arch {arch!r}")
    unknown = sorted(set(config) - set(MODEL_KEYS) - {"arch"})
    if unknown:
        raise ValueError(f"model: unknown keys {unknown}")
    return VerityCNN(
        widths=tuple(config.get("widths", (24, 48, 96, 160))),
        depths=tuple(config.get("depths", (1, 2, 2, 1))),
        stem_stride=int(config.get("stem_stride", 2)),
        dropout=float(config.get("dropout", 0.2)),
        aux_stage=int(config.get("aux_stage", 2)),
        highpass=bool(config.get("highpass", False)),
        decoder=int(config.get("decoder", 0)),
        map_stride=int(config.get("map_stride", 4)),
        map_logit=bool(config.get("map_logit", False)),
        map_pool_tau=float(config.get("map_pool_tau", 1.0)),
    )


def count_macs(model: nn.Module, size: int) -> int:
    """Multiply-accumulates of one (exported) forward pass at size x size (convs and linear
    layers; a training-only head is not counted)."""
    macs = 0

    def hook(module, inputs, output):
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            macs += output.numel() // output.shape[0] * k
        elif isinstance(module, nn.Linear):
            macs += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    model.train(was_training)
    for h in handles:
        h.remove()
    return macs


class Preprocess(nn.Module):
    """uint8 NHWC BGR crops -> normalised float NCHW RGB (inside the exported graph too).

    The uint8 input is cast to float before anything else (transpose, slice): TensorRT accepts
    a uint8 network input only when it feeds a Cast directly.
    """

    def __init__(self, mean_rgb=MEAN_RGB, std_rgb=STD_RGB) -> None:
        super().__init__()
        # Channel order flipped here so the graph takes BGR: index 0 of the input is blue.
        mean_bgr = torch.tensor(mean_rgb[::-1], dtype=torch.float32) * 255.0
        std_bgr = torch.tensor(std_rgb[::-1], dtype=torch.float32) * 255.0
        self.register_buffer("mean", mean_bgr.view(1, 1, 1, 3), persistent=False)
        self.register_buffer("inv_std", (1.0 / std_bgr).view(1, 1, 1, 3), persistent=False)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = crops.float()  # first: Cast is the only op that reads the uint8 input
        x = (x - self.mean) * self.inv_std  # N, H, W, 3 (BGR)
        x = x.flip(-1)  # BGR -> RGB
        return x.permute(0, 3, 1, 2).contiguous()


class CropClassifier(nn.Module):
    """Preprocess + network: uint8 NHWC BGR crops -> (N,) logits, and with `embedding` also
    the (N, C) embedding as a second output. What gets exported."""

    def __init__(self, net: nn.Module, embedding: bool = False) -> None:
        super().__init__()
        self.preprocess = Preprocess()
        self.net = net
        self.embedding = embedding

    def forward(self, crops: torch.Tensor):
        x = self.preprocess(crops)
        if self.embedding:
            return self.net.forward_embedding(x)
        return self.net(x)
