"""Check the built sdist and wheel hold what a release must, and nothing it must not.

    python -m scripts.check_dists DIST_DIR

The wheel: the whole package (every file under src/updater_stats, ``py.typed``
included), the LICENSE in its metadata, and nothing else: no tests. The
sdist: the LICENSE, README, CHANGELOG and every tracked file under tests/,
docs/ and examples/. The version is written once, in pyproject.toml: no file of
the package holds it (``__version__`` reads the installed metadata). Exits 1,
listing each problem, when any check fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "updater_stats"
SDIST_FILES = ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "mkdocs.yml")
SDIST_TREES = ("tests", "docs", "examples")


def _one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    if len(found) != 1:
        raise SystemExit(f"expected one {pattern} in {dist}, found {[p.name for p in found]}")
    return found[0]


def _package_files() -> set[str]:
    source = ROOT / "src" / PACKAGE
    return {
        f"{PACKAGE}/{path.relative_to(source).as_posix()}"
        for path in source.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def _tracked(*trees: str) -> list[str]:
    listed = subprocess.run(  # noqa: S603 - fixed arguments
        ["git", "ls-files", "--", *trees],  # noqa: S607 - git from PATH, as a developer runs it
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not listed:
        raise SystemExit(f"git lists no files under {trees}: not run from a clone?")
    return listed


def check_wheel(wheel: Path) -> list[str]:
    """What is wrong with *wheel*; empty when nothing is."""
    problems: list[str] = []
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
        metadata = HeaderParser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
        license_name = f"{dist_info}/licenses/LICENSE"
        if license_name not in names:
            problems.append(f"wheel: no {license_name}")
        elif archive.read(license_name) != (ROOT / "LICENSE").read_bytes():
            problems.append("wheel: its LICENSE is not the repository's")
        version = metadata["Version"]
        problems.extend(
            f"wheel: {name} holds the version {version}: it is written once, in pyproject.toml"
            for name in sorted(names)
            if name.startswith(f"{PACKAGE}/") and version.encode() in archive.read(name)
        )
    expected = _package_files()
    if f"{PACKAGE}/py.typed" not in expected:
        problems.append("src: no py.typed marker to ship")
    problems.extend(f"wheel: missing {name}" for name in sorted(expected - names))
    problems.extend(
        f"wheel: unexpected {name}"
        for name in sorted(names - expected)
        if not name.startswith(f"{dist_info}/")
    )
    for field, value in [
        ("License-Expression", "MIT"),
        ("License-File", "LICENSE"),
        ("Description-Content-Type", "text/markdown"),
    ]:
        if metadata[field] != value:
            problems.append(f"wheel: {field} is {metadata[field]!r}, not {value!r}")
    return problems


def check_sdist(sdist: Path) -> list[str]:
    """What is wrong with *sdist*; empty when nothing is."""
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
    top = members[0].split("/")[0]
    names = {name.removeprefix(f"{top}/") for name in members}
    wanted = [*SDIST_FILES, *_tracked(*SDIST_TREES)]
    return [f"sdist: missing {name}" for name in wanted if name not in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dist", type=Path, help="the folder python -m build wrote to")
    dist = parser.parse_args().dist
    wheel, sdist = _one(dist, "*.whl"), _one(dist, "*.tar.gz")
    problems = check_wheel(wheel) + check_sdist(sdist)
    for problem in problems:
        print(problem)
    if problems:
        sys.exit(1)
    print(f"{wheel.name}: the package, py.typed and LICENSE, no tests")
    print(f"{sdist.name}: LICENSE, README, CHANGELOG, tests, docs and examples")


if __name__ == "__main__":
    main()
