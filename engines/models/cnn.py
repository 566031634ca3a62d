"""A small residual CNN, plain torch, sized for CPU training and inference.

Stem (3x3 conv, stride `stem_stride`) then stages of residual basic blocks (two 3x3 convs, BN,
ReLU; the first block of each stage halves the resolution), global average pooling, dropout
and one linear logit. Input: float NCHW RGB, already normalised (the exported ONNX graph does
the uint8 BGR -> normalised RGB step, see engines.export).
"""

from __future__ import annotations

import torch
from torch import nn

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


class VerityCNN(nn.Module):
    def __init__(
        self,
        widths: tuple[int, ...] = (24, 48, 96, 160),
        depths: tuple[int, ...] = (1, 2, 2, 1),
        stem_stride: int = 2,
        dropout: float = 0.2,
        aux_stage: int = 2,
    ) -> None:
        super().__init__()
        if len(widths) != len(depths):
            raise ValueError("widths and depths must have the same length")
        stem = widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem, 3, stem_stride, 1, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
        )
        stages: list[nn.Module] = []
        cin = stem
        for i, (width, depth) in enumerate(zip(widths, depths)):
            blocks: list[nn.Module] = []
            for j in range(depth):
                stride = 2 if j == 0 and (i > 0 or stem_stride == 1) else 1
                blocks.append(BasicBlock(cin, width, stride))
                cin = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cin, 1)
        # Training-only auxiliary head: a per-location blending-boundary map predicted from
        # the stage `aux_stage` features (Face X-ray style dense supervision). Not exported.
        self.aux_stage = min(aux_stage, len(widths) - 1) if aux_stage >= 0 else len(widths) + aux_stage
        self.aux_head = nn.Conv2d(widths[self.aux_stage], 1, 1)
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

    def forward_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (N,), boundary-map logits (N, 1, h, w))."""
        x = self.stem(x)
        aux = None
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i == self.aux_stage:
                aux = self.aux_head(x)
        x = self.dropout(torch.flatten(self.pool(x), 1))
        return self.head(x).squeeze(1), aux

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        x = self.dropout(torch.flatten(self.pool(x), 1))
        return self.head(x).squeeze(1)


def build_model(config: dict) -> VerityCNN:
    """From a config's `model` section."""
    arch = config.get("arch", "verity_cnn")
    if arch != "verity_cnn":
        raise ValueError(f"unknown model arch {arch!r}")
    return VerityCNN(
        widths=tuple(config.get("widths", (24, 48, 96, 160))),
        depths=tuple(config.get("depths", (1, 2, 2, 1))),
        stem_stride=int(config.get("stem_stride", 2)),
        dropout=float(config.get("dropout", 0.2)),
        aux_stage=int(config.get("aux_stage", 2)),
    )


def count_macs(model: nn.Module, size: int) -> int:
    """Multiply-accumulates of one forward pass at size x size (convs and linear layers)."""
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
    """uint8 NHWC BGR crops -> normalised float NCHW RGB (inside the exported graph too)."""

    def __init__(self, mean_rgb=MEAN_RGB, std_rgb=STD_RGB) -> None:
        super().__init__()
        # Channel order flipped here so the graph takes BGR: index 0 of the input is blue.
        mean_bgr = torch.tensor(mean_rgb[::-1], dtype=torch.float32) * 255.0
        std_bgr = torch.tensor(std_rgb[::-1], dtype=torch.float32) * 255.0
        self.register_buffer("mean", mean_bgr.view(1, 1, 1, 3), persistent=False)
        self.register_buffer("inv_std", (1.0 / std_bgr).view(1, 1, 1, 3), persistent=False)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = (crops.to(torch.float32) - self.mean) * self.inv_std  # N, H, W, 3 (BGR)
        x = x.flip(-1)  # BGR -> RGB
        return x.permute(0, 3, 1, 2).contiguous()


class CropClassifier(nn.Module):
    """Preprocess + network: uint8 NHWC BGR crops -> (N,) logits. What gets exported."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.preprocess = Preprocess()
        self.net = net

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.net(self.preprocess(crops))
