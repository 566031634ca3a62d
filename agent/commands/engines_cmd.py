"""`verity engines`: list model packs, build TensorRT engines ahead of time, check FP16."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser("engines", help="model packs and inference engines")
    parser.set_defaults(handler=lambda args: 0)
