/**
 * One benchmark process: builds the GPT-2-small-shaped model in memory, times the forward
 * pass, runWithCache and generation, then times each stage call on the default model, and
 * prints one line `BENCH_RESULT {json}` on stdout. bench/run.ts starts it under each runtime.
 *
 * Usage: measure.ts [--seed N] [--reps N] [--long-reps N] [--threads N] [--skip-stages]
 */
import { readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs-core";
import { setBackend, wasmThreadCount } from "../src/backend.ts";
import { generate } from "../src/generate.ts";
import { loadModel } from "../src/load_model.ts";
import { Model } from "../src/model.ts";
import { buildGpt2Small, randomIds, weightSize } from "./gpt2_small.ts";

const args = process.argv.slice(2);
function option(name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}
const seed = option("--seed", 1);
const reps = option("--reps", 5);
const longReps = option("--long-reps", 3);
const threads = option("--threads", 0);
const skipStages = args.includes("--skip-stages");

/** Peak resident set size of this process in bytes, from /proc (Linux), else the runtime's own figure. */
function peakRss(): number {
  try {
    const status = readFileSync("/proc/self/status", "utf8");
    const kb = /VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1];
    if (kb) return Number(kb) * 1024;
  } catch {
    // Not Linux: fall through.
  }
  return process.resourceUsage().maxRSS * 1024;
}

function currentRss(): number {
  return process.memoryUsage().rss;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs `fn` once untimed, then `n` times, and returns each duration in milliseconds. */
function timeEach(n: number, fn: () => void): number[] {
  fn();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    out.push(performance.now() - t0);
  }
  return out;
}

/** Collects garbage where the runtime allows it from script code (Bun; Node and Deno only with --expose-gc). */
function collectGarbage(): void {
  const bun = (globalThis as { Bun?: { gc(sync: boolean): void } }).Bun;
  if (bun) bun.gc(true);
  else (globalThis as { gc?: () => void }).gc?.();
}

function runtimeName(): string {
  if ("Deno" in globalThis) return "deno";
  if ("Bun" in globalThis) return "bun";
  return "node";
}

const runtime = runtimeName();
const result: Record<string, unknown> = { runtime, seed, reps, longReps, threads };

await setBackend("wasm", threads > 0 ? { fallback: false, threads } : { fallback: false });
result.backend = tf.getBackend();
result.wasmThreads = wasmThreadCount();

// Build the host weights, then upload them.
let t0 = performance.now();
let checkpoint: ReturnType<typeof buildGpt2Small> | undefined = buildGpt2Small(seed);
result.buildMs = performance.now() - t0;
const size = weightSize(checkpoint);
result.params = size.params;
result.weightBytes = size.bytes;

t0 = performance.now();
// The Model releases the host arrays as it uploads them, as loadModel does.
const model = new Model(checkpoint, undefined, { releaseHostWeights: true });
result.uploadMs = performance.now() - t0;
checkpoint = undefined;
collectGarbage();
result.rssAfterLoad = currentRss();

const ids64 = randomIds(seed + 1, 64);
const ids512 = randomIds(seed + 2, 512);
const ids16 = randomIds(seed + 3, 16);

// The wasm backend runs every op synchronously, so the logits are computed when forward()
// returns. Reading them out (103 MB for 512 positions) is left out of the timing, as PyTorch's
// timing leaves it out too.
const forwardOnce = (ids: Int32Array) => model.forward(ids);

// The first forward pass after loading, then warm ones.
t0 = performance.now();
const first = forwardOnce(ids64);
result.firstForward64Ms = performance.now() - t0;
const [nPos, dVocab] = first.shape;
result.lastLogits = Array.from(first.dataSync().subarray((nPos - 1) * dVocab, (nPos - 1) * dVocab + 8));
first.dispose();
result.rssAfterFirstForward = currentRss();

result.forward64Ms = timeEach(reps, () => forwardOnce(ids64).dispose());
result.forward512Ms = timeEach(longReps, () => forwardOnce(ids512).dispose());
result.runWithCache64Ms = timeEach(reps, () => {
  const { logits, cache } = model.runWithCache(ids64);
  logits.dispose();
  cache.dispose();
});
// Plain forward again, interleaved, so the overhead ratio does not depend on drift.
result.forward64AfterCacheMs = timeEach(reps, () => forwardOnce(ids64).dispose());

// Generation with the KV cache: greedy, 16-token prompt, 128 new tokens.
const newTokens = 128;
const generationMs: number[] = [];
const decodeTokPerS: number[] = [];
for (let i = 0; i < Math.max(1, longReps - 1); i++) {
  let firstTokenAt = 0;
  let lastTokenAt = 0;
  const g0 = performance.now();
  await generate(model, ids16, {
    maxNewTokens: newTokens,
    temperature: 0,
    stopAtEndOfText: false,
    onToken: (step) => {
      const now = performance.now();
      if (step.position === ids16.length) firstTokenAt = now;
      lastTokenAt = now;
    },
  });
  generationMs.push(performance.now() - g0);
  decodeTokPerS.push(((newTokens - 1) * 1000) / (lastTokenAt - firstTokenAt));
}
result.generationMs = generationMs;
result.generationTokPerS = generationMs.map((ms) => (newTokens * 1000) / ms);
result.decodeTokPerS = decodeTokPerS;
result.tensorsLeft = tf.memory().numTensors;
model.dispose();
result.peakRssModel = peakRss();

// Each stage call on the default model, on a 32-token prompt.
if (!skipStages) {
  const small = await loadModel();
  const ids = randomIds(seed + 4, 32, small.config.dVocab);
  const e = small.embed(ids);
  const a = small.attentionBlock(0, e.residual);
  const m = small.mlpBlock(0, a.residOut);
  const stageReps = Math.max(reps * 4, 20);
  const stages: Record<string, number[]> = {
    embed: timeEach(stageReps, () => small.embed(ids).dispose()),
    ln1: timeEach(stageReps, () => small.ln1(0, e.residual).dispose()),
    attentionBlock: timeEach(stageReps, () => small.attentionBlock(0, e.residual).dispose()),
    ln2: timeEach(stageReps, () => small.ln2(0, a.residOut).dispose()),
    mlpBlock: timeEach(stageReps, () => small.mlpBlock(0, a.residOut).dispose()),
    lnFinal: timeEach(stageReps, () => small.lnFinal(m.residOut).dispose()),
    unembed: timeEach(stageReps, () => small.unembed(m.residOut).dispose()),
    "unembed+topK": timeEach(stageReps, () => {
      const u = small.unembed(m.residOut);
      u.topK(10);
      u.dispose();
    }),
    forward: timeEach(stageReps, () => small.forward(ids).dispose()),
  };
  result.stagesMs = Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, median(v)]));
  result.stagesMaxMs = Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, Math.max(...v)]));
  m.dispose();
  a.dispose();
  e.dispose();
  small.dispose();
}

result.peakRss = peakRss();
console.log(`BENCH_RESULT ${JSON.stringify(result)}`);
process.exit(0);
