/**
 * Activation patching of the residual per (layer, position) and of each head's z per
 * (layer, head), against the NumPy reference.
 */
import { assertClose, assertEquals, assertThrows, test } from "../_harness.ts";
import { patchHeads, patchResidual, type PatchingOptions } from "../../src/analysis/patching.ts";
import { golden, withModel, withoutLeaks } from "./_helpers.ts";

const expected = golden("gpt2-tiny-f32").patching;
const options: PatchingOptions = {
  clean: expected.clean,
  corrupted: expected.corrupted,
  tokenA: expected.token_a,
  tokenB: expected.token_b,
};

/** Tolerance of recovered fractions, absolute; the clean and corrupted values differ by about 1.5. */
const FRACTION_ATOL = 1e-4;

test("residual patching matches reference", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const p = patchResidual(model, options);
    assertEquals(p.target, "resid_pre", "target");
    assertClose(p.cleanValue, expected.clean_logit_diff, { atol: 1e-4, label: "clean" });
    assertClose(p.corruptedValue, expected.corrupted_logit_diff, { atol: 1e-4, label: "corrupted" });
    assertClose(p.recovered, expected.resid_pre, { atol: FRACTION_ATOL, label: "recovered" });
    assertEquals(p.recovered.map((row) => row.length), [8, 8], "rows of [layer][pos]");
    // The first block's input differs only where the token differs: patching it there restores everything.
    assertClose(p.patched[0]![2]!, p.cleanValue, { atol: 1e-5, label: "patched at the changed token" });
  });
});

test("head patching matches reference", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const p = patchHeads(model, options);
    assertEquals(p.target, "head_z", "target");
    assertClose(p.recovered, expected.heads, { atol: FRACTION_ATOL, label: "recovered" });
    const fractions = p.patched.flat().map((v) => (v - p.corruptedValue) / (p.cleanValue - p.corruptedValue));
    assertClose(fractions, p.recovered.flat(), { atol: 1e-9, label: "fractions of patched" });
  });
});

test("patching leaves no tensors", async () => {
  // The micro model (vocabulary of 64) keeps these extra sweeps cheap on the cpu backend.
  await withModel("gpt2-micro", async (model) => {
    const micro = { clean: [5, 17, 63, 0, 17, 9], corrupted: [5, 17, 2, 0, 17, 9], tokenA: 3, tokenB: 4 };
    await withoutLeaks("patchResidual", () => patchResidual(model, micro));
    await withoutLeaks("patchHeads", () => patchHeads(model, { ...micro, position: -2 }));
  });
});

test("patching rejects bad prompts", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    await assertThrows(
      () => patchResidual(model, { ...options, corrupted: expected.corrupted.slice(1) }),
      RangeError,
      "same length",
    );
    await assertThrows(() => patchHeads(model, { ...options, corrupted: expected.clean }), RangeError, "equal");
    await assertThrows(() => patchHeads(model, { ...options, position: 8 }), RangeError, "position");
  });
});
