/**
 * Figures of the model's stages: token chips, attention patterns, MLP neurons, residual
 * norms, a logit lens, top-k bars, embedding projections and generations. Each takes a
 * result object, a tensor or plain arrays, reads the values, and draws them with the generic
 * builders of plots.ts. None of them changes its input.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Generation } from "../generate.ts";
import type { ActivationCache, HookName } from "../hooks.ts";
import type { AttentionResult, MlpResult, TopToken, UnembedResult } from "../results.ts";
import { gpt2Tokenizer, type Token } from "../tokenizer.ts";
import { categoricalColor, colorAt, type Colorscale, type ColorscaleName, finiteRange } from "./colors.ts";
import type { Figure } from "./figure.ts";
import { formatNumber, formatPercent, tokenLabel } from "./labels.ts";
import { bars, chips, heatmap, type HeatmapInput, heatmapGrid, scatter, type ScatterPoint } from "./plots.ts";

/**
 * Tokens to label a figure with: `Token`s from `tokenizer.tokenize`, token ids (decoded with
 * the GPT-2 tokenizer), or label strings used as they are.
 */
export type TokenLabels = readonly Token[] | readonly number[] | Int32Array | readonly string[];

/** Returns one display label per token, with whitespace made visible. */
export function tokenLabels(tokens: TokenLabels): string[] {
  return Array.from(tokens as ArrayLike<Token | number | string>, (t) => {
    if (typeof t === "string") return tokenLabel(t);
    if (typeof t === "number") return tokenLabel(gpt2Tokenizer().decodeToken(t));
    // A token that holds only part of a character's bytes has empty text: show its own bytes.
    return tokenLabel(t.text === "" ? gpt2Tokenizer().decodeToken(t.id) : t.text);
  });
}

function tokenIds(tokens: TokenLabels): number[] | undefined {
  const first = (tokens as ArrayLike<unknown>)[0];
  if (typeof first === "number") return Array.from(tokens as ArrayLike<number>);
  if (first && typeof first === "object") return (tokens as readonly Token[]).map((t) => t.id);
  return undefined;
}

/** Labels "0", "1", ... or the token labels, checked against the number of positions. */
function positionLabels(n: number, tokens: TokenLabels | undefined, description: string): string[] {
  if (!tokens) return Array.from({ length: n }, (_, i) => String(i));
  const labels = tokenLabels(tokens);
  if (labels.length !== n) {
    throw new RangeError(`Got ${labels.length} tokens for ${n} positions of ${description}: pass one token per position.`);
  }
  return labels;
}

/** Reads a tensor or nested array as nested numbers, checking its rank. */
function toNested<T>(value: tf.Tensor | unknown, rank: number, description: string): T {
  if (value instanceof tf.Tensor) {
    if (value.isDisposed) throw new TypeError(`Cannot draw ${description}: its tensor has been disposed.`);
    if (value.rank !== rank) {
      throw new TypeError(`Cannot draw ${description}: expected a rank-${rank} tensor, got shape [${value.shape.join(", ")}].`);
    }
    return value.arraySync() as T;
  }
  if (Array.isArray(value)) {
    let depth = 0;
    for (let v: unknown = value; Array.isArray(v); v = v[0]) depth++;
    if (depth !== rank) throw new TypeError(`Cannot draw ${description}: expected ${rank} levels of nested arrays, got ${depth}.`);
    return value as T;
  }
  throw new TypeError(`Cannot draw ${description}: expected a tf.Tensor or nested arrays, got ${typeof value}.`);
}

// -------------------------------------------------------------------------------------------
// Tokens

/** Options of {@link tokenChips}. */
export interface TokenChipsOptions {
  /** One value per token. When given, chips are coloured by value on a colour scale; otherwise by id. */
  values?: ArrayLike<number>;
  /** Name of the value in captions, hover text and the colour bar. Default "value". */
  valueName?: string;
  colorscale?: ColorscaleName | Colorscale;
  /** Colour range for values. Default: their finite range, made symmetric around 0 for "diverging". */
  zmin?: number;
  zmax?: number;
  title?: string;
}

