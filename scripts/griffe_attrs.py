"""A griffe extension: attrs classes get the ``__init__`` that attrs writes for them.

The API reference reads the sources without importing them, so it sees no
``__init__`` in an ``@attrs.define`` / ``@attrs.frozen`` class and would show
it without a signature. This builds that signature from the class body, as
attrs does: annotated fields in order (``ClassVar`` ones skipped), the leading
underscore of a private field dropped unless ``alias=`` names the argument,
``init=False`` fields left out, ``kw_only`` per field or per class, and a
default or ``factory`` shown as the default. Fields inherited from another
attrs class are not handled: no public class of updater-stats has them.
"""

from __future__ import annotations

import ast
from typing import Any

import griffe

_DECORATORS = {"define", "frozen", "mutable", "attrs"}
_FIELD_CALLS = {"field", "attrib", "ib"}


def _call_name(node: ast.expr) -> str | None:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Name):
        return target.id
    return None


def _keywords(call: ast.Call) -> dict[str, ast.expr]:
    return {keyword.arg: keyword.value for keyword in call.keywords if keyword.arg}


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _attrs_decorator(node: ast.ClassDef) -> ast.expr | None:
    for decorator in node.decorator_list:
        if _call_name(decorator) in _DECORATORS:
            return decorator
    return None


def _parameter(
    statement: ast.AnnAssign, cls: griffe.Class, class_kw_only: bool
) -> griffe.Parameter | None:
    if not isinstance(statement.target, ast.Name):
        return None
    name = statement.target.id
    if "ClassVar" in ast.unparse(statement.annotation):
        return None
    value = statement.value
    options: dict[str, ast.expr] = {}
    default: str | None = None
    if isinstance(value, ast.Call) and _call_name(value) in _FIELD_CALLS:
        options = _keywords(value)
        if isinstance(options.get("init"), ast.Constant) and not options["init"].value:
            return None
        if "default" in options:
            default = ast.unparse(options["default"])
        elif "factory" in options:
            default = f"{ast.unparse(options['factory'])}()"
    elif value is not None:
        default = ast.unparse(value)
    alias = options.get("alias")
    argument = alias.value if isinstance(alias, ast.Constant) else name.lstrip("_")
    member = cls.members.get(name)
    kw_only = class_kw_only or _is_true(options.get("kw_only"))
    return griffe.Parameter(
        str(argument),
        annotation=member.annotation if isinstance(member, griffe.Attribute) else None,
        kind=griffe.ParameterKind.keyword_only
        if kw_only
        else griffe.ParameterKind.positional_or_keyword,
        default=default,
    )


class AttrsInit(griffe.Extension):
    """Give each attrs class the ``__init__`` signature attrs generates."""

    def on_class_members(self, *, node: Any, cls: griffe.Class, **_kwargs: Any) -> None:
        """Add ``__init__`` to *cls* when it is an attrs class without one of its own."""
        if not isinstance(node, ast.ClassDef) or "__init__" in cls.members:
            return
        decorator = _attrs_decorator(node)
        if decorator is None:
            return
        class_kw_only = isinstance(decorator, ast.Call) and _is_true(
            _keywords(decorator).get("kw_only")
        )
        parameters = [griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword)]
        for statement in node.body:
            if isinstance(statement, ast.AnnAssign):
                parameter = _parameter(statement, cls, class_kw_only)
                if parameter is not None:
                    parameters.append(parameter)
        # attrs puts keyword-only arguments after the others, whatever the field order.
        parameters.sort(key=lambda p: p.kind is griffe.ParameterKind.keyword_only)
        init = griffe.Function(
            "__init__",
            parameters=griffe.Parameters(*parameters),
            returns="None",
            lineno=node.lineno,
            endlineno=node.lineno,
        )
        init.labels.add("attrs-generated")
        cls.set_member("__init__", init)
