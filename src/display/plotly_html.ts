/**
 * The `text/html` of a figure: a div that first shows the static SVG, and a script that
 * replaces it with the interactive plotly.js plot.
 *
 * plotly.js comes from the installed npm package plotly.js-dist-min, never from a CDN. The
 * first figure rendered in a process (one kernel session) carries the whole minified library
 * inline and defines `window.Plotly`. Later figures only carry their data and wait for
 * `window.Plotly`. The library is inlined gzip-compressed and base64-encoded, and the browser
 * decompresses it with DecompressionStream: for plotly.js 3.7.0 that is about 1.9 MB in each
 * saved notebook instead of 4.8 MB. Where scripts do not run (untrusted notebooks, sanitized
 * HTML), or DecompressionStream is missing (browsers before 2023), the SVG stays in place.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { gzipSync } from "node:zlib";
import { escapeXml } from "./labels.ts";

/** A plotly.js figure: traces, layout and config, as `Plotly.newPlot` and the plotly MIME type take them. */
export interface PlotlySpec {
  data: Array<Record<string, unknown>>;
  layout: Record<string, unknown>;
  config?: Record<string, unknown>;
}

/**
 * Process-wide flag, kept on globalThis so that two copies of this module (one loaded as ESM
 * and one through a CommonJS loader) still inline plotly.js only once.
 */
const INLINED = Symbol.for("underhood.display.plotlyInlined");

type FlagHolder = { [INLINED]?: boolean };

let cachedSource: string | undefined;
let cachedLoader: string | undefined;
let figureCounter = 0;

/**
 * Returns the source of plotly.min.js from the installed plotly.js-dist-min package.
 *
 * @throws {Error} When the package is not installed; the message says how to install it.
 */
export function plotlySource(): string {
  if (cachedSource !== undefined) return cachedSource;
  let path: string;
  try {
    path = createRequire(import.meta.url).resolve("plotly.js-dist-min");
  } catch (error) {
    throw new Error(
      `Cannot find the npm package plotly.js-dist-min, which interactive figures load offline: ` +
        `${(error as Error).message}. Install it with "npm install plotly.js-dist-min".`,
    );
  }
  cachedSource = readFileSync(path, "utf8");
  return cachedSource;
}

/**
 * Returns a script that defines `window.Plotly` from the gzip-compressed library embedded in
 * it, unless another output has already defined it or started to.
 */
export function plotlyLoaderScript(): string {
  if (cachedLoader !== undefined) return cachedLoader;
  const compressed = gzipSync(new TextEncoder().encode(plotlySource()), { level: 9 });
  const base64 = bytesToBase64(compressed);
  cachedLoader =
    `<script type="text/javascript">\n` +
    `(function () {\n` +
    `  if (window.Plotly || window.__underhoodPlotlyLoading) return;\n` +
    `  if (typeof DecompressionStream !== "function") return;\n` +
    `  window.__underhoodPlotlyLoading = true;\n` +
    `  var packed = "${base64}";\n` +
    `  var binary = atob(packed);\n` +
    `  var bytes = new Uint8Array(binary.length);\n` +
    `  for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);\n` +
    `  var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));\n` +
    `  new Response(stream).text().then(function (source) {\n` +
    `    var script = document.createElement("script");\n` +
    `    script.text = source;\n` +
    `    document.head.appendChild(script);\n` +
    `  });\n` +
    `})();\n` +
    `</script>\n`;
  return cachedLoader;
}

function bytesToBase64(bytes: Uint8Array): string {
  // btoa takes a binary string; build it in chunks to stay within argument-count limits.
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * Makes the next figure carry plotly.js inline again. Call it when the output that carried it
 * was cleared, for example after clearing all outputs in a notebook that keeps its kernel.
 */
export function resetPlotlyInlining(): void {
  (globalThis as FlagHolder)[INLINED] = false;
}

/** Options of {@link plotlyHtml}. */
export interface PlotlyHtmlOptions {
  /** Inline plotly.js: "auto" (default) only in the first figure of the process, or always, or never. */
  inline?: "auto" | "always" | "never";
}

/**
 * Builds the HTML of one figure: a div holding the SVG fallback, plotly.js inline when this
 * is the first figure (see {@link PlotlyHtmlOptions}), and a script that draws the plot.
 */
export function plotlyHtml(
  figure: { plotly: PlotlySpec; svg: string; width: number; height: number },
  options: PlotlyHtmlOptions = {},
): string {
  const inline = options.inline ?? "auto";
  const flags = globalThis as FlagHolder;
  const withLibrary = inline === "always" || (inline === "auto" && !flags[INLINED]);
  const library = withLibrary ? plotlyLoaderScript() : "";
  if (withLibrary) flags[INLINED] = true;

  figureCounter += 1;
  const id = `underhood-${Math.random().toString(16).slice(2, 10)}-${figureCounter}`;
  const spec = JSON.stringify({
    data: figure.plotly.data,
    layout: figure.plotly.layout,
    config: figure.plotly.config ?? {},
  }).replace(/</g, "\\u003c");

  // Wait up to 60 s for window.Plotly: front ends that render outputs lazily may draw this
  // figure before the one that carries the library.
  const draw =
    `(function () {\n` +
    `  var spec = ${spec};\n` +
    `  function draw() {\n` +
    `    var el = document.getElementById(${JSON.stringify(id)});\n` +
    `    if (!el || el.getAttribute("data-drawn")) return;\n` +
    `    el.setAttribute("data-drawn", "1");\n` +
    `    el.innerHTML = "";\n` +
    `    window.Plotly.newPlot(el, spec.data, spec.layout, spec.config);\n` +
    `  }\n` +
    `  if (window.Plotly) { draw(); return; }\n` +
    `  var tries = 0;\n` +
    `  var timer = setInterval(function () {\n` +
    `    if (window.Plotly) { clearInterval(timer); draw(); }\n` +
    `    else if (++tries > 600) clearInterval(timer);\n` +
    `  }, 100);\n` +
    `})();`;

  return (
    `<div class="underhood-figure" id="${escapeXml(id)}" ` +
    `style="width:${Math.ceil(figure.width)}px;min-height:${Math.ceil(figure.height)}px">` +
    `${figure.svg}</div>\n` +
    library +
    `<script type="text/javascript">\n${draw}\n</script>`
  );
}