/**
 * Draws tokens as chips that wrap like text, coloured by token id (equal ids share a
 * colour) or by a per-token value.
 *
 * @param tokens `Token`s, token ids or strings.
 * @example
 * ```ts
 * tokenChips(model.tokenizer.tokenize("To be, or not to be"));
 * tokenChips(ids, { values: norms, valueName: "|x|" });
 * ```
 */
export function tokenChips(tokens: TokenLabels, options: TokenChipsOptions = {}): Figure {
  const labels = tokenLabels(tokens);
  const ids = tokenIds(tokens);
  const title = options.title ?? "Tokens";

  // Colour by id: equal ids share a colour, and each chip shows its id.
  if (options.values === undefined) {
    return chips({
      labels,
      fills: labels.map((label, i) => categoricalColor(ids ? ids[i]! : hashString(label))),
      captions: ids ? ids.map(String) : labels.map((_, i) => String(i)),
      hover: labels.map((label, i) => `${label}  position ${i}${ids ? `, id ${ids[i]}` : ""}`),
      title,
    });
  }

  // Colour by value, on a colour scale with a colour bar.
  const values = Array.from(options.values);
  if (values.length !== labels.length) {
    throw new RangeError(`Got ${values.length} values for ${labels.length} tokens: pass one value per token.`);
  }
  const valueName = options.valueName ?? "value";
  const range = finiteRange([values]);
  const scale = options.colorscale ?? "viridis";

  // A diverging scale is centred on zero, so white always means 0.
  const bound = Math.max(Math.abs(range.min), Math.abs(range.max));
  const min = options.zmin ?? (scale === "diverging" ? -bound : range.min);
  const max = options.zmax ?? (scale === "diverging" ? bound : range.max);
  return chips({
    labels,
    fills: values.map((v) => (Number.isFinite(v) ? colorAt(scale, max > min ? (v - min) / (max - min) : 0.5) : "#eeeeee")),
    captions: values.map(formatNumber),
    hover: labels.map((label, i) => `${label}  position ${i}${ids ? `, id ${ids[i]}` : ""}, ${valueName} ${formatNumber(values[i]!)}`),
    title,
    colorbar: { scale, min, max, title: valueName },
  });
}

function hashString(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (Math.imul(hash, 31) + text.charCodeAt(i)) | 0;
  return hash;
}

// -------------------------------------------------------------------------------------------
// Attention

/** An attention pattern: a result, a `[head, queryPos, keyPos]` tensor or nested array. */
export type PatternInput = AttentionResult | tf.Tensor | readonly (readonly (readonly number[])[])[];

/** Options of {@link attentionHeatmap} and {@link attentionHeads}. */
export interface AttentionFigureOptions {
  /** Tokens of the key positions (and of the query positions, which are the last ones). */
  tokens?: TokenLabels;
  /** Layer number for the title; taken from an AttentionResult when omitted. */
  layer?: number;
  /** Draw the masked future positions (key after query) as empty cells. Default true. */
  hideMasked?: boolean;
  title?: string;
}

function readPattern(input: PatternInput): { pattern: number[][][]; layer: number | undefined } {
  if (input && typeof input === "object" && "pattern" in input && "layer" in input) {
    return { pattern: toNested<number[][][]>(input.pattern, 3, "the attention pattern"), layer: input.layer };
  }
  return { pattern: toNested<number[][][]>(input, 3, "the attention pattern [head, queryPos, keyPos]"), layer: undefined };
}

/** Query rows and key columns of one head, with masked cells set to NaN when asked. */
function headMatrix(rows: number[][], hideMasked: boolean): number[][] {
  const nKeys = rows[0]?.length ?? 0;
  // With a KV cache, the queries are the last rows.length positions of the keys.
  const offset = nKeys - rows.length;
  return rows.map((row, q) => row.map((v, k) => (hideMasked && k > q + offset ? NaN : v)));
}

