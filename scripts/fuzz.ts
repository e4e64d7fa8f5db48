/**
 * Fuzzes the checkpoint loader with seeded mutations of the fixture checkpoints and prints a
 * summary table by mutation class. Exits 1 when any case has an unexpected outcome.
 *
 * Usage: fuzz.ts [--count N] [--seed S] [--only I] [--backend cpu|wasm]
 *   --count    number of cases (default 10000)
 *   --seed     run seed, a non-negative integer (default 1)
 *   --only     run only case I of the seed, to reproduce it (prints its mutation and outcome)
 *   --backend  tfjs backend for the forward passes (default wasm)
 */
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type BackendName, setBackend } from "../src/backend.ts";
import { formatReport, runFuzz } from "./_fuzz.ts";

const USAGE = "Usage: fuzz.ts [--count N] [--seed S] [--only I] [--backend cpu|wasm]";

function parseArgs(args: string[]): { count: number; seed: number; only?: number; backend: BackendName } {
  const values: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    if (flag === "--help" || flag === "-h") {
      console.log(USAGE);
      process.exit(0);
    }
    if (!["--count", "--seed", "--only", "--backend"].includes(flag) || args[i + 1] === undefined) {
      throw new RangeError(`Invalid argument ${JSON.stringify(flag)}. ${USAGE}`);
    }
    values[flag.slice(2)] = args[++i]!;
  }
  const integer = (name: string, fallback: number): number => {
    const text = values[name];
    if (text === undefined) return fallback;
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
      throw new RangeError(`Invalid --${name} ${JSON.stringify(text)}: expected a non-negative integer.`);
    }
    return Number(text);
  };
  const backend = values["backend"] ?? "wasm";
  if (backend !== "cpu" && backend !== "wasm") {
    throw new RangeError(`Invalid --backend ${JSON.stringify(backend)}: expected cpu or wasm.`);
  }
  const parsed: { count: number; seed: number; only?: number; backend: BackendName } = {
    count: integer("count", 10_000),
    seed: integer("seed", 1),
    backend,
  };
  if (values["only"] !== undefined) parsed.only = integer("only", 0);
  return parsed;
}

let options: ReturnType<typeof parseArgs>;
try {
  options = parseArgs(process.argv.slice(2));
} catch (error) {
  console.error((error as Error).message);
  process.exit(2);
}

const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), "..", "test", "fixtures");
const backend = await setBackend(options.backend, { fallback: false });
const runOptions: Parameters<typeof runFuzz>[0] = {
  count: options.count,
  seed: options.seed,
  fixturesDir,
  onCase: (result) => {
    if (options.only !== undefined) {
      console.log(
        `#${result.index} [${result.base}, ${result.mutationClass}, expect ${result.expect}] ${result.description}`,
      );
      console.log(`    ${result.outcome}: ${result.detail} (${result.milliseconds.toFixed(0)} ms)`);
    } else if ((result.index + 1) % 1000 === 0) {
      console.error(`  ${result.index + 1} cases done`);
    }
  },
};
if (options.only !== undefined) runOptions.only = options.only;

console.log(
  `underhood fuzz: ${
    options.only !== undefined ? `case ${options.only}` : `${options.count} cases`
  }, seed ${options.seed}, backend ${backend}`,
);
const report = await runFuzz(runOptions);
console.log(formatReport(report));
process.exit(report.unexpected.length > 0 ? 1 : 0);
