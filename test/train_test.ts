import * as tf from "@tensorflow/tfjs-core";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertClose, assertEquals, test } from "./_harness.ts";
import {
  encodeSafetensors,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  writeSafetensors,
} from "../src/safetensors_write.ts";
import { evaluationBatches, loadTokens, splitTokens, unigramLoss } from "../src/train/data.ts";
import { fullSoftmaxLoss } from "../src/train/evaluate.ts";
import { expandParameters, fromCheckpointNames, writeHuggingFaceModel } from "../src/train/export.ts";
import type { TrainModelConfig } from "../src/train/model.ts";
import { decodeSafetensors, readSafetensors } from "../src/train/safetensors_read.ts";
import { DEFAULT_HYPERPARAMETERS, learningRateAt, Trainer, type Hyperparameters } from "../src/train/trainer.ts";
import { buildCompactVocab, expandEmbedding } from "../src/train/vocab.ts";

const DATA = new URL("../data/tinyshakespeare.txt", import.meta.url);

// --- float16 conversion -------------------------------------------------------------------

test("float16 exact values", () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite float16
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
  ];
  for (const [value, bits] of cases) {
    assertEquals(float32ToFloat16Bits(value), bits, `bits of ${value}`);
    assertEquals(float16BitsToFloat32(bits), value, `value of 0x${bits.toString(16)}`);
  }
});

test("float16 negative zero", () => {
  assertEquals(float32ToFloat16Bits(-0), 0x8000);
  assert(Object.is(float16BitsToFloat32(0x8000), -0), "0x8000 should decode to -0");
});

test("float16 rounds to nearest even", () => {
  // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1).
  assertEquals(float32ToFloat16Bits(1 + 2 ** -11), 0x3c00);
  // 1 + 3 * 2^-11 lies halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even).
  assertEquals(float32ToFloat16Bits(1 + 3 * 2 ** -11), 0x3c02);
  // Just above halfway rounds up.
  assertEquals(float32ToFloat16Bits(1 + 2 ** -11 + 2 ** -20), 0x3c01);
  // Subnormal ties: 2^-25 is halfway between 0 and 2^-24 and goes to 0; 3 * 2^-25 goes to 2 * 2^-24.
  assertEquals(float32ToFloat16Bits(2 ** -25), 0x0000);
  assertEquals(float32ToFloat16Bits(3 * 2 ** -25), 0x0002);
  assertEquals(float32ToFloat16Bits(2 ** -25 + 2 ** -35), 0x0001);
  // A mantissa carry moves into the next binade: just below 2 rounds to 2.
  assertEquals(float32ToFloat16Bits(2 - 2 ** -12), 0x4000);
  // The largest subnormal plus half an ulp rounds up to the smallest normal.
  assertEquals(float32ToFloat16Bits(1023.5 * 2 ** -24), 0x0400);
});

test("float16 overflow and NaN", () => {
  assertEquals(float32ToFloat16Bits(65519), 0x7bff); // below the halfway point 65520
  assertEquals(float32ToFloat16Bits(65520), 0x7c00); // halfway to 65536 ties to even: Infinity
  assertEquals(float32ToFloat16Bits(1e6), 0x7c00);
  assertEquals(float32ToFloat16Bits(-1e6), 0xfc00);
  assertEquals(float32ToFloat16Bits(Infinity), 0x7c00);
  assertEquals(float32ToFloat16Bits(-Infinity), 0xfc00);
  assertEquals(float16BitsToFloat32(0x7c00), Infinity);
  const nan = float32ToFloat16Bits(NaN);
  assertEquals(nan & 0x7c00, 0x7c00, `exponent bits of NaN 0x${nan.toString(16)}`);
  assert((nan & 0x3ff) !== 0, `NaN 0x${nan.toString(16)} needs a nonzero mantissa`);
  assert(Number.isNaN(float16BitsToFloat32(nan)), "NaN bits should decode to NaN");
});

test("float16 round trip of all bit patterns", () => {
  for (let bits = 0; bits < 0x10000; bits++) {
    const value = float16BitsToFloat32(bits);
    if (Number.isNaN(value)) continue;
    const back = float32ToFloat16Bits(value);
    if (back !== bits) throw new Error(`0x${bits.toString(16)} -> ${value} -> 0x${back.toString(16)}`);
  }
});

// --- safetensors layout -------------------------------------------------------------------

test("safetensors header layout", () => {
  const bytes = encodeSafetensors({
    "b.weight": { dtype: "F16", shape: [3], data: new Float32Array([1, -2, 0.5]) },
    "a.bias": { dtype: "F32", shape: [2, 1], data: new Float32Array([3, 4]) },
  });
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assertEquals((8 + headerLength) % 8, 0, "data start alignment");
  const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
  assert(headerText.startsWith('{"__metadata__":{"format":"pt"},"a.bias":'), `header starts ${headerText.slice(0, 60)}`);
  assert(/^[^ ]*\} *$/.test(headerText), "header is compact JSON padded with trailing spaces");
  assertEquals(bytes.length, 8 + headerLength + 2 * 4 + 3 * 2, "file size");

  const decoded = decodeSafetensors(bytes);
  assertEquals(decoded.headerNames, ["a.bias", "b.weight"]);
  assertEquals(Array.from(decoded.tensors["a.bias"]!.data), [3, 4]);
  assertEquals(Array.from(decoded.tensors["b.weight"]!.data), [1, -2, 0.5]);
  assertEquals(decoded.tensors["b.weight"]!.dtype, "F16");
});

