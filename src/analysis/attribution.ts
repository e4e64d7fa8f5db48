/**
 * Residual decomposition and direct logit attribution.
 *
 * The residual entering block L is a sum of parts written by earlier components:
 * embed + pos_embed + Σ_{l<L} (Σ_h result[l, h] + b_O[l] + mlp_out[l]). The final layer norm
 * is linear in the residual once its scale is frozen, so each part's direct contribution to a
 * logit (or a logit difference) can be read off separately, and the contributions sum to it.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ActivationCache, HookName } from "../hooks.ts";
import type { Model, TokenInput, TokenOptions } from "../model.ts";
import { residualName, resolvePosition, resolveToken, type TokenRef } from "./_common.ts";

/** The kind of a residual stream part. */
export type ComponentKind = "embed" | "pos_embed" | "head" | "attn_bias" | "mlp";

/** One part of the residual stream. */
export interface ResidualComponent {
  /** `embed`, `pos_embed`, `L{layer}H{head}`, `L{layer}.b_O` or `L{layer}.mlp`. */
  label: string;
  kind: ComponentKind;
  /** The block that wrote it (absent for embed and pos_embed). */
  layer?: number;
  /** The head, for kind `head`. */
  head?: number;
}

/**
 * A residual split into the parts that earlier components wrote into it. Owns its tensors:
 * call `dispose()`.
 */
export class ResidualDecomposition {
  constructor(
    /** The input token ids `[pos]`. */
    readonly ids: Int32Array,
    /** The residual decomposed is the one entering this block; nLayers means the final residual. */
    readonly layer: number,
    /** The hook point of that residual. */
    readonly residualName: HookName,
    /** The component of each row of `parts` `[component]`. */
    readonly components: ResidualComponent[],
    /** Each part `[component, pos, dModel]`; b_O rows repeat the bias at every position. */
    readonly parts: tf.Tensor3D,
    /** The residual as the forward pass computed it `[pos, dModel]`. */
    readonly residual: tf.Tensor2D,
  ) {}

  /** Returns max |Σ parts - residual| over every position and dimension. */
  maxAbsError(): number {
    const error = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.sum(this.parts, 0), this.residual))));
    try {
      return error.dataSync()[0]!;
    } finally {
      error.dispose();
    }
  }

  /** Frees the tensors. */
  dispose(): void {
    this.parts.dispose();
    this.residual.dispose();
  }
}

/** Options for `decomposeResidual`. */
export interface DecomposeOptions extends TokenOptions {
  /** Decompose the residual entering this block, in [0, nLayers]; nLayers (the default) is the final residual. */
  layer?: number;
}

/**
 * Splits a residual into embed, pos_embed, each head's result, each block's b_O and each MLP's
 * output.
 *
 * @returns Parts `[component, pos, dModel]` and the residual `[pos, dModel]`, owned by the caller.
 * @throws {RangeError} For a layer outside [0, nLayers].
 * @example
 * ```ts
 * const d = decomposeResidual(model, "To be, or not to be");
 * d.maxAbsError(); // about 1e-6 in float32
 * d.dispose();
 * ```
 */
export function decomposeResidual(model: Model, input: TokenInput, options: DecomposeOptions = {}): ResidualDecomposition {
  const ids = model.toTokens(input, options);
  const layer = checkDecompositionLayer(model, options.layer ?? model.config.nLayers);
  const { logits, cache } = model.runWithCache(ids, { names: decompositionNames(model, layer) });
  logits.dispose();
  try {
    const parts = stackParts(model, cache, layer, ids.length);
    const residual = cache.get(residualName(model, layer)).clone() as tf.Tensor2D;
    return new ResidualDecomposition(ids, layer, residualName(model, layer), componentList(model, layer), parts, residual);
  } finally {
    cache.dispose();
  }
}

/** A component with its direct contribution; kind `ln_final_bias` is the final layer norm's bias. */
export interface AttributedComponent {
  label: string;
  kind: ComponentKind | "ln_final_bias";
  layer?: number;
  head?: number;
  value: number;
}

/** Options for `directLogitAttribution`. */
export interface LogitAttributionOptions extends TokenOptions {
  /** The token whose logit counts positively. */
  tokenA: TokenRef;
  /** The token whose logit is subtracted. Omit it to attribute tokenA's logit alone. */
  tokenB?: TokenRef;
  /** The position whose prediction is attributed; negative counts from the end. Default -1. */
  position?: number;
}

