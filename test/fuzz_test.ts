/**
 * The checkpoint fuzzer with a fixed seed and a small count, plus checks that its judge can
 * fail: broken loaders must produce unexpected outcomes. `npm run fuzz` runs the full count.
 */
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals, test } from "./_harness.ts";
import { type CaseResult, formatReport, MUTATION_CLASSES, runFuzz } from "../scripts/_fuzz.ts";
import { loadCheckpoint } from "../src/loader.ts";

const fixturesDir = fileURLToPath(new URL("./fixtures", import.meta.url));
const SEED = 20_240_601;

/** The unmutated fixture that a fuzz work directory was copied from. */
function intact(workDir: string): string {
  return join(fixturesDir, basename(workDir));
}

test("fuzz 300 cases, none unexpected", async () => {
  const results: CaseResult[] = [];
  const report = await runFuzz({ count: 300, seed: SEED, fixturesDir, onCase: (r) => results.push(r) });
  assertEquals(report.unexpected.length, 0, `unexpected outcomes:\n${formatReport(report)}`);
  assertEquals(results.length, 300);

  // The run must reach every mutation class and both kinds of accepted outcome.
  for (const mutationClass of MUTATION_CLASSES) {
    assert(report.byClass.get(mutationClass)!.cases > 0, `no case of class ${mutationClass}`);
  }
  assert(results.some((r) => r.outcome === "loaded"), "no mutation loaded");
  assert(results.some((r) => r.outcome === "documented"), "no mutation was rejected");
  assert(results.some((r) => r.expect === "same" && r.outcome === "loaded"), "no equivalent rewrite was checked");
  assert(results.some((r) => r.base === "gpt2-tiny-f16"), "gpt2-tiny-f16 was never mutated");
});

test("fuzz case reproduces alone", async () => {
  const all: CaseResult[] = [];
  await runFuzz({ count: 40, seed: SEED, fixturesDir, onCase: (r) => all.push(r) });
  for (const index of [3, 17, 39]) {
    const alone: CaseResult[] = [];
    await runFuzz({ count: 40, seed: SEED, only: index, fixturesDir, onCase: (r) => alone.push(r) });
    assertEquals(alone.length, 1);
    assertEquals(alone[0]!.description, all[index]!.description, `case ${index}`);
    assertEquals(alone[0]!.outcome, all[index]!.outcome, `case ${index}`);
  }
  const other: CaseResult[] = [];
  await runFuzz({ count: 40, seed: SEED + 1, fixturesDir, onCase: (r) => other.push(r) });
  assert(other.some((r, i) => r.description !== all[i]!.description), "another seed gave the same mutations");
});

test("fuzz flags undocumented errors", async () => {
  const report = await runFuzz({
    count: 30,
    seed: SEED,
    fixturesDir,
    load: () => Promise.reject(new TypeError("a bug in the loader")),
  });
  assertEquals(report.unexpected.length, 30);
  assert(report.unexpected.every((r) => r.detail.startsWith("TypeError: a bug")), report.unexpected[0]?.detail);
});

test("fuzz flags accepted corrupt files", async () => {
  // A loader that ignores the mutated files and always returns the intact fixture.
  const report = await runFuzz({ count: 120, seed: SEED, fixturesDir, load: (dir) => loadCheckpoint(intact(dir)) });
  const flagged = report.unexpected.filter((r) => r.detail === "loaded a checkpoint that must be rejected");
  assert(flagged.length > 20, `only ${flagged.length} accepted corrupt files were flagged`);
  assert(flagged.every((r) => r.expect === "fail"), "a case without a fail expectation was flagged");
});

test("fuzz flags hangs and leaks", async () => {
  const hang = await runFuzz({
    count: 3,
    seed: SEED,
    fixturesDir,
    caseLimitMs: 200,
    load: () => new Promise(() => {}),
  });
  assertEquals(hang.unexpected.length, 3);
  assert(hang.unexpected.every((r) => r.detail.includes("no result after 200 ms")), hang.unexpected[0]?.detail);

  const leaked: tf.Tensor[] = [];
  try {
    const leak = await runFuzz({
      count: 60,
      seed: SEED,
      fixturesDir,
      load: (dir) => {
        leaked.push(tf.zeros([1]));
        return loadCheckpoint(intact(dir));
      },
    });
    assert(leak.unexpected.some((r) => r.detail.includes("tensors left allocated")), "no leak was flagged");
  } finally {
    for (const t of leaked) t.dispose();
  }
});
