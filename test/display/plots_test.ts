/**
 * The display layer without a model: colour scales, labels, the generic figure builders, their
 * four renderings, plotly.js inlining and the terminal renderers.
 */
import { gunzipSync } from "node:zlib";
import { assert, assertClose, assertEquals, assertThrows, test } from "../_harness.ts";
import { categoricalColor, colorAt, colorscale, contrastText } from "../../src/display/colors.ts";
import { INSPECT_CUSTOM, JUPYTER_DISPLAY, MIME } from "../../src/display/figure.ts";
import { escapeXml, formatNumber, formatPercent, plotlyText, tokenLabel } from "../../src/display/labels.ts";
import { plotlyLoaderScript, plotlySource, resetPlotlyInlining } from "../../src/display/plotly_html.ts";
import { bars, chipLayout, chips, heatmap, heatmapGrid, scatter } from "../../src/display/plots.ts";
import { blockHeatmap, textBar } from "../../src/display/terminal.ts";

const FIGURE_TYPES = [MIME.plotly, MIME.html, MIME.svg, MIME.text];
const LOADER_MARK = "__underhoodPlotlyLoading";

test("colorAt hits the stops and interpolates", () => {
  assertEquals(colorAt("blues", 0), "#f7fbff");
  assertEquals(colorAt("blues", 1), "#08306b");
  assertEquals(colorAt("diverging", 0.5), "#f7f7f7");
  // Halfway between #000000 and #ffffff.
  assertEquals(colorAt([[0, "#000000"], [1, "#ffffff"]], 0.5), "#808080");
  assertEquals(colorAt("blues", -3), "#f7fbff", "below 0 clamps");
  assertEquals(colorAt("blues", 7), "#08306b", "above 1 clamps");
});

test("colorscale rejects unknown names", async () => {
  await assertThrows(() => colorscale("rainbow" as "blues"), RangeError, ["rainbow", "blues"]);
});

test("contrastText and categoricalColor", () => {
  assertEquals(contrastText("#ffffff"), "#000000");
  assertEquals(contrastText("#08306b"), "#ffffff");
  assertEquals(categoricalColor(198), categoricalColor(198), "equal ids, equal colours");
  const colours = new Set(Array.from({ length: 40 }, (_, id) => categoricalColor(id)));
  assert(colours.size >= 8, `40 ids got only ${colours.size} colours`);
});

test("tokenLabel shows whitespace", () => {
  assertEquals(tokenLabel(" the"), "·the");
  assertEquals(tokenLabel("\n\n"), "↵↵");
  assertEquals(tokenLabel("\t"), "⇥");
  assertEquals(tokenLabel(""), "∅");
  assertEquals(tokenLabel("abcdefghijklmnopqrstuvwxyz", 6), "abcde…");
});

test("number and text formats", () => {
  assertEquals(formatNumber(0.123456), "0.123");
  assertEquals(formatNumber(123456), "1.23e+5");
  assertEquals(formatNumber(-Infinity), "-∞");
  assertEquals(formatNumber(NaN), "NaN");
  assertEquals(formatPercent(0.1234), "12.3%");
  assertEquals(formatPercent(0.0001), "<0.1%");
  assertEquals(escapeXml(`<a href="x">&'</a>`), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  assertEquals(plotlyText("<|endoftext|> & co"), "&lt;|endoftext|&gt; &amp; co");
});

test("heatmap bundle has four renderings", () => {
  const figure = heatmap({ z: [[0, 1], [2, 3]], x: ["a", "b"], y: ["r0", "r1"], title: "Test map" });
  const bundle = figure.toMimeBundle({ inline: "never" });
  assertEquals(Object.keys(bundle).sort(), [...FIGURE_TYPES].sort());
  assertEquals(figure[JUPYTER_DISPLAY]()[MIME.svg], figure.svg);
  const spec = bundle[MIME.plotly] as { data: Array<{ z: unknown; type: string }>; layout: { width: number } };
  assertEquals(spec.data[0]!.type, "heatmap");
  assertEquals(spec.data[0]!.z, [[0, 1], [2, 3]]);
  assert(spec.layout.width > 0, "layout has a width");
  assert((bundle[MIME.svg] as string).startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\""), "SVG root");
  assert((bundle[MIME.text] as string).startsWith("Test map: 2 × 2"), `text: ${bundle[MIME.text]}`);
  assert((bundle[MIME.html] as string).includes(figure.svg), "the HTML holds the SVG fallback");
});

test("heatmap draws non-finite values as gaps", () => {
  const figure = heatmap({ z: [[1, NaN], [0.5, 0.25]], colorscale: "blues", zmin: 0, zmax: 1 });
  const z = (figure.plotly.data[0] as { z: unknown }).z;
  assertEquals(z, [[1, null], [0.5, 0.25]]);
  const panel = /<g class="panel">(.*?)<\/g>/.exec(figure.svg)?.[1] ?? "";
  assertEquals((panel.match(/<rect /g) ?? []).length, 4, "three cells and the grey panel background");
  assertEquals((panel.match(/fill="#f0f0f0"/g) ?? []).length, 1, "one grey background");
  const text = figure.toText({ colors: false });
  assert(text.includes("··"), "masked cells are dots in text");
});

