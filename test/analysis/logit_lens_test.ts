/**
 * The logit lens against the NumPy reference: top tokens, their probabilities and a target's
 * log-probability at every layer, with the final layer norm's scale recomputed per residual.
 */
import * as tf from "@tensorflow/tfjs-core";
import { assert, assertClose, assertEquals, assertThrows, test } from "../_harness.ts";
import { logitLens } from "../../src/analysis/logit_lens.ts";
import { golden, withModel, withoutLeaks } from "./_helpers.ts";

const tiny = golden("gpt2-tiny-f32").logit_lens;
const micro = golden("gpt2-micro-untied").logit_lens;

/** Tolerances against the float64 reference, absolute. */
const PROB_ATOL = 1e-5;
const LOGPROB_ATOL = 1e-4;

for (const [fixtureName, expected] of [["gpt2-tiny-f32", tiny], ["gpt2-micro-untied", micro]] as const) {
  test(`logit lens matches reference on ${fixtureName}`, async () => {
    await withModel(fixtureName, (model) => {
      const lens = logitLens(model, expected.input_ids, { target: expected.target });
      assertEquals(lens.layerNames.length, model.config.nLayers + 1, "rows");
      assertEquals(lens.topId, expected.top_id, "top ids");
      assertClose(lens.topProb, expected.top_prob, { atol: PROB_ATOL, label: "top probabilities" });
      assertClose(lens.targetLogProb!, expected.target_logprob, { atol: LOGPROB_ATOL, label: "target log-probs" });
      assertEquals(lens.topToken[0]![0], model.tokenText(expected.top_id[0][0]), "token text");
      lens.dispose();
    });
  });
}

test("logit lens last row is the model output", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const lens = logitLens(model, tiny.input_ids, { returnLogProbs: true });
    const logProbs = tf.tidy(() => tf.logSoftmax(model.forward(tiny.input_ids)));
    const last = tf.tidy(() => lens.logProbs!.slice([model.config.nLayers, 0, 0], [1, -1, -1]).squeeze([0]));
    assertClose(last.dataSync(), logProbs.dataSync(), { atol: 1e-5, label: "last row log-probs" });
    assertEquals(lens.topId[model.config.nLayers], Array.from(tf.tidy(() => logProbs.argMax(-1)).dataSync()), "top ids");
    assertEquals(lens.layerNames[model.config.nLayers], "blocks.1.hook_resid_post", "last row name");
    last.dispose();
    logProbs.dispose();
    lens.dispose();
  });
});

test("logit lens scale is per residual", async () => {
  // Reusing ln_final.hook_scale for an earlier residual gives other probabilities than the
  // reference, whose scale comes from each residual: the lens must not do that.
  await withModel("gpt2-tiny-f32", (model) => {
    const { logits, cache } = model.runWithCache(tiny.input_ids, {
      names: ["blocks.0.hook_resid_pre", "ln_final.hook_scale"],
    });
    const frozen = tf.tidy(() => {
      const x = cache.get("blocks.0.hook_resid_pre");
      const centered = x.sub(x.mean(-1, true));
      const normalized = centered.div(cache.get("ln_final.hook_scale")).mul(model.lnFinalWeights.w).add(model.lnFinalWeights.b);
      return tf.exp(tf.max(tf.logSoftmax(tf.matMul(normalized, model.W_U)), -1));
    });
    const frozenProbs = Array.from(frozen.dataSync());
    const diff = Math.max(...frozenProbs.map((p, i) => Math.abs(p - tiny.top_prob[0][i])));
    assert(diff > 1e-3, `a frozen final scale should change the layer-0 probabilities, max diff ${diff}`);
    frozen.dispose();
    logits.dispose();
    cache.dispose();
  });
});

test("logit lens log-probs tensor", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const lens = logitLens(model, "The quick brown fox", { target: " dog", returnLogProbs: true });
    const [layers, nPos, dVocab] = lens.logProbs!.shape;
    assertEquals([layers, nPos, dVocab], [model.config.nLayers + 1, 4, model.config.dVocab], "shape");
    const sums = tf.tidy(() => tf.exp(lens.logProbs!).sum(-1));
    assertClose(sums.dataSync(), new Array(layers * nPos).fill(1), { atol: 1e-4, label: "probabilities sum to 1" });
    const target = tf.tidy(() => tf.gather(lens.logProbs!, [3290], 2).reshape([layers, nPos]));
    assertClose(target.arraySync() as number[][], lens.targetLogProb!, { atol: 1e-6, label: "target column" });
    assertEquals(lens.target, 3290, "target id");
    sums.dispose();
    target.dispose();
    lens.dispose();
  });
});

test("logit lens leaves no tensors", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    await withoutLeaks("logitLens", () => logitLens(model, tiny.input_ids, { target: 5 }).dispose());
    await withoutLeaks("logitLens with log-probs", () => logitLens(model, tiny.input_ids, { returnLogProbs: true }).dispose());
  });
});

test("logit lens rejects bad target", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    await assertThrows(() => logitLens(model, tiny.input_ids, { target: " two words" }), RangeError, "2 tokens");
    await assertThrows(() => logitLens(model, tiny.input_ids, { target: 50257 }), RangeError, "[0, 50257)");
  });
});
