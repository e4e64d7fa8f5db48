/**
 * Times greedy decoding alone on the GPT-2-small-shaped model: a 16-token prompt, then
 * `--tokens` new tokens, `--reps` times. Prints `BENCH_RESULT {json}`. For quick before/after
 * checks of the decode loop; bench/run.ts is the full benchmark.
 */
import { setBackend } from "../src/backend.ts";
import { generate } from "../src/generate.ts";
import { Model } from "../src/model.ts";
import { buildGpt2Small, randomIds } from "./gpt2_small.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const threads = option("--threads", 0);
const tokens = option("--tokens", 64);
const reps = option("--reps", 3);
await setBackend("wasm", threads > 0 ? { fallback: false, threads } : { fallback: false });
const model = new Model(buildGpt2Small(1));
const prompt = randomIds(4, 16);
const tokPerS: number[] = [];
const cpuMsPerToken: number[] = [];
for (let r = 0; r <= reps; r++) {
  let first = 0;
  let last = 0;
  let cpuFirst = 0;
  let cpuLast = 0;
  await generate(model, prompt, {
    maxNewTokens: tokens,
    temperature: 0,
    stopAtEndOfText: false,
    onToken: (step) => {
      last = performance.now();
      const cpu = process.cpuUsage();
      cpuLast = (cpu.user + cpu.system) / 1000;
      if (step.position === prompt.length) {
        first = last;
        cpuFirst = cpuLast;
      }
    },
  });
  if (r > 0) {
    tokPerS.push(((tokens - 1) * 1000) / (last - first));
    cpuMsPerToken.push((cpuLast - cpuFirst) / (tokens - 1));
  }
}
// CPU time per token is steadier than wall time on a shared machine, for one thread.
console.log(`BENCH_RESULT ${JSON.stringify({ tokPerS, cpuMsPerToken })}`);
process.exit(0);