test("heatmap rounds values to four digits", () => {
  const figure = heatmap({ z: [[0.123456789, 12345.6789]] });
  assertEquals((figure.plotly.data[0] as { z: unknown }).z, [[0.1235, 12350]]);
});

test("heatmap picks a symmetric diverging range", () => {
  const figure = heatmap({ z: [[-1, 3]] });
  const trace = figure.plotly.data[0] as { zmin: number; zmax: number };
  assertEquals([trace.zmin, trace.zmax], [-3, 3]);
  const positive = heatmap({ z: [[1, 3]] }).plotly.data[0] as { zmin: number; zmax: number };
  assertEquals([positive.zmin, positive.zmax], [1, 3]);
});

test("heatmap keeps repeated labels apart", () => {
  const figure = heatmap({ z: [[1, 2, 3]], x: [" the", "cat", " the"] });
  const x = (figure.plotly.data[0] as { x: string[] }).x;
  assertEquals(new Set(x).size, 3, "three distinct categories");
  assertEquals(x.map((l) => l.replace(/\u200b/g, "")), [" the", "cat", " the"]);
});

test("heatmap escapes labels", () => {
  const figure = heatmap({ z: [[1]], x: ["<|endoftext|>"], y: ["a&b"] });
  assert(figure.svg.includes("&lt;|endoftext|&gt;"), "SVG escapes the label");
  assert(!figure.svg.includes("<|endoftext|>"), "no raw label in the SVG");
  assertEquals((figure.plotly.data[0] as { x: string[] }).x, ["&lt;|endoftext|&gt;"]);
  const html = figure.toHTML({ inline: "never" });
  assert(!/<\/script/i.test(html.slice(0, html.lastIndexOf("</script>"))), "no early </script> in the HTML");
});

test("heatmap input errors", async () => {
  await assertThrows(() => heatmap({ z: [] }), RangeError, "empty heatmap");
  await assertThrows(() => heatmap({ z: [[1, 2]], x: ["a"] }), RangeError, "1 column labels");
  await assertThrows(
    () => heatmapGrid({ panels: [{ z: [[1, 2]] }, { z: [[1]] }] }),
    RangeError,
    "panel 1",
  );
  await assertThrows(() => heatmapGrid({ panels: [] }), RangeError, "without panels");
});

test("heatmapGrid lays out panels with one colour bar", () => {
  const panel = (v: number) => ({ z: [[v, 0], [0, v]], title: `p${v}` });
  const figure = heatmapGrid({ panels: [panel(1), panel(2), panel(3)], columns: 2, zmin: 0, zmax: 3 });
  assertEquals(figure.plotly.data.length, 3);
  assertEquals(figure.plotly.data.map((t) => t.showscale), [true, false, false]);
  assertEquals(figure.plotly.data.map((t) => t.xaxis), ["x", "x2", "x3"]);
  const layout = figure.plotly.layout as Record<string, { domain: number[] }>;
  assertClose(layout.xaxis!.domain[0]!, 0);
  assert(layout.xaxis2!.domain[0]! > layout.xaxis!.domain[1]!, "panel 2 right of panel 1");
  assertClose(layout.xaxis3!.domain[0]!, 0, { label: "panel 3 starts the second row" });
  assert(layout.yaxis3!.domain[1]! < layout.yaxis!.domain[0]!, "second row below the first");
  for (const title of ["p1", "p2", "p3"]) assert(figure.svg.includes(`>${title}</text>`), `SVG subtitle ${title}`);
});

test("bars and scatter", async () => {
  const b = bars({ labels: ["a", "b"], values: [0.5, -0.25], title: "B" });
  assertEquals((b.plotly.data[0] as { x: number[] }).x, [0.5, -0.25]);
  assert(b.toText().includes("-"), "negative bar is marked");
  await assertThrows(() => bars({ labels: ["a"], values: [1, 2] }), RangeError, "1 labels for 2 values");

  const s = scatter({ points: [{ x: 1, y: 2, label: "p" }, { x: 3, y: 4, label: "q", group: "g" }] });
  assertEquals(s.plotly.data.length, 2, "one trace per group");
  assertEquals((s.plotly.layout as { showlegend: boolean }).showlegend, true);
  assertEquals((s.svg.match(/<circle /g) ?? []).length, 2 + 2, "two points and two legend marks");
  await assertThrows(() => scatter({ points: [] }), RangeError, "without points");
});

