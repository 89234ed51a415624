"""The code blocks of the README and the docs pages, for tests that run or compare them."""

from __future__ import annotations

import re
from pathlib import Path

#: The repository's root folder.
ROOT = Path(__file__).parent.parent
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(page: Path, language: str) -> list[str]:
    """The page's code blocks in *language*, padded so that line numbers match the page."""
    text = page.read_text()
    return [
        "\n" * text.count("\n", 0, match.start(2)) + match.group(2)
        for match in FENCE.finditer(text)
        if match.group(1) == language
    ]
