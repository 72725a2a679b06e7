"""A small, safe arithmetic language for on-demand features and unit conversions.

An expression is Python syntax restricted to numbers, names, ``+ - * /``, unary minus,
parentheses and the functions ``abs``, ``min`` and ``max``. Nothing else parses: no
attribute access, no calls of other names, no comparisons, no subscripts. A null
operand gives null, and so does a division by zero.

Example:
    >>> expr = Expression.parse("(temperature_mean_1h - temperature_mean_24h) / temperature_std_24h")
    >>> sorted(expr.names)
    ['temperature_mean_1h', 'temperature_mean_24h', 'temperature_std_24h']
    >>> expr.evaluate({"temperature_mean_1h": [30.0, None], "temperature_mean_24h": [20.0, 1.0],
    ...                "temperature_std_24h": [5.0, 2.0]})
    [2.0, None]
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from mlops_kit.data.errors import ExpressionError

_FUNCTIONS = {"abs": abs, "min": min, "max": max}
_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div)


def _check(node: ast.AST, text: str) -> set[str]:
    """The names ``node`` reads; raises on anything outside the subset."""
    if isinstance(node, ast.Expression):
        return _check(node.body, text)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ExpressionError(f"{text!r}: only numbers may appear as constants")
        return set()
    if isinstance(node, ast.Name):
        if node.id in _FUNCTIONS:
            raise ExpressionError(f"{text!r}: {node.id} is a function; call it")
        return {node.id}
    if isinstance(node, ast.BinOp):
        if not isinstance(node.op, _OPS):
            raise ExpressionError(
                f"{text!r}: operator {type(node.op).__name__} is not allowed; use + - * /"
            )
        return _check(node.left, text) | _check(node.right, text)
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.USub | ast.UAdd):
            raise ExpressionError(f"{text!r}: only unary minus is allowed")
        return _check(node.operand, text)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            raise ExpressionError(f"{text!r}: only {', '.join(sorted(_FUNCTIONS))} may be called")
        if node.keywords or not node.args:
            raise ExpressionError(f"{text!r}: {node.func.id} takes positional arguments")
        if node.func.id == "abs" and len(node.args) != 1:
            raise ExpressionError(f"{text!r}: abs takes one argument")
        names: set[str] = set()
        for arg in node.args:
            names |= _check(arg, text)
        return names
    raise ExpressionError(
        f"{text!r}: {type(node).__name__} is not allowed; use numbers, names, + - * /, "
        "parentheses, abs, min and max"
    )


def _eval(node: ast.AST, row: Mapping[str, float | None]) -> float | None:
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int | float)
        return float(node.value)
    if isinstance(node, ast.Name):
        value = row[node.id]
        return None if value is None else float(value)
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, row)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        args = [_eval(a, row) for a in node.args]
        if any(a is None for a in args):
            return None
        return float(_FUNCTIONS[node.func.id](*args))  # type: ignore[operator]
    assert isinstance(node, ast.BinOp)
    a, b = _eval(node.left, row), _eval(node.right, row)
    if a is None or b is None:
        return None
    if isinstance(node.op, ast.Add):
        return a + b
    if isinstance(node.op, ast.Sub):
        return a - b
    if isinstance(node.op, ast.Mult):
        return a * b
    return None if b == 0 else a / b


@lru_cache(maxsize=1024)
def _parse(text: str) -> Expression:
    """Parsed once per text: an :class:`Expression` is immutable, so callers share it."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"{text!r} is not an expression: {exc.msg}") from None
    return Expression(text, frozenset(_check(tree, text)), tree)


def _arrow(node: ast.AST, columns: Mapping[str, Any]) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int | float)
        return pa.scalar(float(node.value), pa.float64())
    if isinstance(node, ast.Name):
        return pc.cast(columns[node.id], pa.float64())
    if isinstance(node, ast.UnaryOp):
        v = _arrow(node.operand, columns)
        return pc.negate(v) if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        args = [_arrow(a, columns) for a in node.args]
        if node.func.id == "abs":
            return pc.abs(args[0])
        fn = pc.min_element_wise if node.func.id == "min" else pc.max_element_wise
        out = fn(*args, skip_nulls=False)
        return out
    assert isinstance(node, ast.BinOp)
    a, b = _arrow(node.left, columns), _arrow(node.right, columns)
    if isinstance(node.op, ast.Add):
        return pc.add(a, b)
    if isinstance(node.op, ast.Sub):
        return pc.subtract(a, b)
    if isinstance(node.op, ast.Mult):
        return pc.multiply(a, b)
    zero = pc.equal(b, pa.scalar(0.0))
    return pc.if_else(zero, pa.scalar(None, pa.float64()), pc.divide(a, b))


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, the names it reads and its syntax tree."""

    text: str
    names: frozenset[str]
    tree: ast.Expression

    @classmethod
    def parse(cls, text: str) -> Expression:
        """Parse ``text``.

        Raises:
            ExpressionError: a syntax error, or syntax outside the safe subset.
        """
        return _parse(text)

    def value(self, row: Mapping[str, float | None]) -> float | None:
        """The value for one row (``name -> number or None``)."""
        return _eval(self.tree.body, row)

    def arrow(self, columns: Mapping[str, Any]) -> Any:
        """Vectorised over Arrow arrays (``name -> Array``): float64, nulls propagated, a
        division by zero null; operations in the expression's order, so the result equals
        :meth:`value` row by row."""
        return _arrow(self.tree.body, columns)

    def evaluate(self, columns: Mapping[str, Sequence[float | None]]) -> list[float | None]:
        """Row by row over ``columns`` (each at least the names read, equal lengths)."""
        names = sorted(self.names)
        if not names:
            n = len(next(iter(columns.values()))) if columns else 1
            return [self.value({}) for _ in range(n)]
        cols = [columns[n] for n in names]
        return [self.value(dict(zip(names, vals, strict=True))) for vals in zip(*cols, strict=True)]
