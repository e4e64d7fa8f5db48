/**
 * Static SVG renderings of the figures, for front ends that do not run scripts (GitHub's
 * notebook view, untrusted notebooks, exported HTML without JavaScript). They are drawn here
 * in TypeScript from the same inputs as the plotly figures, with the same colour scales.
 */
import { colorAt, type Colorscale, type ColorscaleName, contrastText } from "./colors.ts";
import { escapeXml, formatNumber } from "./labels.ts";

const FONT = "font-family=\"Helvetica,Arial,sans-serif\"";
const MONO = "font-family=\"Menlo,Consolas,'DejaVu Sans Mono',monospace\"";
/** The fill of heatmap cells without a finite value, such as masked attention. */
export const MISSING_FILL = "#f0f0f0";

/** Approximate width of one character of the 11 px label font, in pixels. */
const CHAR_WIDTH = 6.5;

function round(value: number): string {
  return String(Math.round(value * 10) / 10);
}

function text(x: number, y: number, content: string, attributes = ""): string {
  return `<text x="${round(x)}" y="${round(y)}" ${attributes}>${escapeXml(content)}</text>`;
}

function svgDocument(width: number, height: number, body: string[]): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.ceil(width)}" height="${Math.ceil(height)}" ` +
    `viewBox="0 0 ${Math.ceil(width)} ${Math.ceil(height)}" ${FONT} font-size="11">` +
    `<rect width="100%" height="100%" fill="#ffffff"/>${body.join("")}</svg>`
  );
}

/** Draws a colour bar: a vertical gradient with its minimum, middle and maximum labelled. */
function colorbar(
  x: number,
  y: number,
  height: number,
  scale: ColorscaleName | Colorscale,
  min: number,
  max: number,
  title: string | undefined,
): string[] {
  const steps = 24;
  const out: string[] = [];
  const step = height / steps;
  for (let i = 0; i < steps; i++) {
    // Top is the maximum, as in plotly's colour bars.
    const t = 1 - (i + 0.5) / steps;
    out.push(`<rect x="${round(x)}" y="${round(y + i * step)}" width="12" height="${round(step + 0.5)}" fill="${colorAt(scale, t)}"/>`);
  }
  out.push(`<rect x="${round(x)}" y="${round(y)}" width="12" height="${round(height)}" fill="none" stroke="#888" stroke-width="0.5"/>`);
  out.push(text(x + 16, y + 8, formatNumber(max)));
  out.push(text(x + 16, y + height / 2 + 4, formatNumber((min + max) / 2)));
  out.push(text(x + 16, y + height, formatNumber(min)));
  if (title) out.push(text(x, y - 6, title, `font-size="10" fill="#444"`));
  return out;
}

/** One panel of a heatmap grid. */
export interface SvgHeatmapPanel {
  /** Values `[row][column]`. */
  z: ReadonlyArray<ArrayLike<number>>;
  /** Text drawn in each cell, `[row][column]`. */
  text?: ReadonlyArray<ReadonlyArray<string>>;
  subtitle?: string;
}

/** Input of {@link svgHeatmapGrid}. */
export interface SvgHeatmapGridInput {
  panels: readonly SvgHeatmapPanel[];
  /** Column labels, shared by every panel. */
  xLabels: readonly string[];
  /** Row labels, shared by every panel. */
  yLabels: readonly string[];
  columns: number;
  cellWidth: number;
  cellHeight: number;
  scale: ColorscaleName | Colorscale;
  zmin: number;
  zmax: number;
  title?: string;
  xTitle?: string;
  yTitle?: string;
  colorbarTitle?: string;
}

/**
 * Draws heatmaps in a grid, each cell coloured by its value, with row labels on the first
 * column of panels and column labels (rotated) under the last row of panels.
 */
