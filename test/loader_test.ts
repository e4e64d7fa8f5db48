import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertClose, assertEquals, assertThrows, test } from "./_harness.ts";
import { CheckpointError, type LoadProgress, loadCheckpoint, parseConfig } from "../src/loader.ts";
import { SafetensorsError } from "../src/safetensors.ts";
import type { HostTensor, ModelWeights } from "../src/types.ts";

function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

// ---- Independent reading of F32 files: plain JSON.parse and DataView, not src/safetensors.ts.

interface RawTensor {
  dtype: string;
  shape: number[];
  values: Float32Array;
}

function readRawF32(path: string): Map<string, RawTensor> {
  const bytes = readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const out = new Map<string, RawTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const { dtype, shape, data_offsets: [begin, end] } = entry as {
      dtype: string;
      shape: number[];
      data_offsets: [number, number];
    };
    assertEquals(dtype, "F32", `readRawF32 reads only F32 files (${name})`);
    const values = new Float32Array((end - begin) / 4);
    for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(8 + headerLength + begin + 4 * i, true);
    out.set(name, { dtype, shape, values });
  }
  return out;
}

function raw(tensors: Map<string, RawTensor>, name: string): RawTensor {
  const t = tensors.get(name);
  assert(t !== undefined, `fixture lacks ${name}`);
  return t;
}

