/**
 * Causal multi-head self-attention, computed head by head so every intermediate that
 * TransformerLens hooks (q, k, v, scores, pattern, z, result) can be read or replaced.
 */
import * as tf from "@tensorflow/tfjs-core";
import { splitHeads } from "./_contiguous.ts";

/** The attention weights of one block, as tensors. */
export interface AttentionWeights {
  /** [dModel, dModel]; head h owns columns h*dHead .. (h+1)*dHead. */
  W_Q: tf.Tensor2D;
  W_K: tf.Tensor2D;
  W_V: tf.Tensor2D;
  /** [dModel] */
  b_Q: tf.Tensor1D;
  b_K: tf.Tensor1D;
  b_V: tf.Tensor1D;
  /** [dModel, dModel]; head h owns rows h*dHead .. (h+1)*dHead. */
  W_O: tf.Tensor2D;
  /** [dModel] */
  b_O: tf.Tensor1D;
}

/** Options that shape the attention computation. */
export interface AttentionOptions {
  nHeads: number;
  /** Divides scores by sqrt(dHead) when true (GPT-2's `scale_attn_weights`). */
  scaleAttnWeights: boolean;
  /** When set, also divides scores by `layer + 1` (GPT-2's `scale_attn_by_inverse_layer_idx`). */
  inverseLayerScale?: number;
  /**
   * Keys and values of earlier positions `[pastPos, head, dHead]`, from a KV cache. The new
   * positions come after them.
   */
  past?: { k: tf.Tensor3D; v: tf.Tensor3D };
  /**
   * Computes each head's contribution to the output, `[pos, head, dModel]` (hook_result).
   * The output is then the sum of those contributions plus b_O; otherwise one matmul of the
   * concatenated z with W_O, which differs only by float rounding.
   */
  computeResult: boolean;
}

/** Local hook names of the attention component. */
export type AttentionHookName =
  | "hook_q"
  | "hook_k"
  | "hook_v"
  | "hook_attn_scores"
  | "hook_pattern"
  | "hook_z"
  | "hook_result";

/** Everything the attention computes. `pos` counts new positions, `keyPos` all positions. */
export interface AttentionOutput {
  /** [pos, head, dHead] */
  q: tf.Tensor3D;
  /** Keys of the new positions [pos, head, dHead]. */
  k: tf.Tensor3D;
  /** Values of the new positions [pos, head, dHead]. */
  v: tf.Tensor3D;
  /** Scaled scores with -Infinity above the causal diagonal [head, pos, keyPos]. */
  scores: tf.Tensor3D;
  /** Softmax of the scores [head, pos, keyPos]; rows sum to 1. */
  pattern: tf.Tensor3D;
  /** pattern @ v per head [pos, head, dHead]. */
  z: tf.Tensor3D;
  /** Each head's output z_h @ W_O[h] [pos, head, dModel], when computeResult is true. */
  result?: tf.Tensor3D;
  /** Sum over heads plus b_O [pos, dModel]: what the block adds to the residual. */
  out: tf.Tensor2D;
  /** Keys and values of all positions [keyPos, head, dHead], for a KV cache. */
  kAll: tf.Tensor3D;
  vAll: tf.Tensor3D;
}

/**
 * Runs causal self-attention on normalized input.
 *
 * @param x Normalized residual `[pos, dModel]` (the output of ln1).
 * @param weights The block's attention weights.
 * @param options Head count, scaling, KV cache and whether to compute per-head results.
 * @param hook Called on each activation by its local name; returns the tensor to use.
 */
