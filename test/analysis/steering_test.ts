/**
 * Steering: the hook against the stage functions run by hand, generation with steering against
 * full recomputation, and steering vectors from two prompts.
 */
import * as tf from "@tensorflow/tfjs-core";
import { assertClose, assertEquals, assertThrows, test } from "../_harness.ts";
import { generateSteered, steeringHook, steeringVector } from "../../src/analysis/steering.ts";
import { generate } from "../../src/generate.ts";
import type { Model } from "../../src/model.ts";
import { createRng } from "../../src/sampling.ts";
import { withModel, withoutLeaks } from "./_helpers.ts";

/** GPT-2 ids of "The quick brown fox jumps". */
const PROMPT = [464, 2068, 7586, 21831, 18045];

function randomVector(seed: number, size: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: size }, () => rng() * 2 - 1);
}

/** Greedy next token at every row of `logits` `[pos, dVocab]`, lowest id on ties. */
function argmaxRows(logits: tf.Tensor2D): number[] {
  const [nPos, dVocab] = logits.shape;
  const values = logits.dataSync();
  return Array.from({ length: nPos }, (_, row) => {
    let best = 0;
    for (let id = 1; id < dVocab; id++) if (values[row * dVocab + id]! > values[row * dVocab + best]!) best = id;
    return best;
  });
}

/** Runs the stages by hand, adding `scale * vector` to the residual entering block 1. */
function steeredByHand(model: Model, ids: number[], vector: Float32Array, scale: number): tf.Tensor2D {
  const e = model.embed(ids);
  const a0 = model.attentionBlock(0, e.residual);
  const m0 = model.mlpBlock(0, a0.residOut);
  const steered = tf.tidy(() => m0.residOut.add(tf.tensor1d(vector).mul(scale)));
  const a1 = model.attentionBlock(1, steered);
  const m1 = model.mlpBlock(1, a1.residOut);
  const u = model.unembed(m1.residOut);
  const logits = u.logits.clone();
  for (const r of [e, a0, m0, steered, a1, m1, u]) r.dispose();
  return logits;
}

test("steering hook equals stages by hand", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const vector = randomVector(1, model.config.dModel);
    const hook = steeringHook(model, { hookName: "blocks.1.hook_resid_pre", vector, scale: 3 });
    const steered = model.runWithHooks(PROMPT, { hooks: [hook] });
    const byHand = steeredByHand(model, PROMPT, vector, 3);
    assertClose(steered.dataSync(), byHand.dataSync(), { atol: 1e-4, label: "logits" });
    const plain = model.forward(PROMPT);
    const moved = tf.tidy(() => tf.max(tf.abs(plain.sub(steered))).dataSync()[0]!);
    assertEquals(moved > 0.1, true, `steering should move the logits (max change ${moved})`);
    for (const t of [steered, byHand, plain]) t.dispose();
  });
});

test("steering from a position", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const vector = randomVector(2, model.config.dModel);
    const hook = steeringHook(model, { hookName: "blocks.0.hook_resid_post", vector, scale: 2, fromPosition: 3 });
    const steered = model.runWithHooks(PROMPT, { hooks: [hook] });
    const plain = model.forward(PROMPT);
    const rows = tf.tidy(() => tf.max(tf.abs(plain.sub(steered)), 1).arraySync() as number[]);
    assertClose(rows.slice(0, 3), [0, 0, 0], { atol: 1e-6, label: "positions before 3 unchanged" });
    assertEquals(rows.slice(3).every((d) => d > 1e-3), true, `positions 3 and 4 changed: ${rows}`);
    steered.dispose();
    plain.dispose();
  });
});

test("steered generation at scale 0", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    const options = { maxNewTokens: 6, temperature: 0.9, topK: 20, seed: 4 };
    const plain = await generate(model, PROMPT, options);
    const vector = randomVector(3, model.config.dModel);
    const steered = await generateSteered(model, PROMPT, {
      ...options,
      steering: { hookName: "blocks.1.hook_resid_pre", vector, scale: 0 },
    });
    assertEquals(steered.ids, plain.ids, "ids");
  });
});

