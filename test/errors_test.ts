/**
 * Error classes and messages for bad input. Each message names the value and the fix.
 */
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { assert, assertThrows, test } from "./_harness.ts";
import { generate } from "../src/generate.ts";
import type { HookName } from "../src/hooks.ts";
import { loadModel } from "../src/load_model.ts";
import type { Model } from "../src/model.ts";

function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

/** GPT-2 ids of "The quick brown fox jumps". */
const IDS = [464, 2068, 7586, 21831, 18045];

async function withTiny(fn: (model: Model) => void | Promise<void>): Promise<void> {
  const model = await loadModel(fixture("gpt2-tiny-f32"));
  try {
    await fn(model);
  } finally {
    model.dispose();
  }
}

/** Builds a `[rows, cols]` residual of ones. */
function ones(rows: number, cols: number): number[][] {
  return Array.from({ length: rows }, () => new Array<number>(cols).fill(1));
}

test("empty prompt is a RangeError", async () => {
  await withTiny(async (model) => {
    for (const empty of ["", [], new Int32Array(0)]) {
      await assertThrows(() => model.forward(empty), RangeError, ["empty", "at least one"]);
      await assertThrows(() => model.embed(empty), RangeError, ["empty"]);
      await assertThrows(() => model.runWithCache(empty), RangeError, ["empty"]);
      await assertThrows(() => generate(model, empty, { maxNewTokens: 1 }), RangeError, ["empty"]);
    }
  });
});

test("bad token ids are RangeErrors", async () => {
  await withTiny(async (model) => {
    const vocab = model.config.dVocab;
    const cases: Array<{ ids: number[]; shown: string; index: number }> = [
      { ids: [1, -1], shown: "-1", index: 1 },
      { ids: [vocab], shown: `${vocab}`, index: 0 },
      { ids: [3, 4, 1.5], shown: "1.5", index: 2 },
      { ids: [Number.NaN], shown: "NaN", index: 0 },
      { ids: [Infinity], shown: "Infinity", index: 0 },
    ];
    for (const { ids, shown, index } of cases) {
      await assertThrows(() => model.forward(ids), RangeError, [
        `token id ${shown} at index ${index}`,
        `[0, ${vocab})`,
      ]);
      await assertThrows(() => model.embed(ids), RangeError, [`token id ${shown}`]);
      await assertThrows(() => generate(model, ids, { maxNewTokens: 1 }), RangeError, [`token id ${shown}`]);
    }
    await assertThrows(() => model.forward(Int32Array.of(vocab + 5)), RangeError, [`token id ${vocab + 5}`]);
  });
});

test("forwardIncremental checks token ids", async () => {
  await withTiny(async (model) => {
    const vocab = model.config.dVocab;
    await assertThrows(() => model.forwardIncremental(Int32Array.of(3, vocab), undefined), RangeError, [
      `token id ${vocab} at index 1`,
    ]);
    await assertThrows(() => model.forwardIncremental(Int32Array.of(-1), undefined), RangeError, ["token id -1"]);
    await assertThrows(() => model.forwardIncremental(new Int32Array(0), undefined), RangeError, ["empty"]);
  });
});

test("wrong token input type is a TypeError", async () => {
  await withTiny(async (model) => {
    await assertThrows(() => model.forward(42 as unknown as string), TypeError, ["number 42", "string"]);
    await assertThrows(() => model.forward(Float32Array.of(1, 2) as unknown as Int32Array), TypeError, ["got Float32Array"]);
  });
});

test("layer out of range is a RangeError", async () => {
  await withTiny(async (model) => {
    const residual = ones(3, model.config.dModel);
    const n = model.config.nLayers;
    const stages: Array<[string, (layer: number) => unknown]> = [
      ["attentionBlock", (layer) => model.attentionBlock(layer, residual)],
      ["mlpBlock", (layer) => model.mlpBlock(layer, residual)],
      ["ln1", (layer) => model.ln1(layer, residual)],
      ["ln2", (layer) => model.ln2(layer, residual)],
    ];
    for (const [name, run] of stages) {
      for (const layer of [n, -1, 0.5, Number.NaN, 100]) {
        await assertThrows(() => run(layer), RangeError, [name, `layer ${layer}`, `[0, ${n})`, "nLayers"]);
      }
    }
  });
});

test("non-finite residual is a RangeError", async () => {
  await withTiny(async (model) => {
    const { dModel } = model.config;
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      const rows = ones(3, dModel);
      rows[1]![5] = bad;
      const asTensor = tf.tensor2d(rows);
      try {
        const runs: Array<[string, () => unknown]> = [
          ["attentionBlock(0)", () => model.attentionBlock(0, rows)],
          ["mlpBlock(1)", () => model.mlpBlock(1, asTensor)],
          ["ln1 of block 0", () => model.ln1(0, rows)],
          ["ln2 of block 1", () => model.ln2(1, asTensor)],
          ["ln_final", () => model.lnFinal(rows)],
          ["unembed", () => model.unembed(asTensor)],
        ];
        for (const [what, run] of runs) {
          await assertThrows(run, RangeError, [what, "NaN or Infinity", "finite values"]);
        }
      } finally {
        asTensor.dispose();
      }
    }
  });
});

