/**
 * Offline export check: exports an executed notebook to HTML with nbconvert, opens the file in
 * headless Chromium with every non-file request aborted, and checks that each figure was drawn
 * by plotly.js and that the attention figure's screenshot is not blank.
 *
 * Usage: npx tsx test/notebooks/export_check.ts EXECUTED.ipynb [--out DIR] [--docs PNG]
 *   --out   folder for the HTML export and the screenshots (default: a new temporary folder)
 *   --docs  also copy the attention figure's screenshot to this path (for docs/)
 *
 * Needs Chromium at /usr/bin/chromium (Debian's chromium package; CHROMIUM overrides the path)
 * and nbconvert (python3-nbconvert). Prints one line per check, then "N passed, N failed".
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { PNG } from "pngjs";

/** The figure whose screenshot is checked for pixels: one head's attention pattern. */
const ATTENTION_TITLE = /^Attention pattern, layer \d+ head \d+/;
/** Share of the figure's pixels that must differ from white for it to count as drawn. */
const MIN_INK = 0.05;
/** Time plotly.js may take to draw every figure, in milliseconds. */
const DRAW_TIMEOUT_MS = 90_000;

const args = process.argv.slice(2);
const notebook = args.find((a, i) => !a.startsWith("--") && !["--out", "--docs"].includes(args[i - 1] ?? ""));
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
if (!notebook) {
  console.error("Usage: export_check.ts EXECUTED.ipynb [--out DIR] [--docs PNG]");
  process.exit(2);
}
const outDir = resolve(option("--out") ?? mkdtempSync(join(tmpdir(), "underhood-export-")));
mkdirSync(outDir, { recursive: true });

const results: Array<{ ok: boolean; description: string }> = [];
function check(ok: boolean, description: string): void {
  results.push({ ok, description });
  console.log(`${ok ? "ok  " : "FAIL"}  ${description}`);
}

// 1. Export with nbconvert.
const pythonRunner = fileURLToPath(new URL("../../scripts/notebooks/python.mjs", import.meta.url));
const python = spawnSync("node", [pythonRunner,
  "-m", "nbconvert", "--to", "html", "--output-dir", outDir, resolve(notebook)], { encoding: "utf8" });
const htmlPath = join(outDir, basename(notebook).replace(/\.ipynb$/, ".html"));
check(python.status === 0, `nbconvert exported ${basename(notebook)} to ${htmlPath}` +
  (python.status === 0 ? "" : `: ${python.stderr.trim().split("\n").slice(-3).join(" ")}`));
if (python.status !== 0) finish();
check(!/src="https?:\/\/[^"]*plotly/i.test(readFileSync(htmlPath, "utf8")), "the export loads plotly.js from no URL");

// 2. Open it from a file, offline.
const profile = mkdtempSync(join(tmpdir(), "underhood-chromium-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1400, height: 1000 },
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
try {
  const page = await browser.newPage();
  const blocked: string[] = [];
  await page.route(/^(?!file:)/, (route) => {
    blocked.push(route.request().url());
    return route.abort();
  });
  const pageErrors: string[] = [];
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(pathToFileURL(htmlPath).href, { waitUntil: "load", timeout: 60_000 });

  // 3. Every figure must be replaced by plotly's drawing.
  const figureCount = await page.locator(".underhood-figure").count();
  check(figureCount > 0, `the export has figures (${figureCount})`);
  const drawn = await page
    .waitForFunction(
      (n) => document.querySelectorAll(".underhood-figure[data-drawn] .main-svg").length >= n,
      figureCount,
      { timeout: DRAW_TIMEOUT_MS, polling: 250 },
    )
    .then(() => true, () => false);
  const drawnCount = await page.locator(".underhood-figure[data-drawn]").count();
  check(drawn, `plotly.js drew every figure offline (${drawnCount} of ${figureCount})`);
  check(pageErrors.length === 0, `no script errors on the page${pageErrors.length ? `: ${pageErrors[0]}` : ""}`);
  console.log(`      requests aborted (not files): ${blocked.length}${blocked.length ? `, e.g. ${blocked[0]}` : ""}`);

  // 4. Screenshot the attention figure and count its non-white pixels.
  const figure = page.locator(".underhood-figure", { has: page.locator(".gtitle", { hasText: ATTENTION_TITLE }) }).first();
  const found = (await figure.count()) > 0;
  check(found, `a figure whose title matches ${ATTENTION_TITLE} is on the page`);
  if (found) {
    const shapes = await figure.locator(".main-svg path, .main-svg rect, .main-svg image").count();
    check(shapes > 10, `its plotly SVG has drawn elements (${shapes})`);
    const pngPath = join(outDir, "attention-figure.png");
    await figure.scrollIntoViewIfNeeded();
    await figure.screenshot({ path: pngPath });
    const png = PNG.sync.read(readFileSync(pngPath));
    let ink = 0;
    for (let i = 0; i < png.data.length; i += 4) {
      const [r, g, b] = [png.data[i]!, png.data[i + 1]!, png.data[i + 2]!];
      if (r < 235 || g < 235 || b < 235) ink++;
    }
    const share = ink / (png.width * png.height);
    check(share >= MIN_INK, `its screenshot is not blank: ${(100 * share).toFixed(1)}% of ${png.width}×${png.height} pixels are not white (need ${100 * MIN_INK}%), ${pngPath}`);
    const docs = option("--docs");
    if (docs) {
      mkdirSync(dirname(resolve(docs)), { recursive: true });
      copyFileSync(pngPath, docs);
      console.log(`      copied to ${docs}`);
    }
  }
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
finish();

function finish(): never {
  const failed = results.filter((r) => !r.ok).length;
  console.log(`${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
