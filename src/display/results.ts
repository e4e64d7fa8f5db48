/**
 * Rendering of the result types: a MIME bundle for notebooks and a compact text for terminals. The result classes (results.ts, hooks.ts, generate.ts) call these functions from
 * their `Symbol.for("Jupyter.display")` and `Symbol.for("nodejs.util.inspect.custom")`
 * methods. Reading values here never changes the result or leaks tensors.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Generation } from "../generate.ts";
import type { ActivationCache } from "../hooks.ts";
import type { AttentionResult, EmbedResult, LayerNormResult, MlpResult, UnembedResult } from "../results.ts";
import { type Figure, INSPECT_CUSTOM, JUPYTER_DISPLAY, MIME, type MimeBundle } from "./figure.ts";
import { attentionHeads, generationChips, neuronHeatmap, tokenLabels, topKBars } from "./figures.ts";
import { escapeXml, fitWidth, formatNumber, formatPercent, tokenLabel } from "./labels.ts";
import { heatmap, heatmapGrid } from "./plots.ts";
import type { TextOptions } from "./terminal.ts";

/** Tensors larger than this many values are summarised instead of drawn as a heatmap. */
const MAX_HEATMAP_VALUES = 65_536;

function shapeOf(t: tf.Tensor): string {
  return `[${t.shape.join(", ")}]`;
}

function anyDisposed(tensors: readonly tf.Tensor[]): boolean {
  return tensors.some((t) => t.isDisposed);
}

/** Returns the figure's MIME bundle with `text` as its text/plain entry. */
function bundleWithText(figure: Figure, text: string): MimeBundle {
  return { ...figure.toMimeBundle(), [MIME.text]: text };
}

function textOnly(text: string): MimeBundle {
  return { [MIME.text]: text };
}

/** Euclidean norm of each row of a `[pos, d]` tensor. */
function rowNorms(t: tf.Tensor): number[] {
  return tf.tidy(() => tf.norm(t, "euclidean", -1).arraySync() as number[]); // [pos, d] -> [pos]
}

// -------------------------------------------------------------------------------------------
// Tensors

/** Options of {@link tensorFigure}. */
export interface TensorFigureOptions {
  title?: string;
  /** Row labels for a rank-2 tensor `[pos, ...]`, such as its tokens. */
  rows?: readonly string[];
}

/**
 * Draws a tensor: a rank-1 vector as a strip of cells (32 per row), a rank-2 tensor as a
 * heatmap, a rank-3 tensor as a grid of heatmaps along its first axis.
 *
 * @throws {RangeError} For a scalar, or a tensor of more than 65,536 values (slice it first).
 */
export function tensorFigure(t: tf.Tensor, options: TensorFigureOptions = {}): Figure {
  if (t.isDisposed) throw new TypeError("Cannot draw a disposed tensor.");
  if (t.size > MAX_HEATMAP_VALUES) {
    throw new RangeError(
      `Cannot draw a tensor of shape ${shapeOf(t)} (${t.size} values, more than ${MAX_HEATMAP_VALUES}): ` +
        `slice it first, for example t.slice([0, 0], [16, -1]).`,
    );
  }
  const title = options.title ?? `tensor ${shapeOf(t)} ${t.dtype}`;
  if (t.rank === 1) {
    const values = Array.from(t.dataSync());
    const width = Math.min(32, values.length);
    const rows: number[][] = [];
    for (let i = 0; i < values.length; i += width) {
      const row = values.slice(i, i + width);
      while (row.length < width) row.push(NaN);
      rows.push(row);
    }
    return heatmap({
      z: rows,
      y: rows.map((_, i) => String(i * width)),
      x: Array.from({ length: width }, (_, i) => `+${i}`),
      title,
      xTitle: "index (row start + offset)",
    });
  }
  if (t.rank === 2) {
    const z = t.arraySync() as number[][];
    const input: Parameters<typeof heatmap>[0] = { z, title, xTitle: "axis 1", yTitle: "axis 0" };
    if (options.rows) input.y = options.rows;
    return heatmap(input);
  }
  if (t.rank === 3) {
    const z = t.arraySync() as number[][][];
    return heatmapGrid({
      panels: z.map((panel, i) => ({ z: panel, title: `[${i}]` })),
      title,
      xTitle: "axis 2",
      yTitle: "axis 1",
    });
  }
  throw new RangeError(`Cannot draw a rank-${t.rank} tensor of shape ${shapeOf(t)}: draw rank 1, 2 or 3, or slice it first.`);
}

