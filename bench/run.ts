/**
 * Benchmarks underhood against PyTorch on a GPT-2-small-shaped model with random weights, and
 * prints the ratios. Every measurement runs in a fresh process. A round runs each selected
 * runtime and then PyTorch, and each ratio compares numbers from the same round. The table shows
 * the median over the rounds, with the min and max.
 *
 * Usage: tsx bench/run.ts [--runtime node|deno|bun|all] [--quick] [--rounds N] [--seed N]
 *          [--threads N] [--torch-threads N] [--no-torch] [--json FILE]
 *
 *   --runtime        which runtimes to run (default all)
 *   --quick          one round with fewer repetitions (about a minute per runtime)
 *   --rounds         rounds to run (default 3; 1 with --quick)
 *   --threads        wasm threads for underhood (default 0: tfjs's default, one thread in Node, Deno and Bun)
 *   --torch-threads  torch.set_num_threads for PyTorch (default 0: PyTorch's default)
 *   --no-torch       skip PyTorch; ratios against it are then left out
 *   --json           also write every raw result to FILE
 *
 * PyTorch is Debian's python3-torch, run as /usr/bin/python3 (`apt-get install -y python3-torch`).
 * Its command runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from the environment,
 * because they halve its matmul speed on some machines, and with OMP_WAIT_POLICY=PASSIVE, so its
 * idle threads do not spin on the cores the other processes use.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomIds, writeRawWeights } from "./gpt2_small.ts";
import { formatReport, type RoundResult } from "./report.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name: string) => join(root, "node_modules", ".bin", name);
const PYTHON = "/usr/bin/python3";

const RUNTIMES: Record<string, string[]> = {
  node: [bin("tsx")],
  deno: [bin("deno"), "run", "-A"],
  bun: [bin("bun")],
};

interface Options {
  runtimes: string[];
  quick: boolean;
  rounds: number;
  seed: number;
  threads: number;
  torchThreads: number;
  torch: boolean;
  json?: string;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { runtimes: Object.keys(RUNTIMES), quick: false, rounds: 0, seed: 1, threads: 0, torchThreads: 0, torch: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new RangeError(`Missing value after ${arg}.`);
      return v;
    };
    const count = () => {
      const v = Number(value());
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`Invalid ${arg} ${argv[i]}: expected a non-negative integer.`);
      return v;
    };
    if (arg === "--runtime") {
      const name = value();
      if (name !== "all" && !(name in RUNTIMES)) throw new RangeError(`Invalid --runtime ${name}: expected node, deno, bun or all.`);
      options.runtimes = name === "all" ? Object.keys(RUNTIMES) : [name];
    } else if (arg === "--quick") options.quick = true;
    else if (arg === "--rounds") options.rounds = count();
    else if (arg === "--seed") options.seed = count();
    else if (arg === "--threads") options.threads = count();
    else if (arg === "--torch-threads") options.torchThreads = count();
    else if (arg === "--no-torch") options.torch = false;
    else if (arg === "--json") options.json = value();
    else if (arg === "--help" || arg === "-h") {
      console.log("Usage: tsx bench/run.ts [--runtime node|deno|bun|all] [--quick] [--rounds N] [--seed N] [--threads N] [--torch-threads N] [--no-torch] [--json FILE]");
      process.exit(0);
    } else throw new RangeError(`Unknown option ${arg}; run with --help for the list.`);
  }
  if (options.rounds === 0) options.rounds = options.quick ? 1 : 3;
  return options;
}

/** Runs a command and returns the parsed `BENCH_RESULT` line, with the wall time from spawn to exit. */
function runChild(command: string[], env?: NodeJS.ProcessEnv): Record<string, unknown> {
  const t0 = performance.now();
  const child = spawnSync(command[0]!, command.slice(1), {
    cwd: root,
    env: env ?? process.env,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const wallMs = performance.now() - t0;
  const line = (child.stdout ?? "").split("\n").find((l) => l.startsWith("BENCH_RESULT "));
  if (child.status !== 0 || !line) {
    throw new Error(
      `Benchmark command failed (exit ${child.status ?? child.signal}): ${command.join(" ")}\n` +
        `${(child.stderr ?? "").slice(-4000)}${(child.stdout ?? "").slice(-2000)}`,
    );
  }
  return { ...JSON.parse(line.slice("BENCH_RESULT ".length)), wallMs };
}

/** Returns this process's environment without the OpenBLAS variables, for the PyTorch command. */
function torchEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_WAIT_POLICY: "PASSIVE" };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

function torchAvailable(): boolean {
  const probe = spawnSync(PYTHON, ["-c", "import torch, numpy"], { stdio: "ignore", env: torchEnv() });
  return probe.status === 0;
}

let options: Options;
try {
  options = parseArgs(process.argv.slice(2));
} catch (error) {
  console.error((error as Error).message);
  process.exit(2);
}
const reps = options.quick ? 3 : 5;
const longReps = options.quick ? 2 : 3;

console.log(`underhood benchmark: GPT-2-small shape, seed ${options.seed}, ${options.rounds} round(s), ` +
  `runtimes ${options.runtimes.join(", ")}, ${cpus().length} CPUs (${cpus()[0]?.model ?? "unknown"})`);

let torch = options.torch;
if (torch && !torchAvailable()) {
  console.log(`PyTorch not found for ${PYTHON}: install it with \`apt-get install -y python3-torch\`. Continuing without it.`);
  torch = false;
}
let manifest = "";
const idsFile = join(tmpdir(), "underhood-bench", `ids-seed-${options.seed}.json`);
if (torch) {
  manifest = writeRawWeights(options.seed);
  mkdirSync(dirname(idsFile), { recursive: true });
  // The same ids as bench/measure.ts draws from the same seed.
  writeFileSync(idsFile, JSON.stringify({
    ids64: Array.from(randomIds(options.seed + 1, 64)),
    ids512: Array.from(randomIds(options.seed + 2, 512)),
    ids16: Array.from(randomIds(options.seed + 3, 16)),
  }));
}

const rounds: RoundResult[] = [];
for (let round = 1; round <= options.rounds; round++) {
  const result: RoundResult = { round, runtimes: {} };
  for (const runtime of options.runtimes) {
    const prefix = RUNTIMES[runtime]!;
    process.stdout.write(`round ${round}: ${runtime} ... `);
    const measure = runChild([
      ...prefix,
      "bench/measure.ts",
      "--seed", String(options.seed),
      "--reps", String(reps),
      "--long-reps", String(longReps),
      "--threads", String(options.threads),
    ]);
    const cold = runChild([...prefix, "bench/cold_start.ts"]);
    result.runtimes[runtime] = { measure, cold };
    console.log(`done in ${((measure.wallMs as number) / 1000).toFixed(0)} s`);
  }
  if (torch) {
    process.stdout.write(`round ${round}: pytorch ... `);
    const args = [join(root, "bench", "torch_ref.py"), manifest, idsFile, "--reps", String(reps), "--long-reps", String(longReps)];
    if (options.torchThreads > 0) args.push("--threads", String(options.torchThreads));
    result.torch = runChild([PYTHON, ...args], torchEnv());
    console.log(`done in ${((result.torch.wallMs as number) / 1000).toFixed(0)} s`);
  }
  rounds.push(result);
}

if (options.json) writeFileSync(options.json, JSON.stringify({ options, rounds }, null, 1));
console.log("");
console.log(formatReport(rounds, options.runtimes));