export function svgHeatmapGrid(input: SvgHeatmapGridInput): string {
  const { panels, xLabels, yLabels, cellWidth, cellHeight, scale, zmin, zmax } = input;
  const nRows = yLabels.length;
  const nCols = xLabels.length;
  const columns = Math.max(1, Math.min(input.columns, panels.length));
  const gridRows = Math.ceil(panels.length / columns);
  const longest = (labels: readonly string[]) => labels.reduce((m, l) => Math.max(m, Array.from(l).length), 0);

  const left = 16 + (input.yTitle ? 16 : 0) + Math.min(150, longest(yLabels) * CHAR_WIDTH);
  const top = (input.title ? 30 : 8) + (panels.some((p) => p.subtitle) ? 16 : 0);
  const bottom = 18 + (input.xTitle ? 16 : 0) + Math.min(110, longest(xLabels) * CHAR_WIDTH * 0.75);
  const panelWidth = nCols * cellWidth;
  const panelHeight = nRows * cellHeight;
  const gapX = 14;
  const gapY = panels.some((p) => p.subtitle) ? 26 : 12;
  const gridWidth = columns * panelWidth + (columns - 1) * gapX;
  const gridHeight = gridRows * panelHeight + (gridRows - 1) * gapY;
  const width = left + gridWidth + 80;
  const height = top + gridHeight + bottom;
  const range = zmax - zmin;

  const body: string[] = [];
  if (input.title) body.push(text(left, 20, input.title, `font-size="14" font-weight="bold"`));

  panels.forEach((panel, index) => {
    const px = left + (index % columns) * (panelWidth + gapX);
    const py = top + Math.floor(index / columns) * (panelHeight + gapY);
    if (panel.subtitle) body.push(text(px + panelWidth / 2, py - 5, panel.subtitle, `text-anchor="middle" font-size="12"`));

    // Missing values (masked attention, NaN) show the panel's light grey background.
    body.push(`<g class="panel">`);
    body.push(`<rect x="${round(px)}" y="${round(py)}" width="${round(panelWidth)}" height="${round(panelHeight)}" fill="${MISSING_FILL}"/>`);
    for (let r = 0; r < nRows; r++) {
      const row = panel.z[r]!;
      for (let c = 0; c < nCols; c++) {
        const v = row[c]!;
        if (!Number.isFinite(v)) continue;
        const x = px + c * cellWidth;
        const y = py + r * cellHeight;
        const fill = colorAt(scale, range > 0 ? (v - zmin) / range : 0.5);
        body.push(`<rect x="${round(x)}" y="${round(y)}" width="${round(cellWidth)}" height="${round(cellHeight)}" fill="${fill}"/>`);
        const cell = panel.text?.[r]?.[c];
        if (cell) {
          body.push(
            text(x + cellWidth / 2, y + cellHeight / 2 + 3.5, cell, `text-anchor="middle" font-size="10" fill="${contrastText(fill)}" ${MONO}`),
          );
        }
      }
    }
    body.push(`</g>`);
    body.push(`<rect x="${round(px)}" y="${round(py)}" width="${round(panelWidth)}" height="${round(panelHeight)}" fill="none" stroke="#bbb" stroke-width="0.5"/>`);

    // Row labels on the first column of panels, column labels under the last row of panels.
    if (index % columns === 0) {
      yLabels.forEach((label, r) => {
        body.push(text(px - 4, py + r * cellHeight + cellHeight / 2 + 3.5, label, `text-anchor="end" ${MONO}`));
      });
    }
    const lastRow = Math.floor(index / columns) === gridRows - 1 || index + columns >= panels.length;
    if (lastRow) {
      xLabels.forEach((label, c) => {
        const x = px + c * cellWidth + cellWidth / 2;
        const y = py + panelHeight + 8;
        body.push(text(x, y, label, `text-anchor="end" transform="rotate(-45 ${round(x)} ${round(y)})" ${MONO}`));
      });
    }
  });

  if (input.xTitle) body.push(text(left + gridWidth / 2, height - 6, input.xTitle, `text-anchor="middle" fill="#444"`));
  if (input.yTitle) {
    const y = top + gridHeight / 2;
    body.push(text(12, y, input.yTitle, `text-anchor="middle" fill="#444" transform="rotate(-90 12 ${round(y)})"`));
  }
  body.push(...colorbar(left + gridWidth + 16, top, Math.min(gridHeight, 240), scale, zmin, zmax, input.colorbarTitle));
  return svgDocument(width, height, body);
}

