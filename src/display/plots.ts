/**
 * Generic figures: heatmaps (alone or in a grid), horizontal bars, labelled scatter plots and
 * token chips. Each builder takes plain numbers and labels and returns a {@link Figure} with
 * matching plotly, SVG and text renderings. The model-specific figures in figures.ts are
 * built from these, and so can other modules (a logit lens, attribution scores).
 */
import {
  type Colorscale,
  colorscale as colorscaleStops,
  type ColorscaleName,
  contrastText,
  finiteRange,
} from "./colors.ts";
import { Figure } from "./figure.ts";
import { displayWidth, fitWidth, formatNumber, plotlyText } from "./labels.ts";
import type { PlotlySpec } from "./plotly_html.ts";
import { MISSING_FILL, svgBars, type SvgChip, svgChips, svgHeatmapGrid, svgScatter } from "./svg.ts";
import { blockHeatmap, heatmapKey, type TextOptions, textBars, textChips } from "./terminal.ts";

const PLOTLY_CONFIG = { displaylogo: false, responsive: false };
const FONT = { family: "Helvetica, Arial, sans-serif", size: 11 };
const MONO = "Menlo, Consolas, 'DejaVu Sans Mono', monospace";

/** Options shared by the heatmap builders. */
export interface HeatmapStyle {
  title?: string;
  /** Axis titles. */
  xTitle?: string;
  yTitle?: string;
  colorbarTitle?: string;
  /** A named scale or plotly-style stops. Default: "diverging" when z has both signs, else "viridis". */
  colorscale?: ColorscaleName | Colorscale;
  /** Colour range. Default: the finite range of z, made symmetric around 0 for a diverging scale. */
  zmin?: number;
  zmax?: number;
  /** Size of one cell in pixels. Default: chosen from the number of rows and columns and the cell text. */
  cellWidth?: number;
  cellHeight?: number;
  /** Label of the value in hover text. Default "value". */
  valueName?: string;
}

/** Input of {@link heatmap}: values `[row][column]` with optional labels and cell text. */
export interface HeatmapInput extends HeatmapStyle {
  /** Values `[row][column]`. Non-finite values (masked attention) are drawn as empty cells. */
  z: ReadonlyArray<ArrayLike<number>>;
  /** Column labels (default: column indices). */
  x?: readonly string[];
  /** Row labels (default: row indices). */
  y?: readonly string[];
  /** Text drawn in each cell `[row][column]`, such as the top token of a logit lens. */
  text?: ReadonlyArray<ReadonlyArray<string>>;
}

/** One panel of {@link heatmapGrid}. */
export interface HeatmapPanel {
  /** Values `[row][column]`; every panel has the same shape. */
  z: ReadonlyArray<ArrayLike<number>>;
  text?: ReadonlyArray<ReadonlyArray<string>>;
  /** The panel's title, such as "head 3". */
  title?: string;
}

/** Input of {@link heatmapGrid}. */
export interface HeatmapGridInput extends HeatmapStyle {
  panels: readonly HeatmapPanel[];
  /** Column labels shared by every panel. */
  x?: readonly string[];
  /** Row labels shared by every panel. */
  y?: readonly string[];
  /** Panels per row. Default: up to 4. */
  columns?: number;
}

/**
 * Draws a heatmap of `z` with labelled rows and columns, row 0 at the top.
 *
 * @example
 * ```ts
 * heatmap({ z: [[0.1, 0.9], [0.5, 0.5]], x: ["a", "b"], y: ["first", "second"], title: "Example" });
 * ```
 */
export function heatmap(input: HeatmapInput): Figure {
  const { z, text, x, y, ...style } = input;
  const panel: HeatmapPanel = text ? { z, text } : { z };
  const grid: HeatmapGridInput = { ...style, panels: [panel], columns: 1 };
  if (x) grid.x = x;
  if (y) grid.y = y;
  return heatmapGrid(grid);
}

