"""POST /api/score: judge an uploaded image or video through the same path as `verity score`.

The body is multipart with a `file` field. It is written to a private temporary file (never
kept past the request), its first bytes must say image or video, and it is judged by a scorer
of its own (so an upload never disturbs the live streams' per-track state), one upload at a
time. The reply is `verity score --json`'s report; `?evidence=1` adds each judged face's
explanation map (JPEG, base64) under `explanations`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import BodyPartReader, web

from agent.alerts.evidence import explanation_image, occlusion_map
from agent.service import keys
from agent.service.auth import problem

log = logging.getLogger("agent.service.upload")

routes = web.RouteTableDef()

# Leading bytes -> what the file is. Anything else is refused before decoding.
_SIGNATURES: tuple[tuple[int, bytes, str, str], ...] = (
    (0, b"\xff\xd8\xff", "image", ".jpg"),
    (0, b"\x89PNG\r\n\x1a\n", "image", ".png"),
    (0, b"BM", "image", ".bmp"),
    (8, b"WEBP", "image", ".webp"),
    (4, b"ftyp", "video", ".mp4"),
    (0, b"\x1a\x45\xdf\xa3", "video", ".mkv"),
    (8, b"AVI ", "video", ".avi"),
)


def sniff(head: bytes) -> tuple[str, str] | None:
    """("image" | "video", suffix) from a file's first bytes; None when neither."""
    for offset, magic, kind, suffix in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            if magic == b"WEBP" and not head.startswith(b"RIFF"):
                continue
            return kind, suffix
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:  # MPEG-TS sync bytes
        return "video", ".ts"
    return None


class UploadJudge:
    """A detector and scorer of their own, loaded at the first upload; one upload at a time."""

    MAX_PENDING = 2
    """Uploads accepted at once (one judged, one waiting); more get 429, so a burst of large
    uploads cannot fill the disk or memory while they queue."""

    def __init__(self, config) -> None:
        self.config = config
        self.pending = 0  # touched on the event loop only
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="verity-upload")
        self._lock = threading.Lock()
        self._detector = None
        self._scorer = None

    def judge(self, path: Path, evidence: bool) -> tuple[dict, dict[int, str]]:
        from agent.pipeline import FaceScorer
        from agent.scoring.report import is_image, score_image, score_video
        from engines.faces import create_detector

        with self._lock:
            if self._scorer is None:
                self._scorer = FaceScorer(self.config.models)
                self._detector = create_detector(self.config.faces.detector)
            crops: dict = {}
            config = self.config.model_copy(update={"streams": []})
            still = is_image(path)
            if still:
                report = score_image(path, config, self._detector, self._scorer, crops)
            else:
                report = score_video(path, config, self._detector, self._scorer, crops)
            explanations = {}
            if evidence:
                # Explain the model that judged: a still's crop is the stills (or deep) model's;
                # a video's peak crop is the always-on model's. The deep model costs tens of ms
                # per call, so its map is coarser.
                logits = self._scorer.still_logits if still else self._scorer.spatial_logits
                grid = 4 if still and self._scorer.still_role == "deep" else 6
                for track_id, (_p, crop) in crops.items():
                    heat = occlusion_map(crop, logits, grid=grid)
                    jpeg = explanation_image(crop, heat)
                    explanations[track_id] = base64.b64encode(jpeg).decode()
        return report.model_dump(mode="json"), explanations

    async def run(self, path: Path, evidence: bool):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.judge, path, evidence)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _judge(app: web.Application) -> UploadJudge:
    return app[keys.UPLOAD_JUDGE]


@routes.post("/api/score")
async def score_upload(request: web.Request) -> web.Response:
    if not request.content_type.startswith("multipart/"):
        return problem(400, "send the file as multipart/form-data in a field named `file`")
    judge = _judge(request.app)
    if judge.pending >= judge.MAX_PENDING:
        return problem(429, "busy judging other uploads: try again shortly", **{"Retry-After": "5"})
    judge.pending += 1
    try:
        return await _score_upload(request, judge)
    finally:
        judge.pending -= 1


async def _score_upload(request: web.Request, judge: UploadJudge) -> web.Response:
    limit = int(request.app[keys.CONFIG].max_upload_mb * 1024 * 1024)
    reader = await request.multipart()
    part = await reader.next()
    while part is not None and (not isinstance(part, BodyPartReader) or part.name != "file"):
        part = await reader.next()
    if part is None:
        return problem(400, "no `file` field in the form")
    name = Path(part.filename or "upload").name
    folder = tempfile.mkdtemp(prefix="verity-upload-")  # 0700: nobody else reads uploads
    path = None
    try:
        raw = Path(folder) / "upload.part"
        size = 0
        with open(raw, "wb") as handle:  # noqa: ASYNC230 - a private temp file, 1 MB writes
            while chunk := await part.read_chunk(1 << 20):
                size += len(chunk)
                if size > limit:
                    return problem(413, f"the file is larger than service.max_upload_mb "
                                        f"({request.app[keys.CONFIG].max_upload_mb:g} MB)")
                handle.write(chunk)
        if size == 0:
            return problem(400, f"{name}: the file is empty")
        with open(raw, "rb") as handle:  # noqa: ASYNC230 - 256 bytes
            what = sniff(handle.read(256))
        if what is None:
            return problem(415, f"{name}: not an image (JPEG, PNG, BMP, WebP) or a video "
                                "(MP4/MOV, MKV/WebM, AVI, MPEG-TS)")
        path = raw.rename(raw.with_suffix(what[1]))
        evidence = request.query.get("evidence") in ("1", "true", "yes")
        try:
            report, explanations = await judge.run(path, evidence)
        except ValueError as exc:
            cause = str(exc).replace(str(path), name).replace(f"{name}: {name}: ", f"{name}: ")
            return problem(422, cause if cause.startswith(name) else f"{name}: {cause}")
        report["path"] = name
        if evidence:
            report["explanations"] = {str(k): v for k, v in explanations.items()}
        return web.json_response(report)
    finally:
        for leftover in Path(folder).iterdir():
            leftover.unlink(missing_ok=True)
        os.rmdir(folder)


async def close(app: web.Application) -> None:
    judge = app.get(keys.UPLOAD_JUDGE)
    if judge is not None:
        judge.close()
