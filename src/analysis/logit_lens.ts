/**
 * The logit lens: read each layer's residual stream as if it were the last one, by applying the
 * final layer norm and the unembedding to it.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { HookName } from "../hooks.ts";
import type { Model, TokenInput, TokenOptions } from "../model.ts";
import { layerNorm } from "../stages/layer_norm.ts";
import { argmaxOf, residualName, resolveToken, type TokenRef } from "./_common.ts";

/** Options for `logitLens`. */
export interface LogitLensOptions extends TokenOptions {
  /** A token whose log-probability to report at every layer and position. */
  target?: TokenRef;
  /** Also return every log-probability as a tensor `[layer, pos, dVocab]`. Default false. */
  returnLogProbs?: boolean;
}

/**
 * The prediction of the residual stream at each layer. Row `layer` reads the residual entering
 * block `layer`, and the last row (index nLayers) reads the final residual, so it equals the
 * model's own prediction. Holds a tensor only when `returnLogProbs` was set: call `dispose()`.
 */
export class LogitLensResult {
  constructor(
    /** The input token ids `[pos]`. */
    readonly ids: Int32Array,
    /** The hook point read by each row `[layer]`: every `blocks.L.hook_resid_pre`, then the last block's `hook_resid_post`. */
    readonly layerNames: HookName[],
    /** The most likely next token `[layer][pos]`; ties go to the lower id. */
    readonly topId: number[][],
    /** Text of each `topId` `[layer][pos]`. */
    readonly topToken: string[][],
    /** Probability of each `topId` `[layer][pos]`. */
    readonly topProb: number[][],
    /** The `target` option's token id, if given. */
    readonly target: number | undefined,
    /** Log-probability of `target` `[layer][pos]`, if given. */
    readonly targetLogProb: number[][] | undefined,
    /** Every log-probability `[layer, pos, dVocab]`, when `returnLogProbs` was set. */
    readonly logProbs: tf.Tensor3D | undefined,
  ) {}

  /** Frees `logProbs`, if present. */
  dispose(): void {
    this.logProbs?.dispose();
  }
}

/**
 * Applies the final layer norm and the unembedding to the residual entering every block and to
 * the final residual.
 *
 * The layer norm's scale, sqrt(var + eps), is recomputed from each residual, as the final layer
 * norm would compute it if the model ended at that layer. Reusing the scale of the final residual
 * (`ln_final.hook_scale`) would mix two layers' statistics.
 *
 * @param input Text or token ids.
 * @returns Top token, its probability and optionally a target's log-probability, each `[layer][pos]`
 *   with nLayers + 1 layers.
 * @example
 * ```ts
 * const lens = logitLens(model, "To be, or not to be", { target: " be" });
 * lens.topToken[2];       // what the residual entering block 2 predicts at each position
 * lens.targetLogProb![4]; // log p(" be") after the last block
 * lens.dispose();
 * ```
 */
export function logitLens(model: Model, input: TokenInput, options: LogitLensOptions = {}): LogitLensResult {
  const ids = model.toTokens(input, options);
  const target = options.target === undefined ? undefined : resolveToken(model, options.target, "target");
  const { nLayers, dVocab, layerNormEps } = model.config;
  const layerNames = Array.from({ length: nLayers + 1 }, (_, layer) => residualName(model, layer));

  const { logits, cache } = model.runWithCache(ids, { names: layerNames });
  logits.dispose();
  const topId: number[][] = [];
  const topToken: string[][] = [];
  const topProb: number[][] = [];
  const targetLogProb: number[][] = [];
  const keptLogProbs: tf.Tensor2D[] = [];
  try {
    for (const name of layerNames) {
      // One layer at a time, so only one [pos, dVocab] block is alive at once.
      const logProbs = tf.tidy(() => {
        const residual = cache.get(name) as tf.Tensor2D; // [pos, dModel]
        const { w, b } = model.lnFinalWeights;
        const { normalized } = layerNorm(residual, w, b, layerNormEps); // scale recomputed from this residual
        return tf.logSoftmax(tf.matMul(normalized, model.W_U)) as tf.Tensor2D; // [pos, dModel] -> [pos, dVocab]
      });
      const values = logProbs.dataSync();
      if (options.returnLogProbs) keptLogProbs.push(logProbs);
      else logProbs.dispose();

      const rowTop: number[] = [];
      const probs: number[] = [];
      const targets: number[] = [];
      for (let pos = 0; pos < ids.length; pos++) {
        const id = argmaxOf(values, pos * dVocab, dVocab);
        rowTop.push(id);
        probs.push(Math.exp(values[pos * dVocab + id]!));
        if (target !== undefined) targets.push(values[pos * dVocab + target]!);
      }
      topId.push(rowTop);
      topToken.push(rowTop.map((id) => model.tokenText(id)));
      topProb.push(probs);
      if (target !== undefined) targetLogProb.push(targets);
    }
    const stacked = options.returnLogProbs ? (tf.stack(keptLogProbs) as tf.Tensor3D) : undefined; // -> [layer, pos, dVocab]
    return new LogitLensResult(
      ids,
      layerNames,
      topId,
      topToken,
      topProb,
      target,
      target === undefined ? undefined : targetLogProb,
      stacked,
    );
  } finally {
    for (const t of keptLogProbs) t.dispose();
    cache.dispose();
  }
}