test("safetensors rejects a shape mismatch", async () => {
  let caught: unknown;
  try {
    encodeSafetensors({ w: { dtype: "F32", shape: [2, 2], data: new Float32Array(3) } });
  } catch (error) {
    caught = error;
  }
  assert(caught instanceof TypeError, "expected a TypeError");
});

test("writeSafetensors leaves no temporary file", () => {
  const dir = mkdtempSync(join(tmpdir(), "underhood-st-"));
  try {
    const path = join(dir, "x.safetensors");
    writeSafetensors(path, { w: { dtype: "F16", shape: [2], data: new Float32Array([1.5, -0]) } }, { note: "t" });
    assertEquals(readdirSync(dir), ["x.safetensors"]);
    const read = readSafetensors(path);
    assertEquals(read.metadata, { format: "pt", note: "t" });
    assert(Object.is(read.tensors.w!.data[1], -0), "-0 survives the round trip");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// --- training -----------------------------------------------------------------------------

const TINY: TrainModelConfig = { nLayers: 1, nHeads: 2, dModel: 16, nCtx: 16, dVocab: 50257, layerNormEps: 1e-5 };
const TINY_HYPER: Hyperparameters = {
  ...DEFAULT_HYPERPARAMETERS,
  steps: 10,
  batchSize: 4,
  nPos: 16,
  learningRate: 1e-2,
  warmupSteps: 0,
  seed: 7,
};

function tinyData() {
  const tokens = loadTokens(fileURLToPath(DATA)).subarray(0, 700);
  // Training on the first 400 tokens leaves later ids unseen, so the shared row matters.
  return { train: tokens.subarray(0, 400), validation: tokens.subarray(400) };
}

test("learning rate warm-up and decay", () => {
  const h = { ...DEFAULT_HYPERPARAMETERS, steps: 1000, warmupSteps: 100, learningRate: 1, minLearningRateRatio: 0.1 };
  assertClose(learningRateAt(0, h), 0.01);
  assertClose(learningRateAt(99, h), 1);
  assertClose(learningRateAt(100, h), 1);
  assertClose(learningRateAt(550, h), 0.55);
  assertClose(learningRateAt(1000, h), 0.1);
});

test("tiny training lowers loss, keeps tensors", () => {
  const data = tinyData();
  const trainer = new Trainer(TINY, buildCompactVocab(data.train, TINY.dVocab), TINY_HYPER);
  try {
    const batch = trainer.batchFor(data.train, 0);
    const losses: number[] = [];
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      losses.push(trainer.trainStep(batch).loss);
      counts.push(tf.memory().numTensors);
    }
    assert(losses[1]! < losses[0]!, `loss should fall at step 2: ${losses}`);
    assert(losses[2]! < losses[1]!, `loss should fall at step 3: ${losses}`);
    assertClose(losses[0]!, Math.log(trainer.vocab.unseenRow + 1 + trainer.vocab.unseenCount), { atol: 0.1 });
    assertEquals(counts[1], counts[0], "tensors after step 2");
    assertEquals(counts[2], counts[0], "tensors after step 3");
    assertEquals(trainer.step, 3);
  } finally {
    trainer.dispose();
  }
});

test("compact softmax equals full softmax", () => {
  const data = tinyData();
  const vocab = buildCompactVocab(data.train, TINY.dVocab);
  const trainer = new Trainer(TINY, vocab, TINY_HYPER);
  try {
    for (let step = 0; step < 3; step++) trainer.trainStep(trainer.batchFor(data.train, step));
    const batches = evaluationBatches(data.validation, 4, 16);
    const unseenTargets = batches.reduce(
      (n, b) => n + Array.from(b.targets).filter((id) => vocab.rowOf[id] === vocab.unseenRow).length,
      0,
    );
    assert(unseenTargets > 0, "the validation windows should contain unseen ids");

    const compact = trainer.evaluate(batches);
    const full = fullSoftmaxLoss(TINY, expandParameters(TINY, vocab, trainer.parameters()), trainer.shapes, batches);
    assertClose(full, compact, { atol: 1e-4, rtol: 0 });
  } finally {
    trainer.dispose();
  }
});

test("training state save and resume", () => {
  const data = tinyData();
  const vocab = buildCompactVocab(data.train, TINY.dVocab);
  const first = new Trainer(TINY, vocab, TINY_HYPER);
  const second = new Trainer(TINY, vocab, TINY_HYPER);
  const dir = mkdtempSync(join(tmpdir(), "underhood-state-"));
  try {
    first.trainStep(first.batchFor(data.train, 0));
    first.saveState(join(dir, "state.safetensors"));
    second.loadState(join(dir, "state.safetensors"));
    assertEquals(second.step, 1);
    const next = first.trainStep(first.batchFor(data.train, 1)).loss;
    const resumed = second.trainStep(second.batchFor(data.train, 1)).loss;
    assertClose(resumed, next, { atol: 1e-6, rtol: 0 });
  } finally {
    first.dispose();
    second.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("export names, shapes and config", () => {
  const data = tinyData();
  const vocab = buildCompactVocab(data.train, TINY.dVocab);
  const trainer = new Trainer(TINY, vocab, TINY_HYPER);
  const dir = mkdtempSync(join(tmpdir(), "underhood-export-"));
  try {
    const compact = trainer.parameters();
    writeHuggingFaceModel(dir, TINY, expandParameters(TINY, vocab, compact), trainer.shapes);
    const read = readSafetensors(join(dir, "model.safetensors"));
    const d = TINY.dModel;
    const expected: Record<string, number[]> = {
      "transformer.wte.weight": [TINY.dVocab, d],
      "transformer.wpe.weight": [TINY.nCtx, d],
      "transformer.ln_f.weight": [d],
      "transformer.ln_f.bias": [d],
      "transformer.h.0.ln_1.weight": [d],
      "transformer.h.0.ln_1.bias": [d],
      "transformer.h.0.attn.c_attn.weight": [d, 3 * d],
      "transformer.h.0.attn.c_attn.bias": [3 * d],
      "transformer.h.0.attn.c_proj.weight": [d, d],
      "transformer.h.0.attn.c_proj.bias": [d],
      "transformer.h.0.ln_2.weight": [d],
      "transformer.h.0.ln_2.bias": [d],
      "transformer.h.0.mlp.c_fc.weight": [d, 4 * d],
      "transformer.h.0.mlp.c_fc.bias": [4 * d],
      "transformer.h.0.mlp.c_proj.weight": [4 * d, d],
      "transformer.h.0.mlp.c_proj.bias": [d],
    };
    assertEquals(read.headerNames, Object.keys(expected).sort(), "tensor names in order");
    for (const [name, shape] of Object.entries(expected)) {
      assertEquals(read.tensors[name]!.shape, shape, `shape of ${name}`);
      assertEquals(read.tensors[name]!.dtype, "F16", `dtype of ${name}`);
    }
    assertEquals(read.metadata.format, "pt");

    // Every unseen id's row is the shared row; a seen id keeps its own row.
    const wte = read.tensors["transformer.wte.weight"]!.data;
    const unseenId = 50256;
    assertEquals(vocab.rowOf[unseenId], vocab.unseenRow, "id 50256 is unseen in the tiny data");
    const shared = compact.W_E!.subarray(vocab.unseenRow * d, (vocab.unseenRow + 1) * d);
    for (let j = 0; j < d; j++) {
      assertClose(wte[unseenId * d + j]!, shared[j]!, { atol: 1e-3, rtol: 1e-3 });
    }
    const seenId = vocab.seenIds[0]!;
    assertClose(wte[seenId * d]!, compact.W_E![0]!, { atol: 1e-3, rtol: 1e-3 });

    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
    assertEquals(config.model_type, "gpt2");
    assertEquals(config.n_embd, d);
    assertEquals(config.n_positions, TINY.nCtx);
    assertEquals(config.activation_function, "gelu_new");
    assertEquals(config.tie_word_embeddings, true);
    assertEquals(existsSync(join(dir, "model.safetensors.tmp-" + process.pid)), false, "temporary file removed");

    // Loading the file back gives the training names again.
    const back = fromCheckpointNames(TINY, read.tensors);
    assertEquals(back.W_E!.length, TINY.dVocab * d);
  } finally {
    trainer.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("embedding expansion copies shared row", () => {
  const vocab = buildCompactVocab(new Int32Array([5, 2, 5]), 8);
  assertEquals(Array.from(vocab.seenIds), [2, 5]);
  const compact = new Float32Array([1, 1, 2, 2, 9, 9]); // rows: id 2, id 5, shared
  const full = expandEmbedding(vocab, compact, 2);
  assertEquals(Array.from(full), [9, 9, 9, 9, 1, 1, 9, 9, 9, 9, 2, 2, 9, 9, 9, 9]);
});

test("unigram baseline by hand", () => {
  // Counts over 4 ids with add-one: id0 -> 3, id1 -> 2, id2 -> 1, id3 -> 1, total 7.
  const loss = unigramLoss(new Int32Array([0, 0, 1]), new Int32Array([0, 3]), 4);
  assertClose(loss, -(Math.log(3 / 7) + Math.log(1 / 7)) / 2);
});

test("token split is 90/10 on tokens", () => {
  const split = splitTokens(Int32Array.from({ length: 100 }, (_, i) => i));
  assertEquals(split.train.length, 90);
  assertEquals(split.validation[0], 90);
});