/** Summary statistics of a tensor, one line. */
function tensorStats(t: tf.Tensor): string {
  const values = t.dataSync();
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let squares = 0;
  let finite = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    finite++;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    squares += v * v;
  }
  if (finite === 0) return "no finite values";
  const extra = finite < values.length ? `, ${values.length - finite} non-finite` : "";
  return `min ${formatNumber(min)}, max ${formatNumber(max)}, mean ${formatNumber(sum / finite)}, norm ${formatNumber(Math.sqrt(squares))}${extra}`;
}

/** Writes a tensor as text: shape, dtype, statistics and, when small enough, a block heatmap. */
export function tensorText(t: tf.Tensor, options: TextOptions): string {
  if (t.isDisposed) return `tensor ${shapeOf(t)} ${t.dtype} (disposed)`;
  const header = `tensor ${shapeOf(t)} ${t.dtype}: ${tensorStats(t)}`;
  if (t.rank === 0 || t.size > MAX_HEATMAP_VALUES || t.rank > 3) return header;
  const figure = tensorFigure(t);
  return `${header}\n${figure.toText(options).split("\n").slice(1).join("\n")}`;
}

/** Builds the MIME bundle of a tensor: a figure when it can be drawn, else its text. */
export function tensorBundle(t: tf.Tensor): MimeBundle {
  const text = tensorText(t, { colors: false });
  if (t.isDisposed || t.rank === 0 || t.rank > 3 || t.size > MAX_HEATMAP_VALUES) return textOnly(text);
  return bundleWithText(tensorFigure(t), text);
}

// -------------------------------------------------------------------------------------------
// Embedding and layer norm

function embedHeader(r: EmbedResult): string {
  return `EmbedResult: ${r.ids.length} tokens; tokenEmbed, posEmbed and residual ${shapeOf(r.residual)}`;
}

/** Writes an EmbedResult as text: each token with the norms of its three vectors. */
export function embedResultText(r: EmbedResult, _options: TextOptions): string {
  if (anyDisposed([r.tokenEmbed, r.posEmbed, r.residual])) return `${embedHeader(r)} (disposed)`;
  const labels = tokenLabels(r.ids);
  const [tok, pos, sum] = [r.tokenEmbed, r.posEmbed, r.residual].map(rowNorms);
  const lines = [embedHeader(r), "  pos     id  token           ‖token‖    ‖pos‖  ‖resid‖"];
  labels.forEach((label, i) => {
    lines.push(
      `  ${String(i).padStart(3)} ${String(r.ids[i]).padStart(6)}  ${fitWidth(label, 14)} ${formatNumber(tok![i]!).padStart(8)} ` +
        `${formatNumber(pos![i]!).padStart(8)} ${formatNumber(sum![i]!).padStart(8)}`,
    );
  });
  return lines.join("\n");
}

/** Builds the MIME bundle of an EmbedResult: the residual `[pos, dModel]` as a heatmap with token labels. */
export function embedResultBundle(r: EmbedResult): MimeBundle {
  const text = embedResultText(r, { colors: false });
  if (anyDisposed([r.residual])) return textOnly(text);
  const figure = heatmap({
    z: r.residual.arraySync() as number[][],
    y: tokenLabels(r.ids),
    title: "Embedding: token + position vector of each token",
    xTitle: "dimension (dModel)",
    yTitle: "token",
    colorbarTitle: "value",
  });
  return bundleWithText(figure, text);
}

/** Writes a LayerNormResult as text: each position's scale and the normalized vectors. */
export function layerNormResultText(r: LayerNormResult, options: TextOptions): string {
  const header = `LayerNormResult: normalized ${shapeOf(r.normalized)}, scale ${shapeOf(r.scale)}`;
  if (anyDisposed([r.scale, r.normalized])) return `${header} (disposed)`;
  const scales = Array.from(r.scale.dataSync(), formatNumber).join(", ");
  return `${header}\n  scale (sqrt(var + eps)) per position: ${scales}\n${tensorText(r.normalized, options)}`;
}