/**
 * Draws several heatmaps of the same shape side by side with one shared colour range, such
 * as the attention patterns of every head in a layer.
 *
 * @throws {RangeError} When there are no panels, a panel is empty, or the panels or labels
 *   disagree on the shape.
 */
export function heatmapGrid(input: HeatmapGridInput): Figure {
  const { panels } = input;
  if (panels.length === 0) throw new RangeError("Cannot draw a heatmap grid without panels: pass at least one.");
  const nRows = panels[0]!.z.length;
  const nCols = panels[0]!.z[0]?.length ?? 0;
  if (nRows === 0 || nCols === 0) {
    throw new RangeError(`Cannot draw an empty heatmap (${nRows} rows, ${nCols} columns): pass at least one value.`);
  }
  panels.forEach((panel, i) => {
    if (panel.z.length !== nRows || panel.z.some((row) => row.length !== nCols)) {
      throw new RangeError(`Heatmap panel ${i} is not ${nRows}×${nCols} like panel 0: give every panel the same shape.`);
    }
  });
  const xLabels = input.x ?? Array.from({ length: nCols }, (_, i) => String(i));
  const yLabels = input.y ?? Array.from({ length: nRows }, (_, i) => String(i));
  if (xLabels.length !== nCols) throw new RangeError(`Got ${xLabels.length} column labels (x) for ${nCols} columns.`);
  if (yLabels.length !== nRows) throw new RangeError(`Got ${yLabels.length} row labels (y) for ${nRows} rows.`);

  const { scale, zmin, zmax } = colourRange(panels.map((p) => p.z), input);
  const columns = Math.max(1, Math.min(input.columns ?? defaultColumns(nCols), panels.length));
  const gridRows = Math.ceil(panels.length / columns);
  const longestText = Math.max(0, ...panels.flatMap((p) => (p.text ?? []).flat().map(displayWidth)));
  const { width: cellWidth, height: cellHeight } = cellSize({ nRows, nCols, gridRows, columns, longestText }, input);

  // Layout in pixels, shared by the plotly figure (converted to paper fractions) and the SVG.
  const longest = (labels: readonly string[]) => Math.max(0, ...labels.map(displayWidth));
  const hasTitles = panels.some((p) => p.title);
  const margin = {
    l: 24 + (input.yTitle ? 18 : 0) + Math.min(150, longest(yLabels) * 7),
    r: 110,
    t: (input.title ? 44 : 12) + (hasTitles ? 18 : 0),
    b: 24 + (input.xTitle ? 18 : 0) + Math.min(110, longest(xLabels) * 5.5),
  };
  const gapX = 16;
  const gapY = hasTitles ? 30 : 14;
  const panelWidth = nCols * cellWidth;
  const panelHeight = nRows * cellHeight;
  const areaWidth = columns * panelWidth + (columns - 1) * gapX;
  const areaHeight = gridRows * panelHeight + (gridRows - 1) * gapY;
  const width = margin.l + areaWidth + margin.r;
  const height = margin.t + areaHeight + margin.b;

  const valueName = input.valueName ?? "value";
  // Category axes whose labels are the token texts, made distinct so repeated tokens keep
  // their own rows and columns. Hover text then comes from one template instead of a string
  // per cell.
  const xCategories = distinctLabels(xLabels.map(plotlyText));
  const yCategories = distinctLabels(yLabels.map(plotlyText));
  const hovertemplate =
    `${plotlyText(input.yTitle ?? "row")}: %{y}<br>${plotlyText(input.xTitle ?? "column")}: %{x}<br>` +
    `${plotlyText(valueName)}: %{z:.4g}` + (panels.some((p) => p.text) ? "<br>%{text}" : "") + "<extra></extra>";
  const data: Array<Record<string, unknown>> = [];
  const layout: Record<string, unknown> = {
    width,
    height,
    autosize: false,
    margin,
    font: FONT,
    // Cells without a finite value (masked attention) show this background, as in the SVG.
    plot_bgcolor: MISSING_FILL,
  };
  if (input.title) layout.title = { text: plotlyText(input.title), x: 0, xref: "paper", font: { size: 14 } };
  const annotations: Array<Record<string, unknown>> = [];

  panels.forEach((panel, i) => {
    const column = i % columns;
    const row = Math.floor(i / columns);
    const suffix = i === 0 ? "" : String(i + 1);
    const x0 = column * (panelWidth + gapX);
    const y0 = row * (panelHeight + gapY);
    const xDomain = [x0 / areaWidth, (x0 + panelWidth) / areaWidth];
    const yDomain = [1 - (y0 + panelHeight) / areaHeight, 1 - y0 / areaHeight];
    const bottomRow = i + columns >= panels.length;

    const trace: Record<string, unknown> = {
      type: "heatmap",
      // Four significant digits are plenty for colours and hover text, and keep outputs small.
      z: panel.z.map((r) => Array.from(r, (v) => (Number.isFinite(v) ? Number(v.toPrecision(4)) : null))),
      x: xCategories,
      y: yCategories,
      xaxis: `x${suffix}`,
      yaxis: `y${suffix}`,
      colorscale: colorscaleStops(scale),
      zmin,
      zmax,
      showscale: i === 0,
      xgap: 0,
      ygap: 0,
    };
    if (i === 0) {
      trace.colorbar = { thickness: 12, len: Math.min(1, 260 / areaHeight), y: 1, yanchor: "top" };
      if (input.colorbarTitle) (trace.colorbar as Record<string, unknown>).title = { text: plotlyText(input.colorbarTitle), side: "right" };
    }
    if (panel.text) {
      trace.text = panel.text.map((r) => r.map(plotlyText));
      trace.texttemplate = "%{text}";
      trace.textfont = { family: MONO, size: 10 };
    }
    trace.hovertemplate = hovertemplate;
    data.push(trace);

    layout[`xaxis${suffix}`] = {
      domain: xDomain,
      anchor: `y${suffix}`,
      type: "category",
      nticks: Math.min(xLabels.length, MAX_TICKS),
      tickangle: -45,
      tickfont: { family: MONO, size: 10 },
      showticklabels: bottomRow,
      automargin: true,
      showgrid: false,
      zeroline: false,
      ...(bottomRow && input.xTitle && column === Math.floor((columns - 1) / 2) ? { title: { text: plotlyText(input.xTitle) } } : {}),
    };
    layout[`yaxis${suffix}`] = {
      domain: yDomain,
      anchor: `x${suffix}`,
      type: "category",
      nticks: Math.min(yLabels.length, MAX_TICKS),
      autorange: "reversed",
      tickfont: { family: MONO, size: 10 },
      showticklabels: column === 0,
      automargin: true,
      showgrid: false,
      zeroline: false,
      ...(column === 0 && input.yTitle && row === Math.floor((gridRows - 1) / 2) ? { title: { text: plotlyText(input.yTitle) } } : {}),
    };
    if (panel.title) {
      annotations.push({
        text: plotlyText(panel.title),
        x: (xDomain[0]! + xDomain[1]!) / 2,
        y: yDomain[1],
        xref: "paper",
        yref: "paper",
        xanchor: "center",
        yanchor: "bottom",
        yshift: 4,
        showarrow: false,
        font: { size: 12 },
      });
    }
  });
  if (annotations.length) layout.annotations = annotations;

  const svgInput: Parameters<typeof svgHeatmapGrid>[0] = {
    panels: panels.map((p) => {
      const out: { z: typeof p.z; text?: typeof p.text; subtitle?: string } = { z: p.z };
      if (p.text) out.text = p.text;
      if (p.title) out.subtitle = p.title;
      return out;
    }),
    xLabels: thinnedLabels(xLabels),
    yLabels: thinnedLabels(yLabels),
    columns,
    cellWidth,
    cellHeight,
    scale,
    zmin,
    zmax,
  };
  if (input.title) svgInput.title = input.title;
  if (input.xTitle) svgInput.xTitle = input.xTitle;
  if (input.yTitle) svgInput.yTitle = input.yTitle;
  if (input.colorbarTitle) svgInput.colorbarTitle = input.colorbarTitle;

  const plotly: PlotlySpec = { data, layout, config: PLOTLY_CONFIG };
  const title = input.title ?? "heatmap";
  const shape = `${panels.length > 1 ? `${panels.length} × ` : ""}${nRows} × ${nCols}`;
  return new Figure({
    title,
    plotly,
    svg: svgHeatmapGrid(svgInput),
    width,
    height,
    text: (options) => heatmapGridText({ title, shape, panels, yLabels, scale, zmin, zmax, input }, options),
  });
}

