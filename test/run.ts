/**
 * Runs the test files under `test/` on the current runtime (Node through tsx, Deno or Bun)
 * and one tfjs backend.
 *
 * Usage: run.ts [--backend cpu|wasm] [--list] [FILTER...]
 * A FILTER keeps the tests whose file or name contains it. Exits 1 when a test fails.
 */
import { readdirSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { currentRuntime, registeredTests, setCurrentFile } from "./_harness.ts";
import { getBackend, setBackend } from "../src/backend.ts";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
let backend = process.env.UNDERHOOD_BACKEND ?? "wasm";
const filters: string[] = [];
let listOnly = false;
for (let i = 0; i < args.length; i++) {
  const arg = args[i]!;
  if (arg === "--backend") backend = args[++i] ?? "";
  else if (arg === "--list") listOnly = true;
  else filters.push(arg);
}

function findTestFiles(dir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...findTestFiles(path));
    else if (name.endsWith("_test.ts")) files.push(path);
  }
  return files;
}

await setBackend(backend as "cpu" | "wasm");
const runtime = currentRuntime();
process.env.UNDERHOOD_TEST_BACKEND = getBackend();

for (const file of findTestFiles(here)) {
  setCurrentFile(relative(here, file));
  await import(pathToFileURL(file).href);
}

const selected = registeredTests().filter((t) =>
  filters.length === 0 || filters.some((f) => t.file.includes(f) || t.name.includes(f))
);
if (listOnly) {
  for (const t of selected) console.log(`${t.file}: ${t.name}`);
  process.exit(0);
}

console.log(`underhood tests: ${selected.length} on ${runtime}, backend ${getBackend()}`);
let failed = 0;
const started = performance.now();
for (const t of selected) {
  const t0 = performance.now();
  try {
    await t.fn();
    console.log(`  ok    ${t.file}: ${t.name} (${(performance.now() - t0).toFixed(0)} ms)`);
  } catch (error) {
    failed++;
    console.log(`  FAIL  ${t.file}: ${t.name}`);
    console.log(String((error as Error)?.stack ?? error).replace(/^/gm, "        "));
  }
}
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(`${selected.length - failed} passed, ${failed} failed (${runtime}, ${getBackend()}, ${seconds} s)`);
process.exit(failed > 0 ? 1 : 0);
