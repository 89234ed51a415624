"""Version precedence: how bundle and plugin versions are ordered, in one place.

A *version* is ``MAJOR.MINOR.PATCH`` with an optional ``-pre.release`` and
``+build`` (semantic versioning: the numbers are ASCII digits), optionally led
by ``v`` or ``V``. Versions are ordered by semantic-versioning precedence:
``3.10.0`` after ``3.9.0``, a pre-release before its release (``1.0.0-beta.1``
< ``1.0.0``), build metadata ignored.

Names that are not versions (``builtin``, free text, ``""``) come before every
version, in code-point order among themselves. A composite per-file name
(``"1.0.0:main.js"``) is ordered as the part before its first colon. Names of
equal precedence (``1.0.0`` and ``v1.0.0+7``) are ordered by code point, so
the order is total and every backend sorts the same way.
"""

from __future__ import annotations

import re

__all__ = ["parse_version", "version_order_key"]

_VERSION = re.compile(
    r"[vV]?([0-9]+)\.([0-9]+)\.([0-9]+)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)

#: A pre-release identifier: numbers (by value) before text (by code point).
_Identifier = tuple[int, int, str]
#: (major, minor, patch, release?, pre-release identifiers).
Precedence = tuple[int, int, int, int, tuple[_Identifier, ...]]


def parse_version(text: str | None) -> Precedence | None:
    """The precedence of *text* as a version, or `None` when it is not one.

    Two versions compare as their results do: a release ranks above every
    pre-release of it (its fourth element is 1, theirs 0), and pre-release
    identifiers compare numbers by value, below text compared by code point,
    a shorter list first when one is a prefix of the other.
    """
    if text is None:
        return None
    match = _VERSION.fullmatch(text)
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    identifiers: tuple[_Identifier, ...] = ()
    if pre is not None:
        identifiers = tuple(
            (0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split(".")
        )
    return (int(major), int(minor), int(patch), 0 if pre is not None else 1, identifiers)


def version_order_key(name: str) -> tuple[int, Precedence | tuple[()], str]:
    """A sort key putting any names in version order (see the module docstring).

    ``sorted(names, key=version_order_key)`` is oldest first; the last is the newest.
    """
    precedence = parse_version(name.split(":", 1)[0])
    if precedence is None:
        return (0, (), name)
    return (1, precedence, name)
