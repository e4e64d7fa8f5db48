/**
 * Generation: the KV cache against full recomputation, greedy and seeded sampling, the same ids
 * on cpu and wasm, stop conditions, option checks and hooks during generation.
 */
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { assert, assertClose, assertEquals, assertThrows, test } from "./_harness.ts";
import { getBackend, setBackend } from "../src/backend.ts";
import { generate } from "../src/generate.ts";
import { loadModel } from "../src/load_model.ts";
import type { KVCache, Model } from "../src/model.ts";
import { argmax, createRng, sampleFromLogits } from "../src/sampling.ts";
import { ENDOFTEXT_ID } from "../src/tokenizer.ts";

function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

const TINY = fixture("gpt2-tiny-f32");
/** GPT-2 ids of "The quick brown fox jumps". */
const PROMPT = [464, 2068, 7586, 21831, 18045];

async function withTiny(fn: (model: Model) => void | Promise<void>): Promise<void> {
  const model = await loadModel(TINY);
  try {
    await fn(model);
  } finally {
    model.dispose();
  }
}

/** Returns the last row of a `[pos, dVocab]` tensor and frees the tensor. */
function lastRow(logits: tf.Tensor2D): Float32Array {
  const [nPos, dVocab] = logits.shape;
  const all = logits.dataSync() as Float32Array;
  logits.dispose();
  return all.slice((nPos - 1) * dVocab, nPos * dVocab);
}

/**
 * Recomputes the whole sequence without a cache, stage by stage, and returns the last
 * position's logits. Only the last row goes through the unembedding, which keeps 50 steps
 * affordable on the cpu backend; "cached activations equal the stages" in hooks_test.ts ties
 * the stages to forward().
 */
function recomputeLastLogits(model: Model, ids: number[]): Float32Array {
  const owned: Array<{ dispose(): void }> = [];
  try {
    const e = model.embed(ids);
    owned.push(e);
    let residual = e.residual;
    for (let layer = 0; layer < model.config.nLayers; layer++) {
      const a = model.attentionBlock(layer, residual);
      const m = model.mlpBlock(layer, a.residOut);
      owned.push(a, m);
      residual = m.residOut;
    }
    const last = tf.slice(residual, [ids.length - 1, 0], [1, -1]); // [pos, dModel] -> [1, dModel]
    owned.push(last);
    const u = model.unembed(last);
    owned.push(u);
    return u.logits.dataSync() as Float32Array;
  } finally {
    for (const r of owned) r.dispose();
  }
}

test("KV cache matches full recompute", async () => {
  await withTiny((model) => {
    const steps = 50;
    // topK keeps the sampled set well separated, so 1e-6 differences between the two paths
    // cannot reorder candidates and flip a draw.
    const options = { temperature: 1, topK: 40 };
    const rngCached = createRng(7);
    const rngFull = createRng(7);
    const sequence = [...PROMPT];
    let input = Int32Array.from(PROMPT);
    let cache: KVCache | undefined;
    try {
      for (let step = 0; step < steps; step++) {
        const out = model.forwardIncremental(input, cache);
        cache?.dispose();
        cache = out.cache;
        assertEquals(cache.length, sequence.length, `cache length at step ${step}`);
        assertEquals(out.logits.shape[0], input.length, `logit rows at step ${step}`);
        const cached = lastRow(out.logits);
        const full = recomputeLastLogits(model, sequence);
        assertClose(cached, full, { atol: 1e-4, label: `logits at step ${step}` });
        if (step === 0 || step === steps - 1) {
          assertClose(cached, lastRow(model.forward(sequence)), { atol: 1e-4, label: `forward() at step ${step}` });
        }

        const idCached = sampleFromLogits(cached, options, rngCached).id;
        const idFull = sampleFromLogits(full, options, rngFull).id;
        assertEquals(idCached, idFull, `id at step ${step}`);
        sequence.push(idCached);
        input = Int32Array.of(idCached);
      }
    } finally {
      cache?.dispose();
    }
    assertEquals(sequence.length, PROMPT.length + steps);
    assert(new Set(sequence.slice(PROMPT.length)).size > 10, "sampling at temperature 1 should vary the ids");
  });
});

test("generate matches forward step by step", async () => {
  // generate() itself, not only forwardIncremental, agrees with sampling from full forward passes.
  await withTiny(async (model) => {
    const options = { temperature: 0.8, topK: 40, topP: 0.95 };
    const out = await generate(model, PROMPT, { ...options, maxNewTokens: 6, seed: 99, stopAtEndOfText: false });
    const rng = createRng(99);
    const sequence = [...PROMPT];
    for (let step = 0; step < 6; step++) {
      const { id, prob } = sampleFromLogits(lastRow(model.forward(sequence)), options, rng);
      assertEquals(out.ids[step], id, `id at step ${step}`);
      assertClose(out.steps[step]!.prob, prob, { atol: 1e-4, label: `prob at step ${step}` });
      assertEquals(out.steps[step]!.position, sequence.length, `position at step ${step}`);
      sequence.push(id);
    }
    assertEquals(out.promptIds, PROMPT);
    assertEquals(out.seed, 99);
    assertEquals(out.stopReason, "maxNewTokens");
    assertEquals(out.text, model.tokenizer.decode(out.ids));
  });
});

