/**
 * How the results of the default model render: MIME bundles through
 * Symbol.for("Jupyter.display"), terminal text through util.inspect, the model figures, and
 * that displaying reads values without changing them or leaking tensors.
 */
import { inspect } from "node:util";
import * as tf from "@tensorflow/tfjs-core";
import { assert, assertClose, assertEquals, assertThrows, test } from "../_harness.ts";
import { loadModel } from "../../src/load_model.ts";
import type { Model } from "../../src/model.ts";
import { generate } from "../../src/generate.ts";
import { ActivationCache } from "../../src/hooks.ts";
import { INSPECT_CUSTOM, JUPYTER_DISPLAY, MIME, type MimeBundle } from "../../src/display/figure.ts";
import {
  attentionHeads,
  attentionHeatmap,
  generationChips,
  logitLensHeatmap,
  neuronHeatmap,
  residualNormHeatmap,
  tokenChips,
  topKBars,
} from "../../src/display/figures.ts";
import { formatPercent } from "../../src/display/labels.ts";
import { tensorFigure } from "../../src/display/results.ts";

const FIGURE_TYPES = [MIME.plotly, MIME.html, MIME.svg, MIME.text].sort();
const PROMPT = "ROMEO:\nBut soft, what light";

let shared: Model | undefined;
async function model(): Promise<Model> {
  shared ??= await loadModel();
  return shared;
}

function bundleOf(value: unknown): MimeBundle {
  const method = (value as Record<symbol, unknown>)[JUPYTER_DISPLAY];
  assert(typeof method === "function", "value has a Symbol.for(\"Jupyter.display\") method");
  return (method as () => MimeBundle).call(value);
}

test("EmbedResult renders", async () => {
  const m = await model();
  const e = m.embed(PROMPT);
  const bundle = bundleOf(e);
  assertEquals(Object.keys(bundle).sort(), FIGURE_TYPES);
  const text = bundle[MIME.text] as string;
  assert(text.startsWith(`EmbedResult: ${e.ids.length} tokens`), text);
  assert(text.includes("·soft"), "tokens with visible spaces");
  assertEquals(inspect(e, { colors: false }), text, "util.inspect gives the same text");
  const spec = bundle[MIME.plotly] as { data: Array<{ z: number[][] }> };
  const residual = e.residual.arraySync() as number[][];
  assertClose(spec.data[0]!.z, residual, { atol: 1e-3, rtol: 1e-3, label: "heatmap values" });
  e.dispose();
});

test("AttentionResult and MlpResult render", async () => {
  const m = await model();
  const e = m.embed(PROMPT);
  const a = m.attentionBlock(1, e.residual);
  const mlp = m.mlpBlock(1, a.residOut);
  const attention = bundleOf(a);
  assertEquals(Object.keys(attention).sort(), FIGURE_TYPES);
  assertEquals((attention[MIME.plotly] as { data: unknown[] }).data.length, m.config.nHeads, "one heatmap per head");
  assert((attention[MIME.text] as string).startsWith("AttentionResult (block 1)"), "text header");
  const neurons = bundleOf(mlp);
  assertEquals(Object.keys(neurons).sort(), FIGURE_TYPES);
  assert(inspect(mlp).startsWith("MlpResult (block 1)"), "inspect text");
  for (const r of [mlp, a, e]) r.dispose();
});

test("UnembedResult renders its top tokens", async () => {
  const m = await model();
  const e = m.embed(PROMPT);
  const u = m.unembed(e.residual);
  const bundle = bundleOf(u);
  const top = u.topK(10);
  const spec = bundle[MIME.plotly] as { data: Array<{ x: number[] }> };
  assertClose(spec.data[0]!.x, top.map((t) => t.prob), { label: "bar lengths are the top-10 probabilities" });
  assert((bundle[MIME.text] as string).includes(formatPercent(top[0]!.prob)), "text has the top probability");
  const layer = bundleOf(u.lnFinal);
  assert((layer[MIME.text] as string).startsWith("LayerNormResult"), "LayerNormResult renders");
  u.dispose();
  e.dispose();
});

test("ActivationCache renders grouped names", async () => {
  const m = await model();
  const { logits, cache } = m.runWithCache(PROMPT, { names: (n) => n.endsWith("hook_resid_pre") || n === "hook_embed" });
  const bundle = bundleOf(cache);
  assertEquals(Object.keys(bundle).sort(), [MIME.html, MIME.text].sort());
  const html = bundle[MIME.html] as string;
  assert(html.includes("blocks.{L}.hook_resid_pre"), "blocks grouped");
  assert(html.includes(`0–${m.config.nLayers - 1}`), "block range");
  const text = inspect(cache);
  assert(text.startsWith(`ActivationCache: ${m.config.nLayers + 1} activations`), text);
  logits.dispose();
  cache.dispose();
});

