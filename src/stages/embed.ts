/**
 * Embedding: token ids become vectors. The residual stream starts as the token
 * embedding plus the position embedding.
 */
import * as tf from "@tensorflow/tfjs-core";
import { sliceRows } from "./_contiguous.ts";

/** Token part, position part and their sum, each `[pos, dModel]`. */
export interface EmbedOutput {
  /** W_E[ids]: hook_embed. */
  tokenEmbed: tf.Tensor2D;
  /** W_pos[offset .. offset + pos]: hook_pos_embed. */
  posEmbed: tf.Tensor2D;
  /** tokenEmbed + posEmbed: the first residual (blocks.0.hook_resid_pre). */
  residual: tf.Tensor2D;
}

/**
 * Looks up token and position embeddings.
 *
 * @param ids Token ids `[pos]`, each in `[0, dVocab)` (checked by the caller).
 * @param W_E Token embedding `[dVocab, dModel]`.
 * @param W_pos Position embedding `[nCtx, dModel]`.
 * @param offset Position of the first id (non-zero when extending a KV cache).
 * @param hook Called on each activation by its local name; returns the tensor to use.
 */
export function embed(
  ids: Int32Array,
  W_E: tf.Tensor2D,
  W_pos: tf.Tensor2D,
  offset: number,
  hook: (name: "hook_embed" | "hook_pos_embed", x: tf.Tensor) => tf.Tensor = (_n, x) => x,
): EmbedOutput {
  const nPos = ids.length;
  const idTensor = tf.tensor1d(ids, "int32");
  const tokenEmbed = hook("hook_embed", tf.gather(W_E, idTensor)) as tf.Tensor2D; // [pos] -> [pos, dModel]
  idTensor.dispose();
  const posEmbed = hook("hook_pos_embed", sliceRows(W_pos, offset, nPos)) as tf.Tensor2D; // [pos, dModel]
  const residual = tf.add(tokenEmbed, posEmbed) as tf.Tensor2D; // [pos, dModel]
  return { tokenEmbed, posEmbed, residual };
}
