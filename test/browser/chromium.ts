/**
 * The browser build in headless Chromium. This script builds dist/browser/, serves the example
 * page on 127.0.0.1 and opens it in Debian's chromium through playwright-core, where WebGL comes
 * from SwiftShader. It compares what the page computes on WebGL, and on its wasm fallback, with
 * the cpu and wasm backends in Node.
 *
 * Usage: npx tsx test/browser/chromium.ts [--screenshot PATH] [FILTER...]
 * (`npm run test:browser`). Set CHROMIUM to use another browser binary. The screenshot of the
 * page after generation goes to PATH (docs/browser-screenshot.png is the committed one), by
 * default to underhood-browser-screenshot.png in the temp directory. Exits 1 when a test fails.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { PNG } from "pngjs";
import { assert, assertEquals, registeredTests, test } from "../_harness.ts";
import { buildBrowser, type BrowserBuild } from "../../scripts/build-browser.ts";
import { type ExampleServer, startServer } from "../../examples/browser/serve.ts";
import { setBackend } from "../../src/backend.ts";
import { generate, type GenerateOptions } from "../../src/generate.ts";
import { defaultModelDir, loadModel } from "../../src/load_model.ts";
import type { Model } from "../../src/model.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CHECKS_SCRIPT = join(ROOT, "test", "browser", "page_checks.js");

const PROMPT = "ROMEO:\nBut soft, what light through yonder window breaks?";
const GREEDY: GenerateOptions = { maxNewTokens: 20, temperature: 0 };
const SAMPLED: GenerateOptions = { maxNewTokens: 20, temperature: 1, topK: 40, seed: 7 };
/** The largest logit difference accepted between WebGL (or browser wasm) and Node's cpu backend. */
const LOGIT_TOLERANCE = 1e-3;

let screenshotPath = join(tmpdir(), "underhood-browser-screenshot.png");
const filters: string[] = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--screenshot") screenshotPath = resolve(args[++i] ?? "");
  else filters.push(args[i]!);
}

// ---- What Node computes on cpu and wasm, for the page to match.

interface Reference {
  logits: Float32Array;
  shape: number[];
  greedy: number[];
  sampled: number[];
  positionErrors: Record<string, string>;
}

async function nodeReference(backend: "cpu" | "wasm"): Promise<Reference> {
  await setBackend(backend, { fallback: false });
  const model = await loadModel(defaultModelDir());
  try {
    const logitsTensor = model.forward(PROMPT);
    const logits = (await logitsTensor.data()) as Float32Array;
    const shape = logitsTensor.shape;
    logitsTensor.dispose();
    return {
      logits,
      shape,
      greedy: (await generate(model, PROMPT, GREEDY)).ids,
      sampled: (await generate(model, PROMPT, SAMPLED)).ids,
      positionErrors: await positionErrorMessages(model),
    };
  } finally {
    model.dispose();
  }
}

/** Returns the messages of the same position errors that page_checks.js provokes. */
async function positionErrorMessages(model: Model): Promise<Record<string, string>> {
  const nCtx = model.config.nCtx;
  const messageOf = async (fn: () => unknown): Promise<string> => {
    try {
      await fn();
    } catch (error) {
      assert(error instanceof RangeError, `expected a RangeError on Node, got ${(error as Error).message}`);
      return error.message;
    }
    throw new Error("expected a RangeError on Node, but nothing was thrown");
  };
  const first = model.forwardIncremental(new Int32Array(nCtx).fill(11), undefined);
  first.logits.dispose();
  const messages = {
    forwardTooLong: await messageOf(() => model.forward(Array.from({ length: nCtx + 1 }, () => 11)).dispose()),
    embedOffset: await messageOf(() => model.embed([11], { offset: nCtx }).dispose()),
    generateTooLong: await messageOf(() => generate(model, [11, 12], { maxNewTokens: nCtx - 1 })),
    incrementalPastEnd: await messageOf(() => model.forwardIncremental(Int32Array.of(11), first.cache)),
  };
  first.cache.dispose();
  return messages;
}

// ---- The browser.

let build: BrowserBuild;
let server: ExampleServer;
let context: BrowserContext;
let userDataDir: string;
let cpu: Reference;
let wasm: Reference;
const pages = new Map<string, Page>();
const measured: Record<string, number> = {};

/** Opens the example page with `query` (once per query) and waits until its model is ready. */
async function openPage(query = ""): Promise<Page> {
  const open = pages.get(query);
  if (open) return open;
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  await page.goto(`${server.url}examples/browser/${query}`);
  try {
    await page.evaluate(() => (globalThis as unknown as { underhoodExample: { ready: Promise<void> } }).underhoodExample.ready);
  } catch (error) {
    throw new Error(`The page ${query || "(default)"} did not start: ${(error as Error).message}. ${problems.join(" ")}`);
  }
  await page.addScriptTag({ content: readFileSync(CHECKS_SCRIPT, "utf8") });
  pages.set(query, page);
  return page;
}

