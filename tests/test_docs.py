"""The docs are tested: their code runs, their JSON parses, their tables match the code."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from scripts.docs_docstrings import MODULES

import updater_stats
from updater_stats import Action

from .doc_blocks import ROOT, blocks

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")], ids=lambda p: p.name)
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UPDATER_STATS_STORAGE", raising=False)
    monkeypatch.setattr("updater_stats._collector._default", None)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    try:
        for code in blocks(page, "python"):
            exec(compile(code, str(page), "exec"), namespace)
    finally:
        updater_stats._collector._close_default()


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "json")], ids=lambda p: p.name)
def test_json_blocks_parse(page: Path):
    for code in blocks(page, "json"):
        json.loads(code)


def test_protocol_page_lists_every_action_with_its_classes():
    table = re.findall(
        r"^\| `([^`]+)` \| `([A-Z0-9_]+)` \| ([a-z, ]*) \| (.+) \|$",
        (ROOT / "docs" / "protocol.md").read_text(),
        re.MULTILINE,
    )
    assert [row[0] for row in table] == [a.value for a in Action]
    for value, name, classes, meaning in table:
        action = Action(value)
        assert action.name == name
        expected = [
            label
            for label, flag in [
                ("install", action.is_install),
                ("failure", action.is_failure),
                ("rollback", action.is_rollback),
                ("funnel", action.is_funnel_step),
                ("target", action.is_target_version),
                ("running", action.runs_version),
                ("server", action.is_server_side),
            ]
            if flag
        ]
        assert [c.strip() for c in classes.split(",") if c.strip()] == expected, value
        assert meaning.strip()


def test_docs_build_without_warnings(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "protocol" / "index.html").exists()
    # Material's search, and a copy button on every code block.
    assert (tmp_path / "search" / "search_index.json").exists()
    assert "content.code.copy" in (tmp_path / "index.html").read_text()
    # The API reference shows every exported name of every module it documents.
    anchors = {
        anchor
        for page in (tmp_path / "api").rglob("*.html")
        for anchor in re.findall(r'id="(updater_stats[\w.]*)"', page.read_text())
    }
    for dotted in MODULES:
        module = importlib.import_module(dotted)
        shown = [name for name in module.__all__ if f"{dotted}.{name}" in anchors]
        assert shown == module.__all__, dotted


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line for code in blocks(ROOT / "README.md", "console") for line in code.split("\n")]
    test_command = next(line for line in commands if "pytest" in line)
    assert test_command in readme
    assert ci.rstrip().endswith(test_command)


def test_readme_links_work_on_the_package_index():
    # README.md is also the package's long description: a relative link breaks there.
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    targets += re.findall(r"^\[[^\]]+\]:\s*(\S+)", readme, re.MULTILINE)
    assert targets
    assert [target for target in targets if not target.startswith(("https://", "#"))] == []
    repository = "https://github.com/updater-stats/updater-stats/blob/main/"
    files = [target.removeprefix(repository) for target in targets if target.startswith(repository)]
    assert files
    assert [path for path in files if not (ROOT / path).is_file()] == []


def test_the_readme_and_the_quickstart_show_the_same_route():
    route = re.compile(
        r"^```python\n(import updater_stats\n\n\ndef stats_route.*?)^```$", re.MULTILINE | re.DOTALL
    )
    readme = route.findall((ROOT / "README.md").read_text())
    quickstart = route.findall((ROOT / "docs" / "index.md").read_text())
    assert readme == quickstart
    assert len(readme) == 1
    assert "updater_stats.respond(raw_body)" in readme[0]
