/**
 * Differentiable ops with hand-written gradients that keep tfjs-wasm training on its fast
 * paths. Measured on tfjs 4.22 with the wasm backend (one thread):
 * - the built-in gather gradient needs UnsortedSegmentSum, which has no wasm kernel;
 * - matMul with transposeA/transposeB leaves the XNNPACK path and runs several times slower,
 *   and the built-in matMul gradient uses those flags;
 * - the built-in logSumExp gradient goes through Max/Equal with broadcasting and is slow.
 */
import * as tf from "@tensorflow/tfjs-core";
// tfjs-core alone registers no gradients; the @tensorflow/tfjs package registers them all.
import "@tensorflow/tfjs";

// tf.customGrad's parameter type takes a variadic (Tensor | GradSaveFunc) list; the functions
// below name their inputs, so they are cast to it.
type CustomGradientFunction = Parameters<typeof tf.customGrad>[0];

/** Swaps the last two axes of a tensor of rank 2 or more. */
export function transposeLast(x: tf.Tensor): tf.Tensor {
  const rank = x.rank;
  const perm = [...Array(rank).keys()];
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return tf.transpose(x, perm);
}

const matMulFast = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as [tf.Tensor, tf.Tensor];
      return [tf.matMul(dy, transposeLast(sb)), tf.matMul(transposeLast(sa), dy)];
    },
  };
}) as unknown as CustomGradientFunction);

/**
 * Multiplies `a` by `b` (same batch shape, or both rank 2) with a gradient built from explicit
 * transposes and plain matmuls.
 *
 * @param a `[..., m, k]`
 * @param b `[..., k, n]`
 * @returns `[..., m, n]`
 */
export function matMul(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return matMulFast(a, b) as tf.Tensor;
}

/**
 * Gathers rows of `table` with a gradient computed by scatterND, which sums the gradients of
 * repeated indices on the wasm and cpu backends.
 *
 * @param table `[rows, dModel]`
 * @param indices int32 `[n]`, each in `[0, rows)`
 * @returns `[n, dModel]`
 */
export function gatherRows(table: tf.Tensor2D, indices: tf.Tensor1D): tf.Tensor2D {
  const rows = table.shape[0];
  const columns = table.shape[1];
  const gather = tf.customGrad(((t: tf.Tensor) => ({
    value: tf.gather(t, indices),
    gradFunc: (dy: tf.Tensor) => tf.scatterND(tf.reshape(indices, [-1, 1]), dy, [rows, columns]),
  })) as unknown as CustomGradientFunction);
  return gather(table) as tf.Tensor2D;
}

const logSumExpFast = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const max = tf.max(x, -1, true); // [n, vocab] -> [n, 1]
  const lse = tf.add(tf.log(tf.sum(tf.exp(tf.sub(x, max)), -1, true)), max); // [n, 1]
  save([x, lse]);
  return {
    value: tf.reshape(lse, [-1]), // [n, 1] -> [n]
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, slse] = saved as [tf.Tensor, tf.Tensor];
      return tf.mul(tf.exp(tf.sub(sx, slse)), tf.reshape(dy, [-1, 1]));
    },
  };
}) as unknown as CustomGradientFunction);

/**
 * Computes log(sum(exp(x))) over the last axis of a 2-D tensor, with the gradient
 * softmax(x) * dy.
 *
 * @param x `[n, vocab]`
 * @returns `[n]`
 */
export function logSumExp(x: tf.Tensor2D): tf.Tensor1D {
  return logSumExpFast(x) as tf.Tensor1D;
}

/**
 * Applies the tanh approximation of GELU that GPT-2 uses (`gelu_new`). It is written with
 * x*x*x because pow is slower on wasm.
 */
export function geluNew(x: tf.Tensor): tf.Tensor {
  const cube = tf.mul(tf.mul(x, x), x);
  const inner = tf.mul(tf.add(x, tf.mul(cube, 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

/**
 * Layer norm over the last axis with biased variance, as PyTorch computes it.
 *
 * @param x `[n, dModel]`
 * @param w `[dModel]`
 * @param b `[dModel]`
 */
export function layerNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const mean = tf.mean(x, -1, true); // [n, dModel] -> [n, 1]
  const centered = tf.sub(x, mean);
  const variance = tf.mean(tf.mul(centered, centered), -1, true); // [n, 1]
  const normalized = tf.mul(centered, tf.rsqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(normalized, w), b);
}
