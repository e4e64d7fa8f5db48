/**
 * `show(...values)`: display values in whichever front end runs the code.
 *
 * - In Deno's Jupyter kernel, through `Deno.jupyter.display`.
 * - In tslab's Jupyter kernel, through tslab's display channel (tslab does not call
 *   `Symbol.for("Jupyter.display")` itself).
 * - Elsewhere (a REPL, a script), as text on standard output, with ANSI colours when standard
 *   output is a terminal and NO_COLOR is unset.
 *
 * Every value becomes one output, so a cell can show several.
 */
import { createRequire } from "node:module";
import process from "node:process";
import { inspect } from "node:util";
import * as tf from "@tensorflow/tfjs-core";
import type { TopToken } from "../results.ts";
import type { Token } from "../tokenizer.ts";
import { INSPECT_CUSTOM, JUPYTER_DISPLAY, MIME, type MimeBundle } from "./figure.ts";
import { tokenChips, topKBars } from "./figures.ts";
import { tensorBundle, tensorText } from "./results.ts";
import type { TextOptions } from "./terminal.ts";

/** Where `show` sends its output. */
export type DisplayTarget = "deno-jupyter" | "tslab" | "terminal";

interface DenoJupyter {
  display(bundle: MimeBundle, options: { raw: true }): Promise<void>;
}

/** Returns Deno's Jupyter API when running in Deno's kernel. */
function denoJupyter(): DenoJupyter | undefined {
  const deno = (globalThis as { Deno?: { jupyter?: DenoJupyter } }).Deno;
  if (!deno) return undefined;
  try {
    // Outside `deno jupyter`, reading Deno.jupyter throws.
    return typeof deno.jupyter?.display === "function" ? deno.jupyter : undefined;
  } catch {
    return undefined;
  }
}

interface TslabGlobal {
  require(id: string): unknown;
}

type WriteDisplayData = (
  message: { data: MimeBundle; metadata: Record<string, unknown>; transient: Record<string, unknown> },
  update: boolean,
) => void;

/**
 * Returns tslab's function that sends one display_data message with a whole MIME bundle.
 *
 * tslab 1.0.22 keeps it in the module-level `lastWriteDisplayData` of tslab/dist/jupyter.js,
 * which its kernel sets before running each cell. Its public `display.raw` sends one MIME type
 * per message, so it serves only as the fallback when that module is not found.
 */
function tslabWriter(): ((bundle: MimeBundle) => void) | undefined {
  const tslab = (globalThis as { __tslab__?: TslabGlobal }).__tslab__;
  if (!tslab) return undefined;
  const cache = createRequire(import.meta.url).cache;
  for (const [file, module] of Object.entries(cache)) {
    if (!/[\\/]tslab[\\/]dist[\\/]jupyter\.js$/.test(file)) continue;
    const write = (module?.exports as { lastWriteDisplayData?: WriteDisplayData } | undefined)?.lastWriteDisplayData;
    if (typeof write === "function") return (bundle) => write({ data: bundle, metadata: {}, transient: {} }, false);
  }
  const display = (tslab.require("tslab") as { display?: { raw(type: string, content: string): void } }).display;
  if (!display) return undefined;
  return (bundle) => {
    // NOTE: only the richest entry reaches the notebook on this path.
    const type = [MIME.html, MIME.svg, MIME.text].find((t) => typeof bundle[t] === "string") ?? MIME.text;
    display.raw(type, String(bundle[type] ?? ""));
  };
}

/** Returns where `show` would send output now. */
export function displayTarget(): DisplayTarget {
  if (denoJupyter()) return "deno-jupyter";
  if ((globalThis as { __tslab__?: unknown }).__tslab__) return "tslab";
  return "terminal";
}

function isTokenList(value: unknown): value is Token[] {
  return Array.isArray(value) && value.length > 0 &&
    value.every((t) => t && typeof t === "object" && typeof t.id === "number" && typeof t.text === "string" && typeof t.start === "number");
}

function isTopTokenList(value: unknown): value is TopToken[] {
  return Array.isArray(value) && value.length > 0 &&
    value.every((t) => t && typeof t === "object" && typeof t.id === "number" && typeof t.token === "string" && typeof t.prob === "number");
}

function hasDisplay(value: unknown): value is { [JUPYTER_DISPLAY](): MimeBundle | Promise<MimeBundle> } {
  return value !== null && (typeof value === "object" || typeof value === "function") &&
    typeof (value as Record<symbol, unknown>)[JUPYTER_DISPLAY] === "function";
}

/**
 * Returns the MIME bundle of any value: its own `Symbol.for("Jupyter.display")` bundle, a
 * figure for tensors, token lists (from `tokenize`) and top-k lists, and text otherwise.
 */
export async function toMimeBundle(value: unknown): Promise<MimeBundle> {
  if (hasDisplay(value)) return await value[JUPYTER_DISPLAY]();
  if (value instanceof tf.Tensor) return tensorBundle(value);
  if (isTokenList(value)) return tokenChips(value).toMimeBundle();
  if (isTopTokenList(value)) return topKBars(value).toMimeBundle();
  if (typeof value === "string") return { [MIME.text]: value };
  return { [MIME.text]: inspect(value, { colors: false, depth: 4 }) };
}

/** Returns the text of any value, as `show` writes it to a terminal. */
export function toText(value: unknown, options: TextOptions = { colors: false }): string {
  if (value !== null && typeof value === "object" && typeof (value as Record<symbol, unknown>)[INSPECT_CUSTOM] === "function") {
    return inspect(value, { colors: options.colors, depth: 4 });
  }
  if (value instanceof tf.Tensor) return tensorText(value, options);
  if (isTokenList(value)) return tokenChips(value).toText(options);
  if (isTopTokenList(value)) return topKBars(value).toText(options);
  if (typeof value === "string") return value;
  return inspect(value, { colors: options.colors, depth: 4 });
}

function terminalColors(): boolean {
  const stdout = process.stdout as { isTTY?: boolean } | undefined;
  return Boolean(stdout?.isTTY) && !process.env.NO_COLOR;
}

/**
 * Displays each value as its own output: rich in a Jupyter kernel (Deno or tslab), text in a
 * terminal. Await it in Deno's kernel so outputs arrive in order before the cell ends.
 *
 * @example
 * ```ts
 * await show(model.tokenizer.tokenize("To be, or not to be"), attentionHeads(a, { tokens }));
 * ```
 */
export async function show(...values: unknown[]): Promise<void> {
  const deno = denoJupyter();
  if (deno) {
    for (const v of values) await deno.display(await toMimeBundle(v), { raw: true });
    return;
  }
  const tslab = tslabWriter();
  if (tslab) {
    for (const v of values) tslab(await toMimeBundle(v));
    return;
  }
  const colors = terminalColors();
  for (const v of values) process.stdout.write(`${toText(v, { colors })}\n`);
}