function attentionLabels(pattern: number[][][], tokens: TokenLabels | undefined) {
  const nQueries = pattern[0]?.length ?? 0;
  const nKeys = pattern[0]?.[0]?.length ?? 0;
  const keys = positionLabels(nKeys, tokens, "the attention keys");
  return { keys, queries: keys.slice(nKeys - nQueries) };
}

/**
 * Draws one head's attention pattern: query tokens down, key tokens across, each row a
 * probability distribution over the keys.
 *
 * @param input An AttentionResult, or a pattern `[head, queryPos, keyPos]`.
 * @param head The head to draw.
 * @throws {RangeError} For a head outside [0, nHeads).
 */
export function attentionHeatmap(input: PatternInput, head: number, options: AttentionFigureOptions = {}): Figure {
  const { pattern, layer: resultLayer } = readPattern(input);
  const layer = options.layer ?? resultLayer;
  if (!Number.isInteger(head) || head < 0 || head >= pattern.length) {
    throw new RangeError(`Cannot draw head ${head}: the pattern has ${pattern.length} heads, numbered 0 to ${pattern.length - 1}.`);
  }
  const { keys, queries } = attentionLabels(pattern, options.tokens);
  return heatmap({
    z: headMatrix(pattern[head]!, options.hideMasked ?? true),
    x: keys,
    y: queries,
    title: options.title ?? `Attention pattern, ${layer === undefined ? "" : `layer ${layer} `}head ${head}`,
    xTitle: "key (attended to)",
    yTitle: "query (attending)",
    colorscale: "blues",
    zmin: 0,
    zmax: 1,
    colorbarTitle: "attention",
    valueName: "attention",
  });
}

/**
 * Draws the attention pattern of every head in a layer side by side, on one colour scale.
 *
 * @param input An AttentionResult, or a pattern `[head, queryPos, keyPos]`.
 */
export function attentionHeads(input: PatternInput, options: AttentionFigureOptions & { columns?: number } = {}): Figure {
  const { pattern, layer: resultLayer } = readPattern(input);
  const layer = options.layer ?? resultLayer;
  const { keys, queries } = attentionLabels(pattern, options.tokens);
  const hideMasked = options.hideMasked ?? true;
  return heatmapGrid({
    panels: pattern.map((rows, head) => ({ z: headMatrix(rows, hideMasked), title: `head ${head}` })),
    x: keys,
    y: queries,
    ...(options.columns === undefined ? {} : { columns: options.columns }),
    title: options.title ?? `Attention patterns${layer === undefined ? "" : `, layer ${layer}`}`,
    xTitle: "key",
    yTitle: "query",
    colorscale: "blues",
    zmin: 0,
    zmax: 1,
    colorbarTitle: "attention",
    valueName: "attention",
  });
}

// -------------------------------------------------------------------------------------------
// MLP neurons

/** Options of {@link neuronHeatmap}. */
export interface NeuronHeatmapOptions {
  tokens?: TokenLabels;
  /** How many neurons to draw. Default 20. */
  topN?: number;
  /** Draw these neurons instead of the most active ones. */
  neurons?: readonly number[];
  /** Layer number for the title; taken from an MlpResult when omitted. */
  layer?: number;
  title?: string;
}

/**
 * Draws MLP neuron activations as a token × neuron heatmap. Without `neurons`, it picks the
 * `topN` neurons with the largest absolute activation at any position, strongest first.
 *
 * @param input An MlpResult (its `post`, after the nonlinearity), or activations `[pos, dMlp]`.
 */
