/**
 * Layer norm, as GPT-2 uses it: (x - mean) / sqrt(var + eps) * w + b over dModel, with the
 * biased variance.
 */
import * as tf from "@tensorflow/tfjs-core";

/** Rows whose centered values exceed this magnitude are rescaled before squaring. */
const LARGE_ROW = 2 ** 40;

/** The parts of a layer norm that TransformerLens hooks. */
export interface LayerNormOutput {
  /** sqrt(var + eps) per position `[pos, 1]`: hook_scale. */
  scale: tf.Tensor2D;
  /** (x - mean) / scale * w + b `[pos, dModel]`: hook_normalized. */
  normalized: tf.Tensor2D;
}

/**
 * Normalizes each position of `x`.
 *
 * @param x Residual `[pos, dModel]`.
 * @param w Scale `[dModel]`.
 * @param b Bias `[dModel]`.
 * @param eps Added to the variance (`layer_norm_epsilon`).
 * @param hook Called on each activation by its local name; returns the tensor to use.
 */
export function layerNorm(
  x: tf.Tensor2D,
  w: tf.Tensor1D,
  b: tf.Tensor1D,
  eps: number,
  hook: (name: "hook_scale" | "hook_normalized", x: tf.Tensor) => tf.Tensor = (_n, t) => t,
): LayerNormOutput {
  return tf.tidy(() => {
    // Center, then divide by the root of the biased variance.
    const mean = tf.mean(x, -1, true); // [pos, dModel] -> [pos, 1]
    const centered = tf.sub(x, mean); // [pos, dModel]

    // Squares overflow float32 once |x| passes about 1.8e19, so rows beyond 2^40 are divided by
    // their largest magnitude before squaring. Other rows are divided by exactly 1, which
    // leaves their results bit for bit unchanged.
    const maxAbs = tf.max(tf.abs(centered), -1, true); // [pos, dModel] -> [pos, 1]
    const rowScale = tf.where(tf.greater(maxAbs, LARGE_ROW), maxAbs, tf.onesLike(maxAbs)); // [pos, 1]
    const variance = tf.mean(tf.square(tf.div(centered, rowScale)), -1, true); // [pos, dModel] -> [pos, 1]
    const scale = hook("hook_scale", tf.mul(tf.sqrt(tf.add(variance, eps)), rowScale)) as tf.Tensor2D; // [pos, 1]

    const normalized = hook(
      "hook_normalized",
      tf.add(tf.mul(tf.div(centered, scale), w), b), // [pos, dModel]
    ) as tf.Tensor2D;
    return { scale, normalized };
  });
}

/**
 * Applies a layer norm with a given scale instead of computing it from `x` (used for
 * direct logit attribution, where the final scale is frozen).
 *
 * @param x `[pos, dModel]`; @param scale `[pos, 1]`.
 */
export function layerNormWithScale(
  x: tf.Tensor2D,
  scale: tf.Tensor2D,
  w: tf.Tensor1D,
  b: tf.Tensor1D,
): tf.Tensor2D {
  return tf.tidy(() => {
    const centered = tf.sub(x, tf.mean(x, -1, true)); // [pos, dModel]
    return tf.add(tf.mul(tf.div(centered, scale), w), b) as tf.Tensor2D; // [pos, dModel]
  });
}
