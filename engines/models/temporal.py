"""A small (2+1)D CNN over a window of aligned face crops, looking for temporal inconsistency.

Input (after `TemporalPreprocess`): float N x T x 3 x H x W, normalised RGB. The network:

1. a per-frame 2D stem with shared weights (two 3x3 convs, stride 4 overall) -> features F_t
   (frames are batched as N*T, so every spatial op is a plain 2D convolution);
2. the frame-to-frame feature difference D_t = F_t - F_{t-1} (D_0 = 0) concatenated to F_t,
   so blending-boundary flicker and colour drift between frames are explicit;
3. (2+1)D residual blocks: a 3x3 spatial conv (stride 2) then a 3-tap temporal conv, each with
   BN and ReLU, twice (stride 8, then 16);
4. spatial average pooling, a 3-tap temporal conv over the T feature vectors, then the mean,
   max and standard deviation over time -> dropout -> one logit.

A training-only head predicts each frame's blending-boundary map (4 M (1 - M), Face X-ray
style) from the stride-8 features; it is not exported. The exported graph
(`WindowClassifier`) takes uint8 N x T x H x W x 3 BGR, casts to float first (TensorRT
accepts a uint8 input only when it feeds a Cast), normalises, reorders and returns (N,) logits.
"""

from __future__ import annotations

import torch
from torch import nn

from engines.models.cnn import MEAN_RGB, STD_RGB


