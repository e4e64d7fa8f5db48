/**
 * Residual decomposition and direct logit attribution against the NumPy reference, and the sum
 * checks: the parts sum to the residual, and the contributions to the logit difference.
 */
import * as tf from "@tensorflow/tfjs-core";
import { assertClose, assertEquals, assertThrows, test } from "../_harness.ts";
import { decomposeResidual, directLogitAttribution } from "../../src/analysis/attribution.ts";
import { golden, withModel, withoutLeaks } from "./_helpers.ts";

const tiny = golden("gpt2-tiny-f32");
const micro = golden("gpt2-micro-untied");

/** Tolerance of the sum checks and of contributions against the float64 reference, absolute. */
const SUM_ATOL = 1e-4;
const CONTRIBUTION_ATOL = 1e-4;

for (const [fixtureName, expected] of [["gpt2-tiny-f32", tiny.dla], ["gpt2-micro-untied", micro.dla]] as const) {
  test(`logit attribution matches reference on ${fixtureName}`, async () => {
    await withModel(fixtureName, (model) => {
      const dla = directLogitAttribution(model, expected.input_ids, {
        tokenA: expected.token_a,
        tokenB: expected.token_b,
        position: expected.position,
      });
      const atol = CONTRIBUTION_ATOL;
      assertClose(dla.heads, expected.heads, { atol, label: "heads" });
      assertClose(dla.mlps, expected.mlps, { atol, label: "mlps" });
      assertClose(dla.attnBias, expected.attn_bias, { atol, label: "b_O" });
      assertClose(dla.embed, expected.embed, { atol, label: "embed" });
      assertClose(dla.posEmbed, expected.pos_embed, { atol, label: "pos_embed" });
      assertClose(dla.lnFinalBias, expected.ln_final_bias, { atol, label: "ln_final.b" });
      assertClose(dla.logitDiff, expected.logit_diff, { atol, label: "logit difference" });
    });
  });

  test(`logit attribution sums to difference on ${fixtureName}`, async () => {
    await withModel(fixtureName, (model) => {
      const dla = directLogitAttribution(model, expected.input_ids, { tokenA: expected.token_a, tokenB: expected.token_b });
      assertClose(dla.total, dla.logitDiff, { atol: SUM_ATOL, label: "sum of contributions" });
      const listed = dla.contributions.reduce((sum, c) => sum + c.value, 0);
      assertClose(listed, dla.total, { atol: 1e-9, label: "contributions list" });
      assertEquals(dla.contributions.length, 2 + model.config.nLayers * (model.config.nHeads + 2) + 1, "entries");
      assertEquals(dla.contributions.at(-1)!.label, "ln_final.b", "last entry");
      assertEquals(dla.position, expected.input_ids.length - 1, "default position");
    });
  });
}

test("logit attribution of one token", async () => {
  const expected = tiny.dla_single_token;
  await withModel("gpt2-tiny-f32", (model) => {
    const dla = directLogitAttribution(model, expected.input_ids, { tokenA: " the", position: expected.position });
    assertEquals(dla.tokenA, expected.token_a, "token id of ' the'");
    assertEquals(dla.tokenB, undefined, "no tokenB");
    assertEquals(dla.contributions.map((c) => c.label), expected.labels, "labels");
    assertClose(dla.contributions.map((c) => c.value), expected.values, { atol: CONTRIBUTION_ATOL, label: "values" });
    assertClose(dla.logitDiff, expected.logit, { atol: CONTRIBUTION_ATOL, label: "logit" });
    assertClose(dla.total, dla.logitDiff, { atol: SUM_ATOL, label: "sum" });
  });
});

test("residual decomposition matches reference", async () => {
  const expected = tiny.decomposition;
  await withModel("gpt2-tiny-f32", (model) => {
    const d = decomposeResidual(model, expected.input_ids);
    assertEquals(d.components.map((c) => c.label), expected.labels, "labels");
    assertEquals(d.residualName, "blocks.1.hook_resid_post", "residual name");
    assertClose(d.parts.arraySync() as number[][][], expected.components, { atol: 1e-4, label: "parts" });
    assertClose(d.residual.arraySync() as number[][], expected.residual, { atol: 1e-4, label: "residual" });
    d.dispose();
  });
});

test("residual decomposition sums to residual", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    for (let layer = 0; layer <= model.config.nLayers; layer++) {
      const d = decomposeResidual(model, "To be, or not to be, that is the question", { layer });
      const sum = tf.tidy(() => d.parts.sum(0));
      assertClose(sum.dataSync(), d.residual.dataSync(), { atol: SUM_ATOL, label: `layer ${layer} sum` });
      assertClose(d.maxAbsError(), 0, { atol: SUM_ATOL, label: `layer ${layer} maxAbsError` });
      assertEquals(d.components.length, 2 + layer * (model.config.nHeads + 2), `layer ${layer} parts`);
      sum.dispose();
      d.dispose();
    }
  });
});

test("residual decomposition entering block 1", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const d = decomposeResidual(model, tiny.decomposition.input_ids, { layer: 1 });
    assertEquals(d.residualName, "blocks.1.hook_resid_pre", "residual name");
    // Block 0's parts are those of the final decomposition, so the golden covers them too.
    const n = d.components.length;
    const expected = tiny.decomposition.components.slice(0, n);
    assertClose(d.parts.arraySync() as number[][][], expected, { atol: 1e-4, label: "parts" });
    d.dispose();
  });
});

test("attribution tools leave no tensors", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    const ids = tiny.dla.input_ids;
    await withoutLeaks("directLogitAttribution", () => directLogitAttribution(model, ids, { tokenA: 5, tokenB: 6 }));
    await withoutLeaks("decomposeResidual", () => {
      const d = decomposeResidual(model, ids);
      d.maxAbsError();
      d.dispose();
    });
  });
});

test("attribution rejects bad arguments", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    const ids = tiny.dla.input_ids;
    await assertThrows(() => directLogitAttribution(model, ids, { tokenA: 5, position: 8 }), RangeError, "[-8, 8)");
    await assertThrows(() => directLogitAttribution(model, ids, { tokenA: -1 }), RangeError, "tokenA");
    await assertThrows(() => decomposeResidual(model, ids, { layer: 3 }), RangeError, "[0, 2]");
  });
});
