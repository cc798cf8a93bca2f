"""Command line: ``python -m mmsk demo`` and ``python -m mmsk plugins``."""

from __future__ import annotations

import argparse
import sys

# Plain text for --help (the module docstring is reST for the API docs).
DESCRIPTION = (
    "mmsk: multimodal deep learning, the scikit-learn way. "
    "Run 'python -m mmsk COMMAND --help' for a command's options."
)


def main(argv: list[str] | None = None) -> int:
    """Run the ``mmsk`` command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="mmsk", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(
        dest="command", required=True, title="commands", metavar="COMMAND"
    )
    from mmsk import _demo
    from mmsk.plugins import _cli

    _demo.add_parser(commands)
    _cli.add_parser(commands)
    args = parser.parse_args(argv)
    return int(args.run(args) or 0)


def _version() -> str:
    from mmsk import __version__

    return f"mmsk {__version__}"


if __name__ == "__main__":
    sys.exit(main())