test("temperature 0 takes the argmax", async () => {
  await withTiny(async (model) => {
    const out = await generate(model, PROMPT, { maxNewTokens: 5, temperature: 0, stopAtEndOfText: false });
    const sequence = [...PROMPT];
    for (let step = 0; step < 5; step++) {
      const id = argmax(lastRow(model.forward(sequence)));
      assertEquals(out.ids[step], id, `greedy id at step ${step}`);
      assertEquals(out.steps[step]!.prob, 1, `greedy prob at step ${step}`);
      sequence.push(id);
    }
  });
});

test("seeded generation reproduces", async () => {
  await withTiny(async (model) => {
    const options = { maxNewTokens: 12, temperature: 1, stopAtEndOfText: false };
    const first = await generate(model, PROMPT, { ...options, seed: 5 });
    const again = await generate(model, PROMPT, { ...options, seed: 5 });
    const other = await generate(model, PROMPT, { ...options, seed: 6 });
    assertEquals(again.ids, first.ids, "same seed");
    assert(other.ids.join() !== first.ids.join(), `seeds 5 and 6 gave the same ids ${first.ids}`);
    assertEquals(first.ids.length, 12);

    const unseeded = await generate(model, PROMPT, { ...options, maxNewTokens: 3 });
    assert(Number.isSafeInteger(unseeded.seed), `a random seed is reported, got ${unseeded.seed}`);
    const replay = await generate(model, PROMPT, { ...options, maxNewTokens: 3, seed: unseeded.seed });
    assertEquals(replay.ids, unseeded.ids, "the reported seed replays the run");
  });
});

test("seed gives same ids on cpu and wasm", async () => {
  const original = getBackend();
  const options = { maxNewTokens: 20, seed: 123, temperature: 1, topK: 50, stopAtEndOfText: false };
  const idsOn = async (backend: "cpu" | "wasm"): Promise<number[]> => {
    assertEquals(await setBackend(backend, { fallback: false }), backend, "backend started");
    const model = await loadModel(TINY);
    try {
      return (await generate(model, PROMPT, options)).ids;
    } finally {
      model.dispose();
    }
  };
  try {
    const cpu = await idsOn("cpu");
    const wasm = await idsOn("wasm");
    assertEquals(wasm, cpu, "ids on wasm against cpu");
    assertEquals(cpu.length, 20);
  } finally {
    await setBackend(original as "cpu" | "wasm");
  }
  assertEquals(getBackend(), original, "backend restored");
});

test("seed 2 same ids without topK", async () => {
  // Without topK every token is a candidate, and many have nearly equal probabilities. The
  // sampler walks the candidates sorted by probability, so differences of 1e-6 between cpu and
  // wasm logits reorder them and move the draw. Seed 2 diverges at step 9.
  const original = getBackend();
  const options = { maxNewTokens: 12, seed: 2, temperature: 1, stopAtEndOfText: false };
  const idsOn = async (backend: "cpu" | "wasm"): Promise<number[]> => {
    await setBackend(backend, { fallback: false });
    const model = await loadModel(TINY);
    try {
      return (await generate(model, PROMPT, options)).ids;
    } finally {
      model.dispose();
    }
  };
  try {
    const cpu = await idsOn("cpu");
    const wasm = await idsOn("wasm");
    assertEquals(wasm, cpu, "ids on wasm against cpu");
  } finally {
    await setBackend(original as "cpu" | "wasm");
  }
});

test("stop string ends generation", async () => {
  await withTiny(async (model) => {
    const options = { maxNewTokens: 12, seed: 3, temperature: 1, topK: 100, stopAtEndOfText: false };
    const free = await generate(model, PROMPT, options);

    // Stop on the text of the fourth token; generation ends where that text first appears.
    const stop = model.tokenizer.decode([free.ids[3]!]);
    assert(stop.length > 0, "the fourth token decodes to no text: pick another seed");
    assert(!stop.includes("\uFFFD"), `the fourth token is a partial character ${JSON.stringify(stop)}: pick another seed`);
    let end = 0;
    while (!model.tokenizer.decode(free.ids.slice(0, end + 1)).includes(stop)) end++;

    const stopped = await generate(model, PROMPT, { ...options, stop });
    assertEquals(stopped.stopReason, "stop");
    assertEquals(stopped.ids, free.ids.slice(0, end + 1), "ids up to the stop string");
    assert(stopped.text.includes(stop), "the stop string is kept in the text");

    const list = await generate(model, PROMPT, { ...options, stop: ["\u0000never", stop] });
    assertEquals(list.ids, stopped.ids, "a list of stop strings");
  });
});

