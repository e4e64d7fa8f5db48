/**
 * `show` and `toMimeBundle`: what goes to a terminal, to tslab's display channel and to Deno's
 * kernel. tslab and Deno's kernel are stood in for by the hooks `show` looks for: tslab's
 * `globalThis.__tslab__` with its jupyter module in the require cache, and `Deno.jupyter`.
 */
import { createRequire } from "node:module";
import process from "node:process";
import { assert, assertEquals, test } from "../_harness.ts";
import { MIME, type MimeBundle } from "../../src/display/figure.ts";
import { heatmap } from "../../src/display/plots.ts";
import { displayTarget, show, toMimeBundle, toText } from "../../src/display/show.ts";
import * as tf from "@tensorflow/tfjs-core";

const FIGURE_TYPES = [MIME.plotly, MIME.html, MIME.svg, MIME.text].sort();
const TOKENS = [
  { id: 464, text: "The", start: 0, end: 3 },
  { id: 3797, text: " cat", start: 3, end: 7 },
];

/** Runs `fn` with process.stdout.write captured; returns what was written. */
async function captureStdout(fn: () => Promise<void>): Promise<string> {
  const write = process.stdout.write;
  let written = "";
  process.stdout.write = ((chunk: string | Uint8Array) => {
    written += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
    return true;
  }) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = write;
  }
  return written;
}

test("toMimeBundle of plain values", async () => {
  assertEquals(await toMimeBundle("hello"), { [MIME.text]: "hello" });
  assertEquals(await toMimeBundle({ a: 1 }), { [MIME.text]: "{ a: 1 }" });
  assertEquals(Object.keys(await toMimeBundle(TOKENS)).sort(), FIGURE_TYPES, "tokens become chips");
  const top = [{ id: 1, token: " a", logit: 1, prob: 0.5 }];
  assertEquals(Object.keys(await toMimeBundle(top)).sort(), FIGURE_TYPES, "top-k becomes bars");
  const t = tf.tensor2d([[1, 2], [3, 4]]);
  const bundle = await toMimeBundle(t);
  assertEquals(Object.keys(bundle).sort(), FIGURE_TYPES, "a tensor becomes a heatmap");
  assert((bundle[MIME.text] as string).startsWith("tensor [2, 2] float32: min 1, max 4"), bundle[MIME.text] as string);
  t.dispose();
});

test("toText of plain values", () => {
  assertEquals(toText("plain"), "plain");
  assertEquals(toText(TOKENS).split("\n")[1], "[The][·cat]");
  assert(toText(heatmap({ z: [[1]], title: "T" })).startsWith("T: 1 × 1"), "figures use their own text");
});

test("show writes text in a terminal", async () => {
  assertEquals(displayTarget(), "terminal");
  const written = await captureStdout(() => show("first", heatmap({ z: [[0, 1]], title: "Second" })));
  const lines = written.split("\n");
  assertEquals(lines[0], "first");
  assert(lines[1]!.startsWith("Second: 1 × 2"), written);
  assertEquals(await captureStdout(() => show()), "", "nothing to show");
});

test("show sends whole bundles to tslab", async () => {
  // tslab's kernel keeps its display function in tslab/dist/jupyter.js and sets globalThis.__tslab__.
  const cache = createRequire(import.meta.url).cache as Record<string, unknown>;
  const fakePath = "/fake/node_modules/tslab/dist/jupyter.js";
  const sent: Array<{ data: MimeBundle }> = [];
  cache[fakePath] = { exports: { lastWriteDisplayData: (message: { data: MimeBundle }) => sent.push(message) } };
  (globalThis as Record<string, unknown>).__tslab__ = { require: () => ({}) };
  try {
    assertEquals(displayTarget(), "tslab");
    const written = await captureStdout(() => show(heatmap({ z: [[1]] }), "text"));
    assertEquals(written, "", "nothing on stdout");
    assertEquals(sent.length, 2, "one message per value");
    assertEquals(Object.keys(sent[0]!.data).sort(), FIGURE_TYPES);
    assertEquals(sent[1]!.data, { [MIME.text]: "text" });
  } finally {
    delete (globalThis as Record<string, unknown>).__tslab__;
    delete cache[fakePath];
  }
  assertEquals(displayTarget(), "terminal");
});

// Deno.jupyter cannot be replaced under Deno, where reading it outside the kernel throws; the
// terminal test above covers that case there.
if (!("Deno" in globalThis)) {
  test("show sends bundles to Deno's kernel", async () => {
    const sent: Array<{ bundle: MimeBundle; options: unknown }> = [];
    (globalThis as Record<string, unknown>).Deno = {
      jupyter: { display: async (bundle: MimeBundle, options: unknown) => void sent.push({ bundle, options }) },
    };
    try {
      assertEquals(displayTarget(), "deno-jupyter");
      await show(heatmap({ z: [[1]] }), TOKENS);
      assertEquals(sent.length, 2);
      assertEquals(sent[0]!.options, { raw: true });
      assertEquals(Object.keys(sent[1]!.bundle).sort(), FIGURE_TYPES);
    } finally {
      delete (globalThis as Record<string, unknown>).Deno;
    }
  });
}
