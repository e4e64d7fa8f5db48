/**
 * Ablation: replace one head's or one MLP's output with zeros or with its mean, and measure how
 * much a metric (the loss, or a logit difference) changes.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { HookName } from "../hooks.ts";
import type { Hook, Model, TokenInput, TokenOptions } from "../model.ts";
import { checkHead, checkLayer, toRows } from "./_common.ts";
import { type Metric, resolveMetric } from "./metrics.ts";

/** `zero` replaces the activation with zeros; `mean` with its mean over positions. */
export type AblationMethod = "zero" | "mean";

/** The hook point an MLP is ablated at: its output (with b_out) or its neurons after the nonlinearity. */
export type MlpAblationHook = "hook_mlp_out" | "mlp.hook_post";

/** A component to ablate: one attention head (its hook_z) or one block's MLP. */
export type AblationTarget = { kind: "head"; layer: number; head: number } | { kind: "mlp"; layer: number };

/** Options that choose how components are ablated. */
export interface AblationHookOptions extends TokenOptions {
  /** Default `zero`. */
  method?: AblationMethod;
  /**
   * For `mean`: the prompts whose positions are averaged, all positions pooled. Default: the
   * prompt being analysed (`input`).
   */
  meanOver?: readonly TokenInput[];
  /**
   * The hook point where an MLP is ablated. `hook_mlp_out` (the default) removes everything the MLP adds,
   * b_out included. `mlp.hook_post` replaces the neurons, so zero-ablation there leaves b_out.
   */
  mlpHook?: MlpAblationHook;
}

/**
 * Builds hooks that ablate the given heads and MLPs, for `runWithHooks`, `computeMetric` or
 * `generate`.
 *
 * A head is ablated at `blocks.L.attn.hook_z`, so its result and its share of hook_attn_out
 * change, and the other heads are untouched. Mean ablation uses the mean over positions of the
 * `meanOver` prompts (or of `input`). The hooks hold only host arrays, so there is nothing to
 * dispose.
 *
 * @param options.input The prompt whose positions are averaged when `method` is `mean` and
 *   `meanOver` is not given.
 * @throws {RangeError} For an invalid layer or head, or mean ablation with neither `meanOver`
 *   nor `input`.
 * @example
 * ```ts
 * const hooks = ablationHooks(model, [{ kind: "head", layer: 1, head: 2 }], { method: "mean", input: prompt });
 * const loss = computeMetric(model, prompt, { metric: { kind: "loss" }, hooks });
 * ```
 */
export function ablationHooks(
  model: Model,
  targets: readonly AblationTarget[],
  options: AblationHookOptions & { input?: TokenInput } = {},
): Hook[] {
  if (!Array.isArray(targets)) {
    throw new TypeError("Invalid targets: expected an array such as [{ kind: \"head\", layer: 0, head: 1 }].");
  }
  const mlpHook = checkMlpHook(options.mlpHook ?? "hook_mlp_out");
  const names = targets.map((target, i) => targetHookName(model, target, mlpHook, `targets[${i}]`));
  const method = checkMethod(options.method ?? "zero");
  let means: Map<HookName, Float64Array> | undefined;
  if (method === "mean") {
    const prompts = options.meanOver ?? (options.input === undefined ? undefined : [options.input]);
    if (prompts === undefined) {
      throw new RangeError("Mean ablation needs prompts to average over: pass `meanOver` or `input`.");
    }
    means = meanActivations(model, prompts, [...new Set(names)], options);
  }
  return targets.map((target, i) => ablationHook(model, target, names[i]!, means?.get(names[i]!)));
}

/** Options for `ablationSweep`. */
export interface AblationSweepOptions extends AblationHookOptions {
  /** The metric to measure. Default `{ kind: "loss" }`. */
  metric?: Metric;
}

/** The change of a metric when each component is ablated alone. */
export interface AblationSweep {
  method: AblationMethod;
  metric: Metric["kind"];
  mlpHook: MlpAblationHook;
  /** The metric without ablation. */
  baseline: number;
  /** Metric with head (layer, head) ablated, minus the baseline `[layer][head]`. */
  heads: number[][];
  /** Metric with block layer's MLP ablated, minus the baseline `[layer]`. */
  mlps: number[];
}

/**
 * Ablates every head, then every MLP, one at a time, and reports the change of the metric.
 * Runs nLayers * (nHeads + 1) + 1 forward passes, plus one per `meanOver` prompt for `mean`.
 *
 * @returns The baseline, a `[layer][head]` matrix and a `[layer]` vector of changes.
 * @example
 * ```ts
 * const sweep = ablationSweep(model, "To be, or not to be, that is the question", { method: "mean" });
 * sweep.heads; // loss increase per head
 * ```
 */
