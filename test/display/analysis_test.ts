/**
 * The figures of the interpretability results, on the tiny fixture: each builds a bundle with
 * the four MIME types, draws the values it was given, and rejects inputs it cannot draw.
 */
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertThrows, test } from "../_harness.ts";
import { loadModel } from "../../src/load_model.ts";
import type { Model } from "../../src/model.ts";
import { ablationSweep } from "../../src/analysis/ablation.ts";
import { directLogitAttribution } from "../../src/analysis/attribution.ts";
import { analogy, nearestTokens, tokenPca, tokenVector } from "../../src/analysis/embeddings.ts";
import { detectHeads, previousTokenScores } from "../../src/analysis/head_detectors.ts";
import { logitLens } from "../../src/analysis/logit_lens.ts";
import { patchHeads, patchResidual } from "../../src/analysis/patching.ts";
import { type Figure, MIME } from "../../src/display/figure.ts";
import {
  ablationHeatmap,
  ablationMlpBars,
  headScoresHeatmap,
  logitAttributionBars,
  logitAttributionHeatmap,
  logitLensFigure,
  nearestTokenBars,
  patchingHeatmap,
  tokenPcaScatter,
} from "../../src/display/analysis.ts";

const FIGURE_TYPES = [MIME.plotly, MIME.html, MIME.svg, MIME.text].sort();
const PROMPT = "ROMEO:\nBut soft, what light";
const FIXTURE = fileURLToPath(new URL("../fixtures/gpt2-tiny-f32", import.meta.url));

let shared: Model | undefined;
async function model(): Promise<Model> {
  shared ??= await loadModel(FIXTURE);
  return shared;
}

interface PlotlyTrace {
  type: string;
  z?: Array<Array<number | null>>;
  x?: unknown[];
  y?: unknown[];
  text?: string[][];
}

/** A bar or scatter trace, whose x values are numbers. */
type NumericXTrace = Omit<PlotlyTrace, "x"> & { x: number[] };

/** Checks the four MIME types and returns the figure's plotly traces. */
function tracesOf(figure: Figure): PlotlyTrace[] {
  const bundle = figure.toMimeBundle();
  assertEquals(Object.keys(bundle).sort(), FIGURE_TYPES, "MIME types");
  assert(String(bundle[MIME.svg]).startsWith("<svg"), "SVG rendering");
  assert(String(bundle[MIME.text]).length > 0, "text rendering");
  const spec = bundle[MIME.plotly] as { data: PlotlyTrace[] };
  return spec.data;
}

/** Rounds like the heatmap builder stores values (four significant digits). */
function stored(matrix: readonly (readonly number[])[]): number[][] {
  return matrix.map((row) => row.map((v) => Number(v.toPrecision(4))));
}

test("logit lens figure shows top tokens", async () => {
  const m = await model();
  const lens = logitLens(m, PROMPT, { target: " the" });
  const [trace] = tracesOf(logitLensFigure(lens));
  assertEquals(trace!.type, "heatmap", "trace type");
  assertEquals(trace!.z, stored(lens.topProb), "z is the top probability");
  assertEquals(trace!.y!.length, m.config.nLayers + 1, "one row per layer and the final residual");
  assertEquals(trace!.x!.length, lens.ids.length, "one column per position");
  assert(trace!.text![0]!.length === lens.ids.length, "cell text per position");

  const [target] = tracesOf(logitLensFigure(lens, { value: "target" }));
  assertEquals(target!.z, stored(lens.targetLogProb!), "z is the target log-probability");
});

test("logit lens figure rejects missing target", async () => {
  const lens = logitLens(await model(), PROMPT);
  await assertThrows(() => logitLensFigure(lens, { value: "target" }), RangeError, "no target");
  await assertThrows(() => logitLensFigure(lens, { value: "bogus" as "target" }), RangeError, "Invalid value");
});

test("attribution bars sorted by magnitude", async () => {
  const dla = directLogitAttribution(await model(), PROMPT, { tokenA: " the", tokenB: " a" });
  const [trace] = tracesOf(logitAttributionBars(dla, { top: 5 })) as NumericXTrace[];
  assertEquals(trace!.x.length, 5, "five bars");
  const expected = dla.contributions.map((c) => Math.abs(c.value)).sort((a, b) => b - a).slice(0, 5);
  assertEquals(trace!.x.map((v) => Math.abs(v)), expected, "largest |value| first");
  await assertThrows(() => logitAttributionBars(dla, { top: 0 }), RangeError, "Invalid top");
});

