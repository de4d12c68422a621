"""The tutorial notebooks are stored clean, listed, and link to files that exist.

Executing them is nbmake's job (``make notebooks``, part of ``make test``); these checks are
fast and run with the main suite.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "docs" / "notebooks"
#: A Markdown link target: ``[text](target)``.
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_three_tutorials_exist():
    names = [path.name for path in _notebooks()]
    assert names == [
        "01-denoise-in-five-minutes.ipynb",
        "02-train-care-validate.ipynb",
        "03-choosing-a-method.ipynb",
    ]


@pytest.mark.parametrize("path", _notebooks(), ids=lambda path: path.stem)
def test_stored_without_outputs(path):
    cells = _load(path)["cells"]
    dirty = [index for index, cell in enumerate(cells) if cell["cell_type"] == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (
        f"{path.name} is stored with outputs in cells {dirty}; clear them (JupyterLab: Edit > "
        "Clear Outputs of All Cells) before committing."
    )


@pytest.mark.parametrize("path", _notebooks(), ids=lambda path: path.stem)
def test_runs_in_the_standard_python_kernel(path):
    # nbmake starts the kernel the notebook names; "python3" is the one ipykernel provides
    # for the interpreter that runs the tests.
    assert _load(path)["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda path: path.stem)
def test_relative_links_resolve(path):
    text = "\n".join("".join(cell["source"]) for cell in _load(path)["cells"]
                     if cell["cell_type"] == "markdown")
    targets = [t.split("#")[0] for t in LINK.findall(text) if "://" not in t]
    assert targets, f"{path.name} links to no documentation"
    missing = [t for t in targets if t and not (NOTEBOOKS / t).exists()]
    assert not missing, f"{path.name} links to missing files: {missing}"


def test_readme_lists_every_notebook():
    readme = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    unlisted = [path.name for path in _notebooks() if f"({path.name})" not in readme]
    assert not unlisted, f"docs/notebooks/README.md does not list {unlisted}"
