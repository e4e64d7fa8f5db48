/**
 * The command line: `dump` is the parity interface and must write the reference tool's JSON
 * format; `demo` must run end to end.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertClose, assertEquals, currentRuntime, test } from "./_harness.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const backend = process.env.UNDERHOOD_TEST_BACKEND ?? "wasm";

/** Runs the CLI on the current runtime and returns its exit code, stdout and stderr. */
function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const runtime = currentRuntime();
  const command = runtime === "deno"
    ? [process.execPath, "run", "-A", join(root, "src/cli.ts"), ...args]
    : runtime === "bun"
    ? [process.execPath, join(root, "src/cli.ts"), ...args]
    : [process.execPath, join(root, "bin/underhood.mjs"), ...args];
  const child = spawnSync(command[0]!, command.slice(1), { cwd: root, encoding: "utf8", maxBuffer: 64 << 20 });
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
}

test("dump matches the reference format", async () => {
  const ref = JSON.parse(readFileSync(join(root, "test/fixtures/reference/gpt2-tiny-f32.hello.json"), "utf8"));
  const raw = readFileSync(join(root, "test/fixtures/reference", ref.logits_file));
  const refLogits = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const out = cli([
    "dump",
    "--model", "test/fixtures/gpt2-tiny-f32",
    "--ids", JSON.stringify(ref.input_ids),
    "--logits", "all",
    "--attn-layer", String(ref.attention.layer),
    "--attn-head", String(ref.attention.head),
    "--greedy", String(ref.greedy.n),
    "--backend", backend,
  ]);
  assertEquals(out.status, 0, `dump exit status (stderr: ${out.stderr})`);
  const dump = JSON.parse(out.stdout);
  assertEquals(dump.input_ids, ref.input_ids, "input_ids");
  assertEquals(dump.backend, backend, "backend");
  assertClose(dump.logits_all.flat(), refLogits, { atol: 1e-4, label: "logits_all" });
  assertClose(dump.attention.pattern, ref.attention.pattern, { atol: 1e-5, label: "attention" });
  assertClose(dump.resid_norms.resid_pre, ref.resid_norms.resid_pre, { atol: 1e-4, label: "resid_pre" });
  assertEquals(dump.greedy.new_ids, ref.greedy.new_ids, "greedy ids");
});

test("dump rejects bad arguments", () => {
  const cases: Array<{ args: string[]; message: string }> = [
    { args: ["dump", "--ids", "[1]"], message: "Missing --model" },
    { args: ["dump", "--model", "test/fixtures/gpt2-tiny-f32", "--ids", "[1,"], message: "Invalid --ids" },
    { args: ["dump", "--model", "test/fixtures/gpt2-tiny-f32", "--ids", "[99999]"], message: "Invalid token id 99999" },
    { args: ["dump", "--model", "test/fixtures/gpt2-tiny-f32", "--ids", "[1]", "--logits", "some"], message: "Invalid --logits" },
    { args: ["dump", "--model", "test/fixtures/gpt2-tiny-f32", "--ids", "[1]", "--attn-layer", "2"], message: "Invalid attention layer 2 (--attn-layer)" },
    { args: ["dump", "--model", "test/fixtures/no-such-dir", "--ids", "[1]"], message: "no-such-dir" },
  ];
  for (const c of cases) {
    const out = cli(c.args);
    assertEquals(out.status, 1, `exit status of ${c.args.join(" ")}`);
    assert(out.stderr.includes(c.message), `stderr of ${c.args.join(" ")} lacks "${c.message}": ${out.stderr}`);
  }
});

test("demo prints every stage", () => {
  const out = cli(["demo", "--max-new-tokens", "8", "--backend", backend]);
  assertEquals(out.status, 0, `demo exit status (stderr: ${out.stderr})`);
  for (const heading of ["1. tokens", "2. embedding norms", "3. attention", "4. top-10 next tokens", "5. sampled continuation"]) {
    assert(out.stdout.includes(heading), `demo output lacks "${heading}"`);
  }
});
