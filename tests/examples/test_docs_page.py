"""docs/frameworks.md shows every example file itself, and agrees with the examples' headers."""

from __future__ import annotations

import html
import re

import pytest

from .conftest import EXAMPLE_NAMES, EXAMPLES, MOUNT_NAMES, ROOT, example_file, header_line

PAGE = ROOT / "docs" / "frameworks.md"
SNIPPET = re.compile(r'^```py\n--8<-- "([^"]+)"\n```$', re.MULTILINE)
TABLE_ROW = re.compile(r"^\| [^|]+ \| `examples/(\w+)(?:\.py|/)` \| `([^`]+)` \|$", re.MULTILINE)


def test_examples_are_the_ones_the_tests_know() -> None:
    modules = {p.stem for p in EXAMPLES.glob("*.py")}
    packages = {p.parent.name for p in EXAMPLES.glob("*/__init__.py")}

    assert modules | packages == {*EXAMPLE_NAMES, *MOUNT_NAMES}


def test_page_includes_every_example_file_once() -> None:
    included = SNIPPET.findall(PAGE.read_text())

    assert sorted(included) == sorted(
        p.relative_to(ROOT).as_posix() for p in EXAMPLES.rglob("*.py")
    )
    assert len(set(included)) == len(included)


def test_included_files_render_as_they_are() -> None:
    markdown = pytest.importorskip("markdown")
    pytest.importorskip("pymdownx.snippets")
    text = PAGE.read_text()

    page = markdown.markdown(
        text,
        extensions=["fenced_code", "pymdownx.snippets"],
        extension_configs={"pymdownx.snippets": {"base_path": [str(ROOT)], "check_paths": True}},
    )

    blocks = re.findall(r'<code class="language-py">(.*?)</code>', page, re.DOTALL)
    rendered = [html.unescape(block).rstrip("\n") for block in blocks]
    assert rendered == [(ROOT / p).read_text().rstrip("\n") for p in SNIPPET.findall(text)]


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