/** Builds the MIME bundle of a LayerNormResult: the normalized vectors as a heatmap. */
export function layerNormResultBundle(r: LayerNormResult): MimeBundle {
  const text = layerNormResultText(r, { colors: false });
  if (anyDisposed([r.normalized]) || r.normalized.size > MAX_HEATMAP_VALUES) return textOnly(text);
  return bundleWithText(tensorFigure(r.normalized, { title: "Layer norm output [pos, dModel]" }), text);
}

// -------------------------------------------------------------------------------------------
// Attention and MLP

function attentionHeader(r: AttentionResult): string {
  const [nHeads, nQueries, nKeys] = r.pattern.shape;
  return (
    `AttentionResult (block ${r.layer}): ${nHeads} heads, ${nQueries} queries × ${nKeys} keys; ` +
    `q, k, v, z ${shapeOf(r.q)}, pattern ${shapeOf(r.pattern)}, result ${shapeOf(r.result)}, out ${shapeOf(r.out)}`
  );
}

/** Writes an AttentionResult as text: its shapes and each head's pattern as a block heatmap. */
export function attentionResultText(r: AttentionResult, options: TextOptions): string {
  if (anyDisposed([r.pattern])) return `${attentionHeader(r)} (disposed)`;
  return `${attentionHeader(r)}\n${attentionHeads(r).toText(options).split("\n").slice(1).join("\n")}`;
}

/** Builds the MIME bundle of an AttentionResult: every head's pattern (positions as labels). */
export function attentionResultBundle(r: AttentionResult): MimeBundle {
  const text = attentionResultText(r, { colors: false });
  if (anyDisposed([r.pattern])) return textOnly(text);
  return bundleWithText(attentionHeads(r), text);
}

function mlpHeader(r: MlpResult): string {
  return `MlpResult (block ${r.layer}): pre and post ${shapeOf(r.post)}, out ${shapeOf(r.out)}`;
}

/** Writes an MlpResult as text: its shapes and the most active neurons as a block heatmap. */
export function mlpResultText(r: MlpResult, options: TextOptions): string {
  if (anyDisposed([r.post])) return `${mlpHeader(r)} (disposed)`;
  return `${mlpHeader(r)}\n${neuronHeatmap(r, { topN: 16 }).toText(options)}`;
}

/** Builds the MIME bundle of an MlpResult: a position × top-neurons heatmap of `post`. */
export function mlpResultBundle(r: MlpResult): MimeBundle {
  const text = mlpResultText(r, { colors: false });
  if (anyDisposed([r.post])) return textOnly(text);
  return bundleWithText(neuronHeatmap(r), text);
}

// -------------------------------------------------------------------------------------------
// Unembedding

function unembedHeader(r: UnembedResult): string {
  const [nPos, dVocab] = r.logits.shape;
  return `UnembedResult: logits and logProbs [${nPos}, ${dVocab}]`;
}

/** Writes an UnembedResult as text: the top 10 next tokens at the last position, as bars. */
export function unembedResultText(r: UnembedResult, options: TextOptions): string {
  if (anyDisposed([r.logits])) return `${unembedHeader(r)} (disposed)`;
  return `${unembedHeader(r)}\n${topKBars(r).toText(options)}`;
}

/** Builds the MIME bundle of an UnembedResult: top-10 bars at the last position. */
export function unembedResultBundle(r: UnembedResult): MimeBundle {
  const text = unembedResultText(r, { colors: false });
  if (anyDisposed([r.logits])) return textOnly(text);
  return bundleWithText(topKBars(r), text);
}

// -------------------------------------------------------------------------------------------
// Activation cache

/** One row of the cache summary: a hook name with `{L}` for the block, its shape and blocks. */
interface CacheRow {
  name: string;
  shape: string;
  blocks: number[];
}

/**
 * Groups cached hook names by what they are: `blocks.0.attn.hook_q` ... `blocks.3.attn.hook_q`
 * become one row `blocks.{L}.attn.hook_q` with blocks 0 to 3, when their shapes agree.
 */
