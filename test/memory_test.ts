/**
 * Tensor bookkeeping: repeated stage calls, forward passes, caches and generation leave
 * tf.memory().numTensors where it was, on success and on error.
 */
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { assertEquals, assertThrows, test } from "./_harness.ts";
import { generate } from "../src/generate.ts";
import { loadModel } from "../src/load_model.ts";
import type { KVCache, Model } from "../src/model.ts";

function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

const CALLS = 200;
/** Ids below the micro fixture's vocabulary of 64. */
const IDS = [5, 17, 63, 0, 17];

async function withModel(name: string, fn: (model: Model) => void | Promise<void>): Promise<void> {
  const model = await loadModel(fixture(name));
  try {
    await fn(model);
  } finally {
    model.dispose();
  }
}

/** Runs `fn` `times` times and checks that the tensor count is back where it started. */
async function assertNoLeak(what: string, times: number, fn: () => void | Promise<void>): Promise<void> {
  const before = tf.memory().numTensors;
  for (let i = 0; i < times; i++) await fn();
  assertEquals(tf.memory().numTensors, before, `tensors after ${times} calls of ${what}`);
}

test("stages leave no tensors", async () => {
  await withModel("gpt2-micro", async (model) => {
    const residual = model.embed(IDS);
    const asArray = residual.residual.arraySync();
    try {
      await assertNoLeak("embed", CALLS, () => model.embed(IDS).dispose());
      await assertNoLeak("embed with offset", CALLS, () => model.embed(IDS, { offset: 3 }).dispose());
      await assertNoLeak("ln1", CALLS, () => model.ln1(0, residual.residual).dispose());
      await assertNoLeak("ln2", CALLS, () => model.ln2(1, residual.residual).dispose());
      await assertNoLeak("lnFinal", CALLS, () => model.lnFinal(residual.residual).dispose());
      await assertNoLeak("attentionBlock", CALLS, () => model.attentionBlock(1, residual.residual).dispose());
      await assertNoLeak("attentionBlock on number[][]", CALLS, () => model.attentionBlock(0, asArray).dispose());
      await assertNoLeak("mlpBlock", CALLS, () => model.mlpBlock(0, residual.residual).dispose());
      await assertNoLeak("unembed and topK", CALLS, () => {
        const u = model.unembed(residual.residual);
        u.topK(5);
        u.topK(3, 0);
        u.dispose();
      });
    } finally {
      residual.dispose();
    }
  });
});

test("stage on int32 residual leaves none", async () => {
  // A non-float32 residual is cast inside the stage; the cast copy must be freed too.
  await withModel("gpt2-micro", async (model) => {
    const ints = tf.ones([IDS.length, model.config.dModel], "int32");
    try {
      await assertNoLeak("attentionBlock on int32", CALLS, () => model.attentionBlock(0, ints).dispose());
    } finally {
      ints.dispose();
    }
  });
});

test("forward passes leave no tensors", async () => {
  await withModel("gpt2-micro", async (model) => {
    await assertNoLeak("forward", CALLS, () => model.forward(IDS).dispose());
    await assertNoLeak("runWithCache", CALLS, () => {
      const { logits, cache } = model.runWithCache(IDS);
      logits.dispose();
      cache.dispose();
    });
    await assertNoLeak("runWithCache with names", CALLS, () => {
      const { logits, cache } = model.runWithCache(IDS, { names: ["blocks.1.attn.hook_result", "hook_embed"] });
      logits.dispose();
      cache.dispose();
    });
    await assertNoLeak("runWithHooks", CALLS, () => {
      model.runWithHooks(IDS, {
        hooks: [
          { name: "blocks.0.attn.hook_pattern", fn: (x) => tf.mul(x, 1) },
          { name: "blocks.1.attn.hook_result", fn: (x) => tf.mul(x, 0.5) },
          { name: (n) => n.endsWith("hook_scale"), fn: () => {} },
        ],
      }).dispose();
    });
  });
});

test("KV cache steps leave no tensors", async () => {
  await withModel("gpt2-micro", async (model) => {
    await assertNoLeak("forwardIncremental over 16 positions", 20, () => {
      let cache: KVCache | undefined;
      for (let pos = 0; pos < model.config.nCtx; pos++) {
        const out = model.forwardIncremental(Int32Array.of(pos % 64), cache);
        cache?.dispose();
        cache = out.cache;
        out.logits.dispose();
      }
      cache?.dispose();
    });
  });
});

test("100 generated tokens leave none", async () => {
  await withModel("gpt2-tiny-ctx128", async (model) => {
    const prompt = [464, 2068, 7586, 21831, 18045];
    const before = tf.memory().numTensors;
    const out = await generate(model, prompt, { maxNewTokens: 100, seed: 1, topK: 20, stopAtEndOfText: false });
    assertEquals(out.ids.length, 100, "generated tokens");
    assertEquals(tf.memory().numTensors, before, "tensors after generation");

    const hooked = await generate(model, prompt, {
      maxNewTokens: 20,
      seed: 1,
      topK: 20,
      stopAtEndOfText: false,
      hooks: [{ name: "blocks.0.hook_attn_out", fn: (x) => tf.mul(x, 0.5) }],
    });
    assertEquals(hooked.ids.length, 20);
    assertEquals(tf.memory().numTensors, before, "tensors after generation with hooks");
  });
});

test("failed calls leave no tensors", async () => {
  await withModel("gpt2-micro", async (model) => {
    const { dModel } = model.config;
    const nan = Array.from({ length: 3 }, (_, i) => new Array<number>(dModel).fill(i === 1 ? Number.NaN : 0.5));
    const before = tf.memory().numTensors;
    const wrongWidth = tf.zeros([3, dModel + 1]);
    try {
      for (let i = 0; i < 20; i++) {
        await assertThrows(() => model.attentionBlock(0, nan), RangeError);
        await assertThrows(() => model.mlpBlock(1, wrongWidth), TypeError);
        await assertThrows(() => model.unembed([[1, 2]]), TypeError);
        await assertThrows(
          () => model.runWithHooks(IDS, { hooks: [{ name: "blocks.1.hook_resid_mid", fn: () => tf.zeros([2, 2]) }] }),
          TypeError,
        );
        await assertThrows(
          () =>
            model.runWithHooks(IDS, {
              hooks: [{
                name: "blocks.0.mlp.hook_post",
                fn: () => {
                  throw new Error("hook failed");
                },
              }],
            }),
          Error,
          "hook failed",
        );
        await assertThrows(
          () => model.runWithHooks(IDS, { hooks: [{ name: "hook_embed", fn: () => tf.zeros([1]) }] }),
          TypeError,
        );
        await assertThrows(
          () =>
            generate(model, IDS, {
              maxNewTokens: 3,
              seed: 1,
              hooks: [{ name: "ln_final.hook_normalized", fn: (x) => (x.shape[0] === 1 ? tf.zeros([2, 2]) : undefined) }],
            }),
          TypeError,
        );
      }
    } finally {
      wrongWidth.dispose();
    }
    assertEquals(tf.memory().numTensors, before, "tensors after failed calls");
  });
});
