/**
 * The display layer: figures and rich output for notebooks and terminals, kept apart from
 * the maths. Nothing here changes a model or a result; it only reads values and draws them.
 *
 * ```ts
 * import { loadModel } from "../../mod.ts";
 * import { attentionHeads, show, tokenChips } from "./mod.ts";
 *
 * const model = await loadModel();
 * const tokens = model.tokenizer.tokenize("To be, or not to be");
 * const e = model.embed(tokens.map((t) => t.id));
 * const a = model.attentionBlock(0, e.residual);
 * await show(tokenChips(tokens), attentionHeads(a, { tokens }));
 * ```
 *
 * @module
 */
export { categoricalColor, colorAt, type Colorscale, type ColorscaleName } from "./colors.ts";
export { Figure, type FigureInit, INSPECT_CUSTOM, JUPYTER_DISPLAY, MIME, type MimeBundle } from "./figure.ts";
export {
  type AttentionFigureOptions,
  attentionHeads,
  attentionHeatmap,
  embeddingScatter,
  generationChips,
  type GenerationChipsOptions,
  logitLensHeatmap,
  neuronHeatmap,
  type NeuronHeatmapOptions,
  type PatternInput,
  residualNormHeatmap,
  type ResidualNormHeatmapOptions,
  tokenChips,
  type TokenChipsOptions,
  type TokenLabels,
  tokenLabels,
  topKBars,
  type TopKBarsOptions,
} from "./figures.ts";
export { tokenLabel } from "./labels.ts";
export { plotlySource, type PlotlySpec, resetPlotlyInlining } from "./plotly_html.ts";
export {
  bars,
  type BarsInput,
  chips,
  type ChipsInput,
  heatmap,
  heatmapGrid,
  type HeatmapGridInput,
  type HeatmapInput,
  type HeatmapPanel,
  type HeatmapStyle,
  scatter,
  type ScatterInput,
  type ScatterPoint,
} from "./plots.ts";
export { tensorFigure, type TensorFigureOptions } from "./results.ts";
export { type DisplayTarget, displayTarget, show, toMimeBundle, toText } from "./show.ts";
export type { TextOptions } from "./terminal.ts";
export * from "./analysis.ts";
export { type ByteProgress, formatProgress, progressBar, type ProgressStream } from "./progress.ts";
