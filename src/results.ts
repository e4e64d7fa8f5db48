/**
 * Result types of the stage functions. Each result owns its tensors: call `dispose()` when
 * done with it. Shapes have no batch axis.
 */
import type * as tf from "@tensorflow/tfjs-core";
import { INSPECT_CUSTOM, JUPYTER_DISPLAY, type MimeBundle } from "./display/figure.ts";
import {
  attentionResultBundle,
  attentionResultText,
  embedResultBundle,
  embedResultText,
  layerNormResultBundle,
  layerNormResultText,
  mlpResultBundle,
  mlpResultText,
  unembedResultBundle,
  unembedResultText,
} from "./display/results.ts";

/** The options util.inspect passes to a custom inspect method (Node, Deno and Bun). */
interface InspectOptions {
  colors?: boolean;
}

/** Frees every tensor among the own properties of `obj` (one level deep). */
function disposeTensors(obj: object): void {
  for (const value of Object.values(obj)) {
    if (value && typeof value === "object" && typeof (value as tf.Tensor).dispose === "function") {
      (value as tf.Tensor).dispose();
    }
  }
}

/** The token and position parts of an embedding and their sum. */
export class EmbedResult {
  constructor(
    /** Token ids `[pos]`. */
    readonly ids: Int32Array,
    /** W_E[ids] `[pos, dModel]` (hook_embed). */
    readonly tokenEmbed: tf.Tensor2D,
    /** W_pos rows `[pos, dModel]` (hook_pos_embed). */
    readonly posEmbed: tf.Tensor2D,
    /** tokenEmbed + posEmbed `[pos, dModel]` (blocks.0.hook_resid_pre). */
    readonly residual: tf.Tensor2D,
  ) {}

  /** Returns the MIME bundle Deno's Jupyter kernel shows: the residual as a heatmap. */
  [JUPYTER_DISPLAY](): MimeBundle {
    return embedResultBundle(this);
  }

  /** Returns the text util.inspect shows in a terminal. */
  [INSPECT_CUSTOM](_depth: number, options?: InspectOptions): string {
    return embedResultText(this, { colors: Boolean(options?.colors) });
  }

  /** Frees the tensors. */
  dispose(): void {
    disposeTensors(this);
  }
}

/** A layer norm's scale and normalized output. */
export class LayerNormResult {
  constructor(
    /** sqrt(var + eps) `[pos, 1]` (hook_scale). */
    readonly scale: tf.Tensor2D,
    /** (x - mean) / scale * w + b `[pos, dModel]` (hook_normalized). */
    readonly normalized: tf.Tensor2D,
  ) {}

  /** Returns the MIME bundle Deno's Jupyter kernel shows: the normalized vectors as a heatmap. */
  [JUPYTER_DISPLAY](): MimeBundle {
    return layerNormResultBundle(this);
  }

  /** Returns the text util.inspect shows in a terminal. */
  [INSPECT_CUSTOM](_depth: number, options?: InspectOptions): string {
    return layerNormResultText(this, { colors: Boolean(options?.colors) });
  }

  /** Frees the tensors. */
  dispose(): void {
    disposeTensors(this);
  }
}

/** Everything an attention block computes. `pos` counts query positions. */
export class AttentionResult {
  constructor(
    readonly layer: number,
    /** ln1 applied to the input residual. */
    readonly ln1: LayerNormResult,
    /** Queries `[pos, head, dHead]`. */
    readonly q: tf.Tensor3D,
    /** Keys `[pos, head, dHead]`. */
    readonly k: tf.Tensor3D,
    /** Values `[pos, head, dHead]`. */
    readonly v: tf.Tensor3D,
    /** Scaled scores, -Infinity where masked `[head, queryPos, keyPos]`. */
    readonly scores: tf.Tensor3D,
    /** Attention probabilities `[head, queryPos, keyPos]`; rows sum to 1. */
    readonly pattern: tf.Tensor3D,
    /** Weighted values `[pos, head, dHead]`. */
    readonly z: tf.Tensor3D,
    /** Each head's output `[pos, head, dModel]`. */
    readonly result: tf.Tensor3D,
    /** The block output, sum of heads plus b_O `[pos, dModel]` (hook_attn_out). */
    readonly out: tf.Tensor2D,
    /** The input residual plus `out` `[pos, dModel]` (hook_resid_mid). */
    readonly residOut: tf.Tensor2D,
  ) {}

  /** Returns the MIME bundle Deno's Jupyter kernel shows: every head's pattern. */
  [JUPYTER_DISPLAY](): MimeBundle {
    return attentionResultBundle(this);
  }

  /** Returns the text util.inspect shows in a terminal. */
  [INSPECT_CUSTOM](_depth: number, options?: InspectOptions): string {
    return attentionResultText(this, { colors: Boolean(options?.colors) });
  }