/** Input of {@link svgBars}. */
export interface SvgBarsInput {
  labels: readonly string[];
  values: readonly number[];
  /** Text drawn after each bar. */
  valueText: readonly string[];
  colors: readonly string[];
  title?: string;
  valueTitle?: string;
}

/** Draws horizontal bars, the first label at the top. Negative values extend left of zero. */
export function svgBars(input: SvgBarsInput): string {
  const { labels, values } = input;
  const longest = labels.reduce((m, l) => Math.max(m, Array.from(l).length), 0);
  const left = 20 + Math.min(160, longest * CHAR_WIDTH);
  const top = input.title ? 34 : 10;
  const barHeight = 20;
  const plotWidth = 360;
  const textRoom = 60;
  const finite = values.filter(Number.isFinite);
  const min = Math.min(0, ...finite);
  const max = Math.max(0, ...finite);
  const span = max - min || 1;
  const zeroX = left + ((0 - min) / span) * plotWidth;
  const height = top + labels.length * barHeight + (input.valueTitle ? 30 : 12);
  const width = left + plotWidth + textRoom + 10;

  const body: string[] = [];
  if (input.title) body.push(text(left, 20, input.title, `font-size="14" font-weight="bold"`));
  labels.forEach((label, i) => {
    const v = Number.isFinite(values[i]!) ? values[i]! : 0;
    const y = top + i * barHeight;
    const x0 = v >= 0 ? zeroX : zeroX - ((0 - v) / span) * plotWidth;
    const w = (Math.abs(v) / span) * plotWidth;
    body.push(`<rect x="${round(x0)}" y="${round(y + 3)}" width="${round(w)}" height="${barHeight - 6}" fill="${input.colors[i] ?? "#4c78a8"}"/>`);
    body.push(text(left - 6, y + barHeight / 2 + 4, label, `text-anchor="end" ${MONO}`));
    body.push(text(Math.max(x0 + w, zeroX) + 4, y + barHeight / 2 + 4, input.valueText[i] ?? "", `fill="#333"`));
  });
  body.push(`<line x1="${round(zeroX)}" x2="${round(zeroX)}" y1="${top}" y2="${top + labels.length * barHeight}" stroke="#888" stroke-width="0.75"/>`);
  if (input.valueTitle) {
    body.push(text(left + plotWidth / 2, height - 8, input.valueTitle, `text-anchor="middle" fill="#444"`));
  }
  return svgDocument(width, height, body);
}

/** One point of {@link svgScatter}. */
export interface SvgPoint {
  x: number;
  y: number;
  label: string;
  color: string;
}

/** Input of {@link svgScatter}. */
export interface SvgScatterInput {
  points: readonly SvgPoint[];
  title?: string;
  xTitle?: string;
  yTitle?: string;
  /** Legend entries: a name and its colour. */
  legend?: ReadonlyArray<{ name: string; color: string }>;
}

