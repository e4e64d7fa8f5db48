/**
 * Hook points: the golden list of names and shapes, name checking, hooks that read or replace
 * activations, and the proof that the forward pass is built from the standalone stages.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { assert, assertClose, assertEquals, assertThrows, test } from "./_harness.ts";
import { loadModel } from "../src/load_model.ts";
import type { HookName } from "../src/hooks.ts";
import type { Model } from "../src/model.ts";

function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

const TINY = fixture("gpt2-tiny-f32");
/** GPT-2 ids of "The quick brown fox jumps". */
const IDS = [464, 2068, 7586, 21831, 18045];

interface HookShapesGolden {
  n_tokens: number;
  hooks: Array<{ name: string; shape: number[] }>;
}

const golden = JSON.parse(readFileSync(fixture("hook_shapes.gpt2-tiny.json"), "utf8")) as HookShapesGolden;

async function withTiny(fn: (model: Model) => void | Promise<void>): Promise<void> {
  const model = await loadModel(TINY);
  try {
    await fn(model);
  } finally {
    model.dispose();
  }
}

/** Reads a tensor's values, then frees it. */
function take(t: tf.Tensor): Float32Array {
  const values = t.dataSync() as Float32Array;
  t.dispose();
  return values;
}

/**
 * Computes the logits with layer 0's z replaced by `replaceZ(z, v)`, by hand from the stages:
 * attention block 0 up to z, then W_O, then the remaining blocks.
 */
function logitsWithLayer0Z(
  model: Model,
  ids: number[],
  replaceZ: (z: tf.Tensor3D, v: tf.Tensor3D) => tf.Tensor,
): Float32Array {
  const e = model.embed(ids);
  const a0 = model.attentionBlock(0, e.residual);
  try {
    const residMid = tf.tidy(() => {
      const z = replaceZ(a0.z, a0.v); // [pos, head, dHead]
      const zFlat = tf.reshape(z, [ids.length, model.config.dModel]); // -> [pos, dModel]
      const out = tf.add(tf.matMul(zFlat, model.blocks[0]!.attn.W_O), model.blocks[0]!.attn.b_O);
      return tf.add(e.residual, out) as tf.Tensor2D;
    });
    const m0 = model.mlpBlock(0, residMid);
    const a1 = model.attentionBlock(1, m0.residOut);
    const m1 = model.mlpBlock(1, a1.residOut);
    const u = model.unembed(m1.residOut);
    const logits = u.logits.dataSync() as Float32Array;
    for (const r of [u, m1, a1, m0]) r.dispose();
    residMid.dispose();
    return logits;
  } finally {
    a0.dispose();
    e.dispose();
  }
}

/** Builds a `[head, pos, pos]` pattern in which each query attends equally to itself and every earlier key. */
function uniformCausalPattern(nHeads: number, nPos: number): tf.Tensor3D {
  const values = new Float32Array(nHeads * nPos * nPos);
  for (let h = 0; h < nHeads; h++) {
    for (let q = 0; q < nPos; q++) {
      for (let k = 0; k <= q; k++) values[(h * nPos + q) * nPos + k] = 1 / (q + 1);
    }
  }
  return tf.tensor3d(values, [nHeads, nPos, nPos]);
}

