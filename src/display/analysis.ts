/**
 * Figures of the interpretability results in src/analysis: the logit lens, direct logit
 * attribution, ablation and patching sweeps, head detector scores, nearest tokens and a token
 * PCA. Each reads a result object and draws it with the generic builders of plots.ts. None of
 * them runs the model or changes its input.
 */
import type { LogitAttribution } from "../analysis/attribution.ts";
import type { AblationSweep } from "../analysis/ablation.ts";
import type { NearestToken, TokenPca } from "../analysis/embeddings.ts";
import type { HeadScores } from "../analysis/head_detectors.ts";
import type { LogitLensResult } from "../analysis/logit_lens.ts";
import type { PatchingResult } from "../analysis/patching.ts";
import { gpt2Tokenizer } from "../tokenizer.ts";
import type { Figure } from "./figure.ts";
import { embeddingScatter, logitLensHeatmap, type TokenLabels, tokenLabels } from "./figures.ts";
import { formatNumber, formatPercent, tokenLabel } from "./labels.ts";
import { bars, heatmap, heatmapGrid } from "./plots.ts";

/** Bar colours for positive and negative contributions. */
const POSITIVE = "#4c78a8";
const NEGATIVE = "#e45756";

/** Short row label of a residual hook name: `blocks.2.hook_resid_pre` -> `2 resid_pre`. */
function residualRowLabel(name: string): string {
  return name.replace(/^blocks\./, "").replace(".hook_", " ");
}

/** Column labels for `n` positions: the tokens when given, else the position numbers. */
function columnLabels(n: number, tokens: TokenLabels | undefined, description: string): string[] {
  if (tokens === undefined) return Array.from({ length: n }, (_, i) => String(i));
  const labels = tokenLabels(tokens);
  if (labels.length !== n) {
    throw new RangeError(`Got ${labels.length} tokens for ${n} positions of ${description}: pass one token per position.`);
  }
  return labels;
}

/** Row labels `L0`, `L1`, ... and column labels `H0`, `H1`, ... of a `[layer][head]` matrix. */
function layerHeadLabels(matrix: readonly (readonly number[])[]): { x: string[]; y: string[] } {
  const nHeads = matrix[0]?.length ?? 0;
  return {
    x: Array.from({ length: nHeads }, (_, h) => `H${h}`),
    y: matrix.map((_, l) => `L${l}`),
  };
}

// -------------------------------------------------------------------------------------------
// Logit lens

/** Options of {@link logitLensFigure}. */
export interface LogitLensFigureOptions {
  /**
   * `topProb` (the default) colours each cell by its top token's probability, and `target`
   * colours it by the log-probability of the lens's `target` token. Either way the cell shows
   * the top token.
   */
  value?: "topProb" | "target";
  title?: string;
}

/**
 * Draws a logit lens as a layer × position table: each cell shows the top token that the
 * residual at that layer predicts for the next position, coloured by its probability.
 *
 * @throws {RangeError} For `value: "target"` on a lens computed without a `target`.
 * @example
 * ```ts
 * const lens = logitLens(model, "To be, or not to be");
 * logitLensFigure(lens);
 * ```
 */
export function logitLensFigure(lens: LogitLensResult, options: LogitLensFigureOptions = {}): Figure {
  const value = options.value ?? "topProb";
  const x = tokenLabels(lens.ids);
  const y = lens.layerNames.map(residualRowLabel);
  if (value === "topProb") {
    return logitLensHeatmap({ z: lens.topProb, text: lens.topToken, x, y, ...(options.title ? { title: options.title } : {}) });
  }
  if (value !== "target") throw new RangeError(`Invalid value ${JSON.stringify(value)}: use "topProb" or "target".`);
  if (lens.target === undefined || lens.targetLogProb === undefined) {
    throw new RangeError("This logit lens has no target: run logitLens with { target } to colour by its log-probability.");
  }
  const targetText = tokenLabel(gpt2Tokenizer().decodeToken(lens.target));
  return logitLensHeatmap({
    z: lens.targetLogProb,
    text: lens.topToken,
    x,
    y,
    title: options.title ?? `Logit lens: log p(${targetText}) after each layer, top token shown`,
    colorscale: "viridis",
    colorbarTitle: `log p(${targetText})`,
    valueName: `log p(${targetText})`,
  });
}

// -------------------------------------------------------------------------------------------
// Direct logit attribution

/** Options of {@link logitAttributionBars}. */
export interface LogitAttributionBarsOptions {
  /** How many components to draw, largest |contribution| first. Default 20. */
  top?: number;
  title?: string;
}