test("Generation renders and keeps its data plain", async () => {
  const m = await model();
  const g = await generate(m, "ROMEO:", { maxNewTokens: 5, seed: 3 });
  assertEquals(Object.keys(g).sort(), ["ids", "promptIds", "seed", "steps", "stopReason", "text"]);
  assertEquals(JSON.parse(JSON.stringify(g)).ids, g.ids);
  const bundle = bundleOf(g);
  assertEquals(Object.keys(bundle).sort(), FIGURE_TYPES);
  const layout = (bundle[MIME.plotly] as { layout: { shapes: unknown[] } }).layout;
  assertEquals(layout.shapes.length, g.promptIds.length + g.steps.length, "one chip per token");
  const text = inspect(g, { colors: false });
  assert(text.startsWith(`Generation: ${g.steps.length} new tokens (seed 3`), text);
  assert(text.includes(JSON.stringify(g.text)), "text has the new text");
});

test("displaying frees every tensor it makes", async () => {
  const m = await model();
  const e = m.embed(PROMPT);
  const a = m.attentionBlock(0, e.residual);
  const mlp = m.mlpBlock(0, a.residOut);
  const u = m.unembed(mlp.residOut);
  const { logits, cache } = m.runWithCache(PROMPT);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 2; i++) {
    for (const r of [e, a, mlp, u, cache]) {
      bundleOf(r);
      (r as unknown as Record<symbol, (d: number, o: object) => string>)[INSPECT_CUSTOM]!(2, { colors: true });
    }
    residualNormHeatmap(cache);
    tensorFigure(e.residual);
  }
  assertEquals(tf.memory().numTensors, before, "tensor count after displaying");
  for (const r of [u, mlp, a, e]) r.dispose();
  logits.dispose();
  cache.dispose();
});

test("disposed results render as text", async () => {
  const m = await model();
  const e = m.embed(PROMPT);
  e.dispose();
  const bundle = bundleOf(e);
  assertEquals(Object.keys(bundle), [MIME.text]);
  assert((bundle[MIME.text] as string).endsWith("(disposed)"), bundle[MIME.text] as string);
});

test("attention figures label tokens and hide the future", async () => {
  const m = await model();
  const tokens = m.tokenizer.tokenize(PROMPT);
  const e = m.embed(tokens.map((t) => t.id));
  const a = m.attentionBlock(0, e.residual);
  const figure = attentionHeatmap(a, 2, { tokens });
  const trace = figure.plotly.data[0] as { z: Array<Array<number | null>>; y: string[] };
  const n = tokens.length;
  assertEquals(trace.z.length, n);
  for (let q = 0; q < n; q++) {
    for (let k = 0; k < n; k++) {
      if (k > q) assertEquals(trace.z[q]![k], null, `masked cell ${q},${k}`);
    }
    const sum = trace.z[q]!.reduce<number>((s, v) => s + (v ?? 0), 0);
    assertClose(sum, 1, { atol: 1e-3, label: `row ${q} sums to 1` });
  }
  assertEquals(trace.y[1]!.replace(/\u200b/g, ""), "EO");
  assert(figure.title.includes("layer 0 head 2"), figure.title);
  await assertThrows(() => attentionHeatmap(a, 9), RangeError, ["head 9", "0 to 3"]);
  await assertThrows(() => attentionHeads(a, { tokens: tokens.slice(1) }), RangeError, "one token per position");
  assertEquals(attentionHeads(a.pattern).plotly.data.length, 4, "a pattern tensor works too");
  a.dispose();
  e.dispose();
});

test("neuronHeatmap picks the strongest neurons", async () => {
  const acts = [
    [0, 0.1, -5, 0],
    [0, 0.2, 0, 3],
  ];
  const figure = neuronHeatmap(acts, { topN: 2 });
  assertEquals((figure.plotly.data[0] as { x: string[] }).x, ["n2", "n3"]);
  assertEquals((figure.plotly.data[0] as { z: number[][] }).z, [[-5, 0], [0, 3]]);
  const chosen = neuronHeatmap(acts, { neurons: [1] });
  assertEquals((chosen.plotly.data[0] as { z: number[][] }).z, [[0.1], [0.2]]);
  await assertThrows(() => neuronHeatmap(acts, { neurons: [4] }), RangeError, "Invalid neuron 4");
  await assertThrows(() => neuronHeatmap([1, 2] as unknown as number[][]), TypeError, "2 levels");
});