test("residual of wrong shape is a TypeError", async () => {
  await withTiny(async (model) => {
    const { dModel } = model.config;
    const wrongWidth = tf.zeros([3, dModel + 1]);
    const rank1 = tf.zeros([dModel]);
    const rank3 = tf.zeros([1, 3, dModel]);
    try {
      const cases: Array<[tf.Tensor | number[] | number[][], string[]]> = [
        [wrongWidth, ["axis dModel has size 33, expected 32", `[pos, dModel=${dModel}]`]],
        [ones(2, 5), ["axis dModel has size 5"]],
        [rank1, ["rank 1, not 2", `[pos, dModel=${dModel}]`]],
        [new Array<number>(dModel).fill(0), ["rank 1, not 2"]],
        [rank3, ["rank 3, not 2", "[1, 3, 32]"]],
      ];
      for (const [residual, parts] of cases) {
        const input = residual as tf.Tensor;
        await assertThrows(() => model.attentionBlock(0, input), TypeError, ["attentionBlock(0)", ...parts]);
        await assertThrows(() => model.mlpBlock(0, input), TypeError, ["mlpBlock(0)", ...parts]);
        await assertThrows(() => model.ln2(1, input), TypeError, ["ln2 of block 1", ...parts]);
        await assertThrows(() => model.unembed(input), TypeError, ["unembed", ...parts]);
      }
      const empty = tf.zeros([0, dModel]);
      await assertThrows(() => model.unembed(empty), RangeError, ["no positions"]);
      empty.dispose();
      await assertThrows(() => model.lnFinal("text" as unknown as number[][]), TypeError, ["tf.Tensor or number[][]"]);
      const disposed = tf.zeros([2, dModel]);
      disposed.dispose();
      await assertThrows(() => model.attentionBlock(0, disposed), TypeError, ["disposed"]);
    } finally {
      wrongWidth.dispose();
      rank1.dispose();
      rank3.dispose();
    }
  });
});

test("ragged residual is a TypeError", async () => {
  await withTiny(async (model) => {
    const ragged = [new Array<number>(model.config.dModel).fill(1), [1, 2]];
    await assertThrows(() => model.attentionBlock(0, ragged), TypeError, ["attentionBlock(0)"]);
  });
});

test("bad sampling options are RangeErrors", async () => {
  await withTiny(async (model) => {
    const cases: Array<[Record<string, number>, string[]]> = [
      [{ topP: 0 }, ["topP 0", "(0, 1]"]],
      [{ topP: 1.5 }, ["topP 1.5", "(0, 1]"]],
      [{ topP: -0.2 }, ["topP -0.2"]],
      [{ topP: Number.NaN }, ["topP NaN"]],
      [{ topK: 0 }, ["topK 0", "integer >= 1"]],
      [{ topK: -4 }, ["topK -4"]],
      [{ topK: 2.5 }, ["topK 2.5"]],
      [{ temperature: -1 }, ["temperature -1", ">= 0"]],
      [{ temperature: Infinity }, ["temperature Infinity"]],
      [{ maxNewTokens: 0 }, ["maxNewTokens 0", "positive integer"]],
      [{ maxNewTokens: -2 }, ["maxNewTokens -2"]],
      [{ maxNewTokens: 1.5 }, ["maxNewTokens 1.5"]],
    ];
    for (const [options, parts] of cases) {
      await assertThrows(() => generate(model, IDS, options), RangeError, parts);
    }
    await assertThrows(() => generate(model, IDS, { topK: "5" as unknown as number }), TypeError, ["topK", "number"]);
    await assertThrows(() => generate(model, IDS, { stop: "" }), RangeError, ["stop string", "non-empty"]);
  });
});

test("prompt longer than nCtx is a RangeError", async () => {
  await withTiny(async (model) => {
    const nCtx = model.config.nCtx;
    const long = Array.from({ length: nCtx + 1 }, (_, i) => i);
    await assertThrows(() => model.forward(long), RangeError, [`${nCtx + 1} tokens`, "nCtx", `shorten it to ${nCtx}`]);
    await assertThrows(() => model.runWithCache(long), RangeError, [`${nCtx + 1} tokens`]);
    await assertThrows(() => generate(model, long, { maxNewTokens: 1 }), RangeError, [`${nCtx + 1} tokens`]);
    await assertThrows(() => model.embed(IDS, { offset: nCtx - 2 }), RangeError, [
      `position ${nCtx + 2}`,
      `${nCtx} positions`,
    ]);
    await assertThrows(() => model.embed(IDS, { offset: -1 }), RangeError, ["offset -1", "non-negative integer"]);
  });
});