  /** Frees the tensors. */
  dispose(): void {
    this.ln1.dispose();
    disposeTensors(this);
  }
}

/** Everything an MLP block computes. */
export class MlpResult {
  constructor(
    readonly layer: number,
    /** ln2 applied to the input residual. */
    readonly ln2: LayerNormResult,
    /** Neuron activations before the nonlinearity `[pos, dMlp]` (hook_pre). */
    readonly pre: tf.Tensor2D,
    /** Neuron activations after the nonlinearity `[pos, dMlp]` (hook_post). */
    readonly post: tf.Tensor2D,
    /** The block output `[pos, dModel]` (hook_mlp_out). */
    readonly out: tf.Tensor2D,
    /** The input residual plus `out` `[pos, dModel]` (hook_resid_post). */
    readonly residOut: tf.Tensor2D,
  ) {}

  /** Returns the MIME bundle Deno's Jupyter kernel shows: the most active neurons. */
  [JUPYTER_DISPLAY](): MimeBundle {
    return mlpResultBundle(this);
  }

  /** Returns the text util.inspect shows in a terminal. */
  [INSPECT_CUSTOM](_depth: number, options?: InspectOptions): string {
    return mlpResultText(this, { colors: Boolean(options?.colors) });
  }

  /** Frees the tensors. */
  dispose(): void {
    this.ln2.dispose();
    disposeTensors(this);
  }
}

/** One candidate next token. */
export interface TopToken {
  id: number;
  /** The token's text; partial UTF-8 bytes show as U+FFFD. */
  token: string;
  logit: number;
  prob: number;
}

/** Logits and log-probabilities of every position, with top-k helpers. */
export class UnembedResult {
  constructor(
    /** ln_final applied to the residual. */
    readonly lnFinal: LayerNormResult,
    /** `[pos, dVocab]` */
    readonly logits: tf.Tensor2D,
    /** log-softmax of the logits `[pos, dVocab]`. */
    readonly logProbs: tf.Tensor2D,
    private readonly tokenText: (id: number) => string,
  ) {}

  /**
   * Returns the `k` most likely next tokens at `position` (default: the last), most likely
   * first; equal logits go to the lower id.
   */
  topK(k = 10, position = -1): TopToken[] {
    const [nPos, dVocab] = this.logits.shape;
    const row = position < 0 ? nPos + position : position;
    if (!Number.isInteger(row) || row < 0 || row >= nPos) {
      throw new RangeError(`Cannot take top-k at position ${position}: expected an integer in [${-nPos}, ${nPos})`);
    }
    if (!Number.isInteger(k) || k < 1) {
      throw new RangeError(`Cannot take top-k with k = ${k}: k must be an integer >= 1`);
    }
    const all = this.logits.dataSync();
    const logits = all.subarray(row * dVocab, (row + 1) * dVocab);
    return topKOfRow(logits, Math.min(k, dVocab), this.tokenText);
  }

  /** Returns the MIME bundle Deno's Jupyter kernel shows: the top-10 next tokens. */
  [JUPYTER_DISPLAY](): MimeBundle {
    return unembedResultBundle(this);
  }

  /** Returns the text util.inspect shows in a terminal. */
  [INSPECT_CUSTOM](_depth: number, options?: InspectOptions): string {
    return unembedResultText(this, { colors: Boolean(options?.colors) });
  }

  /** Frees the tensors. */
  dispose(): void {
    this.lnFinal.dispose();
    this.logits.dispose();
    this.logProbs.dispose();
  }
}

/** Returns the top `k` entries of one logit row with probabilities (float64 softmax). */
export function topKOfRow(logits: ArrayLike<number>, k: number, tokenText: (id: number) => string): TopToken[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const value = logits[i]!;
    if (Number.isNaN(value) || value === Infinity) {
      throw new RangeError(
        `Cannot rank the logits: found ${value} at id ${i}. Check the input residual and any hooks for overflow.`,
      );
    }
    if (value > max) max = value;
  }
  if (max === -Infinity) throw new RangeError("Cannot rank the logits: every logit is -Infinity.");
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);

  // Keep a small sorted list: higher logit first, lower id first among equals.
  const best: number[] = [];
  const better = (a: number, b: number) => logits[a]! > logits[b]! || (logits[a] === logits[b] && a < b);
  for (let id = 0; id < logits.length; id++) {
    if (best.length === k && !better(id, best[k - 1]!)) continue;
    let at = best.length === k ? k - 1 : best.length;
    while (at > 0 && better(id, best[at - 1]!)) at--;
    best.splice(at, 0, id);
    if (best.length > k) best.pop();
  }
  return best.map((id) => ({
    id,
    token: tokenText(id),
    logit: logits[id]!,
    prob: Math.exp(logits[id]! - max) / sum,
  }));
}
