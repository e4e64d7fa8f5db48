/**
 * Profiles the kernels of a forward pass and of one decode step on the GPT-2-small-shaped model:
 * time per tfjs kernel, summed by kernel name and by shape for matmuls. The time outside kernels
 * (JS, tidy, tensor bookkeeping) is the wall time minus the kernel sum.
 *
 * Usage: profile.ts [--tokens N] [--past N] [--threads N] [--top N]
 */
import * as tf from "@tensorflow/tfjs-core";
import { setBackend } from "../src/backend.ts";
import { Model } from "../src/model.ts";
import { buildGpt2Small, randomIds } from "./gpt2_small.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const tokens = option("--tokens", 64);
const pastLength = option("--past", 128);
const threads = option("--threads", 0);
const top = option("--top", 12);

await setBackend("wasm", threads > 0 ? { fallback: false, threads } : { fallback: false });
const model = new Model(buildGpt2Small(1));

async function profile(label: string, fn: () => tf.Tensor | { dispose(): void }): Promise<void> {
  fn().dispose(); // warm: pack weights, grow the heap
  const t0 = performance.now();
  fn().dispose();
  const wall = performance.now() - t0;
  const info = await tf.profile(() => {
    const out = fn();
    out.dispose();
    return [];
  });
  const byName = new Map<string, { ms: number; n: number }>();
  let kernelMs = 0;
  for (const k of info.kernels) {
    // Names ending in "__op" are op wrappers whose time includes the kernels inside them.
    if (k.name.endsWith("__op")) continue;
    const ms = typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
    kernelMs += ms;
    const shapes = k.inputShapes.map((s) => `[${s?.join(",") ?? ""}]`).join("x");
    const key = k.name === "BatchMatMul" || k.name === "_FusedMatMul" ? `${k.name} ${shapes}` : k.name;
    const entry = byName.get(key) ?? { ms: 0, n: 0 };
    entry.ms += ms;
    entry.n += 1;
    byName.set(key, entry);
  }
  console.log(`\n${label}: wall ${wall.toFixed(1)} ms, ${info.kernels.length} kernels, kernel time ${kernelMs.toFixed(1)} ms`);
  const rows = [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, top);
  for (const [key, { ms, n }] of rows) console.log(`  ${ms.toFixed(2).padStart(9)} ms  ${String(n).padStart(5)}×  ${key}`);
}

const ids = randomIds(2, tokens);
await profile(`forward ${tokens} tokens`, () => model.forward(ids));
await profile(`runWithCache ${tokens} tokens`, () => {
  const { logits, cache } = model.runWithCache(ids);
  return { dispose: () => (logits.dispose(), cache.dispose()) };
});
const prompt = model.forwardIncremental(randomIds(3, pastLength), undefined);
prompt.logits.dispose();
await profile(`decode step after ${pastLength} tokens`, () => {
  const step = model.forwardIncremental(Int32Array.of(11), prompt.cache);
  return { dispose: () => (step.logits.dispose(), step.cache.dispose()) };
});
prompt.cache.dispose();
model.dispose();
process.exit(0);
