/**
 * Text helpers for labels: whitespace made visible, truncation, number formats and escaping.
 */

/**
 * Makes a token's whitespace visible for a label: a space becomes "·", a newline "↵", a tab
 * "⇥" and a carriage return "␍". An empty token becomes "∅". Labels longer than `maxLength`
 * characters are cut with "…".
 */
export function tokenLabel(text: string, maxLength = 14): string {
  if (text.length === 0) return "∅";
  const visible = text.replace(/ /g, "·").replace(/\n/g, "↵").replace(/\t/g, "⇥").replace(/\r/g, "␍");
  const chars = Array.from(visible);
  return chars.length > maxLength ? chars.slice(0, maxLength - 1).join("") + "…" : visible;
}

/** The number of characters of `text` as a terminal or monospace font shows them (code points). */
export function displayWidth(text: string): number {
  return Array.from(text).length;
}

/** Pads or cuts `text` to exactly `width` code points. */
export function fitWidth(text: string, width: number): string {
  const chars = Array.from(text);
  if (chars.length > width) return chars.slice(0, Math.max(0, width - 1)).join("") + (width > 0 ? "…" : "");
  return text + " ".repeat(width - chars.length);
}

/** Formats a number compactly: 3 significant digits, exponent notation outside [1e-3, 1e5). */
export function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs >= 1e5 || abs < 1e-3) return value.toExponential(2);
  return Number(value.toPrecision(3)).toString();
}

/** Formats a probability as a percentage with one decimal ("12.3%"), or "<0.1%". */
export function formatPercent(prob: number): string {
  if (prob > 0 && prob < 0.0005) return "<0.1%";
  return `${(100 * prob).toFixed(1)}%`;
}

/** Escapes text for XML and HTML content and attribute values. */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/**
 * Escapes text for plotly, which reads labels, hover text and titles as a small subset of
 * HTML: a token such as "<|endoftext|>" would otherwise be taken for a tag.
 */
export function plotlyText(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
