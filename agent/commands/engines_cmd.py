"""`verity engines`: model packs and inference engines.

  verity engines list                 shipped packs, their versions and inputs
  verity engines build [--pack NAME]  build the TensorRT FP16 engine ahead of time (GPU hosts;
                                      a Jetson takes minutes to tens of minutes per model)
  verity engines check-fp16           FP32 vs FP16 agreement, measured on this CPU
  verity engines check-portraits      false alarms on real portrait photos that ship in installed
                                      packages (never in training), per-crop packs
"""

from __future__ import annotations

import argparse

from agent.commands.common import CommandError, add_config_args, config_from_args, setup_logging


def register(subparsers) -> None:
    parser = subparsers.add_parser("engines", help="model packs and TensorRT engines")
    sub = parser.add_subparsers(dest="engines_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="list the shipped model packs")
    listing.set_defaults(handler=list_command)
    build = sub.add_parser("build", help="build TensorRT engines ahead of time (needs a GPU)")
    build.add_argument("--pack", action="append", help="pack name or folder (default: configured models)")
    build.add_argument("--max-batch", type=int, help="largest batch (default models.max_batch)")
    build.add_argument("--precision", choices=["fp16", "fp32"], default="fp16")
    build.add_argument("--force", action="store_true", help="rebuild even if a cached engine loads")
    add_config_args(build)
    build.set_defaults(handler=build_command)
    check = sub.add_parser("check-fp16", help="compare FP32 and FP16 outputs of a pack on this CPU")
    check.add_argument("--pack", help="pack name or folder (default: the configured spatial model)")
    check.add_argument("--samples", type=int, default=64, help="face crops to compare")
    add_config_args(check)
    check.set_defaults(handler=check_command)
    portraits = sub.add_parser(
        "check-portraits", help="score real portrait photos (false alarms) with a per-crop pack")
    portraits.add_argument(
        "--pack", action="append",
        help="pack name or folder (default: the configured spatial, stills and deep models)")
    add_config_args(portraits)
    portraits.set_defaults(handler=portraits_command)


def list_command(args: argparse.Namespace) -> int:
    from engines.registry import PACKS_DIR, PackError, resolve_pack

    for folder in sorted(p for p in PACKS_DIR.iterdir() if p.is_dir()):
        try:
            pack = resolve_pack(folder)
        except PackError as exc:
            print(f"{folder.name}: unusable: {exc}")
            continue
        spec = pack.card.input
        print(f"{pack.id}  role={pack.card.role}  input={spec.frames}x{spec.size}px  "
              f"{_threshold(pack.card)}  ({pack.onnx_path.stat().st_size / 1e6:.1f} MB)"
              f"{_backbone_state(pack.card.backbone)}")
    return 0


def _packs(args: argparse.Namespace):
    from engines.registry import PackError, resolve_pack

    config = config_from_args(args)
    names = args.pack or [config.models.spatial] + ([config.models.temporal] if config.models.temporal else [])
    try:
        return config, [resolve_pack(name) for name in names]
    except PackError as exc:
        raise CommandError(str(exc)) from None


def build_command(args: argparse.Namespace) -> int:
    setup_logging(args.log_level or "INFO")
    from engines.runtime import EngineUnavailable
    from engines.runtime.tensorrt import EngineBuildError, build_engine

    config, packs = _packs(args)
    for pack in packs:
        try:
            path = build_engine(
                pack, config.models.engine_cache_dir, args.max_batch or config.models.max_batch,
                args.precision, force=args.force,
            )
        except EngineUnavailable as exc:
            raise CommandError(f"cannot build a TensorRT engine here: {exc}", code=1) from None
        except EngineBuildError as exc:
            raise CommandError(f"{pack.id}: {exc}", code=1) from None
        print(f"{pack.id}: {path}")
    return 0


def check_command(args: argparse.Namespace) -> int:
    setup_logging(args.log_level or "WARNING")
    try:
        import onnxconverter_common  # noqa: F401 - makes the FP16 copy of the model
    except ImportError:
        raise CommandError(
            "the FP16 check needs onnxconverter-common, which is not installed: install the "
            "`train` extra (deploy/setup.sh --train, or pip install -e '.[train]'), or "
            "pip install onnxconverter-common"
        ) from None
    from agent.demo.crops import sample_face_crops
    from engines.runtime.precision import check_fp16

    args.pack = [args.pack] if args.pack else None
    _config, packs = _packs(args)
    worst = 0
    for pack in packs:
        if pack.card.input.frames != 1:
            print(f"{pack.id}: skipped (sequence model; check it with a GPU engine)")
            continue
        crops = sample_face_crops(pack.card.input.align, args.samples)
        report = check_fp16(pack, crops)
        print(report.summary())
        worst = max(worst, report.flips)
    return 1 if worst else 0


def portraits_command(args: argparse.Namespace) -> int:
    """Exit 1 when a real portrait's face reaches the threshold the agent would judge it at."""
    setup_logging(args.log_level or "WARNING")
    from engines.backbone import BackboneError, runnable_onnx
    from engines.portraits import real_portraits
    from engines.registry import PackError, resolve_pack
    from engines.runtime.sessions import cpu_session, session_logits

    config = config_from_args(args)
    stills = [config.models.stills] if config.models.stills else []
    deep = [config.models.deep] if config.models.deep else []
    names = args.pack or [config.models.spatial] + stills + deep
    try:
        packs = [resolve_pack(name) for name in names]
    except PackError as exc:
        raise CommandError(str(exc)) from None
    alarms = 0
    judges = []  # (label, logits of crops, crop, calibration, threshold)
    for pack in packs:
        if pack.card.input.frames != 1:
            print(f"{pack.id}: skipped (sequence model: photos have no window)")
            continue
        card = pack.card
        threshold = card.alert_threshold.value if card.alert_threshold else card.threshold
        try:
            session = cpu_session(runnable_onnx(pack))
        except BackboneError as exc:
            raise CommandError(f"{pack.id}: {exc}") from None
        batch = 1 if card.backbone else 64  # an INT8 backbone scales activations per call
        judges.append((pack.id, lambda crops, s=session, b=batch: session_logits(s, crops, b),
                       card.input.align, card.calibration, threshold))
    models = config.models
    if not args.pack and models.deep and models.deep_rule == "fused" and not models.stills:
        # How the agent judges a photo by default: the deep look fused with the spatial model.
        from agent.pipeline.scorer import FaceScorer

        try:
            scorer = FaceScorer(models)
        except PackError as exc:
            raise CommandError(str(exc)) from None
        judges.append((f"{scorer.deep_pack.id} fused with {scorer.spatial_pack.id} "
                       "(deep_rule fused: how the agent judges a photo)",
                       scorer.fused_still_logits, scorer.still_align_spec,
                       scorer.deep_pack.card.spatial_fusion.calibration, scorer.still_threshold))
    for label, logits, spec, calibration, threshold in judges:
        result = real_portraits(logits, spec, calibration.temperature, calibration.bias, threshold)
        if not result["faces"]:
            raise CommandError("no portrait photo found: skimage, matplotlib or insightface "
                               "must be installed", code=1)
        print(f"{label}: threshold {threshold:.4f}")
        for row in result["faces"]:
            flag = "  FALSE ALARM" if max(row["p_native"], row["p_still"]) >= threshold else ""
            print(f"  {row['image']:26} eye {row['eye_px']:5.1f} px  p {row['p_native']:.3f} "
                  f"(as a normalised still {row['p_still']:.3f}){flag}")
        print(f"  {result['above_threshold']} of {result['scored']} scores at or above the "
              "threshold")
        alarms += result["above_threshold"]
    return 1 if alarms else 0


def _backbone_state(spec) -> str:
    """For a pack on an installed backbone: which, and whether it is usable here."""
    if spec is None:
        return ""
    from engines.backbone import BackboneError, locate

    try:
        locate(spec)
    except BackboneError as exc:
        return f"\n  backbone {spec.package} {spec.version}: UNUSABLE: {exc}"
    return f"\n  backbone {spec.package} {spec.version} ({spec.name}): installed, sha256 verified"


def _threshold(card) -> str:
    """The threshold the agent alerts at: the calibrated stream-level one when the card has it."""
    if card.alert_threshold is not None:
        return (f"alert_threshold={card.alert_threshold.value:.3f} "
                f"(<= {card.alert_threshold.target_alerts_per_hour:g} false alerts/h)")
    return f"threshold={card.threshold:.3f}"