class TemporalConv(nn.Module):
    """A `taps`-tap convolution over time on per-frame feature maps (N*T, C, h, w).

    Frames are batched as N*T (every 2D op then runs as a plain Conv2d, which ONNX Runtime's
    CPU kernels are tuned for: a Conv3d version of the same network measured ~3x slower)."""

    def __init__(self, cin: int, cout: int, frames: int, taps: int = 3) -> None:
        super().__init__()
        self.frames = frames
        self.conv = nn.Conv2d(cin, cout, (taps, 1), 1, (taps // 2, 0), bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, c, h, w = x.shape
        y = x.reshape(-1, self.frames, c, h * w).transpose(1, 2)  # N, C, T, h*w
        y = self.conv(y)
        return y.transpose(1, 2).reshape(-1, y.shape[1], h, w)


class Block2p1D(nn.Module):
    """Residual (2+1)D block: spatial 3x3 (stride s) + temporal 3-tap, BN, ReLU."""

    def __init__(self, cin: int, cout: int, frames: int, stride: int = 2) -> None:
        super().__init__()
        self.spatial = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.temporal = TemporalConv(cout, cout, frames)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn1(self.spatial(x)))
        y = self.bn2(self.temporal(y))
        return self.act(y + self.skip(x))


class TemporalNet(nn.Module):
    """Input: float N x T x 3 x H x W (normalised RGB); output (N,) logits."""

    def __init__(
        self,
        widths: tuple[int, ...] = (16, 24, 48, 96),
        frames: int = 8,
        use_diff: bool = True,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ValueError("widths: 4 numbers (stem 1, stem 2, block 1, block 2)")
        w0, w1, w2, w3 = widths
        self.frames = frames
        self.use_diff = use_diff
        self.stem = nn.Sequential(
            nn.Conv2d(3, w0, 3, 2, 1, bias=False), nn.BatchNorm2d(w0), nn.ReLU(inplace=True),
            nn.Conv2d(w0, w1, 3, 2, 1, bias=False), nn.BatchNorm2d(w1), nn.ReLU(inplace=True),
        )
        c = 2 * w1 if use_diff else w1
        self.block1 = Block2p1D(c, w2, frames, 2)
        self.block2 = Block2p1D(w2, w3, frames, 2)
        self.time_conv = nn.Sequential(nn.Conv1d(w3, w3, 3, 1, 1, bias=False),
                                       nn.BatchNorm1d(w3), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(3 * w3, 1)
        self.aux_head = nn.Conv2d(w2, 1, 1)  # training only: boundary map per frame
        self._init()

    def _init(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv1d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, Block2p1D):
                nn.init.zeros_(m.bn2.weight)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.frames
        f = self.stem(x.reshape(-1, x.shape[2], x.shape[3], x.shape[4]))  # N*T, C, h, w
        if self.use_diff:
            _, c, h, w = f.shape
            f5 = f.reshape(-1, t, c, h, w)
            d = torch.cat([torch.zeros_like(f5[:, :1]), f5[:, 1:] - f5[:, :-1]], 1)
            f = torch.cat([f, d.reshape(-1, c, h, w)], 1)
        mid = self.block1(f)
        return mid, self.block2(mid)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        v = x.mean(dim=(2, 3))  # N*T, C
        v = v.reshape(-1, self.frames, v.shape[1]).transpose(1, 2)  # N, C, T
        v = self.time_conv(v)
        mean = v.mean(2)
        peak = v.amax(2)
        std = torch.sqrt(((v - mean.unsqueeze(2)) ** 2).mean(2) + 1e-6)
        return self.head(self.dropout(torch.cat([mean, peak, std], 1))).squeeze(1)

    def forward_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (N,), boundary-map logits (N*T, 1, h, w) at stride 8)."""
        mid, out = self._features(x)
        return self._head(out), self.aux_head(mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._head(self._features(x)[1])


def build_temporal_model(config: dict, frames: int) -> TemporalNet:
    """From a config's `model` section."""
    arch = config.get("arch", "temporal_2p1d")
    if arch != "temporal_2p1d":
        raise ValueError(f"unknown temporal model arch {arch!r}")
    return TemporalNet(
        widths=tuple(config.get("widths", (16, 24, 48, 96))),
        frames=frames,
        use_diff=bool(config.get("use_diff", True)),
        dropout=float(config.get("dropout", 0.2)),
    )


class TemporalPreprocess(nn.Module):
    """uint8 N x T x H x W x 3 BGR -> normalised float N x T x 3 x H x W RGB.

    The cast to float is the first operation on the input (TensorRT's uint8 rule)."""

    def __init__(self, mean_rgb=MEAN_RGB, std_rgb=STD_RGB) -> None:
        super().__init__()
        mean_bgr = torch.tensor(mean_rgb[::-1], dtype=torch.float32) * 255.0
        std_bgr = torch.tensor(std_rgb[::-1], dtype=torch.float32) * 255.0
        self.register_buffer("mean", mean_bgr.view(1, 1, 1, 1, 3), persistent=False)
        self.register_buffer("inv_std", (1.0 / std_bgr).view(1, 1, 1, 1, 3), persistent=False)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = (crops.to(torch.float32) - self.mean) * self.inv_std  # N, T, H, W, 3 (BGR)
        x = x.flip(-1)  # BGR -> RGB
        return x.permute(0, 1, 4, 2, 3).contiguous()


class WindowClassifier(nn.Module):
    """Preprocess + network: uint8 N x T x H x W x 3 BGR windows -> (N,) logits (exported).

    flip_average: the logit is the mean over the window and its mirror image, both in one
    batch. A face's evidence does not depend on its handedness; averaging the two views
    cancels part of the network's view-specific noise, for a second network pass per window.
    """

    def __init__(self, net: nn.Module, flip_average: bool = False) -> None:
        super().__init__()
        self.preprocess = TemporalPreprocess()
        self.net = net
        self.flip_average = flip_average

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(crops)
        if not self.flip_average:
            return self.net(x)
        n = x.shape[0]
        both = self.net(torch.cat([x, torch.flip(x, dims=[-1])], dim=0))
        return (both[:n] + both[n:]) * 0.5


def count_temporal_macs(model: nn.Module, frames: int, size: int) -> int:
    """Multiply-accumulates of one window's forward pass (convs and linear layers)."""
    macs = 0

    def hook(module, inputs, output):
        nonlocal macs
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            k = int(torch.tensor(module.kernel_size).prod()) * module.in_channels // module.groups
            macs += output.numel() * k  # batch of one window
        elif isinstance(module, nn.Linear):
            macs += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, frames, 3, size, size))
    model.train(was_training)
    for h in handles:
        h.remove()
    return macs


class TemporalEnsemble(nn.Module):
    """Networks of one recipe (different seeds) as one: the mean of their logits."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)
