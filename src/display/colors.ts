/**
 * Colour scales shared by the plotly figures, the SVG fallbacks and the terminal output, so
 * that a value gets the same colour in every front end.
 */

/** A colour scale as plotly takes it: `[position in [0, 1], "#rrggbb"]` stops, in order. */
export type Colorscale = ReadonlyArray<readonly [number, string]>;

/** The named colour scales. */
export type ColorscaleName = "blues" | "viridis" | "diverging" | "confidence";

const SCALES: Record<ColorscaleName, Colorscale> = {
  // Light to dark blue, for values in [0, 1] such as attention weights.
  blues: [
    [0, "#f7fbff"],
    [0.25, "#c6dbef"],
    [0.5, "#6baed6"],
    [0.75, "#2171b5"],
    [1, "#08306b"],
  ],
  // Perceptually even, for unbounded values such as norms.
  viridis: [
    [0, "#440154"],
    [0.25, "#3b528b"],
    [0.5, "#21918c"],
    [0.75, "#5ec962"],
    [1, "#fde725"],
  ],
  // Blue for negative, white for zero, red for positive.
  diverging: [
    [0, "#2166ac"],
    [0.25, "#67a9cf"],
    [0.5, "#f7f7f7"],
    [0.75, "#ef8a62"],
    [1, "#b2182b"],
  ],
  // Orange for unlikely, green for likely, for the probabilities of sampled tokens.
  confidence: [
    [0, "#e6550d"],
    [0.25, "#fdae6b"],
    [0.5, "#fee6ce"],
    [0.75, "#a1d99b"],
    [1, "#31a354"],
  ],
};

/** Returns the stops of a named scale, or `scale` itself when it is already a list of stops. */
export function colorscale(scale: ColorscaleName | Colorscale): Colorscale {
  if (typeof scale !== "string") return scale;
  const stops = SCALES[scale];
  if (!stops) {
    throw new RangeError(`Unknown colour scale "${scale}": use one of ${Object.keys(SCALES).join(", ")}.`);
  }
  return stops;
}

/** An RGB colour with channels in [0, 255]. */
export interface Rgb {
  r: number;
  g: number;
  b: number;
}

/** Parses `#rrggbb`. */
export function parseHex(hex: string): Rgb {
  const n = Number.parseInt(hex.slice(1), 16);
  return { r: (n >> 16) & 255, g: (n >> 8) & 255, b: n & 255 };
}

/** Formats an RGB colour as `#rrggbb`. */
export function toHex({ r, g, b }: Rgb): string {
  const channel = (v: number) => Math.round(Math.min(255, Math.max(0, v))).toString(16).padStart(2, "0");
  return `#${channel(r)}${channel(g)}${channel(b)}`;
}

/**
 * Returns the colour of `t` in [0, 1] on a scale, interpolating linearly in RGB between stops
 * as plotly does. Values outside [0, 1] are clamped, and NaN gets the middle colour.
 */
export function colorAt(scale: ColorscaleName | Colorscale, t: number): string {
  const stops = colorscale(scale);
  const x = Number.isNaN(t) ? 0.5 : Math.min(1, Math.max(0, t));
  for (let i = 1; i < stops.length; i++) {
    const [p1, c1] = stops[i]!;
    if (x > p1 && i < stops.length - 1) continue;
    const [p0, c0] = stops[i - 1]!;
    const f = p1 === p0 ? 0 : (x - p0) / (p1 - p0);
    const a = parseHex(c0);
    const b = parseHex(c1);
    return toHex({ r: a.r + (b.r - a.r) * f, g: a.g + (b.g - a.g) * f, b: a.b + (b.b - a.b) * f });
  }
  return stops[0]![1];
}

/** Returns black or white, whichever reads better on `background` (`#rrggbb`). */
export function contrastText(background: string): string {
  const { r, g, b } = parseHex(background);
  // Relative luminance with the sRGB weights, without gamma: good enough to pick black or white.
  const luminance = (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
  return luminance > 0.55 ? "#000000" : "#ffffff";
}

/** Twelve distinct pastel colours, for colouring tokens by id. */
const CATEGORICAL = [
  "#a6cee3",
  "#b2df8a",
  "#fb9a99",
  "#fdbf6f",
  "#cab2d6",
  "#ffff99",
  "#8dd3c7",
  "#bebada",
  "#fccde5",
  "#d9d9d9",
  "#ccebc5",
  "#ffed6f",
];

/** Returns a stable colour for a token id: equal ids get equal colours. */
export function categoricalColor(id: number): string {
  // Multiplicative hashing spreads neighbouring ids over the palette.
  const hash = Math.imul(id | 0, 2654435761) >>> 0;
  return CATEGORICAL[hash % CATEGORICAL.length]!;
}

/** Maps `value` from [min, max] to [0, 1]; a zero-width range maps to 0.5. */
export function normalize(value: number, min: number, max: number): number {
  return max > min ? (value - min) / (max - min) : 0.5;
}

/** The finite minimum and maximum of a matrix; `{min: 0, max: 0}` when nothing is finite. */
export function finiteRange(rows: ReadonlyArray<ArrayLike<number>>): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      const v = row[i]!;
      if (!Number.isFinite(v)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  return min <= max ? { min, max } : { min: 0, max: 0 };
}

/** The xterm 256-colour index nearest to an RGB colour, from the 6×6×6 cube. */
export function ansi256(hex: string): number {
  const { r, g, b } = parseHex(hex);
  const level = (v: number) => (v < 48 ? 0 : v < 115 ? 1 : Math.floor((v - 35) / 40));
  return 16 + 36 * level(r) + 6 * level(g) + level(b);
}

/** Wraps `text` in ANSI codes for a 256-colour background (and a readable foreground). */
export function ansiOnBackground(text: string, background: string): string {
  const fg = contrastText(background) === "#000000" ? 16 : 231;
  return `\x1b[48;5;${ansi256(background)}m\x1b[38;5;${fg}m${text}\x1b[0m`;
}
