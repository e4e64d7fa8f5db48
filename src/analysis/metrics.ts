/**
 * Scalar metrics of a forward pass that ablation and patching report changes in: the
 * next-token loss over the prompt, and the logit difference between two tokens.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Hook, Model, TokenInput, TokenOptions } from "../model.ts";
import { resolvePosition, resolveToken, type TokenRef } from "./_common.ts";

/**
 * A scalar measured on a forward pass.
 *
 * - `loss`: the mean next-token cross-entropy over the prompt, in nats: position i predicts
 *   token i + 1, for i from 0 to pos - 2. Needs at least two tokens.
 * - `logitDiff`: logit[position, tokenA] - logit[position, tokenB], or logit[position, tokenA]
 *   alone when tokenB is omitted. `position` defaults to -1, the last.
 */
export type Metric =
  | { kind: "loss" }
  | { kind: "logitDiff"; tokenA: TokenRef; tokenB?: TokenRef; position?: number };

/** A metric with its tokens and position resolved for one input. */
export interface ResolvedMetric {
  kind: Metric["kind"];
  /** Reads the metric from logits `[pos, dVocab]`. Does not dispose them. */
  evaluate(logits: tf.Tensor2D): number;
}

/**
 * Resolves the tokens and the position of `metric` for an input of token ids `ids`.
 *
 * @throws {RangeError} For a loss on fewer than two tokens, an invalid token or position.
 * @throws {TypeError} For an unknown metric kind.
 */
export function resolveMetric(model: Model, metric: Metric, ids: Int32Array): ResolvedMetric {
  if (metric === null || typeof metric !== "object") {
    throw new TypeError(`Invalid metric ${String(metric)}: expected { kind: "loss" } or { kind: "logitDiff", tokenA }.`);
  }
  if (metric.kind === "loss") {
    if (ids.length < 2) {
      throw new RangeError("Cannot compute the next-token loss of a 1-token input: pass at least two tokens.");
    }
    const targets = ids.slice(1);
    return { kind: "loss", evaluate: (logits) => nextTokenLoss(logits, targets) };
  }
  if (metric.kind === "logitDiff") {
    const a = resolveToken(model, metric.tokenA, "tokenA");
    const b = metric.tokenB === undefined ? undefined : resolveToken(model, metric.tokenB, "tokenB");
    const position = resolvePosition(metric.position ?? -1, ids.length, "metric position");
    return { kind: "logitDiff", evaluate: (logits) => logitDifference(logits, position, a, b) };
  }
  throw new TypeError(`Unknown metric kind ${JSON.stringify((metric as { kind: unknown }).kind)}: use "loss" or "logitDiff".`);
}

/**
 * Runs the model on `input`, with optional hooks, and returns the metric.
 *
 * @example
 * ```ts
 * const loss = computeMetric(model, "To be, or not to be", { metric: { kind: "loss" } });
 * ```
 */
export function computeMetric(
  model: Model,
  input: TokenInput,
  options: TokenOptions & { metric: Metric; hooks?: readonly Hook[] },
): number {
  const ids = model.toTokens(input, options);
  const metric = resolveMetric(model, options.metric, ids);
  const logits = model.runWithHooks(ids, { hooks: options.hooks ?? [] });
  try {
    return metric.evaluate(logits);
  } finally {
    logits.dispose();
  }
}

/** Mean cross-entropy of `targets[i]` under the log-softmax of row i, for rows 0 .. targets.length - 1. */
function nextTokenLoss(logits: tf.Tensor2D, targets: Int32Array): number {
  const value = tf.tidy(() => {
    const n = targets.length;
    const logProbs = tf.logSoftmax(tf.slice(logits, [0, 0], [n, -1])); // [pos, dVocab] -> [pos - 1, dVocab]
    const picked = tf.mul(logProbs, tf.oneHot(tf.tensor1d(targets, "int32"), logits.shape[1])); // [pos - 1, dVocab]
    return tf.neg(tf.div(tf.sum(picked), n)); // -> []
  });
  try {
    return value.dataSync()[0]!;
  } finally {
    value.dispose();
  }
}

function logitDifference(logits: tf.Tensor2D, position: number, a: number, b: number | undefined): number {
  const picked = tf.tidy(() => {
    const row = tf.reshape(tf.slice(logits, [position, 0], [1, -1]), [-1]); // [pos, dVocab] -> [dVocab]
    return tf.gather(row, tf.tensor1d(b === undefined ? [a] : [a, b], "int32")); // -> [1 or 2]
  });
  try {
    const values = picked.dataSync();
    return b === undefined ? values[0]! : values[0]! - values[1]!;
  } finally {
    picked.dispose();
  }
}
