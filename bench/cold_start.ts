/**
 * Cold start in a fresh process: import underhood, load the default model, sample the first
 * token. Prints `BENCH_RESULT {json}`. performance.now() counts from the start of the process,
 * so `sinceProcessStartMs` includes the runtime's own start-up (and tsx's on Node).
 */
function runtimeName(): string {
  if ("Deno" in globalThis) return "deno";
  if ("Bun" in globalThis) return "bun";
  return "node";
}

const t0 = performance.now();
const { generate, loadModel } = await import("../mod.ts");
const t1 = performance.now();
const model = await loadModel();
const t2 = performance.now();
const out = await generate(model, "ROMEO:", { maxNewTokens: 1, temperature: 0, seed: 1 });
const t3 = performance.now();
model.dispose();
const result = {
  runtime: runtimeName(),
  importMs: t1 - t0,
  loadMs: t2 - t1,
  firstTokenMs: t3 - t2,
  totalMs: t3 - t0,
  sinceProcessStartMs: t3,
  token: out.ids[0],
};
console.log(`BENCH_RESULT ${JSON.stringify(result)}`);
process.exit(0);
