/**
 * Activation patching: run a corrupted prompt, copy one activation from the clean prompt's run
 * into it, and measure how much of the clean logit difference comes back.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ActivationCache, HookName } from "../hooks.ts";
import type { Hook, Model, TokenInput, TokenOptions } from "../model.ts";
import type { TokenRef } from "./_common.ts";
import { type ResolvedMetric, resolveMetric } from "./metrics.ts";

/** Options for `patchResidual` and `patchHeads`. */
export interface PatchingOptions extends TokenOptions {
  /** The prompt whose activations are copied. */
  clean: TokenInput;
  /** The prompt that is run and patched; it must have as many tokens as `clean`. */
  corrupted: TokenInput;
  /** The token whose logit counts positively in the metric. */
  tokenA: TokenRef;
  /** The token whose logit is subtracted; omit it to measure tokenA's logit alone. */
  tokenB?: TokenRef;
  /** The position the logit difference is read at; negative counts from the end. Default -1. */
  position?: number;
}

/** The result of a patching sweep. */
export interface PatchingResult {
  /** The patched activation: `resid_pre` gives rows [layer][pos], `head_z` gives rows [layer][head]. */
  target: "resid_pre" | "head_z";
  /** The logit difference on the clean prompt. */
  cleanValue: number;
  /** The logit difference on the corrupted prompt. */
  corruptedValue: number;
  /** The logit difference with each patch `[layer][pos or head]`. */
  patched: number[][];
  /**
   * The recovered fraction (patched - corrupted) / (clean - corrupted) `[layer][pos or head]`:
   * 1 means the patch restores the clean value, 0 means it changes nothing.
   */
  recovered: number[][];
}

/**
 * Patches the residual entering each block (blocks.L.hook_resid_pre) at each position, one
 * (layer, position) at a time, from the clean run into the corrupted run. Runs
 * nLayers * pos + 2 forward passes.
 *
 * @returns Recovered fractions `[layer][pos]`.
 * @throws {RangeError} When the prompts differ in length, or give the same logit difference.
 * @example
 * ```ts
 * const p = patchResidual(model, {
 *   clean: "When Mary and John went to the store, John gave a drink to",
 *   corrupted: "When Mary and John went to the store, Mary gave a drink to",
 *   tokenA: " Mary",
 *   tokenB: " John",
 * });
 * p.recovered; // [layer][pos]
 * ```
 */
export function patchResidual(model: Model, options: PatchingOptions): PatchingResult {
  const nPos = model.toTokens(options.clean, options).length;
  const cells = [];
  for (let layer = 0; layer < model.config.nLayers; layer++) {
    for (let pos = 0; pos < nPos; pos++) cells.push({ layer, index: pos });
  }
  return sweep(model, options, "resid_pre", cells, (clean, { layer, index }) => {
    const name: HookName = `blocks.${layer}.hook_resid_pre`;
    return {
      name,
      fn: (x) => {
        // Take row `index` from the clean run and every other row from the corrupted one.
        const rows = new Float32Array(nPos);
        rows[index] = 1;
        const fromClean = tf.tensor2d(rows, [nPos, 1]); // [pos, 1]
        return tf.add(tf.mul(x, tf.sub(1, fromClean)), tf.mul(clean.get(name), fromClean)); // [pos, dModel]
      },
    };
  });
}

/**
 * Patches each head's z (blocks.L.attn.hook_z) at every position, one head at a time, from the
 * clean run into the corrupted run. Runs nLayers * nHeads + 2 forward passes.
 *
 * @returns Recovered fractions `[layer][head]`.
 * @throws {RangeError} When the prompts differ in length, or give the same logit difference.
 */
export function patchHeads(model: Model, options: PatchingOptions): PatchingResult {
  const { nLayers, nHeads } = model.config;
  const cells = [];
  for (let layer = 0; layer < nLayers; layer++) {
    for (let head = 0; head < nHeads; head++) cells.push({ layer, index: head });
  }
  return sweep(model, options, "head_z", cells, (clean, { layer, index }) => {
    const name: HookName = `blocks.${layer}.attn.hook_z`;
    return {
      name,
      fn: (z) => {
        const heads = new Float32Array(nHeads);
        heads[index] = 1;
        const fromClean = tf.tensor3d(heads, [1, nHeads, 1]); // [1, head, 1]
        return tf.add(tf.mul(z, tf.sub(1, fromClean)), tf.mul(clean.get(name), fromClean)); // [pos, head, dHead]
      },
    };
  });
}

/**
 * Runs both prompts, then the corrupted prompt once per cell with that cell's patch, and
 * reports each patched metric and its recovered fraction.
 */
function sweep(
  model: Model,
  options: PatchingOptions,
  target: PatchingResult["target"],
  cells: Array<{ layer: number; index: number }>,
  patch: (clean: ActivationCache, cell: { layer: number; index: number }) => Hook,
): PatchingResult {
  const cleanIds = model.toTokens(options.clean, options);
  const corruptedIds = model.toTokens(options.corrupted, options);
  if (cleanIds.length !== corruptedIds.length) {
    throw new RangeError(
      `Cannot patch between prompts of ${cleanIds.length} (clean) and ${corruptedIds.length} (corrupted) tokens: ` +
        `activation patching needs prompts of the same length.`,
    );
  }
  const metricSpec = { kind: "logitDiff" as const, tokenA: options.tokenA, position: options.position ?? -1 };
  const metric = resolveMetric(
    model,
    options.tokenB === undefined ? metricSpec : { ...metricSpec, tokenB: options.tokenB },
    cleanIds,
  );

  const names = [...new Set(cells.map(({ layer }) => hookNameOf(target, layer)))];
  const { logits: cleanLogits, cache: clean } = model.runWithCache(cleanIds, { names });
  try {
    const cleanValue = metric.evaluate(cleanLogits);
    const corruptedValue = runMetric(model, metric, corruptedIds, []);
    const gap = cleanValue - corruptedValue;
    if (!(Math.abs(gap) > 1e-6)) {
      // NOTE: a gap only a little above 1e-6 still gives noisy fractions, unlike the raw `patched` values.
      throw new RangeError(
        `Cannot compute recovered fractions: the clean (${cleanValue}) and corrupted (${corruptedValue}) logit ` +
          `differences are equal within 1e-6. Choose tokens or prompts whose logit difference the corruption changes.`,
      );
    }
    const patched = cells.map((cell) => runMetric(model, metric, corruptedIds, [patch(clean, cell)]));
    const rows = cells.length / model.config.nLayers;
    const byLayer = (values: number[]) =>
      Array.from({ length: model.config.nLayers }, (_, layer) => values.slice(layer * rows, (layer + 1) * rows));
    return {
      target,
      cleanValue,
      corruptedValue,
      patched: byLayer(patched),
      recovered: byLayer(patched.map((value) => (value - corruptedValue) / gap)),
    };
  } finally {
    cleanLogits.dispose();
    clean.dispose();
  }
}

function hookNameOf(target: PatchingResult["target"], layer: number): HookName {
  return target === "resid_pre" ? `blocks.${layer}.hook_resid_pre` : `blocks.${layer}.attn.hook_z`;
}

function runMetric(model: Model, metric: ResolvedMetric, ids: Int32Array, hooks: Hook[]): number {
  const logits = model.runWithHooks(ids, { hooks });
  try {
    return metric.evaluate(logits);
  } finally {
    logits.dispose();
  }
}
