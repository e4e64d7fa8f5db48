#!/usr/bin/env python3
"""Execute notebooks headlessly on their real Jupyter kernels and save them with outputs.

Usage:
  run.py [--out DIR | --in-place] [--kernel NAME] [--timeout S] [--quiet S] [NOTEBOOK ...]

Each notebook runs on the kernel named in its metadata (kernelspec.name), started in the
notebook's own folder, one code cell at a time. Deno's kernel sometimes sends a cell's
output after it has reported the cell idle, and nbclient drops such output. So after the
idle status and the execute_reply, this runner keeps reading the kernel's messages until it
has been quiet for --quiet seconds (default 1.5), and only then runs the next cell.

A notebook fails when a cell sends an error output, when its execute_reply status is not
"ok" (tslab reports errors this way, with the message on stderr), or when a cell runs
longer than --timeout seconds. The executed notebook is written either way, so the error
can be read in it. The exit status is 1 when any notebook failed.

Needs jupyter_client and nbformat (Debian: python3-jupyter-client python3-nbformat) and the
kernels registered by `npm run kernels`.
"""

import argparse
import glob
import os
import queue
import sys
import time

import nbformat
from jupyter_client.manager import start_new_kernel

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


class CellOutputs:
    """Collects one cell's outputs from iopub messages, as nbformat output nodes."""

    def __init__(self):
        self.outputs = []
        self.errors = []
        self.stderr = []
        self.execution_count = None
        self._clear_on_next = False
        self._display_ids = {}

    def _append(self, output, display_id=None):
        if self._clear_on_next:
            self.outputs = []
            self._clear_on_next = False
        if display_id:
            self._display_ids.setdefault(display_id, []).append(len(self.outputs))
        self.outputs.append(output)

    def handle(self, msg):
        kind = msg["msg_type"]
        content = msg["content"]
        if kind == "stream":
            if content["name"] == "stderr":
                self.stderr.append(content["text"])
            last = self.outputs[-1] if self.outputs and not self._clear_on_next else None
            if last is not None and last.output_type == "stream" and last.name == content["name"]:
                last.text += content["text"]
            else:
                self._append(nbformat.v4.new_output("stream", name=content["name"], text=content["text"]))
        elif kind in ("display_data", "execute_result"):
            metadata = content.get("metadata") or {}
            if kind == "execute_result":
                self.execution_count = content.get("execution_count")
                output = nbformat.v4.new_output(
                    "execute_result", data=content["data"], metadata=metadata,
                    execution_count=content.get("execution_count"))
            else:
                output = nbformat.v4.new_output("display_data", data=content["data"], metadata=metadata)
            display_id = (content.get("transient") or {}).get("display_id")
            self._append(output, display_id)
        elif kind == "update_display_data":
            display_id = (content.get("transient") or {}).get("display_id")
            for index in self._display_ids.get(display_id, []):
                self.outputs[index].data = content["data"]
                self.outputs[index].metadata = content.get("metadata") or {}
        elif kind == "error":
            self.errors.append(f"{content['ename']}: {content['evalue']}")
            self._append(nbformat.v4.new_output(
                "error", ename=content["ename"], evalue=content["evalue"], traceback=content["traceback"]))
        elif kind == "clear_output":
            if content.get("wait"):
                self._clear_on_next = True
            else:
                self.outputs = []
        elif kind == "execute_input":
            self.execution_count = content.get("execution_count")


def run_cell(client, source, timeout, quiet):
    """Runs one cell; returns its outputs, reply status and the seconds it took."""
    started = time.monotonic()
    msg_id = client.execute(source, allow_stdin=False, store_history=True)
    cell = CellOutputs()
    idle = False
    reply = None
    last_message = time.monotonic()

    while True:
        now = time.monotonic()
        if now - started > timeout:
            cell.errors.append(f"Timed out after {timeout} s")
            break
        if reply is None:
            try:
                message = client.get_shell_msg(timeout=0.05)
                if message["parent_header"].get("msg_id") == msg_id:
                    reply = message["content"]
                    if reply.get("execution_count") is not None:
                        cell.execution_count = reply["execution_count"]
            except queue.Empty:
                pass
        try:
            message = client.get_iopub_msg(timeout=0.05)
        except queue.Empty:
            if idle and reply is not None and time.monotonic() - last_message >= quiet:
                break
            continue
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        last_message = time.monotonic()
        if message["msg_type"] == "status":
            if message["content"]["execution_state"] == "idle":
                idle = True
            continue
        cell.handle(message)

    status = (reply or {}).get("status", "no reply")
    if status != "ok" and not cell.errors:
        detail = "".join(cell.stderr).strip() or (reply or {}).get("evalue", "")
        cell.errors.append(f"execute_reply status {status!r}" + (f": {detail}" if detail else ""))
    return cell, status, time.monotonic() - started


def run_notebook(path, out_path, kernel_override, timeout, quiet):
    """Executes one notebook and writes it to out_path; returns (ok, seconds, messages)."""
    nb = nbformat.read(path, as_version=4)
    kernel_name = kernel_override or nb.metadata.get("kernelspec", {}).get("name")
    if not kernel_name:
        return False, 0.0, [f"{path}: no kernelspec.name in the notebook metadata; pass --kernel"]
    started = time.monotonic()
    messages = []
    ok = True
    manager, client = start_new_kernel(kernel_name=kernel_name, cwd=os.path.dirname(os.path.abspath(path)),
                                       startup_timeout=120)
    try:
        count = 0
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if not cell.source.strip():
                cell.outputs = []
                cell.execution_count = None
                continue
            result, _status, _seconds = run_cell(client, cell.source, timeout, quiet)
            count += 1
            cell.outputs = result.outputs
            cell.execution_count = result.execution_count or count
            if result.errors:
                ok = False
                messages.append(f"{path}: cell {index}: " + "; ".join(result.errors))
                # The cells after a failed one would fail for the same reason.
                break
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    seconds = time.monotonic() - started
    nb.metadata.setdefault("underhood", {})["run_seconds"] = round(seconds, 1)
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as error:
        ok = False
        messages.append(f"{path}: the executed notebook is not valid nbformat: {str(error).splitlines()[0]}")
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    nbformat.write(nb, out_path)
    return ok, seconds, messages


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to run (default: notebooks/*.ipynb)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="folder for the executed notebooks")
    where.add_argument("--in-place", action="store_true", help="overwrite each notebook with its executed version")
    parser.add_argument("--kernel", help="run every notebook on this kernel instead of its own")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one cell may run (default 300)")
    parser.add_argument("--quiet", type=float, default=1.5,
                        help="seconds without kernel messages after idle that end a cell (default 1.5)")
    args = parser.parse_args(argv)

    paths = args.notebooks or sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
    if not paths:
        print("No notebooks found.", file=sys.stderr)
        return 1
    failed = []
    total_started = time.monotonic()
    for path in paths:
        out_path = path if args.in_place else os.path.join(args.out, os.path.basename(path))
        ok, seconds, messages = run_notebook(path, out_path, args.kernel, args.timeout, args.quiet)
        print(f"{'ok  ' if ok else 'FAIL'}  {os.path.basename(path)}  {seconds:.1f} s  -> {out_path}", flush=True)
        for message in messages:
            print(f"      {message}", flush=True)
        if not ok:
            failed.append(path)
    total = time.monotonic() - total_started
    print(f"total notebook run time: {total:.1f} s")
    print(f"notebooks: {len(paths) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
