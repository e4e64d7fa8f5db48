/**
 * Training data: the token stream, its train/validation split, batches and the unigram baseline.
 */
import { readFileSync } from "node:fs";
import { encode } from "gpt-tokenizer/encoding/r50k_base";
import type { Rng } from "./rng.ts";

/** Token ids of the training and validation splits. */
export interface TokenSplit {
  train: Int32Array;
  validation: Int32Array;
}

/** Reads a UTF-8 text file and encodes it with the GPT-2 tokenizer (r50k_base). */
export function loadTokens(path: string): Int32Array {
  const text = readFileSync(path, "utf8");
  return Int32Array.from(encode(text));
}

/**
 * Splits the token stream: the first `trainFraction` of the tokens for training, the rest for
 * validation. The split is on tokens, so a word may straddle the boundary.
 */
export function splitTokens(tokens: Int32Array, trainFraction = 0.9): TokenSplit {
  if (!(trainFraction > 0 && trainFraction < 1)) {
    throw new RangeError(`Cannot split tokens: trainFraction must be in (0, 1), got ${trainFraction}`);
  }
  const cut = Math.floor(tokens.length * trainFraction);
  return { train: tokens.subarray(0, cut), validation: tokens.subarray(cut) };
}

/** Inputs and next-token targets, each `[batch * pos]` batch-major. */
export interface Batch {
  inputs: Int32Array;
  targets: Int32Array;
  batch: number;
  nPos: number;
}

/** Draws `batch` windows of `nPos + 1` tokens at random offsets. */
export function sampleBatch(tokens: Int32Array, batch: number, nPos: number, rng: Rng): Batch {
  if (tokens.length < nPos + 1) {
    throw new RangeError(`Cannot sample windows of ${nPos + 1} tokens from ${tokens.length} tokens; use a shorter context`);
  }
  const inputs = new Int32Array(batch * nPos);
  const targets = new Int32Array(batch * nPos);
  for (let b = 0; b < batch; b++) {
    const start = rng.int(tokens.length - nPos);
    inputs.set(tokens.subarray(start, start + nPos), b * nPos);
    targets.set(tokens.subarray(start + 1, start + nPos + 1), b * nPos);
  }
  return { inputs, targets, batch, nPos };
}

/**
 * Cuts a token stream into consecutive, non-overlapping windows of `nPos` predictions each and
 * groups them into batches of at most `batch` windows. Without `maxWindows`, tokens 1 to
 * count * nPos are each a target exactly once, and the tail shorter than a window is dropped.
 * With `maxWindows`, takes that many windows spread evenly over the stream.
 */
export function evaluationBatches(
  tokens: Int32Array,
  batch: number,
  nPos: number,
  maxWindows = Infinity,
): Batch[] {
  const total = Math.floor((tokens.length - 1) / nPos);
  const count = Math.min(total, maxWindows);
  const starts: number[] = [];
  for (let i = 0; i < count; i++) starts.push(Math.floor((i * total) / count) * nPos);
  const batches: Batch[] = [];
  for (let first = 0; first < starts.length; first += batch) {
    const group = starts.slice(first, first + batch);
    const inputs = new Int32Array(group.length * nPos);
    const targets = new Int32Array(group.length * nPos);
    group.forEach((start, b) => {
      inputs.set(tokens.subarray(start, start + nPos), b * nPos);
      targets.set(tokens.subarray(start + 1, start + nPos + 1), b * nPos);
    });
    batches.push({ inputs, targets, batch: group.length, nPos });
  }
  return batches;
}

/**
 * Computes the unigram baseline: add-one smoothed token frequencies of the training split over
 * all `dVocab` ids, scored as mean cross-entropy (nats/token) on `evaluated` tokens.
 */
export function unigramLoss(train: Int32Array, evaluated: Int32Array, dVocab: number): number {
  const counts = new Float64Array(dVocab).fill(1);
  for (const id of train) counts[id] = counts[id]! + 1;
  const total = train.length + dVocab;
  let sum = 0;
  for (const id of evaluated) sum -= Math.log(counts[id]! / total);
  return sum / evaluated.length;
}
