/**
 * The metrics that ablation and patching measure, against values computed from the logits.
 */
import * as tf from "@tensorflow/tfjs-core";
import { assertClose, assertThrows, test } from "../_harness.ts";
import { computeMetric, type Metric } from "../../src/analysis/metrics.ts";
import { withModel, withoutLeaks } from "./_helpers.ts";

/** GPT-2 ids of "The quick brown fox jumps". */
const PROMPT = [464, 2068, 7586, 21831, 18045];

test("loss metric is next-token cross-entropy", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const logProbs = tf.tidy(() => tf.logSoftmax(model.forward(PROMPT)).arraySync() as number[][]);
    let expected = 0;
    for (let i = 0; i < PROMPT.length - 1; i++) expected -= logProbs[i]![PROMPT[i + 1]!]! / (PROMPT.length - 1);
    assertClose(computeMetric(model, PROMPT, { metric: { kind: "loss" } }), expected, { atol: 1e-5, label: "loss" });
  });
});

test("logit difference metric", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const logits = tf.tidy(() => model.forward(PROMPT).arraySync() as number[][]);
    const diff = computeMetric(model, PROMPT, { metric: { kind: "logitDiff", tokenA: " dog", tokenB: 3797, position: 2 } });
    assertClose(diff, logits[2]![3290]! - logits[2]![3797]!, { atol: 1e-6, label: "difference at position 2" });
    const single = computeMetric(model, PROMPT, { metric: { kind: "logitDiff", tokenA: 3290 } });
    assertClose(single, logits[4]![3290]!, { atol: 1e-6, label: "one logit at the last position" });
  });
});

test("metrics leave no tensors", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    await withoutLeaks("loss", () => computeMetric(model, PROMPT, { metric: { kind: "loss" } }));
    await withoutLeaks("logitDiff", () => computeMetric(model, PROMPT, { metric: { kind: "logitDiff", tokenA: 1 } }));
  });
});

test("metrics reject bad arguments", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    await assertThrows(() => computeMetric(model, [464], { metric: { kind: "loss" } }), RangeError, "two tokens");
    await assertThrows(
      () => computeMetric(model, PROMPT, { metric: { kind: "accuracy" } as unknown as Metric }),
      TypeError,
      "Unknown metric",
    );
    await assertThrows(
      () => computeMetric(model, PROMPT, { metric: { kind: "logitDiff", tokenA: 1, position: -6 } }),
      RangeError,
      "[-5, 5)",
    );
  });
});