export function ablationSweep(model: Model, input: TokenInput, options: AblationSweepOptions = {}): AblationSweep {
  const ids = model.toTokens(input, options);
  const metricSpec = options.metric ?? { kind: "loss" };
  const metric = resolveMetric(model, metricSpec, ids);
  const method = checkMethod(options.method ?? "zero");
  const mlpHook = checkMlpHook(options.mlpHook ?? "hook_mlp_out");
  const { nLayers, nHeads } = model.config;

  const targets: AblationTarget[] = [];
  for (let layer = 0; layer < nLayers; layer++) {
    for (let head = 0; head < nHeads; head++) targets.push({ kind: "head", layer, head });
  }
  for (let layer = 0; layer < nLayers; layer++) targets.push({ kind: "mlp", layer });
  const names = targets.map((target) => targetHookName(model, target, mlpHook, "target"));
  const means = method === "mean"
    ? meanActivations(model, options.meanOver ?? [input], [...new Set(names)], options)
    : undefined;

  const run = (hooks: Hook[]) => {
    const logits = model.runWithHooks(ids, { hooks });
    try {
      return metric.evaluate(logits);
    } finally {
      logits.dispose();
    }
  };
  const baseline = run([]);
  const changes = targets.map((target, i) => run([ablationHook(model, target, names[i]!, means?.get(names[i]!))]) - baseline);
  return {
    method,
    metric: metricSpec.kind,
    mlpHook,
    baseline,
    heads: toRows(changes, nLayers, nHeads),
    mlps: changes.slice(nLayers * nHeads),
  };
}

function checkMethod(method: AblationMethod): AblationMethod {
  if (method !== "zero" && method !== "mean") {
    throw new RangeError(`Invalid ablation method ${JSON.stringify(method)}: use "zero" or "mean".`);
  }
  return method;
}

function checkMlpHook(hook: MlpAblationHook): MlpAblationHook {
  if (hook !== "hook_mlp_out" && hook !== "mlp.hook_post") {
    throw new RangeError(`Invalid mlpHook ${JSON.stringify(hook)}: use "hook_mlp_out" or "mlp.hook_post".`);
  }
  return hook;
}

function targetHookName(model: Model, target: AblationTarget, mlpHook: MlpAblationHook, label: string): HookName {
  if (target === null || typeof target !== "object") {
    throw new TypeError(`Invalid ${label}: expected { kind: "head", layer, head } or { kind: "mlp", layer }.`);
  }
  checkLayer(model, target.layer, `${label} layer`);
  if (target.kind === "head") {
    checkHead(model, target.head, `${label} head`);
    return `blocks.${target.layer}.attn.hook_z`;
  }
  if (target.kind === "mlp") return `blocks.${target.layer}.${mlpHook}`;
  throw new TypeError(`Invalid ${label} kind ${JSON.stringify((target as { kind: unknown }).kind)}: use "head" or "mlp".`);
}

/**
 * Averages each named activation over every position of every prompt.
 *
 * @returns Per name, the mean over positions: `[head * dHead]` for hook_z, `[d]` for `[pos, d]` hooks.
 */
function meanActivations(
  model: Model,
  prompts: readonly TokenInput[],
  names: HookName[],
  options: TokenOptions,
): Map<HookName, Float64Array> {
  if (!Array.isArray(prompts) || prompts.length === 0) {
    throw new RangeError("Invalid meanOver: expected a non-empty array of prompts.");
  }
  const sums = new Map<HookName, Float64Array>();
  let count = 0;
  for (const prompt of prompts) {
    const ids = model.toTokens(prompt, options);
    const { logits, cache } = model.runWithCache(ids, { names });
    logits.dispose();
    try {
      for (const name of names) {
        const activation = cache.get(name);
        const width = activation.size / activation.shape[0]!;
        const values = activation.dataSync();
        const sum = sums.get(name) ?? new Float64Array(width);
        for (let i = 0; i < values.length; i++) sum[i % width]! += values[i]!;
        sums.set(name, sum);
      }
    } finally {
      cache.dispose();
    }
    count += ids.length;
  }
  for (const sum of sums.values()) for (let i = 0; i < sum.length; i++) sum[i]! /= count;
  return sums;
}

/** Builds a hook that ablates one target. `mean` is undefined for zero-ablation. */
function ablationHook(model: Model, target: AblationTarget, name: HookName, mean: Float64Array | undefined): Hook {
  if (target.kind === "head") {
    const { nHeads, dHead } = model.config;
    const head = target.head;
    // Keep every head but `head`, whose z becomes zeros or its mean: z * keep + replacement.
    const keep = new Float32Array(nHeads).fill(1);
    keep[head] = 0;
    const replacement = new Float32Array(nHeads * dHead);
    if (mean) replacement.set(mean.subarray(head * dHead, (head + 1) * dHead), head * dHead);
    return {
      name,
      fn: (z) => tf.add(tf.mul(z, tf.tensor3d(keep, [1, nHeads, 1])), tf.tensor3d(replacement, [1, nHeads, dHead])), // [pos, head, dHead]
    };
  }
  if (!mean) return { name, fn: (x) => tf.zerosLike(x) };
  const row = Float32Array.from(mean);
  return { name, fn: (x) => tf.broadcastTo(tf.tensor2d(row, [1, row.length]), x.shape) }; // [1, d] -> [pos, d]
}