function attributionTarget(dla: LogitAttribution): string {
  const text = (id: number) => tokenLabel(gpt2Tokenizer().decodeToken(id));
  return dla.tokenB === undefined ? `logit(${text(dla.tokenA)})` : `logit(${text(dla.tokenA)}) − logit(${text(dla.tokenB)})`;
}

/**
 * Draws each component's direct contribution to a logit (difference) as bars, the largest in
 * magnitude first: blue adds to the difference, red subtracts from it.
 *
 * @throws {RangeError} For a `top` that is not a positive integer.
 */
export function logitAttributionBars(dla: LogitAttribution, options: LogitAttributionBarsOptions = {}): Figure {
  const top = options.top ?? 20;
  if (!Number.isInteger(top) || top < 1) throw new RangeError(`Invalid top ${top}: expected a positive integer.`);
  const chosen = [...dla.contributions].sort((a, b) => Math.abs(b.value) - Math.abs(a.value)).slice(0, top);
  return bars({
    labels: chosen.map((c) => c.label),
    values: chosen.map((c) => c.value),
    colors: chosen.map((c) => (c.value >= 0 ? POSITIVE : NEGATIVE)),
    hover: chosen.map((c) => `${c.kind}, ${formatNumber(c.value)} of ${formatNumber(dla.total)}`),
    title: options.title ?? `Direct logit attribution of ${attributionTarget(dla)} at position ${dla.position} (total ${formatNumber(dla.total)})`,
    valueTitle: "direct contribution",
  });
}

/** Draws each head's direct contribution to a logit (difference) as a layer × head heatmap. */
export function logitAttributionHeatmap(dla: LogitAttribution, options: { title?: string } = {}): Figure {
  return heatmap({
    z: dla.heads,
    ...layerHeadLabels(dla.heads),
    title: options.title ?? `Direct logit attribution per head: ${attributionTarget(dla)}`,
    xTitle: "head",
    yTitle: "layer",
    colorscale: "diverging",
    colorbarTitle: "contribution",
    valueName: "contribution",
  });
}

// -------------------------------------------------------------------------------------------
// Ablation

function ablationMetricName(sweep: AblationSweep): string {
  return sweep.metric === "loss" ? "loss" : "logit difference";
}

/** Draws the change of the metric when each head is ablated alone, as a layer × head heatmap. */
export function ablationHeatmap(sweep: AblationSweep, options: { title?: string } = {}): Figure {
  const metric = ablationMetricName(sweep);
  return heatmap({
    z: sweep.heads,
    ...layerHeadLabels(sweep.heads),
    title: options.title ?? `${sweep.method === "zero" ? "Zero" : "Mean"}-ablating each head: change in ${metric} (baseline ${formatNumber(sweep.baseline)})`,
    xTitle: "head",
    yTitle: "layer",
    colorscale: "diverging",
    colorbarTitle: `Δ ${metric}`,
    valueName: `Δ ${metric}`,
  });
}

/** Draws the change of the metric when each block's MLP is ablated alone, as bars. */
export function ablationMlpBars(sweep: AblationSweep, options: { title?: string } = {}): Figure {
  const metric = ablationMetricName(sweep);
  return bars({
    labels: sweep.mlps.map((_, l) => `L${l} MLP`),
    values: sweep.mlps,
    colors: sweep.mlps.map((v) => (v >= 0 ? POSITIVE : NEGATIVE)),
    hover: sweep.mlps.map((v) => `${metric} ${formatNumber(sweep.baseline + v)} (baseline ${formatNumber(sweep.baseline)})`),
    title: options.title ?? `${sweep.method === "zero" ? "Zero" : "Mean"}-ablating each MLP (at ${sweep.mlpHook}): change in ${metric}`,
    valueTitle: `Δ ${metric}`,
  });
}

// -------------------------------------------------------------------------------------------
// Activation patching

/** Options of {@link patchingHeatmap}. */
export interface PatchingHeatmapOptions {
  /** Tokens of the positions, for a residual patching result. */
  tokens?: TokenLabels;
  title?: string;
}

/**
 * Draws the recovered fraction of a patching sweep: layer × position for `patchResidual`,
 * layer × head for `patchHeads`. 1 means the patch restores the clean logit difference.
 *
 * @throws {RangeError} When `tokens` does not match the number of positions.
 */
