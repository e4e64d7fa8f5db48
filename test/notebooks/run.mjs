#!/usr/bin/env node
/**
 * The notebook checks (`npm run test:notebooks`):
 *
 * 1. refresh the package that tslab notebooks import (scripts/notebooks/kernels.mjs --package-only);
 * 2. execute every notebook in notebooks/ on its real kernel (scripts/notebooks/run.py);
 * 3. check the outputs: no errors, every figure cell with its MIME types (check_outputs.py);
 * 4. export 02-attention to HTML and check it renders offline in Chromium (export_check.ts).
 *
 * Usage: node test/notebooks/run.mjs [--out DIR]
 * The executed notebooks and the export go to DIR (default: a new temporary folder). Needs the
 * kernels from `npm run kernels`, Python with jupyter_client, nbformat and nbconvert, and
 * Chromium at /usr/bin/chromium. Ends with "N passed, N failed", summed over the steps.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const args = process.argv.slice(2);
const outIndex = args.indexOf("--out");
const out = resolve(outIndex >= 0 ? args[outIndex + 1] : mkdtempSync(join(tmpdir(), "underhood-notebooks-")));
const executed = join(out, "executed");
mkdirSync(executed, { recursive: true });

const python = ["node", join(root, "scripts/notebooks/python.mjs")];
const steps = [
  { name: "tslab package", command: ["node", join(root, "scripts/notebooks/kernels.mjs"), "--package-only"], counts: false },
  { name: "run notebooks", command: [...python, join(root, "scripts/notebooks/run.py"), "--out", executed], counts: true },
  { name: "check outputs", command: [...python, join(root, "test/notebooks/check_outputs.py"), executed], counts: true },
  {
    name: "offline export",
    command: [join(root, "node_modules/.bin/tsx"), join(root, "test/notebooks/export_check.ts"),
      join(executed, "02-attention.ipynb"), "--out", join(out, "export")],
    counts: true,
  },
];

let passed = 0;
let failed = 0;
for (const step of steps) {
  console.log(`\n=== ${step.name}: ${step.command.join(" ")}`);
  const started = performance.now();
  const child = spawnSync(step.command[0], step.command.slice(1), { cwd: root, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
  process.stdout.write(child.stdout ?? "");
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const summary = /(\d+) passed, (\d+) failed/.exec((child.stdout ?? "").trim().split("\n").pop() ?? "");
  if (step.counts && summary) {
    passed += Number(summary[1]);
    failed += Number(summary[2]);
  }
  if (child.status !== 0) {
    if (!summary || Number(summary[2]) === 0) failed++;
    console.log(`=== ${step.name} failed (exit ${child.status ?? child.signal}, ${seconds} s)`);
    if (step.name !== "check outputs") break;
  } else {
    console.log(`=== ${step.name} ok (${seconds} s)`);
  }
}
console.log(`\nexecuted notebooks and export: ${out}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
