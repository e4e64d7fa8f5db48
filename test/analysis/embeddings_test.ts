/**
 * Nearest tokens, analogies and PCA against the NumPy reference, on the untied micro model (so
 * W_E and W_U differ) and on the tiny model, plus the eigen solver on its own.
 */
import * as tf from "@tensorflow/tfjs-core";
import { assert, assertClose, assertEquals, assertThrows, test } from "../_harness.ts";
import { analogy, nearestTokens, symmetricEigen, tokenPca, tokenVector } from "../../src/analysis/embeddings.ts";
import { createRng } from "../../src/sampling.ts";
import { golden, withModel, withoutLeaks } from "./_helpers.ts";

const micro = golden("gpt2-micro-untied");
const tiny = golden("gpt2-tiny-f32");

/** Tolerance of similarities and PCA values against the float64 reference, absolute. */
const ATOL = 1e-5;

for (const space of ["W_E", "W_U"] as const) {
  test(`nearest tokens in ${space} match reference`, async () => {
    const expected = micro.nearest;
    await withModel("gpt2-micro-untied", (model) => {
      const query = tokenVector(model, expected.query_row_of, "W_E");
      const nearest = nearestTokens(model, query, { space, k: expected.k });
      assertEquals(nearest.map((t) => t.id), expected[space].ids, "ids");
      assertClose(nearest.map((t) => t.similarity), expected[space].similarity, { atol: ATOL, label: "similarity" });
      assertEquals(nearest[0]!.token, model.tokenText(expected[space].ids[0]), "token text");
    });
  });

  test(`analogy in ${space} matches reference`, async () => {
    const expected = micro.analogy;
    await withModel("gpt2-micro-untied", (model) => {
      const result = analogy(model, { a: expected.a, b: expected.b, c: expected.c, space, k: expected.k });
      assertEquals(result.map((t) => t.id), expected[space].ids, "ids");
      assertClose(result.map((t) => t.similarity), expected[space].similarity, { atol: ATOL, label: "similarity" });
    });
  });

  test(`PCA in ${space} matches reference`, async () => {
    const expected = micro.pca[space];
    await withModel("gpt2-micro-untied", (model) => {
      const pca = tokenPca(model, expected.tokens, { space });
      assertClose(pca.coords, expected.coords, { atol: ATOL, label: "coords" });
      assertClose(pca.components, expected.components, { atol: ATOL, label: "components" });
      assertClose(pca.explainedVariance, expected.explained_variance, { atol: ATOL, label: "variance" });
      assertClose(pca.explainedVarianceRatio, expected.explained_variance_ratio, { atol: ATOL, label: "ratio" });
      assertClose(pca.mean, expected.mean, { atol: ATOL, label: "mean" });
    });
  });
}

test("PCA with fewer tokens than dModel", async () => {
  const expected = tiny.pca;
  await withModel("gpt2-tiny-f32", (model) => {
    const pca = tokenPca(model, expected.tokens, { components: 3 });
    assertClose(pca.coords, expected.coords, { atol: ATOL, label: "coords" });
    assertClose(pca.components, expected.components, { atol: ATOL, label: "components" });
    assertClose(pca.explainedVarianceRatio, expected.explained_variance_ratio, { atol: ATOL, label: "ratio" });
    assertEquals(pca.tokens, expected.tokens.map((id: number) => model.tokenText(id)), "token texts");
  });
});

test("token vector reads W_E rows and W_U columns", async () => {
  await withModel("gpt2-micro-untied", (model) => {
    const row = tokenVector(model, 17, "W_E");
    const column = tokenVector(model, 17, "W_U");
    const expectedRow = tf.tidy(() => model.W_E.slice([17, 0], [1, -1]).dataSync());
    const expectedColumn = tf.tidy(() => model.W_U.slice([0, 17], [-1, 1]).dataSync());
    assertClose(row, expectedRow, { atol: 0, label: "row" });
    assertClose(column, expectedColumn, { atol: 0, label: "column" });
    assert(row.some((v, i) => v !== column[i]), "the untied model's W_U column differs from its W_E row");
  });
});

test("nearest tokens accept strings and exclusions", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const nearest = nearestTokens(model, tokenVector(model, " dog"), { k: 3, exclude: [" cat"] });
    assertEquals(nearest[0]!.id, 3290, "a token is nearest to itself");
    assertClose(nearest[0]!.similarity, 1, { atol: 1e-5, label: "self-similarity" });
    assertEquals(nearest.some((t) => t.id === 3797), false, "excluded token left out");
    const without = nearestTokens(model, tokenVector(model, " dog"), { k: 3, exclude: [3290] });
    assertEquals(without[0]!.id, nearest[1]!.id, "excluding the top token moves the next one up");
  });
});

test("symmetric eigen solver", () => {
  const simple = symmetricEigen(Float64Array.of(2, 1, 1, 2), 2);
  assertClose(simple.values, [3, 1], { atol: 1e-12, label: "eigenvalues of [[2, 1], [1, 2]]" });

  // A random symmetric matrix: A v = λ v for every pair, and V is orthonormal.
  const n = 7;
  const rng = createRng(11);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) a[i * n + j] = a[j * n + i] = rng() * 2 - 1;
  const { values, vectors } = symmetricEigen(a, n);
  for (let c = 0; c < n; c++) {
    const v = Array.from({ length: n }, (_, i) => vectors[i * n + c]!);
    const av = Array.from({ length: n }, (_, i) => v.reduce((s, x, j) => s + a[i * n + j]! * x, 0));
    assertClose(av, v.map((x) => x * values[c]!), { atol: 1e-10, label: `A v = λ v for pair ${c}` });
    for (let d = 0; d < n; d++) {
      const dot = v.reduce((s, x, i) => s + x * vectors[i * n + d]!, 0);
      assertClose(dot, c === d ? 1 : 0, { atol: 1e-10, label: `v${c} · v${d}` });
    }
    if (c > 0) assert(values[c - 1]! >= values[c]!, "eigenvalues in decreasing order");
  }
});

test("embedding tools leave no tensors", async () => {
  await withModel("gpt2-micro-untied", async (model) => {
    await withoutLeaks("nearestTokens", () => nearestTokens(model, tokenVector(model, 3), { space: "W_U" }));
    await withoutLeaks("analogy", () => analogy(model, { a: 1, b: 2, c: 3 }));
    await withoutLeaks("tokenPca", () => tokenPca(model, [1, 2, 3, 4, 5]));
    const t = tf.tensor1d(tokenVector(model, 4));
    await withoutLeaks("nearestTokens of a tensor", () => nearestTokens(model, t));
    t.dispose();
  });
});

test("embedding tools reject bad arguments", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    const zero = new Float32Array(model.config.dModel);
    await assertThrows(() => nearestTokens(model, zero), RangeError, "zero vector");
    await assertThrows(() => nearestTokens(model, [1, 2]), TypeError, "32 values");
    await assertThrows(() => nearestTokens(model, tokenVector(model, 1), { k: 0 }), RangeError, "k");
    await assertThrows(() => tokenVector(model, " hello world"), RangeError, "2 tokens");
    await assertThrows(() => tokenPca(model, [1, 2]), RangeError, "at least 3");
    await assertThrows(() => tokenPca(model, [1, 1, 1]), RangeError, "span only 0");
    await assertThrows(() => nearestTokens(model, zero, { space: "W_Q" as "W_E" }), RangeError, "space");
  });
});
