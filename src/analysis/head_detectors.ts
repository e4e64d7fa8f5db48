/**
 * Head detectors: scores that find previous-token heads and induction heads from attention
 * patterns.
 */
import type { HookName } from "../hooks.ts";
import type { Model, TokenInput, TokenOptions } from "../model.ts";
import { createRng } from "../sampling.ts";
import { ENDOFTEXT_ID } from "../tokenizer.ts";

/** Options for `detectHeads`. */
export interface HeadDetectorOptions {
  /** Length of the random sequence that is repeated. Default 20, or less when 2 * 20 (+ 1) exceeds nCtx. */
  seqLen?: number;
  /** Seed for drawing the random tokens. Default 0. */
  seed?: number;
  /** Ids to draw from, without repeats within the sequence. Default every id except `<|endoftext|>`. */
  pool?: readonly number[];
  /** The sequence to repeat, given directly; overrides `seqLen`, `seed` and `pool`. Its ids must be distinct. */
  tokens?: readonly number[];
  /** Put `<|endoftext|>` before the repeated sequence, as TransformerLens does. Default false. */
  prependBos?: boolean;
}

/** Per-head scores on one repeated random sequence. */
export interface HeadScores {
  /** The ids run: [`<|endoftext|>`], then the random sequence twice. */
  ids: number[];
  /** Length of one copy of the random sequence. */
  seqLen: number;
  /** Mean attention from each position i >= 1 to position i - 1 `[layer][head]`. */
  previousToken: number[][];
  /**
   * Mean attention from each position of the second copy to the position after the same
   * token's occurrence in the first copy `[layer][head]`: an induction head predicts that the
   * token that followed last time comes next.
   */
  induction: number[][];
}

/**
 * Scores every head as a previous-token head and as an induction head on a sequence of random
 * tokens repeated twice. In the first copy nothing predicts the next token, and in the second
 * copy an induction head attends from each token to the one after its earlier occurrence.
 *
 * @returns Both scores `[layer][head]`, each a mean attention probability in [0, 1].
 * @throws {RangeError} When the repeated sequence does not fit in nCtx, or the pool has fewer
 *   distinct ids than `seqLen`.
 * @example
 * ```ts
 * const scores = detectHeads(model, { seqLen: 30, seed: 1 });
 * scores.induction; // [layer][head]
 * ```
 */
export function detectHeads(model: Model, options: HeadDetectorOptions = {}): HeadScores {
  const bos = options.prependBos ?? false;
  const offset = bos ? 1 : 0;
  const firstCopy = options.tokens ? checkDistinct(model, options.tokens) : randomTokens(model, options, offset);
  const seqLen = firstCopy.length;
  if (seqLen < 2) throw new RangeError(`Invalid tokens: a repeated sequence needs at least 2 tokens, got ${seqLen}.`);
  const ids = [...(bos ? [ENDOFTEXT_ID] : []), ...firstCopy, ...firstCopy];
  if (ids.length > model.config.nCtx) {
    throw new RangeError(
      `Cannot repeat ${seqLen} tokens: ${ids.length} positions exceed this model's ${model.config.nCtx} (nCtx). ` +
        `Use seqLen <= ${Math.floor((model.config.nCtx - offset) / 2)}.`,
    );
  }

  const patterns = readPatterns(model, ids);
  const queries = Array.from({ length: ids.length - 1 }, (_, i) => i + 1);
  const second = Array.from({ length: seqLen }, (_, i) => offset + seqLen + i);
  return {
    ids,
    seqLen,
    previousToken: meanAttention(model, patterns, ids.length, queries, (q) => q - 1),
    induction: meanAttention(model, patterns, ids.length, second, (q) => q - seqLen + 1),
  };
}

/**
 * Scores every head as a previous-token head on any input: the mean attention from each
 * position i >= 1 to position i - 1.
 *
 * @returns `[layer][head]`.
 * @throws {RangeError} For an input of one token.
 */
export function previousTokenScores(model: Model, input: TokenInput, options: TokenOptions = {}): number[][] {
  const ids = model.toTokens(input, options);
  if (ids.length < 2) {
    throw new RangeError("Cannot score previous-token attention on a 1-token input: pass at least two tokens.");
  }
  const patterns = readPatterns(model, Array.from(ids));
  const queries = Array.from({ length: ids.length - 1 }, (_, i) => i + 1);
  return meanAttention(model, patterns, ids.length, queries, (q) => q - 1);
}

/** Runs `ids` and reads every layer's attention pattern `[head, queryPos, keyPos]`, flattened. */
function readPatterns(model: Model, ids: number[]): Float32Array[] {
  const names = Array.from(
    { length: model.config.nLayers },
    (_, layer) => `blocks.${layer}.attn.hook_pattern` as HookName,
  );
  const { logits, cache } = model.runWithCache(ids, { names });
  logits.dispose();
  try {
    return names.map((name) => Float32Array.from(cache.get(name).dataSync() as Float32Array));
  } finally {
    cache.dispose();
  }
}

/** Mean over `queries` of the attention from each query q to key `keyOf(q)`, per head `[layer][head]`. */
function meanAttention(
  model: Model,
  patterns: Float32Array[],
  nPos: number,
  queries: number[],
  keyOf: (query: number) => number,
): number[][] {
  const nHeads = model.config.nHeads;
  return patterns.map((pattern) =>
    Array.from({ length: nHeads }, (_, head) => {
      let sum = 0;
      for (const q of queries) sum += pattern[(head * nPos + q) * nPos + keyOf(q)]!;
      return sum / queries.length;
    })
  );
}

function randomTokens(model: Model, options: HeadDetectorOptions, offset: number): number[] {
  const maxLen = Math.floor((model.config.nCtx - offset) / 2);
  const seqLen = options.seqLen ?? Math.min(20, maxLen);
  if (!Number.isInteger(seqLen) || seqLen < 2 || seqLen > maxLen) {
    throw new RangeError(`Invalid seqLen ${seqLen}: expected an integer in [2, ${maxLen}] for this model's nCtx.`);
  }
  const pool = options.pool
    ? [...new Set(options.pool)]
    : Array.from({ length: model.config.dVocab }, (_, id) => id).filter((id) => id !== ENDOFTEXT_ID);
  for (const id of pool) checkId(model, id, "pool");
  if (pool.length < seqLen) {
    throw new RangeError(`Invalid pool: it has ${pool.length} distinct ids, fewer than seqLen (${seqLen}).`);
  }

  // A partial Fisher-Yates shuffle draws seqLen distinct ids.
  const rng = createRng(options.seed ?? 0);
  const drawn = pool.slice();
  for (let i = 0; i < seqLen; i++) {
    const j = i + Math.floor(rng() * (drawn.length - i));
    [drawn[i], drawn[j]] = [drawn[j]!, drawn[i]!];
  }
  return drawn.slice(0, seqLen);
}

function checkDistinct(model: Model, tokens: readonly number[]): number[] {
  if (!Array.isArray(tokens)) throw new TypeError("Invalid tokens: expected an array of token ids.");
  tokens.forEach((id) => checkId(model, id, "tokens"));
  if (new Set(tokens).size !== tokens.length) {
    throw new RangeError(
      "Invalid tokens: the repeated sequence must not repeat an id within one copy, or its earlier occurrence is ambiguous.",
    );
  }
  return [...tokens];
}

function checkId(model: Model, id: number, label: string): void {
  const dVocab = model.config.dVocab;
  if (!Number.isInteger(id) || id < 0 || id >= dVocab) {
    throw new RangeError(`Invalid ${label} id ${id}: token ids must be integers in [0, ${dVocab}).`);
  }
}
