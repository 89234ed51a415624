"""scripts/check_dists.py, on small archives built here: it passes a good pair, names each flaw."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from scripts.check_dists import (
    ROOT,
    SDIST_FILES,
    _package_files,
    _tracked,
    check_sdist,
    check_wheel,
)

DIST_INFO = "updater_stats-1.2.3.dist-info"
METADATA = (
    "Metadata-Version: 2.4\nName: updater-stats\nVersion: 1.2.3\nLicense-Expression: MIT\n"
    "License-File: LICENSE\nDescription-Content-Type: text/markdown\n\n# updater-stats\n"
)


def make_wheel(path: Path, *, drop: str = "", extra: dict[str, bytes] | None = None) -> Path:
    files = {name: b"" for name in _package_files() if name != drop}
    files[f"{DIST_INFO}/METADATA"] = METADATA.encode()
    files[f"{DIST_INFO}/licenses/LICENSE"] = (ROOT / "LICENSE").read_bytes()
    files.update(extra or {})
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def make_sdist(path: Path, *, drop: str = "") -> Path:
    names = [*SDIST_FILES, *_tracked("tests", "docs", "examples")]
    with tarfile.open(path, "w:gz") as archive:
        for name in names:
            if name != drop:
                archive.addfile(tarfile.TarInfo(f"updater_stats-1.2.3/{name}"), io.BytesIO(b""))
    return path


def test_a_complete_pair_passes(tmp_path: Path):
    assert check_wheel(make_wheel(tmp_path / "good.whl")) == []
    assert check_sdist(make_sdist(tmp_path / "good.tar.gz")) == []


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"drop": "updater_stats/py.typed"}, "wheel: missing updater_stats/py.typed"),
        ({"drop": "updater_stats/cli.py"}, "wheel: missing updater_stats/cli.py"),
        ({"extra": {"tests/test_cli.py": b""}}, "wheel: unexpected tests/test_cli.py"),
        (
            {"extra": {f"{DIST_INFO}/licenses/LICENSE": b"All rights reserved."}},
            "wheel: its LICENSE is not the repository's",
        ),
        (
            {"extra": {"updater_stats/__init__.py": b'__version__ = "1.2.3"'}},
            (
                "wheel: updater_stats/__init__.py holds the version 1.2.3: it is written once, "
                "in pyproject.toml"
            ),
        ),
        (
            {"extra": {f"{DIST_INFO}/METADATA": METADATA.replace("MIT", "Apache-2.0").encode()}},
            "wheel: License-Expression is 'Apache-2.0', not 'MIT'",
        ),
    ],
)
def test_each_flaw_of_a_wheel_is_named(tmp_path: Path, options: dict, problem: str):
    assert check_wheel(make_wheel(tmp_path / "bad.whl", **options)) == [problem]


@pytest.mark.parametrize("missing", ["LICENSE", "docs/index.md", "examples/flask_app.py"])
def test_each_file_an_sdist_lacks_is_named(tmp_path: Path, missing: str):
    sdist = make_sdist(tmp_path / "bad.tar.gz", drop=missing)
    assert check_sdist(sdist) == [f"sdist: missing {missing}"]


def test_the_sdist_check_covers_the_tests(tmp_path: Path):
    sdist = make_sdist(tmp_path / "bad.tar.gz", drop="tests/test_docs.py")
    assert check_sdist(sdist) == ["sdist: missing tests/test_docs.py"]