/**
 * Picks the cell size in pixels: cells fill about 760 × 520 pixels, between 4 and 34 pixels a
 * side. Cells are square when every row and column is labelled, and at least 14 pixels (12 in
 * a grid of panels) along a labelled axis, so the labels do not overlap. Cells with text are
 * wide enough for it.
 */
function cellSize(
  grid: { nRows: number; nCols: number; gridRows: number; columns: number; longestText: number },
  style: HeatmapStyle,
): { width: number; height: number } {
  const clamp = (v: number) => Math.round(Math.max(4, Math.min(34, v)));
  let width = clamp(760 / (grid.nCols * grid.columns));
  let height = clamp(520 / (grid.nRows * grid.gridRows));
  const rowsLabelled = grid.nRows <= MAX_TICKS;
  const columnsLabelled = grid.nCols <= MAX_TICKS;
  // Grids of several panels get smaller cells, so that a few panels fit side by side.
  const minLabelled = grid.columns > 1 || grid.gridRows > 1 ? 12 : 14;
  if (rowsLabelled && columnsLabelled) {
    width = height = Math.max(minLabelled, Math.min(width, height));
  } else {
    if (columnsLabelled) width = Math.max(width, minLabelled);
    if (rowsLabelled) height = Math.max(height, minLabelled);
  }
  if (grid.longestText) {
    width = Math.max(width, Math.min(90, grid.longestText * 6.5 + 8));
    height = Math.max(height, 20);
  }
  return { width: style.cellWidth ?? width, height: style.cellHeight ?? height };
}

