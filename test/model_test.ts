/**
 * Stage-by-stage goldens from the gpt2ref reference (NumPy, float64), written by
 * test/fixtures/reference/make_stage_goldens.py, plus properties of the layer norm, the causal
 * pattern and the embedding offset.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { assert, assertClose, assertEquals, test } from "./_harness.ts";
import { loadModel } from "../src/load_model.ts";
import type { Model } from "../src/model.ts";
import { createRng } from "../src/sampling.ts";

function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

/** Tolerances against the float64 reference, absolute. */
const RESID_ATOL = 1e-4;
const STAGE_ATOL = 1e-5;
const LOGIT_ATOL = 1e-4;

interface StagesGolden {
  input_ids: number[];
  n_layer: number;
  /** Residuals `[pos, dModel]`: resid_pre[i] enters block i, and resid_pre[n_layer] leaves the last block. */
  resid_pre: number[][][];
  resid_mid: number[][][];
  ln_f: number[][];
  /** `[head, pos, pos]` */
  attn_layer0: number[][][];
}

interface LastLogitsGolden {
  model_dir: string;
  input_ids: number[];
  logits_last: number[];
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

const stages = readJson<StagesGolden>(fixture("reference/stages.gpt2-tiny-f32.json"));

async function withModel(name: string, fn: (model: Model) => void | Promise<void>): Promise<void> {
  const model = await loadModel(fixture(name));
  try {
    await fn(model);
  } finally {
    model.dispose();
  }
}

/** Draws `[rows, cols]` values uniform in [-range, range) from a seeded generator. */
function randomMatrix(seed: number, rows: number, cols: number, range: number): number[][] {
  const rng = createRng(seed);
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => (rng() * 2 - 1) * range));
}

// ---- Stages against the reference

test("golden covers every block", () => {
  assertEquals(stages.resid_pre.length, stages.n_layer + 1, "resid_pre entries");
  assertEquals(stages.resid_mid.length, stages.n_layer, "resid_mid entries");
  assertEquals(stages.input_ids.length, 6, "tokens");
});

test("embed residual matches reference", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const e = model.embed(stages.input_ids);
    try {
      assertEquals(Array.from(e.ids), stages.input_ids, "ids");
      assertClose(e.residual.arraySync(), stages.resid_pre[0]!, { atol: RESID_ATOL, label: "resid_pre 0" });
    } finally {
      e.dispose();
    }
  });
});

test("each block matches reference alone", async () => {
  // Feed each stage the reference's own input, so an error shows in the stage that makes it.
  await withModel("gpt2-tiny-f32", (model) => {
    for (let layer = 0; layer < stages.n_layer; layer++) {
      const a = model.attentionBlock(layer, stages.resid_pre[layer]!);
      const m = model.mlpBlock(layer, stages.resid_mid[layer]!);
      try {
        assertClose(a.residOut.arraySync(), stages.resid_mid[layer]!, { atol: RESID_ATOL, label: `resid_mid ${layer}` });
        assertClose(m.residOut.arraySync(), stages.resid_pre[layer + 1]!, {
          atol: RESID_ATOL,
          label: `resid_post ${layer}`,
        });
      } finally {
        a.dispose();
        m.dispose();
      }
    }
  });
});

test("chained stages match reference", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const owned: Array<{ dispose(): void }> = [];
    try {
      const e = model.embed(stages.input_ids);
      owned.push(e);
      let residual = e.residual;
      for (let layer = 0; layer < stages.n_layer; layer++) {
        const a = model.attentionBlock(layer, residual);
        const m = model.mlpBlock(layer, a.residOut);
        owned.push(a, m);
        assertClose(a.residOut.arraySync(), stages.resid_mid[layer]!, { atol: RESID_ATOL, label: `resid_mid ${layer}` });
        assertClose(m.residOut.arraySync(), stages.resid_pre[layer + 1]!, {
          atol: RESID_ATOL,
          label: `resid_post ${layer}`,
        });
        residual = m.residOut;
      }
      const u = model.unembed(residual);
      owned.push(u);
      assertClose(u.lnFinal.normalized.arraySync(), stages.ln_f, { atol: STAGE_ATOL, label: "ln_f" });
    } finally {
      for (const r of owned) r.dispose();
    }
  });
});

test("lnFinal matches reference", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const ln = model.lnFinal(stages.resid_pre[stages.n_layer]!);
    try {
      assertClose(ln.normalized.arraySync(), stages.ln_f, { atol: STAGE_ATOL, label: "ln_f" });
    } finally {
      ln.dispose();
    }
  });
});

