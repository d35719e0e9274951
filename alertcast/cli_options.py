"""Command-line options several ``alertcast`` commands share, so they read and mean the same.

``--config`` names the configuration file everywhere; ``--actor`` names who
does an audited action, and :func:`actor_of` gives the audit trail's name for
it: the one given, or ``cli:`` and the login name.
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path


def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--config``; return ``p`` so calls can be nested."""
    p.add_argument("--config", type=Path, help="alertcast.toml (default: ./alertcast.toml)")
    return p


def with_actor(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--actor``; return ``p`` so calls can be nested."""
    p.add_argument("--actor", help="who does this, for the audit trail (default: login name)")
    return p


def actor_of(args: argparse.Namespace) -> str:
    """The audit trail's actor: ``--actor`` when given, else ``cli:`` and the login name."""
    given = (getattr(args, "actor", None) or "").strip()
    if given:
        return given
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli:unknown"