test("chipLayout wraps lines and breaks after newlines", () => {
  const labels = ["aaaaaaaa", "bbbbbbbb", "cccccccc", "d↵", "e"];
  const { chips: placed, height } = chipLayout(labels, { maxWidth: 200 });
  assertEquals(placed.map((c) => c.y), [0, 0, 30, 30, 60]);
  assertEquals(placed[0]!.x, 0);
  assert(placed[1]!.x > placed[0]!.x + placed[0]!.width - 1, "chips do not overlap");
  assertEquals(height, 84);
  const captioned = chipLayout(["a"], { maxWidth: 200, captions: ["99.9%"] });
  assert(captioned.chips[0]!.width >= 5 * 5.5, "wide enough for its caption");
});

test("chips checks lengths and draws every chip", async () => {
  await assertThrows(() => chips({ labels: ["a", "b"], fills: ["#ffffff"] }), RangeError, "1 fills for 2 chips");
  const figure = chips({ labels: ["a", "<b>"], fills: ["#ffffff", "#000000"], captions: ["1", "2"] });
  assertEquals((figure.plotly.layout as { shapes: unknown[] }).shapes.length, 2);
  assert(figure.svg.includes("&lt;b&gt;"), "escaped in SVG");
  assertEquals(figure.toText({ colors: false }).split("\n")[1], "[a][<b>]");
});

test("plotly.js is inlined once per process", () => {
  resetPlotlyInlining();
  const figure = heatmap({ z: [[1]] });
  const first = figure.toHTML();
  const second = figure.toHTML();
  assert(first.includes(LOADER_MARK), "the first figure carries plotly.js");
  assert(!second.includes(LOADER_MARK), "the second does not");
  assert(figure.toHTML({ inline: "always" }).includes(LOADER_MARK), "inline: always");
  resetPlotlyInlining();
  assert(!figure.toHTML({ inline: "never" }).includes(LOADER_MARK), "inline: never");
  assert(figure.toHTML().includes(LOADER_MARK), "never leaves the next figure to inline it");
  assert(!/https?:\/\//.test(first.replace(/"http:\/\/www\.w3\.org\/2000\/svg"/g, "")), "no URL to load from");
});

test("inlined plotly.js decompresses to the package source", () => {
  const packed = /var packed = "([A-Za-z0-9+/=]+)";/.exec(plotlyLoaderScript());
  assert(packed, "the loader holds base64 data");
  const source = gunzipSync(Buffer.from(packed[1]!, "base64")).toString("utf8");
  assertEquals(source.length, plotlySource().length);
  assert(source === plotlySource(), "same bytes as plotly.min.js");
  assert(source.includes("window.Plotly"), "the library defines window.Plotly");
});

test("blockHeatmap shades and colours", () => {
  const input = { z: [[0, 1], [NaN, 0.5]], rowLabels: ["a", "b"], scale: "blues" as const, zmin: 0, zmax: 1 };
  const plain = blockHeatmap(input, { colors: false });
  assertEquals(plain, ["a   ██", "b ··▒▒"]);
  const coloured = blockHeatmap(input, { colors: true }).join("\n");
  assert(coloured.includes("\x1b[48;5;"), "ANSI background colours");
  assert(!plain.join("").includes("\x1b["), "no ANSI codes without colours");
  const wide = blockHeatmap({ ...input, z: [Array.from({ length: 50 }, () => 1)], rowLabels: ["w"], maxColumns: 10 }, { colors: false });
  assert(wide[0]!.endsWith("… 40 more"), wide[0]);
});

test("textBar widths", () => {
  assertEquals(textBar(1, 4), "████");
  assertEquals(textBar(0.5, 4), "██");
  assertEquals(textBar(0.125, 2), "▎");
  assertEquals(textBar(0, 4), "");
  assertEquals(textBar(NaN, 4), "");
});

test("figure inspect uses colours when asked", () => {
  const figure = heatmap({ z: [[0, 1]], colorscale: "blues" });
  const plain = figure[INSPECT_CUSTOM](2, { colors: false });
  const coloured = figure[INSPECT_CUSTOM](2, { colors: true });
  assert(!plain.includes("\x1b["), "plain");
  assert(coloured.includes("\x1b["), "coloured");
});

test("progress bar line and tty only", async () => {
  const { formatProgress, progressBar } = await import("../../src/display/progress.ts");
  assertEquals(
    formatProgress({ phase: "read", file: "model.safetensors", loaded: 5e6, total: 10e6 }, 10),
    "read model.safetensors [#####.....]  50% 5.0/10.0 MB",
  );
  assertEquals(formatProgress({ phase: "download", file: "config.json", loaded: 2e6 }), "download config.json 2.0 MB");
  const written: string[] = [];
  const pipe = progressBar({ write: (t: string) => written.push(t), isTTY: false });
  pipe.onProgress({ file: "a", loaded: 1, total: 1 });
  pipe.done();
  assertEquals(written.length, 0, "writes to a pipe");
  const tty = progressBar({ write: (t: string) => written.push(t), isTTY: true });
  tty.onProgress({ file: "a", loaded: 1, total: 1 });
  tty.done();
  assertEquals(written.length, 2, "writes to a terminal");
});