/** Builds a `[1, head, 1]` mask that is 0 for `head` and 1 for the other heads. */
function headMask(nHeads: number, head: number): tf.Tensor3D {
  const values = new Float32Array(nHeads).fill(1);
  values[head] = 0;
  return tf.tensor3d(values, [1, nHeads, 1]);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

// ---- Names and shapes

test("hook golden matches TransformerLens shapes", () => {
  // Check the hand-written golden against the fixture's config, so a typo in it cannot hide.
  const config = JSON.parse(readFileSync(`${TINY}/config.json`, "utf8"));
  assertEquals(golden.n_tokens, IDS.length, "golden token count");
  assertEquals(golden.hooks.length, 2 + 18 * config.n_layer + 2, "golden hook count");
  const resid = golden.hooks.find((h) => h.name === "blocks.1.hook_resid_post");
  assertEquals(resid?.shape, [IDS.length, config.n_embd], "resid_post shape");
});

test("hookNames matches golden order", async () => {
  await withTiny((model) => {
    assertEquals(model.hookNames(), golden.hooks.map((h) => h.name));
  });
});

test("runWithCache shapes match golden", async () => {
  await withTiny((model) => {
    const { logits, cache } = model.runWithCache(IDS);
    try {
      assertEquals(cache.shapes(), golden.hooks, "cache names and shapes, in order");
      assertEquals(cache.keys(), model.hookNames(), "cache keys");
      assertEquals(logits.shape, [IDS.length, model.config.dVocab], "logits shape");
    } finally {
      logits.dispose();
      cache.dispose();
    }
  });
});

test("runWithCache names filter keeps order", async () => {
  await withTiny((model) => {
    const requested: HookName[] = ["blocks.1.attn.hook_pattern", "hook_embed", "blocks.0.mlp.hook_post"];
    const { logits, cache } = model.runWithCache(IDS, { names: requested });
    try {
      assertEquals(cache.keys(), ["hook_embed", "blocks.0.mlp.hook_post", "blocks.1.attn.hook_pattern"]);
    } finally {
      logits.dispose();
      cache.dispose();
    }
    const byPredicate = model.runWithCache(IDS, { names: (name) => name.endsWith("hook_scale") });
    try {
      assertEquals(byPredicate.cache.keys(), ["blocks.0.ln1.hook_scale", "blocks.0.ln2.hook_scale", "blocks.1.ln1.hook_scale", "blocks.1.ln2.hook_scale", "ln_final.hook_scale"]);
    } finally {
      byPredicate.logits.dispose();
      byPredicate.cache.dispose();
    }
  });
});

test("unknown hook name suggests nearest", async () => {
  await withTiny(async (model) => {
    const error = await assertThrows(
      () => model.runWithCache(IDS, { names: ["blocks.0.hook_resid_pr" as HookName] }),
      RangeError,
      ['"blocks.0.hook_resid_pr"', "Did you mean"],
    );
    const suggested = error.message.slice(error.message.indexOf("Did you mean"));
    assert(
      suggested.startsWith('Did you mean "blocks.0.hook_resid_pre"'),
      `nearest name should come first: ${error.message}`,
    );
    await assertThrows(
      () => model.runWithHooks(IDS, { hooks: [{ name: "blocks.1.attn.hook_patern" as HookName, fn: () => {} }] }),
      RangeError,
      ['"blocks.1.attn.hook_pattern"'],
    );
    await assertThrows(
      () => model.runWithCache(IDS, { names: "blocks.2.hook_resid_pre" as HookName }),
      RangeError,
      ['"blocks.2.hook_resid_pre"'],
    );
  });
});

test("names filter matching nothing throws", async () => {
  await withTiny(async (model) => {
    await assertThrows(() => model.runWithCache(IDS, { names: () => false }), RangeError, ["matched no hook", "hookNames()"]);
    await assertThrows(() => model.runWithCache(IDS, { names: [] }), RangeError, ["empty list"]);
    await assertThrows(
      () => model.runWithHooks(IDS, { hooks: [{ name: (n) => n.startsWith("blocks.9."), fn: () => {} }] }),
      RangeError,
      ["matched no hook"],
    );
  });
});

// ---- runWithHooks

test("identity hooks keep logits bitwise", async () => {
  await withTiny((model) => {
    const seen: string[] = [];
    const expected = take(model.forward(IDS));
    const hooked = take(model.runWithHooks(IDS, {
      hooks: [{
        name: (n) => !n.endsWith("attn.hook_result"),
        fn: (_activation, { name }) => {
          seen.push(name);
        },
      }],
    }));
    assertEquals(Array.from(hooked), Array.from(expected), "logits");
    assertEquals(seen, model.hookNames().filter((n) => !n.endsWith("attn.hook_result")), "hooks fired in forward order");
  });
});

test("runWithCache logits equal forward bitwise", async () => {
  // Only caching hook_result may switch attention to the per-head sum, which changes rounding.
  await withTiny((model) => {
    const expected = Array.from(take(model.forward(IDS)));
    const filters: HookName[][] = [["blocks.0.hook_resid_post"], ["hook_embed"], ["hook_pos_embed", "blocks.1.attn.hook_z"]];
    for (const names of filters) {
      const { logits, cache } = model.runWithCache(IDS, { names });
      cache.dispose();
      assertEquals(Array.from(take(logits)), expected, `logits when caching ${names.join(", ")}`);
    }
  });
});

test("identity hook on hook_result stays close", async () => {
  // hook_result makes the attention output a sum over heads instead of one matmul, which only
  // changes float rounding.
  await withTiny((model) => {
    const expected = take(model.forward(IDS));
    const hooked = take(model.runWithHooks(IDS, { hooks: [{ name: () => true, fn: () => {} }] }));
    assertClose(hooked, expected, { atol: 1e-5, label: "logits" });
  });
});

test("uniform pattern hook changes logits", async () => {
  await withTiny((model) => {
    const { nHeads } = model.config;
    const uniform = uniformCausalPattern(nHeads, IDS.length);
    try {
      const clean = take(model.forward(IDS));
      const hooked = take(model.runWithHooks(IDS, {
        hooks: [{ name: "blocks.0.attn.hook_pattern", fn: () => uniform }],
      }));
      assert(maxAbsDiff(hooked, clean) > 1e-2, `logits barely moved: ${maxAbsDiff(hooked, clean)}`);

      // The same replacement by hand: z_h = uniform_h @ v_h.
      const byHand = logitsWithLayer0Z(model, IDS, (_z, v) => {
        const vHeads = tf.transpose(v, [1, 0, 2]); // [pos, head, dHead] -> [head, pos, dHead]
        return tf.transpose(tf.matMul(uniform, vHeads), [1, 0, 2]); // -> [pos, head, dHead]
      });
      assertClose(hooked, byHand, { atol: 1e-4, label: "logits against the stages" });
    } finally {
      uniform.dispose();
    }
  });
});

test("zero-ablating hook_z matches stages", async () => {
  await withTiny((model) => {
    const { nHeads } = model.config;
    const head = 2;
    const mask = headMask(nHeads, head);
    try {
      const clean = take(model.forward(IDS));
      const hooked = take(model.runWithHooks(IDS, {
        hooks: [{ name: "blocks.0.attn.hook_z", fn: (z) => tf.mul(z, mask) }],
      }));
      const byHand = logitsWithLayer0Z(model, IDS, (z) => tf.mul(z, mask));
      assertClose(hooked, byHand, { atol: 1e-4, label: "ablated logits" });
      assert(maxAbsDiff(hooked, clean) > 1e-3, "ablating a head should move the logits");
    } finally {
      mask.dispose();
    }
  });
});

test("hook_result ablation equals hook_z ablation", async () => {
  // result_h = z_h @ W_O[h], so zeroing z_h and zeroing result_h give the same output.
  await withTiny((model) => {
    const { nHeads, dModel } = model.config;
    const head = 1;
    const mask = headMask(nHeads, head);
    const resultShapes: number[][] = [];
    try {
      const viaZ = take(model.runWithHooks(IDS, {
        hooks: [{ name: "blocks.1.attn.hook_z", fn: (z) => tf.mul(z, mask) }],
      }));
      const viaResult = take(model.runWithHooks(IDS, {
        hooks: [{
          name: "blocks.1.attn.hook_result",
          fn: (result) => {
            resultShapes.push(result.shape);
            return tf.mul(result, mask);
          },
        }],
      }));
      assertEquals(resultShapes, [[IDS.length, nHeads, dModel]], "hook_result fired once with [pos, head, dModel]");
      assertClose(viaResult, viaZ, { atol: 1e-5, label: "logits" });
    } finally {
      mask.dispose();
    }
  });
});

test("hooks run in order and chain", async () => {
  await withTiny((model) => {
    const calls: string[] = [];
    const doubled = take(model.runWithHooks(IDS, {
      hooks: [
        { name: "blocks.0.hook_mlp_out", fn: (x) => (calls.push("first"), tf.mul(x, 3)) },
        { name: "blocks.0.hook_mlp_out", fn: (x) => (calls.push("second"), tf.div(x, 1.5)) },
      ],
    }));
    const once = take(model.runWithHooks(IDS, {
      hooks: [{ name: "blocks.0.hook_mlp_out", fn: (x) => tf.mul(x, 2) }],
    }));
    assertEquals(calls, ["first", "second"]);
    assertClose(doubled, once, { atol: 1e-4, label: "3x then /1.5 equals 2x" });
  });
});

test("wrong-shape hook names the hook", async () => {
  await withTiny(async (model) => {
    await assertThrows(
      () => model.runWithHooks(IDS, { hooks: [{ name: "blocks.0.hook_resid_mid", fn: (x) => tf.slice(x, [0, 0], [2, -1]) }] }),
      TypeError,
      ['"blocks.0.hook_resid_mid"', "[2, 32]", "[5, 32]"],
    );
    await assertThrows(
      () => model.runWithHooks(IDS, { hooks: [{ name: "blocks.1.attn.hook_result", fn: (x) => tf.sum(x, 1) }] }),
      TypeError,
      ['"blocks.1.attn.hook_result"'],
    );
  });
});

// ---- The forward pass is the stages

test("cached activations equal the stages", async () => {
  await withTiny((model) => {
    const { logits, cache } = model.runWithCache(IDS);
    const owned: Array<{ dispose(): void }> = [];
    const check = (name: HookName, actual: tf.Tensor, atol = 1e-5) => {
      assertEquals(actual.shape, cache.get(name).shape, `${name} shape`);
      assertClose(actual.dataSync(), cache.get(name).dataSync(), { atol, label: name });
    };
    try {
      const e = model.embed(IDS);
      owned.push(e);
      check("hook_embed", e.tokenEmbed);
      check("hook_pos_embed", e.posEmbed);

      let residual: tf.Tensor2D = e.residual;
      for (let layer = 0; layer < model.config.nLayers; layer++) {
        const p = `blocks.${layer}.`;
        check(`${p}hook_resid_pre` as HookName, residual, 1e-4);

        const a = model.attentionBlock(layer, residual);
        owned.push(a);
        check(`${p}ln1.hook_scale` as HookName, a.ln1.scale);
        check(`${p}ln1.hook_normalized` as HookName, a.ln1.normalized);
        check(`${p}attn.hook_q` as HookName, a.q);
        check(`${p}attn.hook_k` as HookName, a.k);
        check(`${p}attn.hook_v` as HookName, a.v);
        check(`${p}attn.hook_attn_scores` as HookName, a.scores);
        check(`${p}attn.hook_pattern` as HookName, a.pattern);
        check(`${p}attn.hook_z` as HookName, a.z);
        check(`${p}attn.hook_result` as HookName, a.result);
        check(`${p}hook_attn_out` as HookName, a.out);
        check(`${p}hook_resid_mid` as HookName, a.residOut, 1e-4);

        const ln1 = model.ln1(layer, residual);
        owned.push(ln1);
        check(`${p}ln1.hook_normalized` as HookName, ln1.normalized);

        const m = model.mlpBlock(layer, a.residOut);
        owned.push(m);
        check(`${p}ln2.hook_scale` as HookName, m.ln2.scale);
        check(`${p}ln2.hook_normalized` as HookName, m.ln2.normalized);
        check(`${p}mlp.hook_pre` as HookName, m.pre);
        check(`${p}mlp.hook_post` as HookName, m.post);
        check(`${p}hook_mlp_out` as HookName, m.out);
        check(`${p}hook_resid_post` as HookName, m.residOut, 1e-4);

        const ln2 = model.ln2(layer, a.residOut);
        owned.push(ln2);
        check(`${p}ln2.hook_scale` as HookName, ln2.scale);
        residual = m.residOut;
      }

      const u = model.unembed(residual);
      owned.push(u);
      check("ln_final.hook_scale", u.lnFinal.scale);
      check("ln_final.hook_normalized", u.lnFinal.normalized);
      const lnF = model.lnFinal(residual);
      owned.push(lnF);
      check("ln_final.hook_normalized", lnF.normalized);
      assertClose(u.logits.dataSync(), logits.dataSync(), { atol: 1e-4, label: "logits" });
    } finally {
      for (const r of owned) r.dispose();
      logits.dispose();
      cache.dispose();
    }
  });
});

test("stages accept cached residuals as arrays", async () => {
  // A residual passed as number[][] gives the same block output as the tensor itself.
  await withTiny(async (model) => {
    const { logits, cache } = model.runWithCache(IDS, { names: ["blocks.1.hook_resid_pre", "blocks.1.hook_resid_mid"] });
    try {
      const asArray = (await cache.get("blocks.1.hook_resid_pre").array()) as number[][];
      const a = model.attentionBlock(1, asArray);
      try {
        assertClose(a.residOut.dataSync(), cache.get("blocks.1.hook_resid_mid").dataSync(), { atol: 1e-5 });
      } finally {
        a.dispose();
      }
    } finally {
      logits.dispose();
      cache.dispose();
    }
  });
});

test("cache get suggests nearest name", async () => {
  const { ActivationCache } = await import("../src/hooks.ts");
  const cache = new ActivationCache();
  const t = tf.zeros([2, 2]);
  try {
    cache.set("blocks.0.attn.hook_pattern", t);
    await assertThrows(
      () => cache.get("blocks.0.attn.hook_patern" as never),
      RangeError,
      ["Unknown hook name", "blocks.0.attn.hook_pattern"],
    );
    await assertThrows(() => cache.get("blocks.1.attn.hook_pattern"), RangeError, "names filter");
  } finally {
    t.dispose();
    cache.dispose();
  }
});