/** Calls one function of page_checks.js in the page. */
async function check<T>(page: Page, name: string, ...params: unknown[]): Promise<T> {
  return await page.evaluate(
    ({ name, params }) => {
      const checks = (globalThis as unknown as { underhoodChecks: Record<string, (...a: unknown[]) => unknown> })
        .underhoodChecks;
      return checks[name]!(...params);
    },
    { name, params },
  ) as T;
}

function decodeFloats(base64: string): Float32Array {
  const bytes = Buffer.from(base64, "base64");
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assertEquals(a.length, b.length, "logit count");
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

async function pageLogits(page: Page): Promise<Float32Array> {
  const { shape, base64 } = await check<{ shape: number[]; base64: string }>(page, "logits", PROMPT);
  assertEquals(shape, cpu.shape, "logits shape");
  return decodeFloats(base64);
}

// ---- Tests.

test("bundle has no Node imports", () => {
  // buildBrowser() fails on a Node import it does not stub; this checks its output as well.
  const bundle = readFileSync(build.bundle, "utf8");
  assert(!/from\s*"node:|import\s*\(\s*"node:|require\(\s*"node:/.test(bundle), "the bundle imports a node: module");
  assert(bundle.length > 100_000, `the bundle has only ${bundle.length} characters`);
  console.log(`        ${build.bundle}: ${(build.bytes / 1e6).toFixed(2)} MB; Node imports stubbed: ${build.stubbed.join(", ")}`);
  assertEquals(build.wasm.length, 3, "copied .wasm files");
  for (const wasmFile of build.wasm) assert(existsSync(wasmFile), `${wasmFile} was not copied`);
});

test("page computes on webgl", async () => {
  const info = await check<{ backend: string; labelBackend: string; label: string }>(await openPage(), "backendInfo");
  assertEquals(info.backend, "webgl", "tf.getBackend() in the page");
  assertEquals(info.labelBackend, "webgl", "the backend label");
  assert(info.label.includes("webgl"), `the label reads "${info.label}"`);
});

test("webgl logits match cpu", async () => {
  const logits = await pageLogits(await openPage());
  const diff = maxAbsDiff(logits, cpu.logits);
  measured["webgl vs cpu, max logit difference"] = diff;
  measured["webgl vs wasm (Node), max logit difference"] = maxAbsDiff(logits, wasm.logits);
  measured["wasm (Node) vs cpu, max logit difference"] = maxAbsDiff(wasm.logits, cpu.logits);
  assert(diff <= LOGIT_TOLERANCE, `max |webgl - cpu| = ${diff}, over ${LOGIT_TOLERANCE}`);
});

test("webgl greedy ids match cpu", async () => {
  const ids = await check<number[]>(await openPage(), "generateIds", PROMPT, GREEDY);
  assertEquals(ids, cpu.greedy, "greedy ids on webgl vs cpu");
  assertEquals(cpu.greedy, wasm.greedy, "greedy ids on cpu vs wasm in Node");
});

test("webgl seeded samples match cpu and wasm", async () => {
  const ids = await check<number[]>(await openPage(), "generateIds", PROMPT, SAMPLED);
  assertEquals(ids, cpu.sampled, "seeded samples on webgl vs cpu");
  assertEquals(ids, wasm.sampled, "seeded samples on webgl vs wasm");
});

test("masked softmax rows on webgl", async () => {
  const { layers, handMade } = await check<{
    layers: Array<{ layer: number; cells: number; maxAbove: number; maskedScoresAllNegInf: boolean; maxRowSumError: number; allInUnitRange: boolean }>;
    handMade: number[];
  }>(await openPage(), "maskedSoftmax", PROMPT);
  assertEquals(layers.length, 4, "layers checked");
  for (const layer of layers) {
    assert(layer.cells > 0, `layer ${layer.layer}: no pattern values`);
    assertEquals(layer.maxAbove, 0, `layer ${layer.layer}: largest pattern value above the diagonal`);
    assert(layer.maskedScoresAllNegInf, `layer ${layer.layer}: a masked score is not -Infinity`);
    assert(layer.allInUnitRange, `layer ${layer.layer}: a pattern value is outside [0, 1] or NaN`);
    assert(layer.maxRowSumError <= 1e-5, `layer ${layer.layer}: a row sums to 1 +- ${layer.maxRowSumError}`);
  }
  // Row 0: [0.5, -inf, -inf, -inf] -> [1, 0, 0, 0]. Row 1: [2, 1, -inf, -inf]. Row 2 masks with -1e9.
  assertEquals(handMade.slice(0, 4), [1, 0, 0, 0], "softmax of a row masked with -Infinity");
  assertEquals(handMade.slice(6, 8), [0, 0], "masked entries of the second row");
  assert(Math.abs(handMade[4]! - 1 / (1 + Math.exp(-1))) < 1e-6, `second row, first entry ${handMade[4]}`);
  assert(handMade.every((v) => v >= 0 && v <= 1), `a hand-made softmax value is outside [0, 1]: ${handMade}`);
});

test("positions past nCtx raise RangeError", async () => {
  const { cases, rawGather } = await check<{
    cases: Record<string, { name: string; isRangeError: boolean; message: string } | null>;
    rawGather: { threw: boolean; allZero?: boolean; message?: string };
  }>(await openPage(), "positionErrors");
  for (const [name, expected] of Object.entries(cpu.positionErrors)) {
    const error = cases[name];
    assert(error != null, `${name}: nothing was thrown on webgl`);
    assert(error.isRangeError, `${name}: expected a RangeError on webgl, got ${error.name}: ${error.message}`);
    assertEquals(error.message, expected, `${name}: message on webgl vs cpu`);
  }
  // Recorded, not required: it shows why the positions are checked in JavaScript.
  console.log(`        raw webgl gather of row nCtx: ${JSON.stringify(rawGather)}`);
});

test("texture limit: predicate matches tfjs", async () => {
  const page = await openPage();
  const info = await check<{ maxTextureSize: number }>(page, "backendInfo");
  measured["device WEBGL_MAX_TEXTURE_SIZE"] = info.maxTextureSize;
  assert(info.maxTextureSize >= 4096, `MAX_TEXTURE_SIZE ${info.maxTextureSize}`);
  // The default model (50257 x 128) needs 2537 texels a side; GPT-2 small (50257 x 768) needs 6213.
  assertEquals(await check(page, "textureProblem", 50257, 128, 4096), null, "default model at 4096");
  assertEquals(await check(page, "textureProblem", 50257, 768, 8192), null, "GPT-2 small at 8192");
  const small4096 = await check<string | null>(page, "textureProblem", 50257, 768, 4096);
  assert(small4096?.includes("6213x6213") === true, `GPT-2 small at 4096: ${small4096}`);
  const default2048 = await check<string | null>(page, "textureProblem", 50257, 128, 2048);
  assert(default2048?.includes("2537x2537") === true, `default model at 2048: ${default2048}`);
});

test("texture limit 4096: model and vocabulary products", async () => {
  const page = await openPage("?maxTexture=4096");
  const info = await check<{ backend: string; maxTextureSize: number }>(page, "backendInfo");
  assertEquals(info.backend, "webgl", "backend with a 4096 limit");
  assertEquals(info.maxTextureSize, 4096, "the lowered limit");

  const diff = maxAbsDiff(await pageLogits(page), cpu.logits);
  measured["webgl at MAX_TEXTURE_SIZE 4096 vs cpu, max logit difference"] = diff;
  assert(diff <= LOGIT_TOLERANCE, `max |webgl(4096) - cpu| = ${diff}`);

  // GPT-2 small's unembedding in both orientations fits, because tfjs packs matmul inputs. The
  // row gather of the same matrix does not, which webglTextureProblem predicts.
  const products = await check<Record<string, { ok: boolean; maxDiff?: number; message?: string }>>(
    page,
    "vocabularyProducts",
  );
  for (const name of ["xTimesWU", "rowsOfWUT"]) {
    const result = products[name]!;
    assert(result.ok, `${name} at 4096: ${result.message}`);
    assert(result.maxDiff! <= LOGIT_TOLERANCE, `${name} at 4096: max difference ${result.maxDiff}`);
  }
  assert(!products["gatherRows"]!.ok, "a [50257, 768] gather at 4096 was expected to exceed the texture limit");
  assert(products["gatherRows"]!.message!.includes("6213x6213"), products["gatherRows"]!.message!);
  const gather128 = await check<{ ok: boolean; message?: string }>(page, "gatherWorks", 50257, 128);
  assert(gather128.ok, `a [50257, 128] gather at 4096: ${gather128.message}`);
});

test("texture limit 2048: falls back to wasm", async () => {
  const page = await openPage("?maxTexture=2048");
  const info = await check<{ backend: string; labelBackend: string; label: string; selection: { failures: Array<{ backend: string; message: string }> } }>(
    page,
    "backendInfo",
  );
  assertEquals(info.backend, "wasm", "backend when the embedding does not fit");
  assertEquals(info.labelBackend, "wasm", "the backend label");
  assert(info.label.includes("fallback from webgl"), `the label reads "${info.label}"`);
  assertEquals(info.selection.failures[0]?.backend, "webgl", "the skipped backend");
  assert(info.selection.failures[0]!.message.includes("2537x2537"), info.selection.failures[0]!.message);

  // Asked for explicitly, WebGL is not swapped for wasm: loading raises a RangeError instead.
  const error = await check<{ isRangeError: boolean; message: string } | null>(page, "loadModelError", { backend: "webgl" });
  assert(error !== null, "loading on webgl with a 2048 limit did not fail");
  assert(error.isRangeError, `expected a RangeError, got: ${error.message}`);
  assert(error.message.includes("2537x2537"), error.message);
});

test("wasm fallback without WebGL", async () => {
  const page = await openPage("?webgl=off");
  const info = await check<{ backend: string; labelBackend: string; selection: { failures: Array<{ backend: string }> } }>(
    page,
    "backendInfo",
  );
  assertEquals(info.backend, "wasm", "backend without WebGL");
  assertEquals(info.labelBackend, "wasm", "the backend label");
  assertEquals(info.selection.failures.map((f) => f.backend), ["webgl"], "backends skipped");

  const diff = maxAbsDiff(await pageLogits(page), cpu.logits);
  measured["browser wasm vs cpu, max logit difference"] = diff;
  assert(diff <= LOGIT_TOLERANCE, `max |browser wasm - cpu| = ${diff}`);
  assertEquals(await check(page, "generateIds", PROMPT, GREEDY), cpu.greedy, "greedy ids on browser wasm vs cpu");
  assertEquals(await check(page, "generateIds", PROMPT, SAMPLED), cpu.sampled, "seeded samples on browser wasm vs cpu");
});

test("screenshot after generation", async () => {
  const page = await openPage();
  await page.setViewportSize({ width: 1100, height: 900 });
  await page.click("#generate");
  await page.waitForFunction(
    () => {
      const example = (globalThis as unknown as { underhoodExample: { lastGeneration: unknown } }).underhoodExample;
      return document.body.dataset["busy"] === "false" && example.lastGeneration !== null;
    },
    undefined,
    { timeout: 120_000 },
  );
  const continuation = await page.textContent("#continuation");
  assert(continuation !== null, "the continuation element is missing");
  assert(continuation.length > PROMPT.length, `the continuation adds nothing to the prompt: ${continuation}`);
  const status = await page.textContent("#status");
  assert(status?.includes("on webgl") === true, `status line: ${status}`);

  const png = await page.screenshot({ fullPage: true });
  writeFileSync(screenshotPath, png);
  const image = PNG.sync.read(png);
  const colors = new Set<number>();
  let nonWhite = 0;
  for (let i = 0; i < image.data.length; i += 4) {
    const [r, g, b] = [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!];
    colors.add((r << 16) | (g << 8) | b);
    if (r < 250 || g < 250 || b < 250) nonWhite++;
  }
  const pixels = image.width * image.height;
  console.log(`        screenshot ${screenshotPath}: ${image.width}x${image.height}, ${colors.size} colors, ${(100 * nonWhite / pixels).toFixed(1)}% not white`);
  assert(colors.size >= 50, `the screenshot has only ${colors.size} colors`);
  assert(nonWhite / pixels >= 0.05, `only ${(100 * nonWhite / pixels).toFixed(1)}% of the screenshot is not white`);
});

// ---- Runner.

const executablePath = process.env["CHROMIUM"] ?? "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(`Chromium not found at ${executablePath}. Install Debian's chromium package, or set CHROMIUM.`);
  process.exit(1);
}

const started = performance.now();
build = await buildBrowser();
server = await startServer();
cpu = await nodeReference("cpu");
wasm = await nodeReference("wasm");
userDataDir = mkdtempSync(join(tmpdir(), "underhood-chromium-"));
context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    // SwiftShader's software WebGL, which Chromium no longer enables on its own.
    "--enable-unsafe-swiftshader",
  ],
});

const selected = registeredTests().filter((t) => filters.length === 0 || filters.some((f) => t.name.includes(f)));
console.log(`underhood browser tests: ${selected.length} in ${context.browser()?.version() ?? "chromium"} (${executablePath})`);
let failed = 0;
try {
  for (const t of selected) {
    const t0 = performance.now();
    try {
      await t.fn();
      console.log(`  ok    ${t.name} (${(performance.now() - t0).toFixed(0)} ms)`);
    } catch (error) {
      failed++;
      console.log(`  FAIL  ${t.name}\n        ${(error as Error).stack ?? error}`);
    }
  }
} finally {
  await context.close();
  await server.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
for (const [what, value] of Object.entries(measured)) console.log(`  measured: ${what} = ${value}`);
console.log(`${selected.length - failed} passed, ${failed} failed (chromium, ${((performance.now() - started) / 1000).toFixed(1)} s)`);
process.exit(failed > 0 ? 1 : 0);