export function patchingHeatmap(result: PatchingResult, options: PatchingHeatmapOptions = {}): Figure {
  const residual = result.target === "resid_pre";
  const nColumns = result.recovered[0]?.length ?? 0;
  const values = `clean ${formatNumber(result.cleanValue)}, corrupted ${formatNumber(result.corruptedValue)}`;
  return heatmap({
    z: result.recovered,
    x: residual ? columnLabels(nColumns, options.tokens, "the patched residual") : layerHeadLabels(result.recovered).x,
    y: result.recovered.map((_, l) => `L${l}`),
    title: options.title ??
      `Patching ${residual ? "the residual (resid_pre) per position" : "each head's output (hook_z)"}: fraction recovered (${values})`,
    xTitle: residual ? "position" : "head",
    yTitle: "layer",
    colorscale: "diverging",
    colorbarTitle: "recovered",
    valueName: "recovered fraction",
  });
}

// -------------------------------------------------------------------------------------------
// Head detectors

/** Options of {@link headScoresHeatmap}. */
export interface HeadScoresHeatmapOptions {
  title?: string;
  /** Top of the colour scale. Default 1; a smaller value shows weak heads more clearly. */
  zmax?: number;
}

/**
 * Draws head detector scores as layer × head heatmaps on a scale from 0: the previous-token
 * and induction scores of `detectHeads` side by side, or one `[layer][head]` matrix, such as
 * the output of `previousTokenScores`.
 *
 * @throws {RangeError} For a `zmax` that is not a positive number.
 */
export function headScoresHeatmap(scores: HeadScores | readonly (readonly number[])[], options: HeadScoresHeatmapOptions = {}): Figure {
  const zmax = options.zmax ?? 1;
  if (!(zmax > 0) || !Number.isFinite(zmax)) throw new RangeError(`Invalid zmax ${zmax}: expected a positive number.`);
  const style = {
    xTitle: "head",
    yTitle: "layer",
    colorscale: "blues" as const,
    zmin: 0,
    zmax,
    colorbarTitle: "mean attention",
    valueName: "score",
  };
  if (Array.isArray(scores)) {
    const matrix = scores as readonly (readonly number[])[];
    return heatmap({ z: matrix, ...layerHeadLabels(matrix), title: options.title ?? "Head scores", ...style });
  }
  const { previousToken, induction, seqLen } = scores as HeadScores;
  return heatmapGrid({
    panels: [
      { z: previousToken, title: "previous-token score" },
      { z: induction, title: "induction score" },
    ],
    ...layerHeadLabels(previousToken),
    columns: 2,
    title: options.title ?? `Head detectors on ${seqLen} random tokens repeated twice`,
    ...style,
  });
}

// -------------------------------------------------------------------------------------------
// Embeddings

/** Draws nearest tokens (from `nearestTokens` or `analogy`) as bars of cosine similarity. */
export function nearestTokenBars(tokens: readonly NearestToken[], options: { title?: string } = {}): Figure {
  return bars({
    labels: tokens.map((t) => tokenLabel(t.token)),
    values: tokens.map((t) => t.similarity),
    valueText: tokens.map((t) => t.similarity.toFixed(3)),
    hover: tokens.map((t) => `id ${t.id}`),
    title: options.title ?? `Nearest ${tokens.length} tokens by cosine similarity`,
    valueTitle: "cosine similarity",
  });
}

/** Options of {@link tokenPcaScatter}. */
export interface TokenPcaScatterOptions {
  /** A group name per token, which colours the points. */
  groups?: readonly string[];
  title?: string;
}

/**
 * Draws the first two principal components of a token PCA, each axis titled with its share
 * of the variance.
 *
 * @throws {RangeError} For a PCA with fewer than two components, or `groups` of the wrong length.
 */
export function tokenPcaScatter(pca: TokenPca, options: TokenPcaScatterOptions = {}): Figure {
  if (pca.explainedVarianceRatio.length < 2) {
    throw new RangeError(`Cannot draw a PCA of ${pca.explainedVarianceRatio.length} component: run tokenPca with components >= 2.`);
  }
  const groups = options.groups;
  if (groups !== undefined && groups.length !== pca.tokens.length) {
    throw new RangeError(`Got ${groups.length} groups for ${pca.tokens.length} tokens: pass one group per token.`);
  }
  const points = pca.tokens.map((token, i) => ({
    x: pca.coords[i]![0]!,
    y: pca.coords[i]![1]!,
    label: tokenLabel(token),
    ...(groups ? { group: groups[i]! } : {}),
  }));
  const share = (i: number) => formatPercent(pca.explainedVarianceRatio[i]!);
  return embeddingScatter(points, {
    title: options.title ?? `PCA of ${pca.tokens.length} token vectors in ${pca.space}`,
    xTitle: `PC 1 (${share(0)} of variance)`,
    yTitle: `PC 2 (${share(1)} of variance)`,
  });
}
