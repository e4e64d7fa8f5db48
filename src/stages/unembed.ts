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
 * Maps normalized residuals to logits and log-probabilities.
 *
 * @param x Output of ln_final `[pos, dModel]`.
 * @param W_U Unembedding `[dModel, dVocab]`.
 */
export function unembed(x: tf.Tensor2D, W_U: tf.Tensor2D): UnembedOutput {
  return tf.tidy(() => {
    const logits = tf.matMul(x, W_U) as tf.Tensor2D; // [pos, dModel] -> [pos, dVocab]
    const logProbs = tf.logSoftmax(logits, -1) as tf.Tensor2D; // [pos, dVocab]
    return { logits, logProbs };
  });
}