test("attribution heatmap per head", async () => {
  const dla = directLogitAttribution(await model(), PROMPT, { tokenA: " the" });
  const [trace] = tracesOf(logitAttributionHeatmap(dla));
  assertEquals(trace!.z, stored(dla.heads), "z is the head contributions");
  assertEquals(trace!.x, ["H0", "H1", "H2", "H3"], "head labels");
});

test("ablation heatmap and MLP bars", async () => {
  const sweep = ablationSweep(await model(), PROMPT, { method: "zero" });
  const [heads] = tracesOf(ablationHeatmap(sweep));
  assertEquals(heads!.z, stored(sweep.heads), "z is the change per head");
  assertEquals(heads!.y, ["L0", "L1"], "layer labels");
  const [mlps] = tracesOf(ablationMlpBars(sweep)) as NumericXTrace[];
  assertEquals(mlps!.x.length, sweep.mlps.length, "one bar per MLP");
});

test("patching heatmaps by position and head", async () => {
  const m = await model();
  const ids = m.toTokens("ROMEO: I love thee");
  const corrupted = Int32Array.from(ids);
  corrupted[1] = m.toTokens(" hate")[0]!;
  const options = { clean: ids, corrupted, tokenA: " and", tokenB: "," };
  const residual = patchResidual(m, options);
  const [byPosition] = tracesOf(patchingHeatmap(residual, { tokens: ids }));
  assertEquals(byPosition!.z, stored(residual.recovered), "z is the recovered fraction");
  assertEquals(byPosition!.x!.length, ids.length, "one column per position");
  await assertThrows(() => patchingHeatmap(residual, { tokens: [1, 2] }), RangeError, "2 tokens");

  const heads = patchHeads(m, options);
  const [byHead] = tracesOf(patchingHeatmap(heads));
  assertEquals(byHead!.x, ["H0", "H1", "H2", "H3"], "head columns");
  assertEquals(byHead!.z, stored(heads.recovered), "z per head");
});

test("head detector heatmaps", async () => {
  const m = await model();
  const scores = detectHeads(m, { seqLen: 10, seed: 1 });
  const traces = tracesOf(headScoresHeatmap(scores));
  assertEquals(traces.length, 2, "two panels");
  assertEquals(traces[0]!.z, stored(scores.previousToken), "previous-token panel");
  assertEquals(traces[1]!.z, stored(scores.induction), "induction panel");

  const single = previousTokenScores(m, PROMPT);
  const [one] = tracesOf(headScoresHeatmap(single, { title: "Previous-token scores" }));
  assertEquals(one!.z, stored(single), "a plain matrix");

  const [scaled] = tracesOf(headScoresHeatmap(scores, { zmax: 0.2 })) as Array<PlotlyTrace & { zmax: number }>;
  assertEquals(scaled!.zmax, 0.2, "zmax option");
  await assertThrows(() => headScoresHeatmap(scores, { zmax: 0 }), RangeError, "Invalid zmax");
});

test("nearest token and analogy bars", async () => {
  const m = await model();
  const nearest = nearestTokens(m, tokenVector(m, " the"), { k: 6 });
  const [trace] = tracesOf(nearestTokenBars(nearest)) as NumericXTrace[];
  assertEquals(trace!.x, nearest.map((t) => t.similarity), "similarities");
  const found = analogy(m, { a: " king", b: " man", c: " woman", k: 4 });
  assertEquals(tracesOf(nearestTokenBars(found)).length, 1, "analogy bars");
});

test("token PCA scatter", async () => {
  const m = await model();
  const pca = tokenPca(m, [" the", " a", " king", " queen", " man", " woman"]);
  const figure = tokenPcaScatter(pca, { groups: ["article", "article", "royal", "royal", "person", "person"] });
  const traces = tracesOf(figure) as NumericXTrace[];
  assertEquals(traces.length, 3, "one trace per group");
  assertEquals(traces[0]!.x, [pca.coords[0]![0]!, pca.coords[1]![0]!], "first group's PC 1");
  assert(figure.toText().length > 0, "text");
  await assertThrows(() => tokenPcaScatter(pca, { groups: ["one"] }), RangeError, "1 groups");
  await assertThrows(() => tokenPcaScatter(tokenPca(m, [" the", " a", " king"], { components: 1 })), RangeError, "components >= 2");
});
