"""Stage 3, export: the code cell that makes the kernel save the artifacts."""

from __future__ import annotations

import inspect
from pathlib import Path

import nbformat

from autograder.artifacts import EXPORT_LOG, RUNTIME_LOG, suffixes
from autograder.engine import kernel_export

_EXPORTER = kernel_export._autograder_export_artifacts


def export_cell(artifacts: dict[str, str], outdir: Path) -> nbformat.NotebookNode:
    """A code cell that defines the exporter, calls it on the kernel's globals
    and removes it again, leaving the student's namespace as it was."""
    name = _EXPORTER.__name__
    source = (
        inspect.getsource(_EXPORTER)
        + f"\n{name}(globals(), {artifacts!r}, {str(outdir)!r}, {suffixes(artifacts)!r}, {EXPORT_LOG!r}, "
        + f"{RUNTIME_LOG!r})\n"
        + f"del {name}\n"
    )
    return nbformat.v4.new_code_cell(source)
