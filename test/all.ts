/**
 * Runs the whole test suite: a type check, then test/run.ts on every runtime (Node through
 * tsx, Deno, Bun) and backend (wasm, cpu). Exits 1 if any run fails.
 *
 * Usage: npm test [-- --quick] [-- FILTER...]
 *   --quick  runs Node with wasm only.
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name: string) => join(root, "node_modules", ".bin", name);
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const filters = args.filter((a) => a !== "--quick");

const runtimes: Array<{ name: string; command: string[] }> = [
  { name: "node", command: [bin("tsx"), "test/run.ts"] },
  { name: "deno", command: [bin("deno"), "run", "-A", "test/run.ts"] },
  { name: "bun", command: [bin("bun"), "test/run.ts"] },
];
const backends = ["wasm", "cpu"];

const results: Array<{ run: string; ok: boolean; seconds: number; summary: string }> = [];

function run(name: string, command: string[]): void {
  const started = performance.now();
  console.log(`\n=== ${name}: ${command.join(" ")}`);
  const child = spawnSync(command[0]!, command.slice(1), { cwd: root, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
  process.stdout.write(child.stdout ?? "");
  const lines = (child.stdout ?? "").trim().split("\n");
  const ok = child.status === 0;
  results.push({
    run: name,
    ok,
    seconds: (performance.now() - started) / 1000,
    summary: ok ? lines[lines.length - 1] ?? "" : `exit ${child.status ?? child.signal}: ${lines[lines.length - 1] ?? ""}`,
  });
}

// Call TypeScript's own tsc: tslab installs an older TypeScript under node_modules/.bin/tsc.
const tsc = [process.execPath, join(root, "node_modules", "typescript", "bin", "tsc")];
if (!quick && filters.length === 0) run("typecheck", [...tsc, "-p", "tsconfig.json"]);
for (const runtime of quick ? runtimes.slice(0, 1) : runtimes) {
  for (const backend of quick ? ["wasm"] : backends) {
    run(`${runtime.name}/${backend}`, [...runtime.command, "--backend", backend, ...filters]);
  }
}

console.log("\n=== summary");
for (const r of results) {
  console.log(`${r.ok ? "ok  " : "FAIL"}  ${r.run.padEnd(10)} ${r.seconds.toFixed(1).padStart(6)} s  ${r.summary}`);
}
process.exit(results.every((r) => r.ok) ? 0 : 1);
