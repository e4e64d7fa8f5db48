/**
 * Previous-token and induction scores against the NumPy reference on a fixed repeated
 * sequence, and the seeded random sequences.
 */
import { assert, assertClose, assertEquals, assertThrows, test } from "../_harness.ts";
import { detectHeads, previousTokenScores } from "../../src/analysis/head_detectors.ts";
import { golden, withModel, withoutLeaks } from "./_helpers.ts";

const tiny = golden("gpt2-tiny-f32");

/** Tolerance of mean attention probabilities against the float64 reference, absolute. */
const ATOL = 1e-5;

for (const [label, expected, prependBos] of [
  ["without BOS", tiny.head_scores, false],
  ["with BOS", tiny.head_scores_bos, true],
] as const) {
  test(`head scores ${label} match reference`, async () => {
    await withModel("gpt2-tiny-f32", (model) => {
      const firstCopy = expected.input_ids.slice(prependBos ? 1 : 0, prependBos ? 11 : 10);
      const scores = detectHeads(model, { tokens: firstCopy, prependBos });
      assertEquals(scores.ids, expected.input_ids, "ids run");
      assertEquals(scores.seqLen, 10, "seqLen");
      assertClose(scores.previousToken, expected.previous_token, { atol: ATOL, label: "previous-token" });
      assertClose(scores.induction, expected.induction, { atol: ATOL, label: "induction" });
    });
  });
}

test("previous-token scores on any input", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const expected = tiny.head_scores;
    assertClose(previousTokenScores(model, expected.input_ids), expected.previous_token, { atol: ATOL, label: "scores" });
  });
});

test("random repeated tokens are seeded", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const a = detectHeads(model, { seqLen: 12, seed: 3 });
    const b = detectHeads(model, { seqLen: 12, seed: 3 });
    const c = detectHeads(model, { seqLen: 12, seed: 4 });
    assertEquals(a.ids, b.ids, "same seed, same ids");
    assertEquals(a.induction, b.induction, "same seed, same scores");
    assert(a.ids.join() !== c.ids.join(), "another seed draws other ids");
    const first = a.ids.slice(0, 12);
    assertEquals(a.ids.slice(12), first, "second copy repeats the first");
    assertEquals(new Set(first).size, 12, "distinct ids within a copy");
    assert(!first.includes(50256), "no <|endoftext|> drawn");

    const pool = [100, 200, 300, 400, 500, 600];
    const fromPool = detectHeads(model, { seqLen: 6, pool, seed: 1 });
    assertEquals([...fromPool.ids.slice(0, 6)].sort((x, y) => x - y), pool, "a pool of seqLen ids is permuted");
    assertEquals(detectHeads(model).seqLen, 20, "default seqLen");
  });
});

test("head scores are attention means", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const scores = detectHeads(model, { seqLen: 8, seed: 2 });
    for (const value of [...scores.previousToken.flat(), ...scores.induction.flat()]) {
      assert(value >= 0, `score ${value} below 0`);
      assert(value <= 1, `score ${value} above 1`);
    }
    assertEquals(scores.induction.map((row) => row.length), [4, 4], "[layer][head]");
  });
});

test("head detectors leave no tensors", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    await withoutLeaks("detectHeads", () => detectHeads(model, { seqLen: 10 }));
    await withoutLeaks("previousTokenScores", () => previousTokenScores(model, "a b c d"));
  });
});

test("head detectors reject bad arguments", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    await assertThrows(() => detectHeads(model, { tokens: [5, 6, 5] }), RangeError, "must not repeat");
    await assertThrows(() => detectHeads(model, { seqLen: 33 }), RangeError, "[2, 32]");
    await assertThrows(() => detectHeads(model, { seqLen: 32, prependBos: true }), RangeError, "[2, 31]");
    await assertThrows(() => detectHeads(model, { tokens: Array.from({ length: 40 }, (_, i) => i) }), RangeError, "nCtx");
    await assertThrows(() => detectHeads(model, { seqLen: 5, pool: [1, 2, 3] }), RangeError, "fewer than seqLen");
    await assertThrows(() => previousTokenScores(model, [7]), RangeError, "two tokens");
  });
});
