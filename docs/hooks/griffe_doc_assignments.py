"""Griffe extension: class docstrings written as ``__doc__ = r\"\"\"...\"\"\" + _SHAPE_DOC``.

Some modules share a docstring section between classes by concatenating strings. Static analysis reads only a
literal docstring, so without this those classes would have none in the API reference; here the assignment is
evaluated from string literals and the module's top-level string constants (nothing is imported).
"""

from __future__ import annotations

import ast
import functools
import inspect
from pathlib import Path
from typing import Any, Dict

import griffe


@functools.lru_cache(maxsize=None)
def _string_constants(path: Path) -> Dict[str, str]:
    """``{name: value}`` of the module's top-level assignments of a string literal."""
    constants = {}
    for statement in ast.parse(path.read_text(encoding="utf-8")).body:
        if (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)):
            constants.update((t.id, statement.value.value) for t in statement.targets if isinstance(t, ast.Name))
    return constants


def _evaluate(node: ast.AST, constants: Dict[str, str]) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _evaluate(node.left, constants) + _evaluate(node.right, constants)
    raise ValueError(f"__doc__ is not built from strings: {ast.unparse(node)}")


class DocAssignments(griffe.Extension):
    def on_class_members(self, *, node: Any, cls: griffe.Class, agent: Any, **kwargs: Any) -> None:
        if not isinstance(node, ast.ClassDef):
            return
        for statement in node.body:
            if isinstance(statement, ast.Assign) and any(
                    isinstance(target, ast.Name) and target.id == "__doc__" for target in statement.targets):
                text = _evaluate(statement.value, _string_constants(Path(cls.filepath)))
                cls.docstring = griffe.Docstring(inspect.cleandoc(text), lineno=statement.lineno,
                                                 endlineno=statement.end_lineno, parent=cls,
                                                 parser=agent.docstring_parser, parser_options=agent.docstring_options)
                if "__doc__" in cls.members:
                    cls.del_member("__doc__")