test("stopAtEndOfText ends on endoftext", async () => {
  // Tied weights: logits = normalized @ W_E^T, so a final normalized residual of 10 * W_E[eot]
  // makes <|endoftext|> the argmax on this fixture (checked below, not assumed).
  await withTiny(async (model) => {
    const eotRow = tf.tidy(() => tf.mul(tf.slice(model.W_E, [ENDOFTEXT_ID, 0], [1, -1]), 10)); // [1, dModel]
    const hooks = [{ name: "ln_final.hook_normalized" as const, fn: (x: tf.Tensor) => tf.tile(eotRow, [x.shape[0]!, 1]) }];
    try {
      const check = tf.tidy(() => argmax(tf.matMul(eotRow, model.W_U).dataSync()));
      assertEquals(check, ENDOFTEXT_ID, "the hook makes <|endoftext|> the argmax");

      const stopped = await generate(model, PROMPT, { maxNewTokens: 5, temperature: 0, hooks });
      assertEquals(stopped.stopReason, "endOfText");
      assertEquals(stopped.ids, [ENDOFTEXT_ID]);

      const continued = await generate(model, PROMPT, { maxNewTokens: 3, temperature: 0, hooks, stopAtEndOfText: false });
      assertEquals(continued.stopReason, "maxNewTokens");
      assertEquals(continued.ids, [ENDOFTEXT_ID, ENDOFTEXT_ID, ENDOFTEXT_ID]);
    } finally {
      eotRow.dispose();
    }
  });
});

test("maxNewTokens must be a positive integer", async () => {
  await withTiny(async (model) => {
    for (const bad of [0, -3, 2.5, Number.NaN, Infinity]) {
      await assertThrows(() => generate(model, PROMPT, { maxNewTokens: bad }), RangeError, [
        `maxNewTokens ${bad}`,
        "positive integer",
      ]);
    }
    const single = await generate(model, PROMPT, { maxNewTokens: 1, seed: 1 });
    assertEquals(single.ids.length, 1);
  });
});

test("prompt plus maxNewTokens beyond nCtx throws", async () => {
  await withTiny(async (model) => {
    const nCtx = model.config.nCtx;
    await assertThrows(
      () => generate(model, PROMPT, { maxNewTokens: nCtx - PROMPT.length + 1 }),
      RangeError,
      [`${nCtx}`, `maxNewTokens <= ${nCtx - PROMPT.length}`],
    );
    // Exactly filling the context is allowed.
    const longPrompt = Array.from({ length: nCtx - 2 }, (_, i) => (i * 37) % 1000);
    const out = await generate(model, longPrompt, { maxNewTokens: 2, seed: 1, stopAtEndOfText: false });
    assertEquals(out.ids.length, 2);
  });
});

test("generate hooks see new positions only", async () => {
  await withTiny(async (model) => {
    const residShapes: number[][] = [];
    const patternShapes: number[][] = [];
    const hooks = [
      { name: "blocks.0.hook_resid_pre" as const, fn: (x: tf.Tensor) => void residShapes.push(x.shape) },
      { name: "blocks.1.attn.hook_pattern" as const, fn: (x: tf.Tensor) => void patternShapes.push(x.shape) },
    ];
    const out = await generate(model, PROMPT, { maxNewTokens: 4, seed: 2, stopAtEndOfText: false, hooks });
    assertEquals(out.ids.length, 4);
    const d = model.config.dModel;
    const h = model.config.nHeads;
    const n = PROMPT.length;
    assertEquals(residShapes, [[n, d], [1, d], [1, d], [1, d]], "resid_pre shapes per step");
    assertEquals(patternShapes, [[h, n, n], [h, 1, n + 1], [h, 1, n + 2], [h, 1, n + 3]], "pattern shapes per step");
  });
});

test("generate hooks change the ids", async () => {
  await withTiny(async (model) => {
    const options = { maxNewTokens: 4, temperature: 0, stopAtEndOfText: false };
    const clean = await generate(model, PROMPT, options);
    const ablated = await generate(model, PROMPT, {
      ...options,
      hooks: [{ name: (n) => n.endsWith("hook_attn_out"), fn: (x) => tf.zerosLike(x) }],
    });
    assert(clean.ids.join() !== ablated.ids.join(), `ablating all attention left the ids ${clean.ids}`);

    // The same ablation by hand: greedy over runWithHooks on the growing sequence.
    const sequence = [...PROMPT];
    for (let step = 0; step < options.maxNewTokens; step++) {
      const logits = model.runWithHooks(sequence, {
        hooks: [{ name: (n) => n.endsWith("hook_attn_out"), fn: (x) => tf.zerosLike(x) }],
      });
      const id = argmax(lastRow(logits));
      assertEquals(ablated.ids[step], id, `ablated id at step ${step}`);
      sequence.push(id);
    }
  });
});

test("onToken reports each step", async () => {
  await withTiny(async (model) => {
    const seen: number[] = [];
    const out = await generate(model, PROMPT, {
      maxNewTokens: 5,
      seed: 4,
      stopAtEndOfText: false,
      onToken: (step) => seen.push(step.id),
    });
    assertEquals(seen, out.ids);
    assertEquals(out.steps.map((s) => s.text), out.ids.map((id) => model.tokenText(id)));
  });
});
