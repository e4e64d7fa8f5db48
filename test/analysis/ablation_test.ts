/**
 * Zero and mean ablation of every head and MLP against the NumPy reference, for the loss and a
 * logit difference, with the mean over the prompt or over several prompts.
 */
import { assertClose, assertEquals, assertThrows, test } from "../_harness.ts";
import { ablationHooks, ablationSweep, type AblationSweepOptions } from "../../src/analysis/ablation.ts";
import { computeMetric, type Metric } from "../../src/analysis/metrics.ts";
import { golden, withModel, withoutLeaks } from "./_helpers.ts";

const expected = golden("gpt2-tiny-f32").ablation;
const [DOG, CAT] = expected.logit_diff_tokens as [number, number];

/** Tolerance against the float64 reference, absolute: losses near 11.6 and logit differences near 1. */
const ATOL = 1e-4;

interface GoldenRun {
  metric: "loss" | "logit_diff";
  method: "zero" | "mean";
  mlp_hook: "hook_mlp_out" | "mlp.hook_post";
  mean_prompts?: number[][];
  baseline: number;
  heads: number[][];
  mlps: number[];
}

function optionsOf(run: GoldenRun): AblationSweepOptions {
  const metric: Metric = run.metric === "loss" ? { kind: "loss" } : { kind: "logitDiff", tokenA: DOG, tokenB: CAT };
  const options: AblationSweepOptions = { method: run.method, mlpHook: run.mlp_hook, metric };
  if (run.mean_prompts) options.meanOver = run.mean_prompts;
  return options;
}

for (const run of expected.runs as GoldenRun[]) {
  const name = `${run.method} ablation of ${run.metric} at ${run.mlp_hook}${run.mean_prompts ? " over 2 prompts" : ""}`;
  test(`${name} matches reference`, async () => {
    await withModel("gpt2-tiny-f32", (model) => {
      const sweep = ablationSweep(model, expected.input_ids, optionsOf(run));
      assertClose(sweep.baseline, run.baseline, { atol: ATOL, label: "baseline" });
      assertClose(sweep.heads, run.heads, { atol: ATOL, label: "heads" });
      assertClose(sweep.mlps, run.mlps, { atol: ATOL, label: "mlps" });
      assertEquals([sweep.method, sweep.mlpHook], [run.method, run.mlp_hook], "settings");
    });
  });
}

test("ablation hooks match sweep entries", async () => {
  const run = (expected.runs as GoldenRun[]).find((r) => r.method === "mean" && r.mean_prompts)!;
  await withModel("gpt2-tiny-f32", (model) => {
    const metric: Metric = { kind: "loss" };
    const baseline = computeMetric(model, expected.input_ids, { metric });
    const common = { method: "mean" as const, meanOver: run.mean_prompts! };
    const head = ablationHooks(model, [{ kind: "head", layer: 1, head: 3 }], common);
    const mlp = ablationHooks(model, [{ kind: "mlp", layer: 0 }], common);
    assertClose(computeMetric(model, expected.input_ids, { metric, hooks: head }) - baseline, run.heads[1]![3]!, {
      atol: ATOL,
      label: "head 1.3",
    });
    assertClose(computeMetric(model, expected.input_ids, { metric, hooks: mlp }) - baseline, run.mlps[0]!, {
      atol: ATOL,
      label: "mlp 0",
    });
  });
});

test("zero ablation of every head", async () => {
  // With every head of both blocks zeroed, only b_O is left of the attention: the same as
  // zeroing hook_z directly.
  await withModel("gpt2-tiny-f32", (model) => {
    const metric: Metric = { kind: "loss" };
    const targets = [0, 1].flatMap((layer) => [0, 1, 2, 3].map((head) => ({ kind: "head" as const, layer, head })));
    const ablated = computeMetric(model, expected.input_ids, { metric, hooks: ablationHooks(model, targets) });
    const direct = computeMetric(model, expected.input_ids, {
      metric,
      hooks: [{ name: ["blocks.0.attn.hook_z", "blocks.1.attn.hook_z"], fn: (z) => z.mul(0) }],
    });
    assertClose(ablated, direct, { atol: 1e-6, label: "loss" });
  });
});

test("ablation leaves no tensors", async () => {
  // The micro model (vocabulary of 64) keeps these extra sweeps cheap on the cpu backend.
  await withModel("gpt2-micro", async (model) => {
    const ids = [5, 17, 63, 0, 17, 9];
    await withoutLeaks("zero sweep", () => ablationSweep(model, ids));
    await withoutLeaks("mean sweep", () =>
      ablationSweep(model, ids, { method: "mean", mlpHook: "mlp.hook_post", metric: { kind: "logitDiff", tokenA: 3 } }));
    await withoutLeaks("ablationHooks", () => ablationHooks(model, [{ kind: "mlp", layer: 1 }], { method: "mean", input: ids }));
  });
});

test("ablation rejects bad arguments", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    await assertThrows(() => ablationHooks(model, [{ kind: "head", layer: 2, head: 0 }]), RangeError, "layer");
    await assertThrows(() => ablationHooks(model, [{ kind: "head", layer: 0, head: 4 }]), RangeError, "nHeads = 4");
    await assertThrows(
      () => ablationHooks(model, [{ kind: "mlp", layer: 0 }], { method: "mean" }),
      RangeError,
      "meanOver",
    );
    await assertThrows(() => ablationSweep(model, [464]), RangeError, "two tokens");
    await assertThrows(
      () => ablationSweep(model, expected.input_ids, { method: "median" as "mean" }),
      RangeError,
      "zero",
    );
  });
});