test("residualNormHeatmap reads norms from a cache", async () => {
  const cache = new ActivationCache();
  cache.set("blocks.0.hook_resid_pre", tf.tensor2d([[3, 4], [0, 1]]));
  cache.set("blocks.0.hook_resid_post", tf.tensor2d([[6, 8], [0, 2]]));
  cache.set("blocks.0.attn.hook_pattern", tf.ones([1, 2, 2]));
  const figure = residualNormHeatmap(cache);
  const trace = figure.plotly.data[0] as { z: number[][]; y: string[] };
  assertEquals(trace.z, [[5, 1], [10, 2]]);
  assertEquals(trace.y, ["0 resid_pre", "0 resid_post"]);
  cache.dispose();
  await assertThrows(() => residualNormHeatmap(new ActivationCache()), RangeError, "no residual activations");
});

test("logitLensHeatmap writes the tokens in the cells", () => {
  const figure = logitLensHeatmap({ z: [[0.2, 0.9]], text: [[" the", "\n"]], x: ["a", "b"], y: ["L0"] });
  const trace = figure.plotly.data[0] as { text: string[][]; zmin: number; zmax: number };
  assertEquals(trace.text, [["·the", "↵"]]);
  assertEquals([trace.zmin, trace.zmax], [0, 1], "probabilities use 0 to 1");
  assert(figure.svg.includes(">·the</text>"), "SVG cell text");
});

test("token chips by id and by value", async () => {
  const m = await model();
  const tokens = m.tokenizer.tokenize(" the cat and the dog");
  const byId = tokenChips(tokens);
  const fills = (byId.plotly.layout as { shapes: Array<{ fillcolor: string }> }).shapes.map((s) => s.fillcolor);
  assertEquals(fills[0], fills[3], "both \" the\" chips share a colour");
  const byValue = tokenChips(tokens, { values: [0, 1, 2, 3, 4], valueName: "v" });
  const valueFills = (byValue.plotly.layout as { shapes: Array<{ fillcolor: string }> }).shapes.map((s) => s.fillcolor);
  assertEquals(valueFills[0], "#440154", "the minimum gets the first colour of viridis");
  assertEquals(valueFills[4], "#fde725", "the maximum gets the last");
  await assertThrows(() => tokenChips(tokens, { values: [1] }), RangeError, "1 values for 5 tokens");
  assertEquals(tokenChips([" a", "b"]).toText().split("\n")[1], "[·a][b]");
});

test("topKBars and generationChips take plain data", () => {
  const figure = topKBars([{ id: 1, token: " a", logit: 2, prob: 0.75 }, { id: 2, token: "<|endoftext|>", logit: 1, prob: 0.25 }]);
  assertEquals((figure.plotly.data[0] as { text: string[] }).text, ["75.0%", "25.0%"]);
  assert(figure.svg.includes("&lt;|endoftext|&gt;"), "escaped token in SVG");
  const chips = generationChips({
    promptIds: [464],
    ids: [3797],
    steps: [{ position: 1, id: 3797, text: " cat", prob: 1 }],
    text: " cat",
    stopReason: "maxNewTokens",
    seed: 1,
  });
  const shapes = (chips.plotly.layout as { shapes: Array<{ fillcolor: string }> }).shapes;
  assertEquals(shapes.map((s) => s.fillcolor), ["#e4e4e4", "#31a354"], "grey prompt, green certain token");
});

test("tensorFigure draws ranks 1 to 3", async () => {
  const vector = tf.range(0, 40);
  const strip = tensorFigure(vector);
  assertEquals((strip.plotly.data[0] as { z: Array<Array<number | null>> }).z.length, 2, "40 values in rows of 32");
  assertEquals((strip.plotly.data[0] as { z: Array<Array<number | null>> }).z[1]![8], null, "padding is empty");
  const cube = tf.zeros([3, 2, 2]);
  assertEquals(tensorFigure(cube).plotly.data.length, 3);
  const big = tf.zeros([300, 300]);
  await assertThrows(() => tensorFigure(big), RangeError, "slice it first");
  await assertThrows(() => tensorFigure(tf.scalar(1)), RangeError, "rank-0");
  for (const t of [vector, cube, big]) t.dispose();
});