test("unknown hook names are RangeErrors", async () => {
  await withTiny(async (model) => {
    const typo = "blocks.0.attn.hook_patern" as HookName;
    const suggestion = '"blocks.0.attn.hook_pattern"';
    await assertThrows(() => model.runWithCache(IDS, { names: [typo] }), RangeError, [`"${typo}"`, suggestion]);
    await assertThrows(() => model.runWithHooks(IDS, { hooks: [{ name: typo, fn: () => {} }] }), RangeError, [suggestion]);
    await assertThrows(
      () => generate(model, IDS, { maxNewTokens: 1, hooks: [{ name: typo, fn: () => {} }] }),
      RangeError,
      [suggestion],
    );
    await assertThrows(
      () => model.forwardIncremental(Int32Array.from(IDS), undefined, [{ name: typo, fn: () => {} }]),
      RangeError,
      [suggestion],
    );
    const { logits, cache } = model.runWithCache(IDS, { names: ["hook_embed"] });
    try {
      await assertThrows(() => cache.get("blocks.0.hook_resid_pre"), RangeError, ["not in this cache", "names filter"]);
    } finally {
      logits.dispose();
      cache.dispose();
    }
  });
});

test("bad hooks are TypeErrors", async () => {
  await withTiny(async (model) => {
    await assertThrows(
      () => model.runWithHooks(IDS, { hooks: [{ name: "blocks.1.hook_mlp_out", fn: () => tf.zeros([5, 31]) }] }),
      TypeError,
      ['"blocks.1.hook_mlp_out"', "[5, 31]", "expected [5, 32]"],
    );
    await assertThrows(
      () => model.runWithHooks(IDS, { hooks: [{ name: "hook_embed", fn: () => 3 as unknown as tf.Tensor }] }),
      TypeError,
      ['"hook_embed"', "number 3", "tf.Tensor"],
    );
    await assertThrows(
      () => model.runWithHooks(IDS, { hooks: [{ name: "hook_embed" } as unknown as { name: HookName; fn: () => void }] }),
      TypeError,
      ["index 0", "fn"],
    );
    await assertThrows(
      () => model.runWithHooks(IDS, { hooks: "hook_embed" as unknown as [] }),
      TypeError,
      ["array"],
    );
  });
});

test("disposed model says to reload", async () => {
  const model = await loadModel(fixture("gpt2-tiny-f32"));
  const residual = ones(2, model.config.dModel);
  model.dispose();
  model.dispose(); // a second dispose is harmless

  const calls: Array<[string, () => unknown]> = [
    ["toTokens", () => model.toTokens(IDS)],
    ["embed", () => model.embed(IDS)],
    ["ln1", () => model.ln1(0, residual)],
    ["ln2", () => model.ln2(0, residual)],
    ["lnFinal", () => model.lnFinal(residual)],
    ["attentionBlock", () => model.attentionBlock(0, residual)],
    ["mlpBlock", () => model.mlpBlock(0, residual)],
    ["unembed", () => model.unembed(residual)],
    ["forward", () => model.forward(IDS)],
    ["runWithCache", () => model.runWithCache(IDS)],
    ["runWithHooks", () => model.runWithHooks(IDS, { hooks: [] })],
    ["forwardIncremental", () => model.forwardIncremental(Int32Array.from(IDS), undefined)],
    ["generate", () => generate(model, IDS, { maxNewTokens: 1 })],
  ];
  const failures: string[] = [];
  for (const [name, call] of calls) {
    try {
      await assertThrows(call, Error, ["has been disposed", "loadModel()"]);
    } catch (error) {
      failures.push(`${name}: ${(error as Error).message}`);
    }
  }
  assert(failures.length === 0, `calls on a disposed model without the disposed message:\n${failures.join("\n")}`);
});

test("topK rejects NaN logits", async () => {
  const { topKOfRow } = await import("../src/results.ts");
  await assertThrows(() => topKOfRow([0.5, NaN, 1], 2, String), RangeError, ["NaN", "id 1"]);
  await assertThrows(() => topKOfRow([-Infinity, -Infinity], 1, String), RangeError, "-Infinity");
});

test("forwardIncremental rejects a bad cache", async () => {
  const { KVCache } = await import("../src/model.ts");
  const model = await loadModel(fixture("gpt2-tiny-f32"));
  const before = tf.memory().numTensors;
  try {
    const first = model.forwardIncremental(Int32Array.of(1, 2), undefined);
    first.logits.dispose();
    first.cache.dispose();
    await assertThrows(() => model.forwardIncremental(Int32Array.of(3), first.cache), TypeError, "disposed");
    await assertThrows(() => model.forwardIncremental(Int32Array.of(3), new KVCache([])), TypeError, "0 layers");
    assert(tf.memory().numTensors === before, "tensors leaked by rejected calls");
  } finally {
    model.dispose();
  }
});