/** Asserts bitwise equality of two float arrays and names the first differing index. */
function assertSameValues(actual: Float32Array, expected: ArrayLike<number>, label: string): void {
  assertEquals(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      throw new Error(`${label}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

/** Checks W[i][j] == source[i][colOffset + j] for a [rows, cols] W cut from a [rows, sourceCols] matrix. */
function assertColumnSlice(
  tensor: HostTensor,
  source: RawTensor,
  colOffset: number,
  label: string,
): void {
  const [rows, cols] = tensor.shape as [number, number];
  const sourceCols = source.shape[1]!;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const actual = tensor.data[i * cols + j];
      const expected = source.values[i * sourceCols + colOffset + j];
      if (!Object.is(actual, expected)) throw new Error(`${label}[${i}][${j}] is ${actual}, expected ${expected}`);
    }
  }
}

/** Checks that `transposed` [cols, rows] is `matrix` [rows, cols] transposed. */
function assertTransposed(transposed: Float32Array, matrix: Float32Array, rows: number, cols: number, label: string) {
  assertEquals(transposed.length, rows * cols, `${label}: length`);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if (transposed[c * rows + r] !== matrix[r * cols + c]) {
        throw new Error(`${label}[${c}][${r}] is ${transposed[c * rows + r]}, expected ${matrix[r * cols + c]}`);
      }
    }
  }
}

/** Lists every weight of a model as [path, tensor] pairs, in a fixed order. */
function flattenWeights(weights: ModelWeights): [string, HostTensor][] {
  const out: [string, HostTensor][] = [
    ["W_E", weights.W_E],
    ["W_pos", weights.W_pos],
    ["lnFinal.w", weights.lnFinal.w],
    ["lnFinal.b", weights.lnFinal.b],
    ["W_U", weights.W_U],
  ];
  weights.blocks.forEach((block, layer) => {
    for (const [key, value] of Object.entries(block)) {
      if ("data" in value) out.push([`blocks.${layer}.${key}`, value as HostTensor]);
      else {
        out.push([`blocks.${layer}.${key}.w`, value.w], [`blocks.${layer}.${key}.b`, value.b]);
      }
    }
  });
  return out;
}

function assertSameWeights(actual: ModelWeights, expected: ModelWeights): void {
  const a = flattenWeights(actual);
  const e = flattenWeights(expected);
  assertEquals(a.map(([name, t]) => [name, t.shape]), e.map(([name, t]) => [name, t.shape]));
  for (let i = 0; i < a.length; i++) assertSameValues(a[i]![1].data, e[i]![1].data, a[i]![0]);
}

// ---- Writing crafted checkpoints into temporary directories.

interface F32Tensor {
  shape: number[];
  data: Float32Array;
  dtype?: "F32" | "I32";
}

function encodeF32File(tensors: Map<string, F32Tensor>): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: t.dtype ?? "F32", shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let position = 8 + json.length;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), position);
    position += t.data.byteLength;
  }
  return out;
}

function tensorsOf(path: string): Map<string, F32Tensor> {
  const out = new Map<string, F32Tensor>();
  for (const [name, t] of readRawF32(path)) out.set(name, { shape: t.shape, data: t.values });
  return out;
}

/** Copies a fixture directory into a new temporary directory, runs `fn` on it, then deletes it. */
async function withCopy(name: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "underhood-loader-"));
  try {
    for (const file of readdirSync(fixture(name))) writeFileSync(join(dir, file), readFileSync(join(fixture(name), file)));
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Rewrites `dir/file` after `edit` changes its tensors. */
function editTensors(dir: string, file: string, edit: (tensors: Map<string, F32Tensor>) => void): void {
  const tensors = tensorsOf(join(dir, file));
  edit(tensors);
  writeFileSync(join(dir, file), encodeF32File(tensors));
}

function editConfig(dir: string, edit: (config: Record<string, unknown>) => void): void {
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  edit(config);
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
}

// ---- Loading the fixtures.

test("gpt2-tiny-f32 config and info", async () => {
  const { config, info } = await loadCheckpoint(fixture("gpt2-tiny-f32"));
  assertEquals(config, {
    nLayers: 2,
    nHeads: 4,
    dModel: 32,
    dHead: 8,
    dMlp: 128,
    dVocab: 50257,
    nCtx: 64,
    layerNormEps: 1e-5,
    activation: "gelu_new",
    scaleAttnWeights: true,
    scaleAttnByInverseLayerIdx: false,
    tieWordEmbeddings: true,
  });
  assertEquals(info.source, fixture("gpt2-tiny-f32"));
  assertEquals(info.files, ["model.safetensors"]);
  assertEquals(info.namePrefix, "transformer.");
  assertEquals(info.lmHead, "tied");
  assertEquals(info.storedDtypes, { F32: 28 });
  assertEquals(info.ignored, []);
});

test("gpt2-tiny-f32 weight shapes", async () => {
  const { weights } = await loadCheckpoint(fixture("gpt2-tiny-f32"));
  const D = 32;
  const expected: Record<string, number[]> = {
    W_E: [50257, D],
    W_pos: [64, D],
    "lnFinal.w": [D],
    "lnFinal.b": [D],
    W_U: [D, 50257],
  };
  for (const layer of [0, 1]) {
    const p = `blocks.${layer}.`;
    Object.assign(expected, {
      [p + "ln1.w"]: [D],
      [p + "ln1.b"]: [D],
      [p + "W_Q"]: [D, D],
      [p + "W_K"]: [D, D],
      [p + "W_V"]: [D, D],
      [p + "b_Q"]: [D],
      [p + "b_K"]: [D],
      [p + "b_V"]: [D],
      [p + "W_O"]: [D, D],
      [p + "b_O"]: [D],
      [p + "ln2.w"]: [D],
      [p + "ln2.b"]: [D],
      [p + "W_in"]: [D, 4 * D],
      [p + "b_in"]: [4 * D],
      [p + "W_out"]: [4 * D, D],
      [p + "b_out"]: [D],
    });
  }
  assertEquals(weights.blocks.length, 2);
  const found = flattenWeights(weights);
  assertEquals(Object.fromEntries(found.map(([name, t]) => [name, t.shape])), expected);
  for (const [name, t] of found) {
    assertEquals(t.data.length, t.shape.reduce((a, b) => a * b, 1), `${name}: data length`);
    assert(t.data instanceof Float32Array, `${name} must be a Float32Array`);
  }
});

/** Checks every loaded weight of an F32 checkpoint against the values stored in its file. */
async function checkAgainstFile(name: string): Promise<void> {
  const { config, weights, info } = await loadCheckpoint(fixture(name));
  const stored = readRawF32(join(fixture(name), "model.safetensors"));
  const p = info.namePrefix;
  const D = config.dModel;
  const get = (n: string) => raw(stored, p + n);

  assertSameValues(weights.W_E.data, get("wte.weight").values, "W_E");
  assertSameValues(weights.W_pos.data, get("wpe.weight").values, "W_pos");
  assertSameValues(weights.lnFinal.w.data, get("ln_f.weight").values, "lnFinal.w");
  assertSameValues(weights.lnFinal.b.data, get("ln_f.bias").values, "lnFinal.b");
  assertTransposed(weights.W_U.data, get("wte.weight").values, config.dVocab, D, "W_U");

  weights.blocks.forEach((block, layer) => {
    const h = `h.${layer}.`;
    const cAttn = get(h + "attn.c_attn.weight");
    assertColumnSlice(block.W_Q, cAttn, 0, `blocks.${layer}.W_Q`);
    assertColumnSlice(block.W_K, cAttn, D, `blocks.${layer}.W_K`);
    assertColumnSlice(block.W_V, cAttn, 2 * D, `blocks.${layer}.W_V`);
    const cAttnBias = get(h + "attn.c_attn.bias").values;
    assertSameValues(block.b_Q.data, cAttnBias.subarray(0, D), `blocks.${layer}.b_Q`);
    assertSameValues(block.b_K.data, cAttnBias.subarray(D, 2 * D), `blocks.${layer}.b_K`);
    assertSameValues(block.b_V.data, cAttnBias.subarray(2 * D), `blocks.${layer}.b_V`);
    assertSameValues(block.W_O.data, get(h + "attn.c_proj.weight").values, `blocks.${layer}.W_O`);
    assertSameValues(block.b_O.data, get(h + "attn.c_proj.bias").values, `blocks.${layer}.b_O`);
    assertSameValues(block.W_in.data, get(h + "mlp.c_fc.weight").values, `blocks.${layer}.W_in`);
    assertSameValues(block.b_in.data, get(h + "mlp.c_fc.bias").values, `blocks.${layer}.b_in`);
    assertSameValues(block.W_out.data, get(h + "mlp.c_proj.weight").values, `blocks.${layer}.W_out`);
    assertSameValues(block.b_out.data, get(h + "mlp.c_proj.bias").values, `blocks.${layer}.b_out`);
    assertSameValues(block.ln1.w.data, get(h + "ln_1.weight").values, `blocks.${layer}.ln1.w`);
    assertSameValues(block.ln1.b.data, get(h + "ln_1.bias").values, `blocks.${layer}.ln1.b`);
    assertSameValues(block.ln2.w.data, get(h + "ln_2.weight").values, `blocks.${layer}.ln2.w`);
    assertSameValues(block.ln2.b.data, get(h + "ln_2.bias").values, `blocks.${layer}.ln2.b`);
  });
}

test("gpt2-tiny-f32 values match file", async () => {
  await checkAgainstFile("gpt2-tiny-f32");
});

test("HF-written fake-gpt2 loads", async () => {
  const { config, info } = await loadCheckpoint(fixture("hf-written/fake-gpt2"));
  assertEquals([config.dModel, config.nHeads, config.nLayers, config.nCtx, config.dVocab], [2, 1, 1, 1024, 50257]);
  assertEquals(info.namePrefix, "transformer.");
  assertEquals(info.lmHead, "tied");
  await checkAgainstFile("hf-written/fake-gpt2");
});

for (const [dtype, relative] of [["f16", 2 ** -11], ["bf16", 2 ** -8]] as const) {
  test(`gpt2-tiny-${dtype} is rounded f32`, async () => {
    const reduced = await loadCheckpoint(fixture(`gpt2-tiny-${dtype}`));
    const full = await loadCheckpoint(fixture("gpt2-tiny-f32"));
    assertEquals(reduced.config, full.config);
    assertEquals(reduced.info.storedDtypes, { [dtype.toUpperCase()]: 28 });

    // Round to nearest moves a value by at most half a unit in the last place: a relative
    // 2^-11 for float16 and 2^-8 for bfloat16, plus 2^-25 absolute for float16 subnormals.
    const a = flattenWeights(reduced.weights);
    const e = flattenWeights(full.weights);
    let changed = 0;
    for (let i = 0; i < a.length; i++) {
      const [name, tensor] = a[i]!;
      assertClose(tensor.data, e[i]![1].data, { atol: dtype === "f16" ? 2 ** -25 : 0, rtol: relative, label: name });
      for (let k = 0; k < tensor.data.length; k++) if (tensor.data[k] !== e[i]![1].data[k]) changed++;
    }
    assert(changed > 1000, `only ${changed} values differ from float32, so the ${dtype} file was not decoded`);

    if (dtype === "bf16") {
      // A bfloat16 value widened to float32 has zero low 16 bits.
      const bits = new Uint32Array(reduced.weights.W_E.data.buffer);
      assert(bits.every((b) => (b & 0xffff) === 0), "W_E has float32 values that are not bfloat16");
    }
  });
}

test("prefix-less names load", async () => {
  const plain = await loadCheckpoint(fixture("gpt2-micro-noprefix"));
  const prefixed = await loadCheckpoint(fixture("gpt2-micro"));
  assertEquals(plain.info.namePrefix, "");
  assertEquals(prefixed.info.namePrefix, "transformer.");
  assertSameWeights(plain.weights, prefixed.weights);
  await checkAgainstFile("gpt2-micro-noprefix");
});

test("sharded checkpoint loads", async () => {
  const events: LoadProgress[] = [];
  const sharded = await loadCheckpoint(fixture("gpt2-micro-sharded"), { onProgress: (p) => events.push(p) });
  const single = await loadCheckpoint(fixture("gpt2-micro"));
  assertEquals(sharded.info.files, Array.from({ length: 8 }, (_, i) => `model-0000${i + 1}-of-00008.safetensors`));
  assertEquals(sharded.config, single.config);
  assertSameWeights(sharded.weights, single.weights);

  // Each file reports a start at 0 and ends at its total, and loaded never decreases.
  for (const file of sharded.info.files) {
    const mine = events.filter((e) => e.file === file);
    assert(mine.length >= 2, `${file}: ${mine.length} progress events`);
    assertEquals(mine[0]!.loaded, 0, `${file}: first event`);
    assertEquals(mine.at(-1)!.loaded, mine[0]!.total, `${file}: last event`);
    assert(mine.every((e, i) => i === 0 || e.loaded >= mine[i - 1]!.loaded), `${file}: loaded decreased`);
  }
  const totalBytes = sharded.info.files.reduce((sum, f) => sum + events.find((e) => e.file === f)!.total, 0);
  assertEquals(totalBytes, 2400 * 4, "sum of totals equals the parameter bytes");
});

test("untied head uses lm_head.weight", async () => {
  const { config, weights, info } = await loadCheckpoint(fixture("gpt2-micro-untied"));
  const stored = readRawF32(join(fixture("gpt2-micro-untied"), "model.safetensors"));
  assertEquals(config.tieWordEmbeddings, false);
  assertEquals(info.lmHead, "separate");
  assertTransposed(weights.W_U.data, raw(stored, "lm_head.weight").values, 64, 8, "W_U");
  assertSameValues(weights.W_E.data, raw(stored, "transformer.wte.weight").values, "W_E");
  assert(weights.W_U.data[0] !== weights.W_E.data[0], "W_U must not be W_E transposed");
});

test("stored tied head is W_E", async () => {
  const stored = await loadCheckpoint(fixture("gpt2-micro-stored-head"));
  const omitted = await loadCheckpoint(fixture("gpt2-micro"));
  assertEquals(stored.info.lmHead, "tied");
  assertEquals(stored.info.storedDtypes, { F32: 29 });
  assertSameWeights(stored.weights, omitted.weights);
});

test("n_inner, activation and eps", async () => {
  const { config, weights } = await loadCheckpoint(fixture("gpt2-micro-options"));
  assertEquals([config.dMlp, config.activation, config.layerNormEps], [24, "gelu", 1e-6]);
  assertEquals(weights.blocks[1]!.W_in.shape, [8, 24]);
  assertEquals(weights.blocks[1]!.W_out.shape, [24, 8]);
  await checkAgainstFile("gpt2-micro-options");
});

// ---- Crafted checkpoints.

test("attn.bias buffers are ignored", async () => {
  await withCopy("gpt2-micro-noprefix", async (dir) => {
    editTensors(dir, "model.safetensors", (t) => {
      t.set("h.0.attn.bias", { shape: [1, 1, 16, 16], data: new Float32Array(256).fill(1) });
      t.set("h.0.attn.masked_bias", { shape: [], data: new Float32Array([-1e4]) });
      t.set("h.1.attn.bias", { shape: [1, 1, 16, 16], data: new Float32Array(256).fill(1) });
    });
    const loaded = await loadCheckpoint(dir);
    assertEquals(loaded.info.ignored, ["h.0.attn.bias", "h.0.attn.masked_bias", "h.1.attn.bias"]);
    assertEquals(loaded.info.storedDtypes, { F32: 31 });
    assertSameWeights(loaded.weights, (await loadCheckpoint(fixture("gpt2-micro-noprefix"))).weights);
  });
});

test("missing tensor is named", async () => {
  await withCopy("gpt2-micro", async (dir) => {
    editTensors(dir, "model.safetensors", (t) => t.delete("transformer.h.1.mlp.c_fc.bias"));
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, ["missing", '"transformer.h.1.mlp.c_fc.bias"']);
  });
});

test("wrong shape names both shapes", async () => {
  await withCopy("gpt2-micro", async (dir) => {
    editTensors(dir, "model.safetensors", (t) => {
      t.get("transformer.wpe.weight")!.shape = [8, 16];
    });
    let progressCalls = 0;
    await assertThrows(() => loadCheckpoint(dir, { onProgress: () => progressCalls++ }), CheckpointError, [
      '"transformer.wpe.weight"',
      "[8, 16]",
      "[16, 8]",
    ]);
    assertEquals(progressCalls, 0, "no tensor data may be read before all shapes are checked");
  });
});

test("config mismatch names tensor", async () => {
  await withCopy("gpt2-micro", async (dir) => {
    editConfig(dir, (c) => (c["n_inner"] = 24));
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, [
      '"transformer.h.0.mlp.c_fc.weight"',
      "[8, 32]",
      "[8, 24]",
      "config.json",
    ]);
  });
});

test("unexpected tensor is named", async () => {
  await withCopy("gpt2-micro", async (dir) => {
    editTensors(dir, "model.safetensors", (t) => {
      t.set("transformer.h.2.ln_1.weight", { shape: [8], data: new Float32Array(8) });
    });
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, ["unexpected", '"transformer.h.2.ln_1.weight"']);
  });
});

test("untied config needs lm_head", async () => {
  await withCopy("gpt2-micro", async (dir) => {
    editConfig(dir, (c) => (c["tie_word_embeddings"] = false));
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, ['"lm_head.weight"', "tie_word_embeddings"]);
  });
});

test("stored lm_head shape is checked", async () => {
  await withCopy("gpt2-micro-stored-head", async (dir) => {
    editTensors(dir, "model.safetensors", (t) => {
      t.get("lm_head.weight")!.shape = [8, 64];
    });
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, ['"lm_head.weight"', "[8, 64]", "[64, 8]"]);
  });
});

test("integer weight is rejected", async () => {
  await withCopy("gpt2-micro", async (dir) => {
    editTensors(dir, "model.safetensors", (t) => {
      t.get("transformer.ln_f.bias")!.dtype = "I32";
    });
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, ['"transformer.ln_f.bias"', "I32"]);
  });
});

test("mixed name prefixes are rejected", async () => {
  await withCopy("gpt2-micro", async (dir) => {
    editTensors(dir, "model.safetensors", (t) => {
      const wte = t.get("transformer.wte.weight")!;
      t.delete("transformer.wte.weight");
      t.set("wte.weight", wte);
    });
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, ["27 tensor names", "1 do not"]);
  });
});

test("same tensor with and without prefix", async () => {
  await withCopy("gpt2-micro", async (dir) => {
    editTensors(dir, "model.safetensors", (t) => t.set("wpe.weight", t.get("transformer.wpe.weight")!));
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, ['"transformer.wpe.weight"', '"wpe.weight"']);
  });
});

test("tensor in two shards", async () => {
  await withCopy("gpt2-micro-sharded", async (dir) => {
    const first = tensorsOf(join(dir, "model-00001-of-00008.safetensors"));
    editTensors(dir, "model-00002-of-00008.safetensors", (t) => {
      t.set("transformer.h.0.ln_1.bias", first.get("transformer.h.0.ln_1.bias")!);
    });
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, [
      '"transformer.h.0.ln_1.bias"',
      "two shards",
      "model-00001-of-00008.safetensors",
      "model-00002-of-00008.safetensors",
    ]);
  });
});

test("index and shard disagree", async () => {
  await withCopy("gpt2-micro-sharded", async (dir) => {
    editTensors(dir, "model-00008-of-00008.safetensors", (t) => {
      t.set("transformer.extra", { shape: [1], data: new Float32Array(1) });
    });
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, ['"transformer.extra"', "does not list it"]);
  });
  await withCopy("gpt2-micro-sharded", async (dir) => {
    const indexPath = join(dir, "model.safetensors.index.json");
    const index = JSON.parse(readFileSync(indexPath, "utf8"));
    index.weight_map["transformer.ghost"] = "model-00001-of-00008.safetensors";
    writeFileSync(indexPath, JSON.stringify(index));
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, ['"transformer.ghost"', "does not contain it"]);
  });
});

test("missing shard file", async () => {
  await withCopy("gpt2-micro-sharded", async (dir) => {
    rmSync(join(dir, "model-00003-of-00008.safetensors"));
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, ["model-00003-of-00008.safetensors", "not found"]);
  });
});

test("index path outside directory", async () => {
  await withCopy("gpt2-micro-sharded", async (dir) => {
    const indexPath = join(dir, "model.safetensors.index.json");
    const index = JSON.parse(readFileSync(indexPath, "utf8"));
    index.weight_map["transformer.wte.weight"] = "../elsewhere.safetensors";
    writeFileSync(indexPath, JSON.stringify(index));
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, ["../elsewhere.safetensors", "inside"]);
  });
});

test("corrupt file keeps its cause", async () => {
  await withCopy("gpt2-micro", async (dir) => {
    const path = join(dir, "model.safetensors");
    writeFileSync(path, readFileSync(path).subarray(0, 5000));
    const error = await assertThrows(() => loadCheckpoint(dir), CheckpointError, [path, "truncated"]);
    assert(error.cause instanceof SafetensorsError, "cause must be the SafetensorsError");
  });
});

test("LFS pointer as model file", async () => {
  await withCopy("gpt2-micro", async (dir) => {
    writeFileSync(join(dir, "model.safetensors"), readFileSync(fixture("safetensors-edge/lfs_pointer.safetensors")));
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, ["Git LFS", "git lfs pull"]);
  });
});

test("missing files and directories", async () => {
  await assertThrows(() => loadCheckpoint(fixture("no-such-model")), CheckpointError, ["no-such-model", "not found"]);
  await assertThrows(
    () => loadCheckpoint(fixture("gpt2-micro/config.json")),
    CheckpointError,
    ["not a directory"],
  );
  await withCopy("gpt2-micro", async (dir) => {
    rmSync(join(dir, "model.safetensors"));
    writeFileSync(join(dir, "pytorch_model.bin"), "");
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, ["model.safetensors", "pytorch_model.bin"]);
  });
  await withCopy("gpt2-micro", async (dir) => {
    rmSync(join(dir, "config.json"));
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, ["config.json", "not found"]);
  });
  await withCopy("gpt2-micro", async (dir) => {
    writeFileSync(join(dir, "config.json"), "{ n_embd: 8 ");
    await assertThrows(() => loadCheckpoint(dir), CheckpointError, ["config.json", "not valid JSON"]);
  });
});

// ---- parseConfig.

const MINIMAL = { n_embd: 8, n_layer: 2, n_head: 2, n_positions: 16, vocab_size: 64 };

test("parseConfig defaults", () => {
  assertEquals(parseConfig(MINIMAL, "inline"), {
    nLayers: 2,
    nHeads: 2,
    dModel: 8,
    dHead: 4,
    dMlp: 32,
    dVocab: 64,
    nCtx: 16,
    layerNormEps: 1e-5,
    activation: "gelu_new",
    scaleAttnWeights: true,
    scaleAttnByInverseLayerIdx: false,
    tieWordEmbeddings: true,
  });
});

test("parseConfig explicit options", () => {
  const config = parseConfig({
    ...MINIMAL,
    model_type: "gpt2",
    n_inner: 20,
    layer_norm_epsilon: 1e-6,
    activation_function: "relu",
    scale_attn_weights: false,
    scale_attn_by_inverse_layer_idx: true,
    tie_word_embeddings: false,
  }, "inline");
  assertEquals(
    [config.dMlp, config.layerNormEps, config.activation, config.scaleAttnWeights],
    [20, 1e-6, "relu", false],
  );
  assertEquals([config.scaleAttnByInverseLayerIdx, config.tieWordEmbeddings], [true, false]);
});

test("parseConfig n_ctx and activations", () => {
  const { n_positions: _unused, ...withoutPositions } = MINIMAL;
  assertEquals(parseConfig({ ...withoutPositions, n_ctx: 32 }, "inline").nCtx, 32);
  assertEquals(parseConfig({ ...MINIMAL, n_ctx: 32 }, "inline").nCtx, 16, "n_positions wins over n_ctx");
  assertEquals(parseConfig({ ...MINIMAL, n_inner: null }, "inline").dMlp, 32);
  const activations: [string, string][] = [
    ["gelu_new", "gelu_new"],
    ["gelu", "gelu"],
    ["relu", "relu"],
    ["gelu_pytorch_tanh", "gelu_pytorch_tanh"],
    ["gelu_fast", "gelu_new"],
  ];
  for (const [name, expected] of activations) {
    assertEquals(parseConfig({ ...MINIMAL, activation_function: name }, "inline").activation, expected, name);
  }
});

test("parseConfig rejects bad configs", async () => {
  const { n_positions: _unused, ...withoutPositions } = MINIMAL;
  const cases: [unknown, string[]][] = [
    [[1], ["cfg.json", "JSON object"]],
    [{ ...MINIMAL, model_type: "llama" }, ['"llama"', '"gpt2"']],
    [{ ...MINIMAL, n_embd: undefined }, ["n_embd is missing"]],
    [{ ...MINIMAL, n_layer: 0 }, ["n_layer", "positive integer", "0"]],
    [{ ...MINIMAL, n_head: "2" }, ["n_head", '"2"']],
    [{ ...MINIMAL, vocab_size: 6.5 }, ["vocab_size", "6.5"]],
    [withoutPositions, ["n_positions (or n_ctx) is missing"]],
    [{ ...MINIMAL, n_head: 3 }, ["n_embd (8)", "n_head (3)", "divisible"]],
    [{ ...MINIMAL, n_inner: -4 }, ["n_inner", "-4"]],
    [{ ...MINIMAL, layer_norm_epsilon: 0 }, ["layer_norm_epsilon", "positive"]],
    [{ ...MINIMAL, activation_function: "swish" }, ['"swish"', "gelu_new, gelu, relu, gelu_pytorch_tanh, gelu_fast"]],
    [{ ...MINIMAL, tie_word_embeddings: "false" }, ["tie_word_embeddings", "true or false"]],
    [{ ...MINIMAL, scale_attn_weights: 1 }, ["scale_attn_weights"]],
  ];
  for (const [raw, includes] of cases) {
    await assertThrows(() => parseConfig(raw, "cfg.json"), CheckpointError, ["cfg.json", ...includes]);
  }
});
