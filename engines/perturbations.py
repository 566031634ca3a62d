"""Perturbations for robustness evaluation (and, later, training augmentation). No torch.

Two scopes:

- frame types change one decoded BGR picture: `apply(image, type, level, seed=...)`; for a
  stream, `frame_transform(type, level, seed)` gives a per-frame callable whose randomness
  (noise, blocks) is drawn from (seed, frame number), so a run is reproducible;
- file types change how a video is encoded, so they act on the file before decoding:
  `reencode(src, dst, type, level)` writes a new H.264 file with PyAV's libx264.

Levels run 1..5 in increasing severity. The seven DeeperForensics-1.0 types keep that
benchmark's published level values where it has them (saturation, contrast, block count,
noise variance, blur kernel, CRF); the others are Verity's own and measure what video calls
do to a picture. `TYPES` is the registry; `describe_types()` prints it as a markdown table.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

LEVELS = (1, 2, 3, 4, 5)
Scope = Literal["frame", "file"]


@dataclass(frozen=True)
class PerturbationType:
    name: str
    scope: Scope
    parameter: str
    """What the per-level values mean."""
    values: tuple[float, ...]
    """One value per level, 1..5."""
    origin: str
    description: str

    def value(self, level: int) -> float:
        check(self.name, level)
        return self.values[level - 1]


TYPES: dict[str, PerturbationType] = {
    t.name: t
    for t in (
        PerturbationType(
            "saturation", "frame", "chroma scale", (0.4, 0.3, 0.2, 0.1, 0.0), "DeeperForensics-1.0",
            "Colour saturation: Cr/Cb distances from neutral grey multiplied by the value "
            "(0: greyscale).",
        ),
        PerturbationType(
            "contrast", "frame", "contrast scale", (0.85, 0.725, 0.6, 0.475, 0.35),
            "DeeperForensics-1.0",
            "Colour contrast: every pixel's distance from the frame's mean grey level "
            "multiplied by the value.",
        ),
        PerturbationType(
            "block", "frame", "blocks", (16, 32, 48, 64, 80), "DeeperForensics-1.0",
            "Local block-wise distortion: this many square blocks (side 1/24 of the shorter "
            "frame side) of one random grey level each, at random places, redrawn every frame.",
        ),
        PerturbationType(
            "noise", "frame", "variance", (0.001, 0.002, 0.005, 0.01, 0.05), "DeeperForensics-1.0",
            "Gaussian colour noise, independent per pixel and channel; variance on a 0..1 "
            "intensity scale (sigma 8, 11, 18, 26, 57 grey levels).",
        ),
        PerturbationType(
            "blur", "frame", "kernel px", (7, 9, 13, 17, 21), "DeeperForensics-1.0",
            "Gaussian blur with this square kernel; sigma from the kernel size "
            "(OpenCV: 0.3 * ((k - 1) / 2 - 1) + 0.8).",
        ),
        PerturbationType(
            "jpeg", "frame", "quality", (75, 50, 30, 20, 10), "Verity (DeeperForensics-like)",
            "JPEG encode and decode at this quality (libjpeg via OpenCV, 4:2:0). "
            "DeeperForensics' own 'JPEG' level is a down-and-up resample; see `resolution`.",
        ),
        PerturbationType(
            "video", "file", "CRF", (30, 32, 35, 38, 40), "DeeperForensics-1.0",
            "Video compression: the file re-encoded as H.264 (PyAV libx264, preset veryfast, "
            "no B-frames) at this constant rate factor, then decoded by the agent. A still "
            "becomes one intra-coded frame at the same CRF.",
        ),
        PerturbationType(
            "fps", "file", "frames/s", (24, 15, 10, 5, 2), "Verity",
            "Frame-rate change: the file re-encoded keeping the first frame of every 1/fps "
            "slot (H.264 CRF 18, timestamps on the new rate's grid), so the agent sees a "
            "lower-rate stream with correct times. Stills are left unchanged.",
        ),
        PerturbationType(
            "resolution", "frame", "downscale factor", (1.5, 2, 3, 4, 6), "Verity",
            "Resolution change: the frame downscaled by the factor (area interpolation) and "
            "kept small, as a lower simulcast layer reaches the agent (faces get smaller; the "
            "quality gate may refuse them).",
        ),
        PerturbationType(
            "overlay_text", "frame", "text height / frame height",
            (0.03, 0.045, 0.06, 0.08, 0.10), "Verity",
            "Burned-in captions at this text height: a name tag on a dark box (all levels), a "
            "clock from level 2, a full-width lower-third bar from level 3, a subtitle line "
            "ending at 60% of the frame height (over the chin of a centred face) from level 4, "
            "two lines (reaching the mouth) at level 5. Text is shrunk where it would not fit "
            "90% of the frame width. Frame size kept.",
        ),
        PerturbationType(
            "border", "frame", "bar / frame side", (0.05, 0.10, 0.15, 0.20, 0.25), "Verity",
            "Letterbox and pillarbox: the picture shrunk by (1 - 2 x value), aspect kept, "
            "centred on black bars of that share of each side. Frame size kept.",
        ),
        PerturbationType(
            "pip", "frame", "inset width / frame width", (0.5, 0.4, 0.3, 0.25, 0.2), "Verity",
            "Screen share with the speaker as picture-in-picture: the camera frame shrunk to "
            "this share of the width, framed, in the bottom-right corner of a synthetic "
            "shared slide (text lines, a chart) of the original size.",
        ),
    )
}

DEEPERFORENSICS = ("saturation", "contrast", "block", "noise", "blur", "jpeg", "video")


def check(type_name: str, level: int) -> PerturbationType:
    """The registry entry, or ValueError naming what is valid."""
    if type_name not in TYPES:
        raise ValueError(
            f"unknown perturbation type {type_name!r}; known: {', '.join(TYPES)}"
        )
    if not isinstance(level, (int, np.integer)) or level not in LEVELS:
        raise ValueError(
            f"perturbation {type_name}: level {level!r} is not one of "
            f"{', '.join(map(str, LEVELS))}"
        )
    return TYPES[type_name]


def parse_spec(spec: str) -> tuple[str, int]:
    """'blur:3' -> ('blur', 3); ValueError with a usable message otherwise."""
    name, sep, level_text = spec.strip().partition(":")
    if not sep:
        raise ValueError(f"perturbation {spec!r}: expected TYPE:LEVEL, e.g. blur:3")
    try:
        level = int(level_text)
    except ValueError:
        raise ValueError(
            f"perturbation {spec!r}: level {level_text!r} is not one of "
            f"{', '.join(map(str, LEVELS))}"
        ) from None
    check(name, level)
    return name, level


def describe_types() -> str:
    """The registry as a markdown table (what the README shows)."""
    lines = [
        "| type | scope | parameter | level 1 | 2 | 3 | 4 | 5 | origin |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in TYPES.values():
        values = " | ".join(f"{v:g}" for v in t.values)
        lines.append(f"| `{t.name}` | {t.scope} | {t.parameter} | {values} | {t.origin} |")
    lines.append("")
    lines += [f"- `{t.name}`: {t.description}" for t in TYPES.values()]
    return "\n".join(lines)


def derive_seed(*parts: int | str) -> int:
    """A stable 32-bit seed from ints and strings (file names), independent of PYTHONHASHSEED."""
    text = "\x1f".join(str(p) for p in parts)
    return zlib.crc32(text.encode())


# -- frame types ---------------------------------------------------------------------------


def apply(image_bgr: np.ndarray, type_name: str, level: int, *, seed: int = 0) -> np.ndarray:
    """One perturbed copy of an H x W x 3 uint8 BGR picture.

    `video` gives the picture as one H.264 intra frame at the level's CRF; `fps` has no
    meaning for a single picture and raises ValueError (see `apply_to_still`).
    """
    spec = check(type_name, level)
    value = spec.value(level)
    image = np.ascontiguousarray(image_bgr)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 image, got {image.shape} {image.dtype}")
    rng = np.random.default_rng(seed)
    if type_name == "fps":
        raise ValueError("fps is a file perturbation: use reencode() on a video")
    if type_name == "video":
        return h264_roundtrip(image, int(value))
    if type_name == "overlay_text":  # which elements appear depends on the level itself
        return _overlay_text(image, value, level)
    return _FRAME_FUNCTIONS[type_name](image, value, rng)


def apply_to_still(
    image_bgr: np.ndarray, type_name: str, level: int, *, seed: int = 0
) -> np.ndarray:
    """`apply` for a still image: fps leaves it unchanged (a still has no frame rate)."""
    check(type_name, level)
    if type_name == "fps":
        return image_bgr
    return apply(image_bgr, type_name, level, seed=seed)


def frame_transform(
    type_name: str, level: int, seed: int = 0
) -> Callable[[np.ndarray], np.ndarray]:
    """A callable for a stream of frames: frame n gets `apply(..., seed=derive_seed(seed, n))`."""
    spec = check(type_name, level)
    if spec.scope != "frame":
        raise ValueError(f"{type_name} is a file perturbation: use reencode()")
    counter = iter(range(1 << 62))

    def transform(image: np.ndarray) -> np.ndarray:
        return apply(image, type_name, level, seed=derive_seed(seed, next(counter)))

    return transform


def _saturation(image: np.ndarray, factor: float, _rng) -> np.ndarray:
    ycc = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb).astype(np.float32)
    ycc[..., 1:] = 128.0 + (ycc[..., 1:] - 128.0) * factor
    return cv2.cvtColor(np.clip(ycc + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2BGR)


def _contrast(image: np.ndarray, factor: float, _rng) -> np.ndarray:
    mean = float(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).mean())
    out = mean + (image.astype(np.float32) - mean) * factor
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _block(image: np.ndarray, count: float, rng: np.random.Generator) -> np.ndarray:
    out = image.copy()
    h, w = image.shape[:2]
    side = max(4, round(min(h, w) / 24))
    xs = rng.integers(0, max(1, w - side + 1), int(count))
    ys = rng.integers(0, max(1, h - side + 1), int(count))
    greys = rng.integers(0, 256, int(count))
    for x, y, g in zip(xs, ys, greys):
        out[y : y + side, x : x + side] = g
    return out


def _noise(image: np.ndarray, variance: float, rng: np.random.Generator) -> np.ndarray:
    sigma = float(np.sqrt(variance)) * 255.0
    noise = rng.standard_normal(image.shape, dtype=np.float32) * sigma
    return np.clip(image.astype(np.float32) + noise + 0.5, 0, 255).astype(np.uint8)


def _blur(image: np.ndarray, kernel: float, _rng) -> np.ndarray:
    k = int(kernel)
    return cv2.GaussianBlur(image, (k, k), 0)


def jpeg_roundtrip(image: np.ndarray, quality: float) -> np.ndarray:
    """The image as a JPEG of `quality` would show it (encode, decode)."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def _jpeg(image: np.ndarray, quality: float, _rng) -> np.ndarray:
    return jpeg_roundtrip(image, quality)