test("layer 0 pattern matches reference", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const a = model.attentionBlock(0, stages.resid_pre[0]!);
    try {
      assertEquals(a.pattern.shape, [model.config.nHeads, 6, 6], "pattern shape");
      assertClose(a.pattern.arraySync(), stages.attn_layer0, { atol: STAGE_ATOL, label: "pattern" });
    } finally {
      a.dispose();
    }
  });
});

for (const name of ["gpt2-micro", "gpt2-micro-options", "gpt2-micro-untied"]) {
  test(`last logits ${name}`, async () => {
    const golden = readJson<LastLogitsGolden>(fixture(`reference/last-logits.${name}.json`));
    await withModel(golden.model_dir, (model) => {
      const logits = model.forward(golden.input_ids);
      try {
        const rows = logits.arraySync();
        assertClose(rows[rows.length - 1]!, golden.logits_last, { atol: LOGIT_ATOL, label: "last logits" });
      } finally {
        logits.dispose();
      }
    });
  });
}

test("micro options reach the model", async () => {
  // The goldens above only prove something if these settings differ from the defaults.
  await withModel("gpt2-micro-options", (model) => {
    assertEquals(model.config.activation, "gelu");
    assertEquals(model.config.dMlp, 24);
    assertEquals(model.config.layerNormEps, 1e-6);
  });
  await withModel("gpt2-micro-untied", (model) => {
    assertEquals(model.config.tieWordEmbeddings, false);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(model.W_U, tf.transpose(model.W_E)))).dataSync()[0]!);
    assert(diff > 0.1, `W_U should differ from W_E transposed, max diff ${diff}`);
  });
});

// ---- Properties

/** Reads `layer_norm_epsilon` from a fixture's config.json, independently of the loader. */
function configEps(name: string): number {
  return readJson<{ layer_norm_epsilon: number }>(fixture(`${name}/config.json`)).layer_norm_epsilon;
}

for (const name of ["gpt2-tiny-f32", "gpt2-micro-options"]) {
  test(`layer norm centers and scales ${name}`, async () => {
    const eps = configEps(name);
    await withModel(name, (model) => {
      const { dModel } = model.config;
      const rows = randomMatrix(5, 4, dModel, 2);
      rows.push(new Array<number>(dModel).fill(3)); // constant row: variance 0
      rows.push(rows[0]!.map((v) => v * 0.001)); // variance near eps, where eps changes the scale
      const ln = model.ln1(1, rows);
      try {
        const scale = ln.scale.arraySync();
        const normalized = ln.normalized.arraySync();
        const w = model.blocks[1]!.ln1.w.arraySync();
        const b = model.blocks[1]!.ln1.b.arraySync();
        rows.forEach((row, r) => {
          const mean = row.reduce((s, v) => s + v, 0) / dModel;
          const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / dModel;
          assertClose(scale[r]!, [Math.sqrt(variance + eps)], { rtol: 1e-5, atol: 0, label: `scale row ${r}` });

          // With w = 1 and b = 0 the output would be (x - mean) / scale: mean 0, variance var / (var + eps).
          const plain = row.map((v) => (v - mean) / scale[r]![0]!);
          const plainMean = plain.reduce((s, v) => s + v, 0) / dModel;
          const plainVar = plain.reduce((s, v) => s + v ** 2, 0) / dModel;
          assertClose(plainMean, 0, { atol: 1e-6, label: `normalized mean row ${r}` });
          assertClose(plainVar, variance / (variance + eps), { atol: 1e-5, label: `normalized variance row ${r}` });

          const expected = plain.map((v, i) => v * w[i]! + b[i]!);
          assertClose(normalized[r]!, expected, { atol: 1e-5, label: `normalized row ${r}` });
        });
        assertClose(normalized[4]!, b, { atol: 1e-6, label: "constant row gives the bias" });
      } finally {
        ln.dispose();
      }
    });
  });
}

/** Computes erf(x) from its Taylor series: within 2e-7 of Python's math.erf for |x| < 5 (checked at steps of 0.01). */
function erf(x: number): number {
  if (Math.abs(x) >= 5) return Math.sign(x);
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

test("gelu option uses exact erf", async () => {
  // gpt2-micro-options sets activation_function "gelu": 0.5 x (1 + erf(x / sqrt 2)), not the
  // tanh approximation gelu_new. The two differ by up to 4.7e-4, near |x| = 2.7.
  await withModel("gpt2-micro-options", (model) => {
    const residual = randomMatrix(13, 16, model.config.dModel, 3);
    const m = model.mlpBlock(0, residual);
    try {
      const pre = Array.from(m.pre.dataSync());
      const post = Array.from(m.post.dataSync());
      const exact = pre.map((x) => 0.5 * x * (1 + erf(x / Math.SQRT2)));
      const tanhForm = pre.map((x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))));
      const gap = Math.max(...exact.map((v, i) => Math.abs(v - tanhForm[i]!)));
      assert(gap > 1e-4, `inputs do not separate gelu from gelu_new (max gap ${gap})`);
      assertClose(post, exact, { atol: 1e-5, label: "hook_post" });
    } finally {
      m.dispose();
    }
  });
});