export function neuronHeatmap(input: MlpResult | tf.Tensor | readonly (readonly number[])[], options: NeuronHeatmapOptions = {}): Figure {
  const isResult = input && typeof input === "object" && "post" in input && "layer" in input;
  const acts = toNested<number[][]>(isResult ? (input as MlpResult).post : input, 2, "neuron activations [pos, dMlp]");
  const layer = options.layer ?? (isResult ? (input as MlpResult).layer : undefined);
  const dMlp = acts[0]?.length ?? 0;
  let neurons = options.neurons ? [...options.neurons] : undefined;
  if (neurons) {
    for (const n of neurons) {
      if (!Number.isInteger(n) || n < 0 || n >= dMlp) throw new RangeError(`Invalid neuron ${n}: expected an integer in [0, ${dMlp}).`);
    }
  } else {
    const topN = options.topN ?? 20;
    if (!Number.isInteger(topN) || topN < 1) throw new RangeError(`Invalid topN ${topN}: expected a positive integer.`);
    const strength = Array.from({ length: dMlp }, (_, n) => Math.max(...acts.map((row) => Math.abs(row[n]!))));
    neurons = strength
      .map((s, n) => ({ s, n }))
      .sort((a, b) => b.s - a.s || a.n - b.n)
      .slice(0, Math.min(topN, dMlp))
      .map((e) => e.n);
  }
  return heatmap({
    z: acts.map((row) => neurons!.map((n) => row[n]!)),
    x: neurons.map((n) => `n${n}`),
    y: positionLabels(acts.length, options.tokens, "the neuron activations"),
    title: options.title ?? `MLP neurons${layer === undefined ? "" : `, layer ${layer}`} (top ${neurons.length} by |activation|)`,
    xTitle: "neuron",
    yTitle: "token",
    colorscale: "diverging",
    colorbarTitle: "activation",
    valueName: "activation",
  });
}

// -------------------------------------------------------------------------------------------
// Residual stream

/** Options of {@link residualNormHeatmap}. */
export interface ResidualNormHeatmapOptions {
  tokens?: TokenLabels;
  /** Row labels when `input` is a matrix of norms. */
  rows?: readonly string[];
  title?: string;
}

/**
 * Draws the norm of the residual stream at every layer and position.
 *
 * @param input An ActivationCache holding `blocks.L.hook_resid_pre` (and optionally
 *   `hook_resid_mid` and the last `hook_resid_post`), or norms `[layer][pos]` with `rows`.
 * @throws {RangeError} When the cache contains no residual activations.
 */
export function residualNormHeatmap(input: ActivationCache | readonly (readonly number[])[], options: ResidualNormHeatmapOptions = {}): Figure {
  let z: number[][];
  let rows: string[];
  if (Array.isArray(input)) {
    z = (input as number[][]).map((r) => [...r]);
    rows = options.rows ? [...options.rows] : z.map((_, i) => String(i));
  } else {
    const cache = input as ActivationCache;
    const names = cache.keys().filter((n) => /^blocks\.\d+\.hook_resid_(pre|mid|post)$/.test(n));
    const layerOf = (n: string) => Number(n.split(".")[1]);
    const lastLayer = Math.max(-1, ...names.map(layerOf));
    // Every pre and mid, and the post of the last block (the post of block L is the pre of L + 1).
    const chosen = names.filter((n) => !n.endsWith("post") || layerOf(n) === lastLayer);
    const order = (n: string) => layerOf(n) * 3 + (n.endsWith("pre") ? 0 : n.endsWith("mid") ? 1 : 2);
    chosen.sort((a, b) => order(a) - order(b));
    if (chosen.length === 0) {
      throw new RangeError(
        `This cache contains no residual activations (${cache.keys().slice(0, 3).join(", ")}…): ` +
          `run runWithCache with names that include "blocks.L.hook_resid_pre".`,
      );
    }
    z = chosen.map((name) => tf.tidy(() => tf.norm(cache.get(name as HookName), "euclidean", -1).arraySync() as number[])); // [pos, dModel] -> [pos]
    rows = chosen.map((n) => n.replace(/^blocks\./, "").replace(".hook_", " "));
  }
  const nPos = z[0]?.length ?? 0;
  return heatmap({
    z,
    x: positionLabels(nPos, options.tokens, "the residual norms"),
    y: rows,
    title: options.title ?? "Residual stream norm by layer and position",
    xTitle: "position",
    yTitle: "layer",
    colorscale: "viridis",
    colorbarTitle: "‖x‖",
    valueName: "norm",
  });
}

// -------------------------------------------------------------------------------------------
// Logit lens, top-k, embeddings, generation

