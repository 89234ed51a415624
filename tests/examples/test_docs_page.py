"""docs/frameworks.md shows every example file itself, and agrees with the examples' headers.

The page holds a copy of each file, after a comment naming it, so that it shows the code read as
plain Markdown (on GitHub, in an editor) as well as built; these tests keep the copies equal.
"""

from __future__ import annotations

import html
import re

import pytest

from .conftest import EXAMPLE_NAMES, EXAMPLES, MOUNT_NAMES, ROOT, example_file, header_line

PAGE = ROOT / "docs" / "frameworks.md"
COPY = re.compile(r"^<!-- (examples/\S+) -->\n```py\n(.*?)\n```$", re.MULTILINE | re.DOTALL)
TABLE_ROW = re.compile(r"^\| [^|]+ \| `examples/(\w+)(?:\.py|/)` \| `([^`]+)` \|$", re.MULTILINE)


def test_examples_are_the_ones_the_tests_know() -> None:
    modules = {p.stem for p in EXAMPLES.glob("*.py")}
    packages = {p.parent.name for p in EXAMPLES.glob("*/__init__.py")}

    assert modules | packages == {*EXAMPLE_NAMES, *MOUNT_NAMES}


def test_page_shows_every_example_file_once() -> None:
    shown = [name for name, _ in COPY.findall(PAGE.read_text())]

    assert sorted(shown) == sorted(p.relative_to(ROOT).as_posix() for p in EXAMPLES.rglob("*.py"))
    assert len(set(shown)) == len(shown)


@pytest.mark.parametrize(
    "name", sorted(p.relative_to(ROOT).as_posix() for p in EXAMPLES.rglob("*.py"))
)
def test_each_copy_on_the_page_is_the_file(name: str) -> None:
    copies = dict(COPY.findall(PAGE.read_text()))

    assert copies[name] == (ROOT / name).read_text().rstrip("\n"), (
        f"docs/frameworks.md shows an old copy of {name}: paste the file into the page again"
    )


def test_the_page_shows_the_code_as_plain_markdown() -> None:
    markdown = pytest.importorskip("markdown")
    text = PAGE.read_text()
    assert "--8<--" not in text  # no include that only the docs build would resolve

    page = markdown.markdown(text, extensions=["fenced_code"])

    blocks = re.findall(r'<code class="language-py">(.*?)</code>', page, re.DOTALL)
    rendered = [html.unescape(block).rstrip("\n") for block in blocks]
    assert rendered == [(ROOT / name).read_text().rstrip("\n") for name, _ in COPY.findall(text)]


def test_run_commands_on_the_page_are_the_headers() -> None:
    rows = dict(TABLE_ROW.findall(PAGE.read_text()))

    assert sorted(rows) == sorted([*EXAMPLE_NAMES, *MOUNT_NAMES])
    for name, command in rows.items():
        assert command == header_line(example_file(name), "Run")


@pytest.mark.parametrize("name", [*EXAMPLE_NAMES, *MOUNT_NAMES])
def test_every_example_names_its_extra(name: str) -> None:
    assert header_line(example_file(name), "Install").startswith(
        'pip install "updater-stats[frameworks'
    )
