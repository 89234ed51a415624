"""``python -m updater_stats`` and the ``updater-stats`` console script."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from .cli import main as cli_main  # noqa: PLC0415 - click is an optional extra.
    except ModuleNotFoundError as exc:
        if exc.name != "click":
            raise
        sys.stderr.write(
            "updater-stats: the command line needs an extra: pip install 'updater-stats[server]'\n"
        )
        sys.exit(1)
    cli_main()


if __name__ == "__main__":
    main()