/** Each component's direct contribution to a logit difference at one position. */
export interface LogitAttribution {
  ids: number[];
  /** The position attributed, in [0, pos). */
  position: number;
  tokenA: number;
  tokenB: number | undefined;
  /** Contribution of the token embedding. */
  embed: number;
  /** Contribution of the position embedding. */
  posEmbed: number;
  /** Contribution of each head's result `[layer][head]`. */
  heads: number[][];
  /** Contribution of each block's attention bias b_O `[layer]`. */
  attnBias: number[];
  /** Contribution of each MLP's output, including its b_out `[layer]`. */
  mlps: number[];
  /** ln_final.b · (W_U[:, a] - W_U[:, b]): the part that no component writes. */
  lnFinalBias: number;
  /** Every contribution in decomposition order, then `ln_final.b`. */
  contributions: AttributedComponent[];
  /** The sum of every contribution. */
  total: number;
  /** The logit difference the model computes at `position`. Equals `total` up to float rounding. */
  logitDiff: number;
}

/**
 * Attributes the logit difference logit[a] - logit[b] at one position to each component that
 * writes to the residual stream, with the final layer norm's scale frozen at its value in the
 * forward pass (ln_final.hook_scale).
 *
 * A part x contributes ((x - mean(x)) / scale) · (w ⊙ (W_U[:, a] - W_U[:, b])), where w is
 * ln_final's weight, and ln_final's bias b contributes b · (W_U[:, a] - W_U[:, b]). Because the
 * centering is linear and the parts sum to the residual, the contributions sum to the logit
 * difference.
 *
 * @throws {RangeError} For an invalid token or position.
 * @example
 * ```ts
 * const dla = directLogitAttribution(model, "ROMEO: I love thee, JULIET:", { tokenA: " I", tokenB: " O" });
 * dla.heads; // [layer][head]
 * ```
 */
export function directLogitAttribution(
  model: Model,
  input: TokenInput,
  options: LogitAttributionOptions,
): LogitAttribution {
  const ids = model.toTokens(input, options);
  const a = resolveToken(model, options.tokenA, "tokenA");
  const b = options.tokenB === undefined ? undefined : resolveToken(model, options.tokenB, "tokenB");
  const position = resolvePosition(options.position ?? -1, ids.length, "position");
  const { nLayers, nHeads } = model.config;

  const names = [...decompositionNames(model, nLayers), "ln_final.hook_scale"] as HookName[];
  const components = componentList(model, nLayers);
  const { logits, cache } = model.runWithCache(ids, { names });
  let values: Float32Array;
  let logitDiff: number;
  try {
    logitDiff = readLogitDiff(logits, position, a, b);
    values = contributionsAt(model, cache, position, a, b);
  } finally {
    logits.dispose();
    cache.dispose();
  }

  const heads = Array.from({ length: nLayers }, () => new Array<number>(nHeads).fill(0));
  const attnBias = new Array<number>(nLayers).fill(0);
  const mlps = new Array<number>(nLayers).fill(0);
  let embed = 0;
  let posEmbed = 0;
  let total = 0;
  const listed: AttributedComponent[] = [];
  components.forEach((component, i) => {
    const value = values[i]!;
    total += value;
    listed.push({ ...component, value });
    if (component.kind === "embed") embed = value;
    else if (component.kind === "pos_embed") posEmbed = value;
    else if (component.kind === "head") heads[component.layer!]![component.head!] = value;
    else if (component.kind === "attn_bias") attnBias[component.layer!] = value;
    else mlps[component.layer!] = value;
  });
  const lnFinalBias = values[components.length]!;
  total += lnFinalBias;
  listed.push({ label: "ln_final.b", kind: "ln_final_bias", value: lnFinalBias });

  return {
    ids: Array.from(ids),
    position,
    tokenA: a,
    tokenB: b,
    embed,
    posEmbed,
    heads,
    attnBias,
    mlps,
    lnFinalBias,
    contributions: listed,
    total,
    logitDiff,
  };
}

function checkDecompositionLayer(model: Model, layer: number): number {
  const n = model.config.nLayers;
  if (!Number.isInteger(layer) || layer < 0 || layer > n) {
    throw new RangeError(
      `Invalid layer ${layer}: expected an integer in [0, ${n}], where ${n} (nLayers) means the final residual.`,
    );
  }
  return layer;
}

/** The hook points a decomposition of the residual entering block `layer` reads. */
function decompositionNames(model: Model, layer: number): HookName[] {
  const names: HookName[] = ["hook_embed", "hook_pos_embed"];
  for (let l = 0; l < layer; l++) names.push(`blocks.${l}.attn.hook_result`, `blocks.${l}.hook_mlp_out`);
  names.push(residualName(model, layer));
  return names;
}

