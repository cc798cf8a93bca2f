"""``python -m mmsk plugins``: the table of encoders and fusions."""

from __future__ import annotations

import argparse
from typing import Any

from mmsk.plugins._registry import PluginInfo, autoload_disabled, list_plugins

COLUMNS = ("name", "group", "distribution", "version", "kinds", "status")


def add_parser(commands: Any) -> None:
    """Register the ``plugins`` sub-command."""
    p = commands.add_parser(
        "plugins",
        help="list encoder and fusion plugins",
        description=(
            "List the encoders and fusions that installed packages declare through the "
            "'mmsk.encoders' and 'mmsk.fusions' entry points, mmsk's built-ins included. "
            "Listing imports nothing; --check imports each one and reports failures."
        ),
    )
    p.add_argument("--group", choices=("encoder", "fusion"), help="one group only")
    p.add_argument("--check", action="store_true", help="import each plugin to find failures")
    p.set_defaults(run=run)


def _row(info: PluginInfo) -> list[str]:
    kinds = ",".join(info.kinds) if info.kinds else "-"
    return [info.name, info.group, info.distribution, info.version or "-", kinds, info.status]


def format_table(infos: list[PluginInfo]) -> str:
    """Plain-text table of plugins, with their errors underneath."""
    rows = [list(COLUMNS), *[_row(i) for i in infos]]
    widths = [max(len(r[c]) for r in rows) for c in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    problems = [f"  {i.group} {i.name!r}: {i.error}" for i in infos if i.error]
    if problems:
        lines += ["", "problems:", *problems]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the table; exit status 1 when ``--check`` found a broken plugin."""
    infos = list_plugins(args.group, check=args.check)
    print(format_table(infos))
    if autoload_disabled():
        print("\n(MMSK_DISABLE_PLUGIN_AUTOLOAD is set: only mmsk's built-ins are listed)")
    return 1 if args.check and any(i.status in ("error", "conflict") for i in infos) else 0