def _resolution(image: np.ndarray, factor: float, _rng) -> np.ndarray:
    h, w = image.shape[:2]
    size = (max(2, round(w / factor)), max(2, round(h / factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


_CAPTION_FONT = cv2.FONT_HERSHEY_DUPLEX


def _text_metrics(text: str, height_px: float) -> tuple[float, int, int, int, int]:
    """(scale, thickness, width, cap height, baseline) of `text` drawn about height_px tall."""
    scale = height_px / 22.0  # Hershey duplex capitals are ~22 px tall at scale 1
    thickness = max(1, round(scale * 1.5))
    (tw, th), base = cv2.getTextSize(text, _CAPTION_FONT, scale, thickness)
    return scale, thickness, tw, th, base


def _fitted(text: str, height_px: float, max_width: float) -> float:
    """height_px, reduced so the text fits max_width (captions never run off the frame)."""
    width = _text_metrics(text, height_px)[2]
    return height_px if width <= max_width else height_px * max_width / width


def _put_text_box(
    out: np.ndarray, text: str, org: tuple[int, int], height_px: float, *, alpha: float = 0.6,
    box_width: int | None = None,
) -> None:
    """White text with its baseline-left corner at org, on a translucent dark box."""
    scale, thickness, tw, th, base = _text_metrics(text, height_px)
    p = round(0.35 * th)
    h, w = out.shape[:2]
    x0, y0 = max(0, org[0] - p), max(0, org[1] - th - p)
    x1 = min(w, org[0] + (box_width if box_width is not None else tw + p))
    y1 = min(h, org[1] + base + p)
    if x1 > x0 and y1 > y0:
        region = out[y0:y1, x0:x1]
        region[:] = (region.astype(np.float32) * (1 - alpha) + 20 * alpha).astype(np.uint8)
    cv2.putText(out, text, org, _CAPTION_FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def _overlay_text(image: np.ndarray, fraction: float, level: int) -> np.ndarray:
    out = image.copy()
    h, w = out.shape[:2]
    size = max(6.0, fraction * h)
    margin = round(0.03 * min(h, w))
    room = 0.9 * w
    # Name tag, bottom-left: what every video-call client shows.
    name = "Jordan Avery (Host)"
    _put_text_box(out, name, (margin, h - margin), _fitted(name, size, room))
    if level >= 2:  # clock, top-right
        clock = "12:34:56"
        height = _fitted(clock, 0.8 * size, room)
        tw = _text_metrics(clock, height)[2]
        _put_text_box(out, clock, (w - margin - tw, margin + round(height)), height)
    if level >= 3:  # lower-third bar across the frame, above the name tag
        bar = "LIVE  Quarterly review"
        _put_text_box(out, bar, (margin, h - margin - round(2.2 * size)),
                      _fitted(bar, 0.9 * size, room), alpha=0.75, box_width=w)
    if level >= 4:  # subtitles across the lower face of a centred speaker
        lines = ["and that is why we moved", "the launch to March"][-2 if level >= 5 else -1 :]
        height = min(_fitted(line, size, room) for line in lines)
        for i, line in enumerate(lines):  # the last line's baseline at 60% of the height
            y = round(0.60 * h - 1.6 * height * (len(lines) - 1 - i))
            _put_text_box(out, line, ((w - _text_metrics(line, height)[2]) // 2, y), height)
    return out


def _border(image: np.ndarray, fraction: float, _rng) -> np.ndarray:
    h, w = image.shape[:2]
    inner_w, inner_h = max(2, round(w * (1 - 2 * fraction))), max(2, round(h * (1 - 2 * fraction)))
    small = cv2.resize(image, (inner_w, inner_h), interpolation=cv2.INTER_AREA)
    out = np.zeros_like(image)
    y, x = (h - inner_h) // 2, (w - inner_w) // 2
    out[y : y + inner_h, x : x + inner_w] = small
    return out


def shared_screen(width: int, height: int) -> np.ndarray:
    """A synthetic shared slide: title bar, text lines, a bar chart. Deterministic."""
    out = np.full((height, width, 3), 245, np.uint8)
    bar = max(4, height // 14)
    out[:bar] = (120, 70, 40)
    u = max(1.0, min(width, height) / 480)
    cv2.putText(out, "Quarterly review", (round(12 * u), round(bar * 0.72)), _CAPTION_FONT,
                0.7 * u, (255, 255, 255), max(1, round(u)), cv2.LINE_AA)
    y = bar + round(30 * u)
    for i in range(7):  # body text as grey lines of varying length
        length = round(width * (0.35 + 0.08 * ((i * 37) % 5)))
        cv2.line(out, (round(20 * u), y), (min(width - 1, length), y), (90, 90, 90),
                 max(1, round(5 * u)))
        y += round(22 * u)
    x0, base = round(width * 0.08), height - round(20 * u)
    for i, frac in enumerate((0.2, 0.35, 0.28, 0.45)):  # a small bar chart, bottom-left
        x = x0 + i * round(34 * u)
        cv2.rectangle(out, (x, base - round(height * frac * 0.5)), (x + round(24 * u), base),
                      (60 + 40 * i, 140, 200 - 30 * i), -1)
    return out


def _pip(image: np.ndarray, fraction: float, _rng) -> np.ndarray:
    h, w = image.shape[:2]
    out = shared_screen(w, h)
    inset_w = max(8, round(w * fraction))
    inset_h = max(8, round(h * inset_w / w))
    inset = cv2.resize(image, (inset_w, inset_h), interpolation=cv2.INTER_AREA)
    margin = max(2, round(0.02 * w))
    frame = max(1, round(0.004 * w))
    x1, y1 = w - margin, h - margin
    x0, y0 = x1 - inset_w, y1 - inset_h
    out[max(0, y0 - frame) : y1 + frame, max(0, x0 - frame) : x1 + frame] = 255
    out[y0:y1, x0:x1] = inset
    return out


_FRAME_FUNCTIONS: dict[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray]] = {
    "saturation": _saturation,
    "contrast": _contrast,
    "block": _block,
    "noise": _noise,
    "blur": _blur,
    "jpeg": _jpeg,
    "resolution": _resolution,
    "border": _border,
    "pip": _pip,
}


# -- file types ----------------------------------------------------------------------------

REENCODE_PRESET = "veryfast"
FPS_CRF = 18


def _even(image: np.ndarray) -> np.ndarray:
    """libx264 with 4:2:0 needs even sides: drop a last odd row/column."""
    h, w = image.shape[:2]
    return image[: h - h % 2, : w - w % 2]


def h264_roundtrip(image_bgr: np.ndarray, crf: int, preset: str = REENCODE_PRESET) -> np.ndarray:
    """The picture as one H.264 intra frame at `crf`, decoded back (odd sides trimmed by 1)."""
    return h264_clip_roundtrip([image_bgr], crf, preset)[0]


def h264_clip_roundtrip(frames_bgr: list[np.ndarray], crf: int, preset: str = REENCODE_PRESET,
                        fps: int = 10) -> list[np.ndarray]:
    """Frames encoded as one H.264 clip at `crf` (an intra frame, then predicted ones, no
    B-frames, as the `video` perturbation and live streams), decoded back. Odd sides are
    trimmed by 1. Colour conversion is OpenCV's: FFmpeg's scaler rounds differently with the
    buffer's memory alignment, which made training draws irreproducible. One encoder thread,
    since training calls this from several worker processes."""
    import av

    frames = [np.ascontiguousarray(_even(im)) for im in frames_bgr]
    h, w = frames[0].shape[:2]
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = w, h, "yuv420p"
    encoder.time_base = Fraction(1, fps)
    encoder.framerate = Fraction(fps)
    encoder.thread_count = 1
    encoder.options = {"crf": str(crf), "preset": preset, "bf": "0"}
    packets = []
    for index, image in enumerate(frames):
        planes = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = index
        packets += encoder.encode(frame)
    packets += encoder.encode(None)
    decoder = av.CodecContext.create("h264", "r")
    decoded = []
    for packet in packets:
        decoded += decoder.decode(packet)
    decoded += decoder.decode(None)
    if len(decoded) != len(frames):
        raise RuntimeError(f"H.264 round trip gave {len(decoded)} of {len(frames)} frames")
    return [cv2.cvtColor(f.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2BGR_I420) for f in decoded]


def reencode(
    src: str | Path,
    dst: str | Path,
    type_name: str,
    level: int,
    *,
    max_seconds: float | None = None,
    preset: str = REENCODE_PRESET,
) -> Path:
    """Re-encode a video for a file perturbation (`video` or `fps`) into an H.264 MP4.

    `max_seconds` keeps only the start (the evaluation's per-video cap), which also bounds
    the cost. Audio is dropped. Returns dst.
    """
    import av

    spec = check(type_name, level)
    if spec.scope != "file":
        raise ValueError(f"{type_name} is a frame perturbation: use apply() or frame_transform()")
    value = spec.value(level)
    src, dst = Path(src), Path(dst)
    with av.open(str(src)) as source:
        if not source.streams.video:
            raise ValueError(f"{src}: no video stream")
        video = source.streams.video[0]
        nominal = video.average_rate or video.guessed_rate or Fraction(25)
        if type_name == "fps":
            rate, crf = Fraction(value).limit_denominator(1001), FPS_CRF
        else:
            rate, crf = Fraction(nominal).limit_denominator(1001), int(value)
        with av.open(str(dst), "w") as out:
            stream = out.add_stream("libx264", rate=rate)
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": preset, "bf": "0"}
            time_base = 1 / rate
            stream.time_base = time_base
            start: float | None = None
            last_slot = -1
            opened = False
            for index, frame in enumerate(source.decode(video)):
                t = float(frame.time) if frame.time is not None else index / float(nominal)
                start = t if start is None else start
                t -= start
                if max_seconds is not None and t >= max_seconds:
                    break
                if type_name == "fps":
                    # Slot on the new rate's grid: keep the first frame to reach each slot.
                    slot = int(np.floor(t * float(rate) + 1e-6))
                    if slot <= last_slot:
                        continue
                else:  # every frame, on the source's own grid
                    slot = max(last_slot + 1, round(t * float(rate)))
                last_slot = slot
                image = _even(frame.to_ndarray(format="bgr24"))
                if not opened:
                    stream.height, stream.width = image.shape[:2]
                    opened = True
                picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
                picture.pts = slot
                picture.time_base = time_base
                out.mux(stream.encode(picture))
            if not opened:
                raise ValueError(f"{src}: no frame decoded")
            out.mux(stream.encode(None))
    return dst