export function attention(
  x: tf.Tensor2D,
  weights: AttentionWeights,
  options: AttentionOptions,
  hook: (name: AttentionHookName, t: tf.Tensor) => tf.Tensor = (_n, t) => t,
): AttentionOutput {
  return tf.tidy((): tf.TensorContainer => {
    const [nPos, dModel] = x.shape;
    const nHeads = options.nHeads;
    const dHead = dModel / nHeads;
    const pastPos = options.past ? options.past.k.shape[0] : 0;
    const keyPos = pastPos + nPos;

    // Project to queries, keys and values, and split the columns into heads.
    const project = (W: tf.Tensor2D, b: tf.Tensor1D) =>
      tf.reshape(tf.fused.matMul({ a: x, b: W, bias: b }), [nPos, nHeads, dHead]) as tf.Tensor3D; // [pos, dModel] -> [pos, head, dHead]
    const q = hook("hook_q", project(weights.W_Q, weights.b_Q)) as tf.Tensor3D;
    const k = hook("hook_k", project(weights.W_K, weights.b_K)) as tf.Tensor3D;
    const v = hook("hook_v", project(weights.W_V, weights.b_V)) as tf.Tensor3D;

    // Prepend cached keys and values of earlier positions.
    const kAll = options.past ? tf.concat([options.past.k, k], 0) as tf.Tensor3D : k; // [keyPos, head, dHead]
    const vAll = options.past ? tf.concat([options.past.v, v], 0) as tf.Tensor3D : v; // [keyPos, head, dHead]

    // Score every query against every key, per head.
    const qHeads = tf.transpose(q, [1, 0, 2]); // [pos, head, dHead] -> [head, pos, dHead]
    const kHeadsT = tf.transpose(kAll, [1, 2, 0]); // [keyPos, head, dHead] -> [head, dHead, keyPos]
    let divisor = options.scaleAttnWeights ? Math.sqrt(dHead) : 1;
    if (options.inverseLayerScale !== undefined) divisor *= options.inverseLayerScale;
    const headwise = nPos >= HEADWISE_MIN_POSITIONS;
    let raw = headwise ? headwiseMatMul(qHeads, kHeadsT) : tf.matMul(qHeads, kHeadsT); // [head, pos, keyPos]
    if (divisor !== 1) raw = tf.div(raw, divisor);

    // Mask keys after each query: query i sits at position pastPos + i. A single new position
    // may see every key, so it needs no mask.
    const masked = nPos === 1 ? raw : tf.add(raw, causalMask(nPos, keyPos, pastPos));
    const scores = hook("hook_attn_scores", masked) as tf.Tensor3D; // [head, pos, keyPos]
    const pattern = hook("hook_pattern", tf.softmax(scores, -1)) as tf.Tensor3D; // [head, pos, keyPos]

    // Mix the values with the pattern.
    const vHeads = tf.transpose(vAll, [1, 0, 2]); // [keyPos, head, dHead] -> [head, keyPos, dHead]
    const zHeads = headwise ? headwiseMatMul(pattern, vHeads) : tf.matMul(pattern, vHeads); // [head, pos, dHead]
    const z = hook("hook_z", tf.transpose(zHeads, [1, 0, 2])) as tf.Tensor3D; // [head, pos, dHead] -> [pos, head, dHead]

    // Project back to the residual stream.
    let out: tf.Tensor2D;
    let result: tf.Tensor3D | undefined;
    if (options.computeResult) {
      const W_O_heads = tf.reshape(weights.W_O, [nHeads, dHead, dModel]) as tf.Tensor3D; // [dModel, dModel] -> [head, dHead, dModel]
      const zByHead = tf.transpose(z, [1, 0, 2]) as tf.Tensor3D; // [pos, head, dHead] -> [head, pos, dHead]
      const perHead = headwise ? headwiseMatMul(zByHead, W_O_heads) : tf.matMul(zByHead, W_O_heads); // [head, pos, dModel]
      result = hook("hook_result", tf.transpose(perHead, [1, 0, 2])) as tf.Tensor3D; // -> [pos, head, dModel]
      out = tf.add(tf.sum(result, 1), weights.b_O) as tf.Tensor2D; // [pos, head, dModel] -> [pos, dModel]
    } else {
      const zFlat = tf.reshape(z, [nPos, dModel]); // [pos, head, dHead] -> [pos, dModel]
      out = tf.fused.matMul({ a: zFlat, b: weights.W_O, bias: weights.b_O }) as tf.Tensor2D; // [pos, dModel]
    }
    const output: AttentionOutput = { q, k, v, scores, pattern, z, out, kAll, vAll };
    if (result) output.result = result;
    return output as unknown as tf.TensorContainer;
  }) as unknown as AttentionOutput;
}

/**
 * The number of new positions from which attention multiplies head by head with 2-D matmuls.
 * tfjs-backend-wasm 4.22 sends a matmul to XNNPACK only when it is unbatched and untransposed,
 * and runs every batched one in a scalar loop. For one new position (decoding with a KV cache)
 * the batched products are small, and one call beats one XNNPACK operator per head.
 */
const HEADWISE_MIN_POSITIONS = 2;

/** Multiplies `a[h] @ b[h]` for each head h with 2-D matmuls: `[head, m, k] @ [head, k, n] -> [head, m, n]`. */
function headwiseMatMul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  const aHeads = splitHeads(a); // [head, m, k] -> head x [m, k]
  const bHeads = splitHeads(b); // [head, k, n] -> head x [k, n]
  return tf.stack(aHeads.map((aHead, h) => tf.matMul(aHead, bHeads[h]!))) as tf.Tensor3D; // -> [head, m, n]
}

/** An additive mask `[pos, keyPos]`: 0 where query i may see key j (j <= pastPos + i), else -Infinity. */
export function causalMask(nPos: number, keyPos: number, pastPos: number): tf.Tensor2D {
  const values = new Float32Array(nPos * keyPos);
  for (let i = 0; i < nPos; i++) {
    for (let j = pastPos + i + 1; j < keyPos; j++) values[i * keyPos + j] = -Infinity;
  }
  return tf.tensor2d(values, [nPos, keyPos]);
}
