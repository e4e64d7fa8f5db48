#!/usr/bin/env python3
"""Check the outputs of executed notebooks.

Usage: check_outputs.py NOTEBOOK_OR_FOLDER ...

For every notebook:
- no cell has an error output;
- every code cell marked with cell metadata {"underhood": {"expect": [MIME, ...]}} produced at
  least one rich output (display_data or execute_result), or exactly "count" of them when the
  metadata gives one, and each of them has every expected MIME type;
- among the figure outputs (those with application/vnd.plotly.v1+json), only the first
  carries plotly.js inline, so the library is loaded once per notebook.

Prints one line per check and ends with "N passed, N failed"; exits 1 when a check failed.
"""

import glob
import os
import sys

import nbformat

PLOTLY = "application/vnd.plotly.v1+json"
# The inline loader defines this flag; see src/display/plotly_html.ts.
LOADER_MARK = "__underhoodPlotlyLoading"


def rich_outputs(cell):
    return [o for o in cell.get("outputs", []) if o.output_type in ("display_data", "execute_result")]


def check_notebook(path):
    """Returns a list of (ok, description) for one notebook."""
    results = []
    name = os.path.basename(path)
    nb = nbformat.read(path, as_version=4)
    code_cells = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]

    errors = [(i, o) for i, c in code_cells for o in c.get("outputs", []) if o.output_type == "error"]
    results.append((not errors, f"{name}: no error outputs"
                    + (f" (cell {errors[0][0]}: {errors[0][1].ename}: {errors[0][1].evalue})" if errors else "")))

    unexecuted = [i for i, c in code_cells if c.source.strip() and c.get("execution_count") is None]
    results.append((not unexecuted, f"{name}: every code cell was executed"
                    + (f" (cells {unexecuted} were not)" if unexecuted else "")))

    for index, cell in code_cells:
        spec = cell.metadata.get("underhood", {})
        expected = spec.get("expect")
        if not expected:
            continue
        outputs = rich_outputs(cell)
        count = spec.get("count")
        if count is not None:
            ok = len(outputs) == count
            results.append((ok, f"{name}: cell {index} has {count} rich outputs (found {len(outputs)})"))
        else:
            ok = len(outputs) > 0
            results.append((ok, f"{name}: cell {index} has a rich output (found {len(outputs)})"))
        for n, output in enumerate(outputs):
            missing = [m for m in expected if m not in output.get("data", {})]
            results.append((not missing, f"{name}: cell {index} output {n} has {', '.join(expected)}"
                            + (f" (missing {', '.join(missing)})" if missing else "")))

    figures = [o for _, c in code_cells for o in rich_outputs(c) if PLOTLY in o.get("data", {})]
    if figures:
        inline = [LOADER_MARK in o["data"].get("text/html", "") for o in figures]
        ok = inline[0] and not any(inline[1:])
        results.append((ok, f"{name}: plotly.js inline in the first of {len(figures)} figures only "
                        f"(inline in outputs {[i for i, x in enumerate(inline) if x]})"))
    return results


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    paths = []
    for arg in argv:
        paths.extend(sorted(glob.glob(os.path.join(arg, "*.ipynb"))) if os.path.isdir(arg) else [arg])
    if not paths:
        print(f"No notebooks found in {' '.join(argv)}.")
        return 1
    passed = failed = 0
    for path in paths:
        for ok, description in check_notebook(path):
            if ok:
                passed += 1
            else:
                failed += 1
                print(f"FAIL  {description}")
    print(f"checked {len(paths)} notebooks")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
