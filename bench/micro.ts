/**
 * Kernel-level comparisons behind the optimisations in src/stages: each pair computes the same
 * values two ways on the wasm backend, in the same process, on GPT-2-small shapes. Prints the
 * median time of each way and their ratio.
 *
 * Usage: micro.ts [--threads N] [--reps N]
 */
import * as tf from "@tensorflow/tfjs-core";
import { setBackend, wasmThreadCount } from "../src/backend.ts";
import { splitHeads } from "../src/stages/_contiguous.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const threads = option("--threads", 0);
const reps = option("--reps", 7);
await setBackend("wasm", threads > 0 ? { fallback: false, threads } : { fallback: false });
console.log(`wasm threads: ${wasmThreadCount()}`);

/** Median milliseconds of `fn` over `reps` runs, after one untimed run. */
function time(fn: () => tf.Tensor | tf.Tensor[]): number {
  const run = () => {
    const out = fn();
    for (const t of Array.isArray(out) ? out : [out]) t.dispose();
  };
  run();
  const samples: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    run();
    samples.push(performance.now() - t0);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1]!;
}

function compare(label: string, before: string, fnBefore: () => tf.Tensor | tf.Tensor[], after: string, fnAfter: () => tf.Tensor | tf.Tensor[]) {
  const a = time(fnBefore);
  const b = time(fnAfter);
  console.log(`${label.padEnd(34)} ${before}: ${a.toFixed(2).padStart(8)} ms   ${after}: ${b.toFixed(2).padStart(8)} ms   ${(a / b).toFixed(2)}x`);
}

const D = 768;
const V = 50257;
const H = 12;
const dHead = 64;
const W_E = tf.randomUniform([V, D], -0.03, 0.03) as tf.Tensor2D;
const W_U = tf.transpose(W_E) as tf.Tensor2D;

// Unembedding: x @ W_U streams W_U once per few rows of x; W_E @ x^T streams W_E once.
for (const T of [1, 4, 8, 64, 512]) {
  const x = tf.randomNormal([T, D]) as tf.Tensor2D;
  compare(
    `unembed, ${T} positions`,
    "x @ W_U",
    () => tf.matMul(x, W_U),
    "(W_E @ x^T)^T",
    () => tf.tidy(() => tf.transpose(tf.matMul(W_E, tf.transpose(x)))),
  );
  x.dispose();
}

// Attention products: one batched matmul (scalar loop in tfjs-backend-wasm) against one 2-D
// XNNPACK matmul per head.
for (const T of [64, 512]) {
  const q = tf.randomNormal([H, T, dHead]) as tf.Tensor3D;
  const kT = tf.randomNormal([H, dHead, T]) as tf.Tensor3D;
  compare(
    `q @ k^T, ${T} positions`,
    "batched",
    () => tf.matMul(q, kT),
    "per head",
    () =>
      tf.tidy(() => {
        const qs = splitHeads(q);
        const ks = splitHeads(kT);
        return tf.stack(qs.map((qh, h) => tf.matMul(qh, ks[h]!)));
      }),
  );
  const pattern = tf.randomUniform([H, T, T]) as tf.Tensor3D;
  compare(`split [12, ${T}, ${T}] by head`, "tf.unstack", () => tf.unstack(pattern), "splitHeads", () => splitHeads(pattern));
  q.dispose();
  kT.dispose();
  pattern.dispose();
}

// Single-token decoding: the batched product is small, so one call beats 12 XNNPACK operators.
for (const P of [144, 1024]) {
  const q = tf.randomNormal([H, 1, dHead]) as tf.Tensor3D;
  const kT = tf.randomNormal([H, dHead, P]) as tf.Tensor3D;
  compare(
    `decode q @ k^T, ${P} keys`,
    "per head",
    () =>
      tf.tidy(() => {
        const ks = splitHeads(kT);
        return tf.stack(splitHeads(q).map((qh, h) => tf.matMul(qh, ks[h]!)));
      }),
    "batched",
    () => tf.matMul(q, kT),
  );
  q.dispose();
  kT.dispose();
}

// A block matmul of a 512-token prompt, for the effect of --threads.
const x = tf.randomNormal([512, D]) as tf.Tensor2D;
const W_in = tf.randomNormal([D, 4 * D]) as tf.Tensor2D;
const ms = time(() => tf.matMul(x, W_in));
console.log(`matmul [512, 768] @ [768, 3072]: ${ms.toFixed(2)} ms, ${((2 * 512 * D * 4 * D) / ms / 1e6).toFixed(1)} GFLOP/s`);
process.exit(0);