for (const positions of ["all", "new"] as const) {
  test(`steered generation on ${positions} positions`, async () => {
    await withModel("gpt2-tiny-f32", async (model) => {
      const vector = randomVector(5, model.config.dModel);
      const steering = { hookName: "blocks.1.hook_resid_pre" as const, vector, scale: 6 };
      const out = await generateSteered(model, PROMPT, { steering, positions, maxNewTokens: 6, temperature: 0 });

      // Recompute the whole sequence without a KV cache, steering the same positions.
      const ids = [...PROMPT, ...out.ids.slice(0, -1)];
      const fromPosition = positions === "all" ? 0 : PROMPT.length;
      const logits = model.runWithHooks(ids, { hooks: [steeringHook(model, { ...steering, fromPosition })] });
      assertEquals(argmaxRows(logits).slice(PROMPT.length - 1), out.ids, "greedy ids");
      logits.dispose();

      const plain = await generate(model, PROMPT, { maxNewTokens: 6, temperature: 0 });
      assertEquals(out.ids[0] === plain.ids[0], positions === "new", "first token unsteered only for new");
    });
  });
}

test("steering vector from two prompts", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const a = [464, 2068, 7586];
    const b = [21831, 18045];
    const { logits, cache } = model.runWithCache(a, { names: ["blocks.1.hook_resid_mid"] });
    const { logits: logitsB, cache: cacheB } = model.runWithCache(b, { names: ["blocks.1.hook_resid_mid"] });
    const expectedMean = tf.tidy(() =>
      cache.get("blocks.1.hook_resid_mid").mean(0).sub(cacheB.get("blocks.1.hook_resid_mid").mean(0))
    );
    const expectedLast = tf.tidy(() =>
      cache.get("blocks.1.hook_resid_mid").slice([2, 0], [1, -1]).sub(cacheB.get("blocks.1.hook_resid_mid").slice([1, 0], [1, -1]))
    );
    const mean = steeringVector(model, { promptA: a, promptB: b, layer: 1, hook: "hook_resid_mid" });
    const last = steeringVector(model, { promptA: a, promptB: b, layer: 1, hook: "hook_resid_mid", reduce: "last" });
    assertClose(mean, expectedMean.dataSync(), { atol: 1e-6, label: "mean" });
    assertClose(last, expectedLast.dataSync(), { atol: 1e-6, label: "last" });
    const same = steeringVector(model, { promptA: a, promptB: a, layer: 0 });
    assertClose(same, new Array(model.config.dModel).fill(0), { atol: 0, label: "a - a" });
    for (const t of [logits, logitsB, expectedMean, expectedLast]) t.dispose();
    cache.dispose();
    cacheB.dispose();
  });
});

test("steering leaves no tensors", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    const vector = tf.tensor1d(randomVector(6, model.config.dModel));
    await withoutLeaks("steeringVector", () => steeringVector(model, { promptA: "a b", promptB: "c", layer: 1 }));
    await withoutLeaks("generateSteered", () =>
      generateSteered(model, PROMPT, {
        steering: [{ hookName: "blocks.0.mlp.hook_post", vector: new Float32Array(128).fill(0.1) }, {
          hookName: "hook_embed",
          vector,
        }],
        maxNewTokens: 3,
        seed: 1,
      }));
    vector.dispose();
  });
});

test("steering rejects bad arguments", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    const vector = new Float32Array(model.config.dModel);
    await assertThrows(() => steeringHook(model, { hookName: "blocks.0.attn.hook_pattern", vector }), RangeError, "[pos, d]");
    await assertThrows(() => steeringHook(model, { hookName: "blocks.9.hook_resid_pre", vector }), RangeError, "Unknown hook");
    await assertThrows(() => steeringHook(model, { hookName: "blocks.0.mlp.hook_post", vector }), TypeError, "128 values");
    await assertThrows(() => steeringHook(model, { hookName: "hook_embed", vector, scale: NaN }), RangeError, "scale");
    await assertThrows(() => steeringVector(model, { promptA: "a", promptB: "b", layer: 2 }), RangeError, "layer");
    await assertThrows(
      () => generateSteered(model, PROMPT, { steering: [], maxNewTokens: 2 }),
      RangeError,
      "at least one",
    );
  });
});
