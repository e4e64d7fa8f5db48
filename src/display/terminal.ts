/**
 * Plain-text renderings for terminals and `text/plain`: heatmaps drawn with block
 * characters, bars and token chips. With `colors`, cells get 256-colour ANSI backgrounds from
 * the figure's colour scale; without, shades "░▒▓█" stand for the value.
 */
import { ansiOnBackground, colorAt, type Colorscale, type ColorscaleName } from "./colors.ts";
import { fitWidth } from "./labels.ts";

/** Options shared by the text renderers. */
export interface TextOptions {
  /** Use ANSI colour codes. */
  colors: boolean;
}

const SHADES = [" ", "░", "▒", "▓", "█"];
const EIGHTHS = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];

/** Input of {@link blockHeatmap}. */
export interface BlockHeatmapInput {
  /** Values `[row][column]`. */
  z: ReadonlyArray<ArrayLike<number>>;
  rowLabels: readonly string[];
  scale: ColorscaleName | Colorscale;
  zmin: number;
  zmax: number;
  /** Rows shown before the rest are summarised in one line. Default 24. */
  maxRows?: number;
  /** Columns shown before the rest are cut. Default 40. */
  maxColumns?: number;
}

/**
 * Draws a heatmap with two characters per cell and the row labels on the left. Cells whose
 * value is not finite (masked attention) are drawn as "··".
 */
export function blockHeatmap(input: BlockHeatmapInput, options: TextOptions): string[] {
  const { z, rowLabels, scale, zmin, zmax } = input;
  const maxRows = input.maxRows ?? 24;
  const maxColumns = input.maxColumns ?? 40;
  const nColumns = z[0]?.length ?? 0;
  const shownColumns = Math.min(nColumns, maxColumns);
  const shownRows = z.length > maxRows ? maxRows - 1 : z.length;
  const labelWidth = Math.min(14, Math.max(0, ...rowLabels.slice(0, shownRows).map((l) => Array.from(l).length)));
  const range = zmax - zmin;
  const lines: string[] = [];

  for (let r = 0; r < shownRows; r++) {
    const row = z[r]!;
    let cells = "";
    for (let c = 0; c < shownColumns; c++) {
      const v = row[c]!;
      if (!Number.isFinite(v)) {
        cells += "··";
        continue;
      }
      const t = range > 0 ? (v - zmin) / range : 0.5;
      if (options.colors) {
        cells += ansiOnBackground("  ", colorAt(scale, t));
      } else {
        const shade = SHADES[Math.min(SHADES.length - 1, Math.round(t * (SHADES.length - 1)))]!;
        cells += shade + shade;
      }
    }
    if (shownColumns < nColumns) cells += ` … ${nColumns - shownColumns} more`;
    lines.push(`${fitWidth(rowLabels[r] ?? "", labelWidth)} ${cells}`);
  }
  if (shownRows < z.length) lines.push(`${" ".repeat(labelWidth)} … ${z.length - shownRows} more rows`);
  return lines;
}

/** A one-line key for a block heatmap: what the lightest and darkest cells mean. */
export function heatmapKey(zmin: string, zmax: string, scale: ColorscaleName | Colorscale, options: TextOptions): string {
  if (options.colors) {
    const ramp = [0, 0.25, 0.5, 0.75, 1].map((t) => ansiOnBackground(" ", colorAt(scale, t))).join("");
    return `${zmin} ${ramp} ${zmax}`;
  }
  return `${zmin} ${SHADES.slice(1).join("")} ${zmax}`;
}

/** Draws a bar of `fraction` × `width` characters with eighth-block precision. */
export function textBar(fraction: number, width: number): string {
  const units = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0)) * width * 8;
  const full = Math.floor(units / 8);
  return "█".repeat(full) + EIGHTHS[Math.floor(units % 8)]!;
}

/** Input of {@link textBars}. */
export interface TextBarsInput {
  labels: readonly string[];
  values: readonly number[];
  valueText: readonly string[];
  /** Width of the longest bar in characters. Default 30. */
  width?: number;
}

/** Draws one labelled bar per line; bars are scaled to the largest absolute value. */
export function textBars(input: TextBarsInput): string[] {
  const width = input.width ?? 30;
  const max = Math.max(0, ...input.values.filter(Number.isFinite).map(Math.abs));
  const labelWidth = Math.min(16, Math.max(0, ...input.labels.map((l) => Array.from(l).length)));
  return input.labels.map((label, i) => {
    const v = input.values[i]!;
    const bar = textBar(max > 0 ? Math.abs(v) / max : 0, width);
    return `${fitWidth(label, labelWidth)} ${v < 0 ? "-" : ""}${bar} ${input.valueText[i] ?? ""}`;
  });
}

/** Input of {@link textChips}. */
export interface TextChipsInput {
  labels: readonly string[];
  /** Background colours `#rrggbb`, one per chip. */
  fills: readonly string[];
  /** Wrap lines at about this many characters. Default 100. */
  lineWidth?: number;
}

/**
 * Writes tokens as chips: with colours, each token on its own background; without, each
 * token in brackets. Lines wrap at `lineWidth` and after newline tokens (shown as "↵").
 */
export function textChips(input: TextChipsInput, options: TextOptions): string[] {
  const lineWidth = input.lineWidth ?? 100;
  const lines: string[] = [];
  let line = "";
  let used = 0;
  input.labels.forEach((label, i) => {
    const width = Array.from(label).length + (options.colors ? 0 : 2);
    if (used > 0 && used + width > lineWidth) {
      lines.push(line);
      line = "";
      used = 0;
    }
    line += options.colors ? ansiOnBackground(label, input.fills[i] ?? "#dddddd") : `[${label}]`;
    used += width;
    if (label.endsWith("↵")) {
      lines.push(line);
      line = "";
      used = 0;
    }
  });
  if (line) lines.push(line);
  return lines;
}