/**
 * Draws a logit-lens table: one row per layer, one column per position, each cell coloured by
 * a value (such as the probability of the top token) and labelled with `text` (that token).
 * It takes plain arrays, so any logit-lens computation can feed it.
 *
 * @param input `z` and `text` `[layer][pos]`, `x` position labels, `y` layer labels.
 */
export function logitLensHeatmap(input: HeatmapInput): Figure {
  const { min, max } = finiteRange(input.z);
  const probabilities = min >= 0 && max <= 1;
  const options: HeatmapInput = {
    title: "Logit lens: top token after each layer",
    xTitle: "position",
    yTitle: "layer",
    colorbarTitle: probabilities ? "probability" : "value",
    valueName: probabilities ? "probability" : "value",
    ...(probabilities ? { colorscale: "blues" as const, zmin: 0, zmax: 1 } : {}),
    ...input,
  };
  if (input.text) options.text = input.text.map((row) => row.map((t) => tokenLabel(t, 10)));
  return heatmap(options);
}

/** Options of {@link topKBars}. */
export interface TopKBarsOptions {
  /** How many tokens (default 10). */
  k?: number;
  /** Position to read from an UnembedResult (default -1, the last). */
  position?: number;
  title?: string;
}

/**
 * Draws the most likely next tokens as bars of probability.
 *
 * @param input An UnembedResult, or the TopToken list from `topK`.
 */
export function topKBars(input: UnembedResult | readonly TopToken[], options: TopKBarsOptions = {}): Figure {
  const top = Array.isArray(input) ? (input as readonly TopToken[]).slice(0, options.k ?? input.length) : (input as UnembedResult).topK(options.k ?? 10, options.position ?? -1);
  return bars({
    labels: top.map((t) => tokenLabel(t.token)),
    values: top.map((t) => t.prob),
    valueText: top.map((t) => formatPercent(t.prob)),
    hover: top.map((t) => `id ${t.id}, logit ${formatNumber(t.logit)}`),
    title: options.title ?? `Top ${top.length} next tokens`,
    valueTitle: "probability",
  });
}

/**
 * Draws a 2-D projection of embeddings as labelled points. Pass coordinates you computed,
 * for example the first two principal components of each word's embedding.
 */
export function embeddingScatter(points: readonly ScatterPoint[], options: { title?: string; xTitle?: string; yTitle?: string } = {}): Figure {
  return scatter({
    points,
    title: options.title ?? "Embeddings, first two principal components",
    xTitle: options.xTitle ?? "PC 1",
    yTitle: options.yTitle ?? "PC 2",
  });
}

/** Options of {@link generationChips}. */
export interface GenerationChipsOptions {
  /** Draw the prompt tokens (in grey) before the generated ones. Default true. */
  showPrompt?: boolean;
  title?: string;
}

const PROMPT_FILL = "#e4e4e4";

/**
 * Draws a generation: the prompt in grey, then each sampled token coloured by the
 * probability it had when it was drawn (orange for unlikely, green for likely).
 */
export function generationChips(generation: Generation, options: GenerationChipsOptions = {}): Figure {
  const showPrompt = options.showPrompt ?? true;
  const prompt = showPrompt ? generation.promptIds : [];
  const labels = [...tokenLabels(prompt), ...generation.steps.map((s) => tokenLabel(s.text))];
  return chips({
    labels,
    fills: [...prompt.map(() => PROMPT_FILL), ...generation.steps.map((s) => colorAt("confidence", s.prob))],
    captions: [...prompt.map(() => ""), ...generation.steps.map((s) => formatPercent(s.prob))],
    hover: [
      ...prompt.map((id, i) => `prompt token ${i}, id ${id}`),
      ...generation.steps.map((s) => `position ${s.position}, id ${s.id}, sampled with p = ${formatPercent(s.prob)}`),
    ],
    title: options.title ?? `Generated ${generation.steps.length} tokens (seed ${generation.seed}, stop: ${generation.stopReason})`,
    colorbar: { scale: "confidence", min: 0, max: 1, title: "p(sampled)" },
  });
}
