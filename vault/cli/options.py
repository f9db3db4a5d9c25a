"""Options shared by the commands that read server configuration."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vault.config import Config, load_config

__all__ = ["add_config_option", "config_from_args"]


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration file (default: $CVAULT_CONFIG)")


def config_from_args(args: argparse.Namespace, **overrides: object) -> Config:
    """Load the configuration; flags given on the command line win over everything else."""
    return load_config(os.environ, getattr(args, "config", None), **overrides)