/** Draws labelled points on linear axes, with the axes' extremes written at the corners. */
export function svgScatter(input: SvgScatterInput): string {
  const left = 50;
  const top = input.title ? 36 : 12;
  const plotWidth = 520;
  const plotHeight = 400;
  const legendWidth = input.legend?.length ? 120 : 0;
  const width = left + plotWidth + 20 + legendWidth;
  const height = top + plotHeight + 44;
  const xs = input.points.map((p) => p.x).filter(Number.isFinite);
  const ys = input.points.map((p) => p.y).filter(Number.isFinite);
  const pad = (lo: number, hi: number) => {
    const d = hi - lo || 1;
    return [lo - 0.08 * d, hi + 0.08 * d] as const;
  };
  const [x0, x1] = pad(Math.min(...xs, 0), Math.max(...xs, 0));
  const [y0, y1] = pad(Math.min(...ys, 0), Math.max(...ys, 0));
  const px = (x: number) => left + ((x - x0) / (x1 - x0)) * plotWidth;
  const py = (y: number) => top + plotHeight - ((y - y0) / (y1 - y0)) * plotHeight;

  const body: string[] = [];
  if (input.title) body.push(text(left, 22, input.title, `font-size="14" font-weight="bold"`));
  body.push(`<rect x="${left}" y="${top}" width="${plotWidth}" height="${plotHeight}" fill="#f8f8fb" stroke="#ccc" stroke-width="0.5"/>`);
  body.push(`<line x1="${round(px(0))}" x2="${round(px(0))}" y1="${top}" y2="${top + plotHeight}" stroke="#ddd"/>`);
  body.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${round(py(0))}" y2="${round(py(0))}" stroke="#ddd"/>`);
  for (const p of input.points) {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) continue;
    body.push(`<circle cx="${round(px(p.x))}" cy="${round(py(p.y))}" r="4" fill="${p.color}" stroke="#333" stroke-width="0.5"/>`);
    body.push(text(px(p.x), py(p.y) - 7, p.label, `text-anchor="middle" ${MONO}`));
  }
  body.push(text(left, top + plotHeight + 14, formatNumber(x0), `fill="#666"`));
  body.push(text(left + plotWidth, top + plotHeight + 14, formatNumber(x1), `text-anchor="end" fill="#666"`));
  body.push(text(left - 4, top + plotHeight, formatNumber(y0), `text-anchor="end" fill="#666"`));
  body.push(text(left - 4, top + 10, formatNumber(y1), `text-anchor="end" fill="#666"`));
  if (input.xTitle) body.push(text(left + plotWidth / 2, top + plotHeight + 32, input.xTitle, `text-anchor="middle" fill="#444"`));
  if (input.yTitle) {
    const y = top + plotHeight / 2;
    body.push(text(14, y, input.yTitle, `text-anchor="middle" fill="#444" transform="rotate(-90 14 ${round(y)})"`));
  }
  input.legend?.forEach((entry, i) => {
    const y = top + 10 + i * 18;
    body.push(`<circle cx="${left + plotWidth + 28}" cy="${y}" r="5" fill="${entry.color}"/>`);
    body.push(text(left + plotWidth + 38, y + 4, entry.name));
  });
  return svgDocument(width, height, body);
}

/** One placed chip of {@link svgChips}: its box in pixels, text and colour. */
export interface SvgChip {
  x: number;
  y: number;
  width: number;
  height: number;
  label: string;
  fill: string;
  /** Small text under the label, such as a token id or a value. */
  caption?: string;
}

/** Input of {@link svgChips}. */
export interface SvgChipsInput {
  chips: readonly SvgChip[];
  width: number;
  height: number;
  title?: string;
  /** A colour bar for chips coloured by value. */
  colorbar?: { scale: ColorscaleName | Colorscale; min: number; max: number; title?: string };
}

/** Draws token chips at positions computed by the caller (see chipLayout in plots.ts). */
export function svgChips(input: SvgChipsInput): string {
  const body: string[] = [];
  const left = 8;
  const top = input.title ? 30 : 8;
  if (input.title) body.push(text(left, 20, input.title, `font-size="14" font-weight="bold"`));
  for (const placed of input.chips) {
    const chip = { ...placed, x: placed.x + left };
    const y = top + chip.y;
    body.push(
      `<rect x="${round(chip.x)}" y="${round(y)}" width="${round(chip.width)}" height="${round(chip.height)}" rx="4" ` +
        `fill="${chip.fill}" stroke="#00000033"/>`,
    );
    const color = contrastText(chip.fill);
    const labelY = chip.caption ? y + chip.height / 2 : y + chip.height / 2 + 4.5;
    body.push(text(chip.x + chip.width / 2, labelY, chip.label, `text-anchor="middle" font-size="13" fill="${color}" ${MONO}`));
    if (chip.caption) {
      body.push(text(chip.x + chip.width / 2, y + chip.height - 4, chip.caption, `text-anchor="middle" font-size="9" fill="${color}"`));
    }
  }
  let width = left + input.width + 8;
  if (input.colorbar) {
    const { scale, min, max, title } = input.colorbar;
    body.push(...colorbar(left + input.width + 10, top + 14, Math.max(60, input.height - 20), scale, min, max, title));
    width += 70;
  }
  return svgDocument(width, input.height + top + 8, body);
}