function cacheRows(cache: ActivationCache): CacheRow[] {
  const rows = new Map<string, CacheRow>();
  for (const { name, shape } of cache.shapes()) {
    const match = /^blocks\.(\d+)\.(.+)$/.exec(name);
    const shapeText = `[${shape.join(", ")}]`;
    const generic = match ? `blocks.{L}.${match[2]}` : name;
    const key = `${generic} ${shapeText}`;
    const row = rows.get(key) ?? { name: generic, shape: shapeText, blocks: [] };
    if (match) row.blocks.push(Number(match[1]));
    rows.set(key, row);
  }
  return [...rows.values()];
}

/** Writes block numbers compactly: [0, 1, 2, 3, 5] -> "0–3, 5". */
function blockRanges(blocks: readonly number[]): string {
  const sorted = [...blocks].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j > i ? `${sorted[i]}–${sorted[j]}` : String(sorted[i]));
    i = j;
  }
  return parts.join(", ");
}

/** Writes an ActivationCache as text: its hook names, grouped over blocks, with their shapes. */
export function activationCacheText(cache: ActivationCache, _options: TextOptions): string {
  const rows = cacheRows(cache);
  const width = Math.max(0, ...rows.map((r) => r.name.length));
  const shapeWidth = Math.max(0, ...rows.map((r) => r.shape.length));
  return [
    `ActivationCache: ${cache.size} activations`,
    ...rows.map((r) =>
      `  ${r.name.padEnd(width)}  ${r.shape.padEnd(shapeWidth)}${r.blocks.length ? `  L = ${blockRanges(r.blocks)}` : ""}`.trimEnd()
    ),
  ].join("\n");
}

/** Builds the MIME bundle of an ActivationCache: an HTML table of hook names and shapes, and the text. */
export function activationCacheBundle(cache: ActivationCache): MimeBundle {
  const rows = cacheRows(cache)
    .map((r) =>
      `<tr><td style="text-align:left"><code>${escapeXml(r.name)}</code></td>` +
      `<td style="text-align:left"><code>${escapeXml(r.shape)}</code></td>` +
      `<td style="text-align:left">${r.blocks.length ? escapeXml(blockRanges(r.blocks)) : ""}</td></tr>`
    )
    .join("");
  const html =
    `<details open><summary><b>ActivationCache</b>: ${cache.size} activations</summary>` +
    `<table><thead><tr><th style="text-align:left">hook</th><th style="text-align:left">shape</th>` +
    `<th style="text-align:left">blocks L</th></tr></thead><tbody>${rows}</tbody></table></details>`;
  return { [MIME.html]: html, [MIME.text]: activationCacheText(cache, { colors: false }) };
}

// -------------------------------------------------------------------------------------------
// Generation

/** Writes a Generation as text: the prompt and each new token with its sampled probability. */
export function generationText(g: Generation, options: TextOptions): string {
  const header = `Generation: ${g.steps.length} new tokens (seed ${g.seed}, stop: ${g.stopReason})`;
  const prompt = tokenLabels(g.promptIds).join("");
  const figure = generationChips(g, { showPrompt: false });
  const chipsText = figure.toText(options).split("\n").slice(1).join("\n");
  const probabilities = g.steps.map((s) => `${tokenLabel(s.text)} ${formatPercent(s.prob)}`).join(", ");
  return options.colors
    ? `${header}\nprompt: ${prompt}\n${chipsText}`
    : `${header}\nprompt: ${prompt}\nnew: ${JSON.stringify(g.text)}\np(sampled): ${probabilities}`;
}

/** Builds the MIME bundle of a Generation: prompt and new tokens as chips coloured by sampled probability. */
export function generationBundle(g: Generation): MimeBundle {
  return bundleWithText(generationChips(g), generationText(g, { colors: false }));
}

/**
 * Adds the display methods to a Generation, as non-enumerable properties so that equality
 * checks, spreads and JSON see only the data.
 *
 * @returns The same object.
 */
export function withGenerationDisplay<T extends Generation>(generation: T): T {
  Object.defineProperty(generation, JUPYTER_DISPLAY, {
    value: function (this: Generation): MimeBundle {
      return generationBundle(this);
    },
    enumerable: false,
    configurable: true,
  });
  Object.defineProperty(generation, INSPECT_CUSTOM, {
    value: function (this: Generation, _depth: number, options?: { colors?: boolean }): string {
      return generationText(this, { colors: Boolean(options?.colors) });
    },
    enumerable: false,
    configurable: true,
  });
  return generation;
}
