/**
 * The trainable GPT-2: parameters as tf.Variables and a forward pass written with the ops in
 * ops.ts. The maths is Hugging Face's GPT2LMHeadModel: pre-LN blocks, gelu_new, causal
 * softmax attention scaled by 1/sqrt(dHead), a final layer norm and the token embedding
 * reused as the unembedding.
 *
 * The embedding table `W_E` may be "compact": its rows are the token ids seen in training plus
 * one last shared row for every other id (see vocab.ts). The forward pass does not care which.
 */
import * as tf from "@tensorflow/tfjs-core";
import { geluNew, gatherRows, layerNorm, logSumExp, matMul } from "./ops.ts";
import type { Rng } from "./rng.ts";

/** The size of the model being trained. */
export interface TrainModelConfig {
  nLayers: number;
  nHeads: number;
  dModel: number;
  /** Number of positions (`n_positions`). */
  nCtx: number;
  /** Full vocabulary size of the exported model (50257 for GPT-2). */
  dVocab: number;
  layerNormEps: number;
}

/** Names of the per-block parameters; the checkpoint names they map to are in export.ts. */
export const BLOCK_PARAMS = [
  "ln1.w", "ln1.b", "W_QKV", "b_QKV", "W_O", "b_O", "ln2.w", "ln2.b", "W_in", "b_in", "W_out", "b_out",
] as const;

/** Shapes of every parameter, by name, for an embedding table of `embeddingRows` rows. */
export function parameterShapes(config: TrainModelConfig, embeddingRows: number): Record<string, number[]> {
  const d = config.dModel;
  const shapes: Record<string, number[]> = {
    W_E: [embeddingRows, d],
    W_pos: [config.nCtx, d],
    "ln_final.w": [d],
    "ln_final.b": [d],
  };
  const blockShapes: Record<(typeof BLOCK_PARAMS)[number], number[]> = {
    "ln1.w": [d], "ln1.b": [d],
    W_QKV: [d, 3 * d], b_QKV: [3 * d],
    W_O: [d, d], b_O: [d],
    "ln2.w": [d], "ln2.b": [d],
    W_in: [d, 4 * d], b_in: [4 * d],
    W_out: [4 * d, d], b_out: [d],
  };
  for (let layer = 0; layer < config.nLayers; layer++) {
    for (const name of BLOCK_PARAMS) shapes[`blocks.${layer}.${name}`] = blockShapes[name];
  }
  return shapes;
}

/**
 * Draws initial values the way GPT-2 does. Weights are normal(0, 0.02), and the two output
 * projections of each block use 0.02 / sqrt(2 * nLayers). Layer-norm gains start at 1 and
 * biases at 0.
 */
export function initialParameters(
  config: TrainModelConfig,
  embeddingRows: number,
  rng: Rng,
): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  const projectionStd = 0.02 / Math.sqrt(2 * config.nLayers);
  for (const [name, shape] of Object.entries(parameterShapes(config, embeddingRows))) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (name.endsWith(".w")) {
      data.fill(1);
    } else if (name.endsWith(".b") || name.includes(".b_")) {
      // Biases stay at 0.
    } else {
      const std = name.endsWith("W_O") || name.endsWith("W_out") ? projectionStd : 0.02;
      for (let i = 0; i < size; i++) data[i] = rng.normal() * std;
    }
    out[name] = data;
  }
  return out;
}

/** Returns whether weight decay applies to a parameter: matrices decay, gains and biases do not. */
export function isDecayed(name: string): boolean {
  return !name.endsWith(".w") && !name.endsWith(".b") && !name.includes(".b_");
}

/** Parameters as tensors: variables while training, plain tensors when evaluating export weights. */
export type ParameterTensors = Record<string, tf.Tensor>;

function param(params: ParameterTensors, name: string): tf.Tensor {
  const value = params[name];
  if (value === undefined) throw new RangeError(`Missing parameter "${name}" in the model being trained`);
  return value;
}

/** Builds the additive causal mask: 0 on and below the diagonal, -1e9 above. */
function causalMask(nPos: number): tf.Tensor2D {
  const data = new Float32Array(nPos * nPos);
  for (let query = 0; query < nPos; query++) {
    for (let key = query + 1; key < nPos; key++) data[query * nPos + key] = -1e9;
  }
  return tf.tensor2d(data, [nPos, nPos]);
}

/**
 * Runs the model up to the final layer norm. Call inside tf.tidy.
 *
 * @param rows int32 `[batch * pos]`: row indices into `W_E`, batch-major.
 * @returns `[batch * pos, dModel]`: the normalized final residual stream.
 */