test("attention pattern is causal", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const residual = randomMatrix(9, 7, model.config.dModel, 3);
    for (let layer = 0; layer < model.config.nLayers; layer++) {
      const a = model.attentionBlock(layer, residual);
      try {
        const pattern = a.pattern.arraySync();
        const scores = a.scores.arraySync();
        pattern.forEach((head, h) => {
          head.forEach((row, q) => {
            for (let k = q + 1; k < row.length; k++) {
              assertEquals(row[k], 0, `pattern layer ${layer} head ${h} query ${q} key ${k}`);
              assertEquals(scores[h]![q]![k], -Infinity, `score layer ${layer} head ${h} query ${q} key ${k}`);
            }
            assertClose(row.reduce((s, p) => s + p, 0), 1, { atol: 1e-6, label: `row sum layer ${layer} head ${h} query ${q}` });
            assert(row.slice(0, q + 1).every((p) => p > 0), `visible keys get weight, layer ${layer} head ${h} query ${q}`);
          });
        });
        assertEquals(pattern[0]![0]![0], 1, "the first query sees only itself");
      } finally {
        a.dispose();
      }
    }
  });
});

test("later tokens leave earlier logits", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const changed = [...stages.input_ids];
    changed[4] = 1000;
    const a = model.forward(stages.input_ids).arraySync();
    const b = model.forward(changed).arraySync();
    assertClose(b.slice(0, 4), a.slice(0, 4), { atol: 1e-5, label: "positions before the change" });
    const moved = Math.max(...b[4]!.map((v, i) => Math.abs(v - a[4]![i]!)));
    assert(moved > 0.1, `position 4 should change, max diff ${moved}`);
  });
});

test("embed offset shifts positions", async () => {
  await withModel("gpt2-tiny-f32", (model) => {
    const offset = 2;
    const tail = stages.input_ids.slice(offset);
    const shifted = model.embed(tail, { offset });
    const plain = model.embed(tail);
    try {
      // Token part is unchanged; the sum equals the reference's rows at the same positions.
      assertEquals(Array.from(shifted.tokenEmbed.dataSync()), Array.from(plain.tokenEmbed.dataSync()), "token part");
      assertClose(shifted.residual.arraySync(), stages.resid_pre[0]!.slice(offset), {
        atol: RESID_ATOL,
        label: "residual at offset",
      });
      const expectedPos = tf.tidy(() => tf.slice(model.W_pos, [offset, 0], [tail.length, -1]).arraySync());
      assertEquals(shifted.posEmbed.arraySync(), expectedPos, "position rows");
    } finally {
      shifted.dispose();
      plain.dispose();
    }
  });
});

test("layer norm of huge rows stays finite", async () => {
  const { layerNorm } = await import("../src/stages/layer_norm.ts");
  const dModel = 4;
  const w = tf.ones([dModel]) as tf.Tensor1D;
  const b = tf.zeros([dModel]) as tf.Tensor1D;
  const rows = [[1, 2, 3, 4], [1e20, -1e20, 3e20, 0], [1e37, 2e37, -3e37, 0]];
  const x = tf.tensor2d(rows);
  const out = layerNorm(x, w, b, 1e-5);
  const normalized = (await out.normalized.array()) as number[][];
  // Layer norm ignores the row's scale (eps is negligible at these magnitudes), so each huge
  // row normalizes like the same row divided by its largest value.
  for (const [i, row] of rows.entries()) {
    const max = Math.max(...row.map(Math.abs));
    const mean = row.reduce((a, v) => a + v / max, 0) / dModel;
    const variance = row.reduce((a, v) => a + (v / max - mean) ** 2, 0) / dModel;
    const expected = row.map((v) => (v / max - mean) / Math.sqrt(variance + (i === 0 ? 1e-5 / max ** 2 : 0)));
    assertClose(normalized[i]!, expected, { atol: 1e-4, label: `row ${i}` });
  }
  for (const t of [w, b, x, out.scale, out.normalized]) t.dispose();
});