/** Labels on more rows or columns than this are thinned to every k-th one. */
const MAX_TICKS = 48;

/** Panels per row that fit in about 900 pixels at 12 pixels per column, from 1 to 4. */
function defaultColumns(nCols: number): number {
  return Math.max(1, Math.min(4, Math.floor(900 / (nCols * 12 + 16))));
}

/**
 * Makes labels distinct by appending zero-width spaces to repeats, so that a plotly category
 * axis keeps one row or column per label while every copy looks the same.
 */
function distinctLabels(labels: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return labels.map((label) => {
    const count = seen.get(label) ?? 0;
    seen.set(label, count + 1);
    return label + "\u200b".repeat(count);
  });
}

/** Returns the labels with all but every k-th replaced by "", when there are more than MAX_TICKS. */
function thinnedLabels(labels: readonly string[]): string[] {
  const step = Math.ceil(labels.length / MAX_TICKS);
  return labels.map((label, index) => (index % step === 0 ? label : ""));
}

function heatmapGridText(
  figure: {
    title: string;
    shape: string;
    panels: readonly HeatmapPanel[];
    yLabels: readonly string[];
    scale: ColorscaleName | Colorscale;
    zmin: number;
    zmax: number;
    input: HeatmapStyle;
  },
  options: TextOptions,
): string {
  const { panels, yLabels, scale, zmin, zmax, input } = figure;
  const axes = input.yTitle || input.xTitle ? ` (rows: ${input.yTitle ?? "rows"}, columns: ${input.xTitle ?? "columns"})` : "";
  const lines = [`${figure.title}: ${figure.shape}${axes}`, heatmapKey(formatNumber(zmin), formatNumber(zmax), scale, options)];
  // Panels go side by side, as many as fit in about 120 characters; only the first of each
  // row of panels has row labels.
  const blocks = panels.map((panel, i) => {
    const rowLabels = i === 0 ? yLabels : yLabels.map(() => "");
    return blockHeatmap({ z: panel.z, rowLabels, scale, zmin, zmax, maxRows: panels.length > 1 ? 16 : 24 }, options);
  });
  const labelled = (i: number) => blockHeatmap({ z: panels[i]!.z, rowLabels: yLabels, scale, zmin, zmax, maxRows: 16 }, options);
  const width = (block: string[]) => Math.max(0, ...block.map(visibleLength));
  let start = 0;
  while (start < panels.length) {
    const first = start === 0 ? blocks[0]! : labelled(start);
    const group = [first];
    let used = width(first);
    let next = start + 1;
    while (next < panels.length && used + 2 + width(blocks[next]!) <= 120) {
      group.push(blocks[next]!);
      used += 2 + width(blocks[next]!);
      next++;
    }
    const widths = group.map(width);
    const titles = panels.slice(start, next).map((p, j) => fitWidth(p.title ?? "", widths[j]!));
    if (titles.some((t) => t.trim())) lines.push(titles.join("  ").trimEnd());
    const height = Math.max(...group.map((b) => b.length));
    for (let r = 0; r < height; r++) {
      lines.push(group.map((b, j) => padVisible(b[r] ?? "", widths[j]!)).join("  ").trimEnd());
    }
    start = next;
  }
  return lines.join("\n");
}

