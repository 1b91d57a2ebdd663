"""No module over ~500 lines without a reason written at its top (issue 14: cohesive modules).

A module of the project (not tests, migrations or benchmarks) longer than LIMIT lines says in its docstring,
in a paragraph starting "Why one module of this size:", why it stays whole; otherwise it should be split
into a package with one concern per module (as pipelines/operators/files/ was).
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIMIT = 500
MARK = "Why one module of this size:"
SKIPPED = {"tests", "migrations", "bench", ".venv", "node_modules"}


def test_every_long_module_says_why_it_stays_whole():
    silent = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if SKIPPED & set(rel.parts):
            continue
        text = path.read_text()
        lines = text.count("\n")
        if lines > LIMIT and MARK not in (ast.get_docstring(ast.parse(text)) or ""):
            silent.append(f"{rel} ({lines} lines)")
    assert not silent, f"over {LIMIT} lines with no '{MARK}' paragraph at the top: {silent}"
