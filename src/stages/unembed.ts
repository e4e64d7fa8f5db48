/**
 * Unembedding: the final normalized residual becomes logits over the vocabulary.
 */
import * as tf from "@tensorflow/tfjs-core";

/** Logits and log-probabilities, each `[pos, dVocab]`. */
export interface UnembedOutput {
  logits: tf.Tensor2D;
  logProbs: tf.Tensor2D;
}

/**
 * The number of positions from which `unembed` multiplies by the rows of W_U transposed. For a
 * long prompt, `x @ W_U` runs at about half the speed of `W_U^T @ x^T` on XNNPACK
 * (tfjs-backend-wasm 4.22), most likely because it streams the 50,257-column W_U once per few rows
 * of x. Up to 4 positions `x @ W_U` is faster. Measured with bench/micro.ts on GPT-2 small
 * (64 positions: 311 ms against 169 ms on one thread of a 2-vCPU Xeon).
 */
const ROWS_MIN_POSITIONS = 5;

/**
 * Maps normalized residuals to logits and log-probabilities.
 *
 * @param x Output of ln_final `[pos, dModel]`.
 * @param W_U Unembedding `[dModel, dVocab]`.
 * @param W_U_T The same matrix transposed, `[dVocab, dModel]` (for a tied head, W_E). When given,
 *   inputs of several positions use it; the logits differ from `x @ W_U` by float rounding only.
 */
export function unembed(x: tf.Tensor2D, W_U: tf.Tensor2D, W_U_T?: tf.Tensor2D): UnembedOutput {
  return tf.tidy(() => {
    const logits = unembedLogits(x, W_U, W_U_T); // [pos, dModel] -> [pos, dVocab]
    const logProbs = tf.logSoftmax(logits, -1) as tf.Tensor2D; // [pos, dVocab]
    return { logits, logProbs };
  });
}

/** Computes the logits `[pos, dVocab]` alone, as `unembed` does, for passes that need no log-probabilities. */
export function unembedLogits(x: tf.Tensor2D, W_U: tf.Tensor2D, W_U_T?: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    if (W_U_T && x.shape[0] >= ROWS_MIN_POSITIONS) {
      return tf.transpose(tf.matMul(W_U_T, tf.transpose(x))) as tf.Tensor2D; // [dVocab, dModel] @ [dModel, pos] -> [pos, dVocab]
    }
    return tf.matMul(x, W_U) as tf.Tensor2D; // [pos, dModel] -> [pos, dVocab]
  });
}