const ANSI_CODE = /\x1b\[[0-9;]*m/g;

function visibleLength(line: string): number {
  return displayWidth(line.replace(ANSI_CODE, ""));
}

function padVisible(line: string, width: number): string {
  return line + " ".repeat(Math.max(0, width - visibleLength(line)));
}

/** Picks the colour scale and range of a heatmap from the options and the data. */
function colourRange(
  matrices: ReadonlyArray<ReadonlyArray<ArrayLike<number>>>,
  style: HeatmapStyle,
): { scale: ColorscaleName | Colorscale; zmin: number; zmax: number } {
  const { min, max } = finiteRange(matrices.flat());
  const scale = style.colorscale ?? (min < 0 && max > 0 ? "diverging" : "viridis");
  let zmin = style.zmin ?? min;
  let zmax = style.zmax ?? max;
  if (scale === "diverging" && style.zmin === undefined && style.zmax === undefined) {
    const bound = Math.max(Math.abs(min), Math.abs(max));
    zmin = -bound;
    zmax = bound;
  }
  if (!(zmax > zmin)) {
    // A constant matrix: widen the range so it still has a colour.
    zmin -= 0.5;
    zmax += 0.5;
  }
  return { scale, zmin, zmax };
}

/** Input of {@link bars}. */
export interface BarsInput {
  /** One label per bar, drawn top to bottom. */
  labels: readonly string[];
  values: readonly number[];
  /** Text written after each bar. Default: the value, formatted. */
  valueText?: readonly string[];
  /** Bar colours `#rrggbb`. Default: one blue. */
  colors?: readonly string[];
  title?: string;
  /** Title of the value axis. */
  valueTitle?: string;
  /** Extra hover text per bar. */
  hover?: readonly string[];
}

/**
 * Draws horizontal bars, the first label at the top, such as the top-k next tokens.
 *
 * @throws {RangeError} When labels and values differ in length.
 */
export function bars(input: BarsInput): Figure {
  const { labels, values } = input;
  if (labels.length !== values.length) {
    throw new RangeError(`Got ${labels.length} labels for ${values.length} values: pass one label per bar.`);
  }
  const valueText = input.valueText ?? values.map(formatNumber);
  const colors = input.colors ?? values.map(() => "#4c78a8");
  const longest = Math.max(0, ...labels.map(displayWidth));
  const margin = { l: 24 + Math.min(160, longest * 7.5), r: 30, t: input.title ? 44 : 12, b: input.valueTitle ? 44 : 24 };
  const width = margin.l + 420 + margin.r;
  const height = margin.t + Math.max(1, labels.length) * 24 + margin.b;
  const indices = labels.map((_, i) => i);
  const trace: Record<string, unknown> = {
    type: "bar",
    orientation: "h",
    x: values,
    y: indices,
    text: valueText.map(plotlyText),
    textposition: "outside",
    cliponaxis: false,
    marker: { color: colors },
    hovertext: labels.map((l, i) => plotlyText(`${l}: ${valueText[i]}`) + (input.hover?.[i] ? `<br>${plotlyText(input.hover[i])}` : "")),
    hoverinfo: "text",
  };
  const layout: Record<string, unknown> = {
    width,
    height,
    autosize: false,
    margin,
    font: FONT,
    bargap: 0.25,
    xaxis: { zeroline: true, automargin: true, ...(input.valueTitle ? { title: { text: plotlyText(input.valueTitle) } } : {}) },
    yaxis: {
      autorange: "reversed",
      tickmode: "array",
      tickvals: indices,
      ticktext: labels.map(plotlyText),
      tickfont: { family: MONO, size: 11 },
    },
  };
  if (input.title) layout.title = { text: plotlyText(input.title), x: 0, xref: "paper", font: { size: 14 } };

  const svgInput: Parameters<typeof svgBars>[0] = { labels, values, valueText, colors };
  if (input.title) svgInput.title = input.title;
  if (input.valueTitle) svgInput.valueTitle = input.valueTitle;
  const title = input.title ?? "bars";
  return new Figure({
    title,
    plotly: { data: [trace], layout, config: PLOTLY_CONFIG },
    svg: svgBars(svgInput),
    width,
    height,
    text: () => [`${title}:`, ...textBars({ labels, values, valueText })].join("\n"),
  });
}

/** One point of {@link scatter}. */
export interface ScatterPoint {
  x: number;
  y: number;
  /** Text written next to the point. */
  label: string;
  /** Points with the same group share a colour and a legend entry. */
  group?: string;
}

/** Input of {@link scatter}. */
export interface ScatterInput {
  points: readonly ScatterPoint[];
  title?: string;
  xTitle?: string;
  yTitle?: string;
}

const GROUP_COLORS = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d"];

/**
 * Draws labelled points, such as a 2-D projection of word embeddings. Compute the
 * coordinates first (for example with a PCA): this function only draws them.
 *
 * @throws {RangeError} When there are no points.
 */
export function scatter(input: ScatterInput): Figure {
  const { points } = input;
  if (points.length === 0) throw new RangeError("Cannot draw a scatter plot without points: pass at least one.");
  const groups = [...new Set(points.map((p) => p.group ?? ""))];
  const colorOf = (group: string) => GROUP_COLORS[groups.indexOf(group) % GROUP_COLORS.length]!;
  const named = groups.length > 1 || groups[0] !== "";

  const data = groups.map((group) => {
    const members = points.filter((p) => (p.group ?? "") === group);
    return {
      type: "scatter",
      mode: "markers+text",
      name: plotlyText(group || "points"),
      x: members.map((p) => p.x),
      y: members.map((p) => p.y),
      text: members.map((p) => plotlyText(p.label)),
      textposition: "top center",
      textfont: { family: MONO, size: 11 },
      marker: { size: 8, color: colorOf(group), line: { width: 0.5, color: "#333" } },
      hovertemplate: "%{text}<br>(%{x:.3g}, %{y:.3g})<extra></extra>",
    };
  });
  const width = 640 + (named ? 120 : 0);
  const height = 500;
  const layout: Record<string, unknown> = {
    width,
    height,
    autosize: false,
    font: FONT,
    showlegend: named,
    margin: { l: 60, r: 20, t: input.title ? 50 : 20, b: 50 },
    xaxis: { zeroline: true, ...(input.xTitle ? { title: { text: plotlyText(input.xTitle) } } : {}) },
    yaxis: { zeroline: true, ...(input.yTitle ? { title: { text: plotlyText(input.yTitle) } } : {}) },
  };
  if (input.title) layout.title = { text: plotlyText(input.title), x: 0, xref: "paper", font: { size: 14 } };

  const svgInput: Parameters<typeof svgScatter>[0] = {
    points: points.map((p) => ({ x: p.x, y: p.y, label: p.label, color: colorOf(p.group ?? "") })),
  };
  if (named) svgInput.legend = groups.map((g) => ({ name: g || "points", color: colorOf(g) }));
  if (input.title) svgInput.title = input.title;
  if (input.xTitle) svgInput.xTitle = input.xTitle;
  if (input.yTitle) svgInput.yTitle = input.yTitle;
  const title = input.title ?? "scatter";
  return new Figure({
    title,
    plotly: { data, layout, config: PLOTLY_CONFIG },
    svg: svgScatter(svgInput),
    width,
    height,
    text: () => [
      `${title}: ${points.length} points`,
      ...points.map((p) => `  ${p.label.padEnd(14)} (${formatNumber(p.x)}, ${formatNumber(p.y)})${p.group ? `  ${p.group}` : ""}`),
    ].join("\n"),
  });
}

/** Input of {@link chips}. */
export interface ChipsInput {
  /** The chips' text, already with visible whitespace (see tokenLabel). */
  labels: readonly string[];
  /** Background colours `#rrggbb`, one per chip. */
  fills: readonly string[];
  /** Small text under each label (an id, a value); omit for single-line chips. */
  captions?: readonly string[];
  /** Hover text per chip. */
  hover?: readonly string[];
  title?: string;
  /** A colour bar for chips coloured by a value. */
  colorbar?: { scale: ColorscaleName | Colorscale; min: number; max: number; title?: string };
  /** Width in pixels at which lines wrap. Default 860. */
  maxWidth?: number;
}

/** A chip placed by {@link chipLayout}. */
export interface PlacedChip {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * Places chips left to right in lines of at most `maxWidth` pixels. A chip whose label ends
 * in "↵" (a newline token) ends its line.
 */
export function chipLayout(
  labels: readonly string[],
  options: { maxWidth: number; captions?: readonly string[] | undefined },
): { chips: PlacedChip[]; width: number; height: number } {
  const height = options.captions ? 34 : 24;
  const gap = 4;
  const lineHeight = height + 6;
  const chips: PlacedChip[] = [];
  let x = 0;
  let y = 0;
  let width = 0;
  labels.forEach((label, i) => {
    const captionWidth = options.captions ? displayWidth(options.captions[i] ?? "") * 5.5 + 8 : 0;
    const w = Math.max(24, displayWidth(label) * 8 + 12, captionWidth);
    if (x > 0 && x + w > options.maxWidth) {
      x = 0;
      y += lineHeight;
    }
    chips.push({ x, y, width: w, height });
    x += w + gap;
    width = Math.max(width, x - gap);
    if (label.endsWith("↵") && i < labels.length - 1) {
      x = 0;
      y += lineHeight;
    }
  });
  return { chips, width: Math.max(width, 40), height: y + height };
}

/**
 * Draws labels as coloured chips that wrap like text. Use it for tokens coloured by id or by
 * a per-token value; tokenChips in figures.ts chooses the colours.
 *
 * @throws {RangeError} When fills (or captions, hover) do not match the labels in length.
 */
export function chips(input: ChipsInput): Figure {
  const { labels, fills } = input;
  for (const [name, list] of [["fills", fills], ["captions", input.captions], ["hover", input.hover]] as const) {
    if (list && list.length !== labels.length) {
      throw new RangeError(`Got ${list.length} ${name} for ${labels.length} chips: pass one per chip.`);
    }
  }
  const placed = chipLayout(labels, { maxWidth: input.maxWidth ?? 860, captions: input.captions });
  const margin = { l: 8, r: 8 + (input.colorbar ? 90 : 0), t: input.title ? 40 : 8, b: 8 };
  const width = margin.l + placed.width + margin.r;
  const height = margin.t + placed.height + margin.b;

  const shapes = placed.chips.map((c, i) => ({
    type: "rect",
    xref: "x",
    yref: "y",
    x0: c.x,
    x1: c.x + c.width,
    y0: c.y,
    y1: c.y + c.height,
    fillcolor: fills[i],
    line: { color: "rgba(0,0,0,0.2)", width: 1 },
    layer: "below",
  }));
  const annotations = placed.chips.flatMap((c, i) => {
    const label = {
      text: plotlyText(labels[i]!),
      x: c.x + c.width / 2,
      y: input.captions ? c.y + 12 : c.y + c.height / 2,
      xref: "x",
      yref: "y",
      showarrow: false,
      font: { family: MONO, size: 13, color: contrastText(fills[i]!) },
    };
    if (!input.captions) return [label];
    return [label, {
      text: plotlyText(input.captions[i]!),
      x: c.x + c.width / 2,
      y: c.y + c.height - 7,
      xref: "x",
      yref: "y",
      showarrow: false,
      font: { size: 9, color: contrastText(fills[i]!) },
    }];
  });
  const hoverTrace: Record<string, unknown> = {
    type: "scatter",
    mode: "markers",
    x: placed.chips.map((c) => c.x + c.width / 2),
    y: placed.chips.map((c) => c.y + c.height / 2),
    hovertext: (input.hover ?? labels).map(plotlyText),
    hoverinfo: "text",
    marker: { size: 18, opacity: 0 },
    showlegend: false,
  };
  const data: Array<Record<string, unknown>> = [hoverTrace];
  if (input.colorbar) {
    // An invisible trace whose only purpose is to draw the colour bar.
    const { scale, min, max, title } = input.colorbar;
    data.push({
      type: "scatter",
      mode: "markers",
      x: [0, 0],
      y: [0, 0],
      hoverinfo: "skip",
      showlegend: false,
      marker: {
        size: 0.1,
        opacity: 0,
        color: [min, max],
        cmin: min,
        cmax: max,
        colorscale: colorscaleStops(scale),
        showscale: true,
        colorbar: { thickness: 12, len: 1, x: 1.02, ...(title ? { title: { text: plotlyText(title), side: "right" } } : {}) },
      },
    });
  }
  const layout: Record<string, unknown> = {
    width,
    height,
    autosize: false,
    margin,
    font: FONT,
    shapes,
    annotations,
    xaxis: { range: [0, placed.width], visible: false, fixedrange: true },
    yaxis: { range: [placed.height, 0], visible: false, fixedrange: true },
    plot_bgcolor: "#ffffff",
    hovermode: "closest",
  };
  if (input.title) layout.title = { text: plotlyText(input.title), x: 0, xref: "paper", font: { size: 14 } };

  const svgChipList: SvgChip[] = placed.chips.map((c, i) => {
    const chip: SvgChip = { ...c, label: labels[i]!, fill: fills[i]! };
    if (input.captions) chip.caption = input.captions[i]!;
    return chip;
  });
  const svgInput: Parameters<typeof svgChips>[0] = { chips: svgChipList, width: placed.width, height: placed.height };
  if (input.title) svgInput.title = input.title;
  if (input.colorbar) svgInput.colorbar = input.colorbar;
  const title = input.title ?? "chips";
  return new Figure({
    title,
    plotly: { data, layout, config: PLOTLY_CONFIG },
    svg: svgChips(svgInput),
    width,
    height,
    text: (options) => {
      const lines = [`${title}: ${labels.length} tokens`, ...textChips({ labels, fills }, options)];
      if (input.colorbar) {
        const { scale, min, max } = input.colorbar;
        lines.push(heatmapKey(formatNumber(min), formatNumber(max), scale, options));
      }
      return lines.join("\n");
    },
  });
}

