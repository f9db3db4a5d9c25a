"""Options shared by the commands that read server configuration."""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path

from vault.config import Config, load_config

__all__ = ["add_config_option", "config_from_args", "local_actor"]


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration file (default: $CVAULT_CONFIG)")


def config_from_args(args: argparse.Namespace, **overrides: object) -> Config:
    """Load the configuration; flags given on the command line win over everything else."""
    return load_config(os.environ, getattr(args, "config", None), **overrides)


def local_actor() -> str:
    """Who runs this command, as the audit events of changes made outside the services name them (key rotations)."""
    try:
        return f"local:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name in the environment and no passwd entry (some containers)
        return "local"
