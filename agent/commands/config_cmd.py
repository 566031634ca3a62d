"""`verity config show`: the configuration in effect (file + environment + flags)."""

from __future__ import annotations

import argparse
import json

from agent.commands.common import add_config_args, config_from_args
from agent.config import VerityConfig, config_as_yaml


def register(subparsers) -> None:
    parser = subparsers.add_parser("config", help="show or check the configuration")
    sub = parser.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = sub.add_parser("show", help="print the configuration in effect as YAML")
    show.add_argument("--source", action="append", metavar="URL", help="add a stream")
    show.add_argument("--schema", action="store_true", help="print the JSON schema instead")
    add_config_args(show)
    show.set_defaults(handler=show_command)


def show_command(args: argparse.Namespace) -> int:
    if args.schema:
        print(json.dumps(VerityConfig.model_json_schema(), indent=2))
        return 0
    print(config_as_yaml(config_from_args(args)), end="")
    return 0