/** Lists the components whose outputs make up the residual entering block `layer`, in decomposition order. */
function componentList(model: Model, layer: number): ResidualComponent[] {
  const components: ResidualComponent[] = [
    { label: "embed", kind: "embed" },
    { label: "pos_embed", kind: "pos_embed" },
  ];
  for (let l = 0; l < layer; l++) {
    for (let h = 0; h < model.config.nHeads; h++) components.push({ label: `L${l}H${h}`, kind: "head", layer: l, head: h });
    components.push({ label: `L${l}.b_O`, kind: "attn_bias", layer: l });
    components.push({ label: `L${l}.mlp`, kind: "mlp", layer: l });
  }
  return components;
}

/**
 * Stacks the parts of the residual entering block `layer`, in `componentList` order, from a
 * cache holding `decompositionNames`.
 *
 * @returns `[component, pos, dModel]`.
 */
function stackParts(model: Model, cache: ActivationCache, layer: number, nPos: number): tf.Tensor3D {
  const dModel = model.config.dModel;
  return tf.tidy(() => {
    const rows: tf.Tensor2D[] = [cache.get("hook_embed") as tf.Tensor2D, cache.get("hook_pos_embed") as tf.Tensor2D];
    for (let l = 0; l < layer; l++) {
      const result = cache.get(`blocks.${l}.attn.hook_result`); // [pos, head, dModel]
      rows.push(...(tf.unstack(result, 1) as tf.Tensor2D[])); // -> head x [pos, dModel]
      const bias = model.blocks[l]!.attn.b_O;
      rows.push(tf.broadcastTo(tf.reshape(bias, [1, dModel]), [nPos, dModel]) as tf.Tensor2D); // [dModel] -> [pos, dModel]
      rows.push(cache.get(`blocks.${l}.hook_mlp_out`) as tf.Tensor2D);
    }
    return tf.stack(rows) as tf.Tensor3D; // -> [component, pos, dModel]
  });
}

/** Reads logit[position, a] - logit[position, b] (or logit[position, a] alone) from `[pos, dVocab]` logits. */
function readLogitDiff(logits: tf.Tensor2D, position: number, a: number, b: number | undefined): number {
  const picked = tf.tidy(() => tf.gather(tf.reshape(tf.slice(logits, [position, 0], [1, -1]), [-1]), [a, b ?? a])); // -> [2]
  const [logitA, logitB] = picked.dataSync();
  picked.dispose();
  return logitA! - (b === undefined ? 0 : logitB!);
}

/**
 * Computes each part's direct contribution at `position` with the frozen final scale, then
 * ln_final.b's, from a cache holding the final decomposition's names and ln_final.hook_scale.
 *
 * @returns `[component + 1]`: the parts in `componentList` order, then ln_final.b.
 */
function contributionsAt(
  model: Model,
  cache: ActivationCache,
  position: number,
  a: number,
  b: number | undefined,
): Float32Array {
  const contributions = tf.tidy(() => {
    const all = stackParts(model, cache, model.config.nLayers, cache.get("hook_embed").shape[0]!);
    const parts = tf.squeeze(tf.slice(all, [0, position, 0], [-1, 1, -1]), [1]); // [component, pos, dModel] -> [component, dModel]
    const scale = tf.slice(cache.get("ln_final.hook_scale"), [position, 0], [1, 1]); // [pos, 1] -> [1, 1]
    const centered = tf.sub(parts, tf.mean(parts, -1, true)); // [component, dModel]

    // The unembedding direction, W_U[:, a] - W_U[:, b], and the same scaled by ln_final's weight.
    const unembedA = tf.gather(model.W_U, [a], 1); // [dModel, dVocab] -> [dModel, 1]
    const direction = b === undefined ? unembedA : tf.sub(unembedA, tf.gather(model.W_U, [b], 1)); // [dModel, 1]
    const { w, b: bias } = model.lnFinalWeights;
    const weighted = tf.mul(direction, tf.reshape(w, [-1, 1])); // [dModel, 1]

    const perPart = tf.matMul(tf.div(centered, scale), weighted); // [component, dModel] @ [dModel, 1] -> [component, 1]
    const biasPart = tf.matMul(tf.reshape(bias, [1, -1]), direction); // [1, dModel] @ [dModel, 1] -> [1, 1]
    return tf.concat([tf.reshape(perPart, [-1]), tf.reshape(biasPart, [-1])]); // -> [component + 1]
  });
  const values = Float32Array.from(contributions.dataSync() as Float32Array);
  contributions.dispose();
  return values;
}