export function forwardHidden(
  config: TrainModelConfig,
  params: ParameterTensors,
  rows: tf.Tensor1D,
  batch: number,
  nPos: number,
): tf.Tensor2D {
  if (nPos > config.nCtx) {
    throw new RangeError(`Cannot run ${nPos} positions: the model has nCtx ${config.nCtx}; use shorter windows`);
  }
  const d = config.dModel;
  const nHeads = config.nHeads;
  const dHead = d / nHeads;
  const n = batch * nPos;

  // Token plus position embeddings.
  const tokens = gatherRows(param(params, "W_E") as tf.Tensor2D, rows); // [n] -> [n, dModel]
  const positions = tf.slice(param(params, "W_pos"), [0, 0], [nPos, d]); // [nPos, dModel]
  let resid = tf.reshape(tf.add(tf.reshape(tokens, [batch, nPos, d]), positions), [n, d]); // [n, dModel]

  const mask = causalMask(nPos);
  for (let layer = 0; layer < config.nLayers; layer++) {
    const p = (name: string) => param(params, `blocks.${layer}.${name}`);

    // Attention: split q, k, v while still 2-D, then move heads forward with 4-D transposes.
    const x1 = layerNorm(resid, p("ln1.w"), p("ln1.b"), config.layerNormEps);
    const qkv = tf.add(matMul(x1, p("W_QKV")), p("b_QKV")); // [n, dModel] -> [n, 3*dModel]
    const [q, k, v] = tf.split(qkv, 3, 1) as [tf.Tensor, tf.Tensor, tf.Tensor]; // 3 x [n, dModel]
    const qh = tf.transpose(tf.reshape(q, [batch, nPos, nHeads, dHead]), [0, 2, 1, 3]); // [batch, head, pos, dHead]
    const kT = tf.transpose(tf.reshape(k, [batch, nPos, nHeads, dHead]), [0, 2, 3, 1]); // [batch, head, dHead, pos]
    const vh = tf.transpose(tf.reshape(v, [batch, nPos, nHeads, dHead]), [0, 2, 1, 3]); // [batch, head, pos, dHead]
    const scores = tf.add(tf.mul(matMul(qh, kT), 1 / Math.sqrt(dHead)), mask); // [batch, head, pos, pos]
    const pattern = tf.softmax(scores); // [batch, head, queryPos, keyPos]
    const z = matMul(pattern, vh); // [batch, head, pos, dHead]
    const zFlat = tf.reshape(tf.transpose(z, [0, 2, 1, 3]), [n, d]); // [batch, pos, head, dHead] -> [n, dModel]
    const attnOut = tf.add(matMul(zFlat, p("W_O")), p("b_O")); // [n, dModel]
    resid = tf.add(resid, attnOut);

    // MLP.
    const x2 = layerNorm(resid, p("ln2.w"), p("ln2.b"), config.layerNormEps);
    const hidden = geluNew(tf.add(matMul(x2, p("W_in")), p("b_in"))); // [n, dModel] -> [n, dMlp]
    const mlpOut = tf.add(matMul(hidden, p("W_out")), p("b_out")); // [n, dMlp] -> [n, dModel]
    resid = tf.add(resid, mlpOut);
  }

  return layerNorm(resid, param(params, "ln_final.w"), param(params, "ln_final.b"), config.layerNormEps) as tf.Tensor2D;
}

/**
 * Computes the cross-entropy of each target from the final hidden states, with the embedding
 * table as the unembedding. Call inside tf.tidy.
 *
 * @param hidden `[n, dModel]`
 * @param embedding `[rows, dModel]`: the (possibly compact) token embedding.
 * @param logitOffset `[rows]` added to the logits before the softmax, or null for none. The
 *   compact table uses it to give the shared unseen row the weight of all unseen ids.
 * @param targetRows int32 `[n]`: row of each target in `embedding`.
 * @returns `[n]`: -log p(target). The offset is left out of the target's own logit, so for the
 *   shared unseen row this is the loss of one particular unseen id.
 */
export function tokenLosses(
  hidden: tf.Tensor2D,
  embedding: tf.Tensor2D,
  logitOffset: tf.Tensor1D | null,
  targetRows: tf.Tensor1D,
): tf.Tensor1D {
  let logits = matMul(hidden, tf.transpose(embedding)) as tf.Tensor2D; // [n, dModel] -> [n, rows]
  if (logitOffset !== null) logits = tf.add(logits, logitOffset);
  const lse = logSumExp(logits); // [n]
  const targetLogits = tf.sum(tf.mul(hidden, gatherRows(embedding, targetRows)), -1); // [n, dModel] -> [n]
  return tf.sub(lse, targetLogits) as tf.Tensor1D;
}

/**
 * Computes the full-vocabulary logits of the exported (uncompacted) weights. Call inside tf.tidy.
 *
 * @param ids int32 `[batch * pos]` token ids.
 * @returns `[batch * pos, dVocab]`
 */
export function fullLogits(
  config: TrainModelConfig,
  params: ParameterTensors,
  ids: tf.Tensor1D,
  batch: number,
  nPos: number,
): tf.Tensor2D {
  const hidden = forwardHidden(config, params, ids, batch, nPos);
  return tf.matMul(hidden, tf.transpose(param(params, "W_E"))) as tf.Tensor2D; // [n, dModel] -> [n, dVocab]
}
