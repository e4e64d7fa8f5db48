/**
 * A GPT-2-small-shaped checkpoint built in memory from a seed: 12 layers, dModel 768, 12 heads,
 * nCtx 1024, the GPT-2 vocabulary of 50,257 tokens and a tied unembedding (124.4M parameters).
 * Nothing is downloaded. The same seed gives the same weights on every runtime, and
 * `writeRawWeights` stores them for the PyTorch reference (bench/torch_ref.py).
 */
import { closeSync, existsSync, mkdirSync, openSync, renameSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BlockWeights, HostTensor, LoadedCheckpoint, ModelConfig } from "../src/types.ts";

/** The shape of GPT-2 small (openai-community/gpt2). */
export const GPT2_SMALL: ModelConfig = {
  nLayers: 12,
  nHeads: 12,
  dModel: 768,
  dHead: 64,
  dMlp: 3072,
  dVocab: 50257,
  nCtx: 1024,
  layerNormEps: 1e-5,
  activation: "gelu_new",
  scaleAttnWeights: true,
  scaleAttnByInverseLayerIdx: false,
  tieWordEmbeddings: true,
};

/** Standard deviation of the random weights, as in GPT-2's initialisation. */
const WEIGHT_STD = 0.02;

/**
 * A seeded generator of uniform floats (mulberry32). Uniform in [-a, a] with a = std·√3 has
 * the standard deviation `std`, which is all a speed benchmark needs from the weights.
 */
function uniformFiller(seed: number): (out: Float32Array, std: number, mean?: number) => void {
  let state = seed >>> 0;
  return (out, std, mean = 0) => {
    const half = std * Math.sqrt(3);
    for (let i = 0; i < out.length; i++) {
      state = (state + 0x6d2b79f5) | 0;
      let t = Math.imul(state ^ (state >>> 15), 1 | state);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296; // [0, 1)
      out[i] = mean + (2 * u - 1) * half;
    }
  };
}

/** One named host tensor, in the order `writeRawWeights` stores them. */
export interface NamedTensor {
  name: string;
  tensor: HostTensor;
}

/**
 * Builds the checkpoint. W_U is W_E transposed, as the loader builds it for a tied head.
 *
 * @param seed Seed of the weights; the same seed gives the same bits everywhere.
 */
export function buildGpt2Small(seed: number, config: ModelConfig = GPT2_SMALL): LoadedCheckpoint {
  const fill = uniformFiller(seed);
  const { dModel: D, dMlp: M, dVocab: V, nCtx } = config;
  const random = (shape: number[], std = WEIGHT_STD, mean = 0): HostTensor => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    fill(data, std, mean);
    return { shape, data };
  };
  const layerNorm = () => ({ w: random([D], 0.1, 1), b: random([D], 0.02) });

  const W_E = random([V, D]);
  const W_pos = random([nCtx, D], 0.01);
  const blocks: BlockWeights[] = [];
  for (let layer = 0; layer < config.nLayers; layer++) {
    blocks.push({
      ln1: layerNorm(),
      W_Q: random([D, D]),
      W_K: random([D, D]),
      W_V: random([D, D]),
      b_Q: random([D]),
      b_K: random([D]),
      b_V: random([D]),
      W_O: random([D, D]),
      b_O: random([D]),
      ln2: layerNorm(),
      W_in: random([D, M]),
      b_in: random([M]),
      W_out: random([M, D]),
      b_out: random([D]),
    });
  }
  const lnFinal = layerNorm();
  const W_U: HostTensor = { shape: [D, V], data: transposed(W_E.data, V, D) };
  return {
    config,
    weights: { W_E, W_pos, blocks, lnFinal, W_U },
    info: {
      source: `memory:gpt2-small-seed-${seed}`,
      files: [],
      namePrefix: "",
      lmHead: "tied",
      storedDtypes: { F32: 0 },
      ignored: [],
    },
  };
}

function transposed(matrix: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = matrix[r * cols + c]!;
  }
  return out;
}

/** Lists the distinct weights (W_U left out, because it is W_E transposed), in file order. */
export function namedTensors(checkpoint: LoadedCheckpoint): NamedTensor[] {
  const w = checkpoint.weights;
  const out: NamedTensor[] = [
    { name: "W_E", tensor: w.W_E },
    { name: "W_pos", tensor: w.W_pos },
  ];
  w.blocks.forEach((b, l) => {
    const p = `blocks.${l}.`;
    out.push(
      { name: p + "ln1.w", tensor: b.ln1.w },
      { name: p + "ln1.b", tensor: b.ln1.b },
      { name: p + "W_Q", tensor: b.W_Q },
      { name: p + "W_K", tensor: b.W_K },
      { name: p + "W_V", tensor: b.W_V },
      { name: p + "b_Q", tensor: b.b_Q },
      { name: p + "b_K", tensor: b.b_K },
      { name: p + "b_V", tensor: b.b_V },
      { name: p + "W_O", tensor: b.W_O },
      { name: p + "b_O", tensor: b.b_O },
      { name: p + "ln2.w", tensor: b.ln2.w },
      { name: p + "ln2.b", tensor: b.ln2.b },
      { name: p + "W_in", tensor: b.W_in },
      { name: p + "b_in", tensor: b.b_in },
      { name: p + "W_out", tensor: b.W_out },
      { name: p + "b_out", tensor: b.b_out },
    );
  });
  out.push({ name: "ln_final.w", tensor: w.lnFinal.w }, { name: "ln_final.b", tensor: w.lnFinal.b });
  return out;
}

/** Parameter count and f32 bytes of the distinct weights (the tied W_U counted once). */
export function weightSize(checkpoint: LoadedCheckpoint): { params: number; bytes: number } {
  const params = namedTensors(checkpoint).reduce((sum, { tensor }) => sum + tensor.data.length, 0);
  return { params, bytes: params * 4 };
}

/**
 * Writes the weights as one raw little-endian f32 file plus a JSON manifest of names, shapes
 * and offsets, under the system temp directory, unless a file for this seed exists already.
 *
 * @returns The manifest path.
 */
export function writeRawWeights(seed: number, checkpoint?: LoadedCheckpoint): string {
  const dir = join(tmpdir(), "underhood-bench");
  mkdirSync(dir, { recursive: true });
  const manifestPath = join(dir, `gpt2-small-seed-${seed}.json`);
  if (existsSync(manifestPath)) return manifestPath;

  const source = checkpoint ?? buildGpt2Small(seed);
  const dataPath = join(dir, `gpt2-small-seed-${seed}.f32`);
  const entries: Array<{ name: string; shape: number[]; offset: number }> = [];
  const fd = openSync(dataPath + ".part", "w");
  let offset = 0;
  try {
    for (const { name, tensor } of namedTensors(source)) {
      entries.push({ name, shape: tensor.shape, offset });
      const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
      offset += tensor.data.length;
    }
  } finally {
    closeSync(fd);
  }
  renameSync(dataPath + ".part", dataPath);
  const config = source.config;
  writeFileSync(manifestPath, JSON.stringify({ config, data: dataPath, tensors: entries }, null, 1));
  return manifestPath;
}

/** Token ids in [0, dVocab) from a seed, for prompts of a given length. */
export function randomIds(seed: number, length: number, dVocab = GPT2_SMALL.dVocab): Int32Array {
  const fill = uniformFiller(seed);
  const u = new Float32Array(length);
  fill(u, 1 / Math.sqrt(3)); // uniform in [-1, 1)
  return Int32Array.from(u, (x) => Math.min(dVocab - 1, Math.floor(((x + 1) / 2) * dVocab)));
}
