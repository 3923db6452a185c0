"""The core stays a contract a newcomer can read in an hour: a budget on its code and on its functions.

Counted: ``autoglm_sdk/`` without the contract kit (``testing/``), plus ``cli/``. A code line is a line with a
token that is neither a comment nor part of a module, class or function docstring; blank lines do not count.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_LINE_BUDGET = 5300
# 5,200 until issue 18 (machine(): CPU, ISA flags and GEMM rates beside every latency figure; time_split():
# operator time against the rest); 4,600 until issue 17 (data-parallel training, neighbour sampling, transfer,
# recipes for scarce and imbalanced labels: training features every pipeline may use); 4,400 until issue 16
# (cascades of artifacts, placing schedulers' plans and reasons, per-sample error reports in predict_samples,
# placement in doctor); 3,500 until issue 14 (integrity checks, locks, abstentions, paths, verbosity); 3,900 until
# issue 15 added text tasks: their scores (textgen), generation in the pipeline and `autoglm run`, the model API;
# 4,300 until trainer.fit_alone (training part of a pipeline alone, shared by pretraining objectives) moved in
FUNCTION_LINE_BUDGET = 80


def core_files() -> list[Path]:
    files = [p for p in (ROOT / "autoglm_sdk").rglob("*.py") if "testing" not in p.relative_to(ROOT).parts]
    return sorted(files + list((ROOT / "cli").rglob("*.py")))


def docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                if isinstance(first.value.value, str):
                    lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def code_lines(text: str) -> int:
    skipped = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type not in skipped:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstring_lines(ast.parse(text)))


def test_code_line_counter_skips_blanks_comments_and_docstrings():
    text = '"""Module.\n\nDoc."""\n\n# note\nx = 1  # why\n\n\ndef f():\n    """Doc."""\n    return """a\nb"""\n'
    assert code_lines(text) == 4  # x = 1, def f, and the two lines of the returned string


def test_core_code_fits_its_budget():
    counts = {str(p.relative_to(ROOT)): code_lines(p.read_text()) for p in core_files()}
    total = sum(counts.values())
    largest = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:5])
    assert total <= CODE_LINE_BUDGET, f"core + cli: {total} code lines > {CODE_LINE_BUDGET} (largest: {largest})"


def test_no_core_function_is_longer_than_its_budget():
    long = []
    for path in core_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_LINE_BUDGET:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "functions over the budget: " + ", ".join(long)
