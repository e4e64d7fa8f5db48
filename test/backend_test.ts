/**
 * Backend selection in a fresh process, where no backend has been chosen yet.
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { assertEquals, currentRuntime, test } from "./_harness.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function runScript(path: string): { status: number | null; stdout: string; stderr: string } {
  const runtime = currentRuntime();
  const command = runtime === "deno"
    ? [process.execPath, "run", "-A", path]
    : runtime === "bun"
    ? [process.execPath, path]
    : [process.execPath, "--import", "tsx", path];
  const child = spawnSync(command[0]!, command.slice(1), { cwd: root, encoding: "utf8" });
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
}

test("tensor before loadModel starts cpu", () => {
  const out = runScript(join(root, "test/scripts/early_tensor.ts"));
  assertEquals(out.status, 0, `exit status (stderr: ${out.stderr.slice(0, 400)})`);
  const result = JSON.parse(out.stdout.trim().split("\n").pop()!);
  assertEquals(result.before, "cpu", "backend of a tensor made before loadModel");
  assertEquals(result.after, "wasm", "backend after loadModel");
  assertEquals(result.shape, [2, 32], "shape of the sum");
});
