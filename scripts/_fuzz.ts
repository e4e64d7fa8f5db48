/**
 * The checkpoint fuzzer behind `scripts/fuzz.ts` and `test/fuzz_test.ts`.
 *
 * Each case takes one fixture checkpoint, applies a seeded mutation from
 * `scripts/_fuzz_mutations.ts` to its files, writes the result to a work directory and loads
 * it with `loadCheckpoint`. A case passes when the checkpoint loads and a forward pass on 3
 * tokens runs, or when loading throws CheckpointError or SafetensorsError with a message that
 * names the checkpoint. Many mutations also carry a stronger expectation: they must fail, must
 * load, or must give bitwise the same logits as the unmutated checkpoint. Everything else is an
 * unexpected outcome: another exception, a broken expectation, non-finite logits from unchanged
 * weights, a case over the time limit, a leaked tensor, or memory growth over the limit.
 *
 * Case `i` of seed `s` draws from its own generator, so `--only i` reproduces it alone.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import * as tf from "@tensorflow/tfjs-core";
import { CheckpointError, loadCheckpoint } from "../src/loader.ts";
import { Model } from "../src/model.ts";
import { createRng } from "../src/sampling.ts";
import { SafetensorsError } from "../src/safetensors.ts";
import type { LoadedCheckpoint } from "../src/types.ts";
import {
  type BaseCheckpoint,
  chance,
  type Expectation,
  type FileState,
  mutate,
  type Mutated,
  MUTATION_CLASSES,
  type MutationClass,
  pick,
} from "./_fuzz_mutations.ts";

export { type Expectation, MUTATION_CLASSES, type MutationClass };

/** One fuzz case and how it ended. */
export interface CaseResult {
  index: number;
  base: string;
  mutationClass: MutationClass;
  description: string;
  expect: Expectation;
  outcome: "loaded" | "documented" | "unexpected";
  /** The error message, or what went wrong for an unexpected outcome. */
  detail: string;
  /** True when the model loaded and its logits contain NaN or Infinity. */
  nonFiniteLogits: boolean;
  milliseconds: number;
}

/** Counts for one row of the summary table. */
export interface ClassSummary {
  cases: number;
  loaded: number;
  documented: number;
  unexpected: number;
  /** Loaded cases whose logits contain NaN or Infinity (allowed only when weights changed). */
  nonFinite: number;
}

/** The result of a fuzz run. */
export interface FuzzReport {
  seed: number;
  count: number;
  backend: string;
  byClass: Map<MutationClass, ClassSummary>;
  unexpected: CaseResult[];
  slowest: CaseResult | undefined;
  rssStartBytes: number;
  rssPeakBytes: number;
  rssEndBytes: number;
  /** Cases that passed their checks but pushed RSS over the limit. */
  memoryFailures: number;
  seconds: number;
}

/** Options for {@link runFuzz}. */
export interface FuzzOptions {
  /** Number of cases. */
  count: number;
  /** Seed of the run; case i uses a generator derived from (seed, i). */
  seed: number;
  /** Run only this case index (for reproducing one case). */
  only?: number;
  /** A case that takes longer than this is unexpected. Default 5000. */
  caseLimitMs?: number;
  /** RSS growth over the value after warm-up that counts as unexpected. Default 512 MiB. */
  rssLimitBytes?: number;
  /** Fixture directory that contains the base checkpoints. */
  fixturesDir: string;
  /** Called after every case. */
  onCase?: (result: CaseResult) => void;
  /** The loader under test. Default `loadCheckpoint`; tests pass broken loaders to check the judge. */
  load?: (dir: string) => Promise<LoadedCheckpoint>;
}

const BASE_NAMES = [
  "gpt2-tiny-f16",
  "gpt2-micro",
  "gpt2-micro-noprefix",
  "gpt2-micro-options",
  "gpt2-micro-sharded",
  "gpt2-micro-stored-head",
  "gpt2-micro-untied",
];
/** Share of cases that use gpt2-tiny-f16 (3.2 MB, vocabulary 50,257), the slowest base to load. */
const TINY_SHARE = 0.15;

/** A base checkpoint with the logits of `ids` that "same" mutations must reproduce. */
interface Base extends BaseCheckpoint {
  ids: number[];
  logits: Float32Array;
}

/** Derives the seed of case `index` from the run seed with a 32-bit integer hash. */
function caseSeed(seed: number, index: number): number {
  const seedBits = (seed >>> 0) ^ Math.imul(Math.floor(seed / 2 ** 32) >>> 0, 0x27d4eb2d);
  let h = (Math.imul(seedBits, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Running cases

function loadBase(fixturesDir: string, name: string): Omit<Base, "logits" | "ids"> {
  const dir = join(fixturesDir, name);
  const files: FileState = new Map();
  for (const file of readdirSync(dir).sort()) files.set(file, new Uint8Array(readFileSync(join(dir, file))));
  const weightFiles = [...files.keys()].filter((f) => f.endsWith(".safetensors"));
  const config = JSON.parse(new TextDecoder().decode(files.get("config.json")!)) as Record<string, unknown>;
  return { name, files, weightFiles, config };
}

/** Writes `state` into `dir`, which contains `previous`. */
function syncDir(dir: string, previous: FileState, state: FileState): void {
  for (const [file, bytes] of state) {
    if (previous.get(file) !== bytes) writeFileSync(join(dir, file), bytes);
  }
  for (const file of previous.keys()) {
    if (!state.has(file)) unlinkSync(join(dir, file));
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`no result after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

class TimeoutError extends Error {}

interface Outcome {
  outcome: CaseResult["outcome"];
  detail: string;
  nonFinite: boolean;
}

/** Loads the checkpoint in `dir`, runs it and judges the result against the mutation. */
async function judge(
  load: (dir: string) => Promise<LoadedCheckpoint>,
  dir: string,
  mutated: Mutated,
  base: Base,
  limitMs: number,
): Promise<Outcome> {
  let model: Model | undefined;
  try {
    const checkpoint = await withTimeout(load(dir), limitMs);
    model = new Model(checkpoint);
    const { dVocab, nCtx } = checkpoint.config;
    const ids = [0, 1, 2].slice(0, Math.min(3, nCtx)).map((id) => id % dVocab);
    const logitsTensor = model.forward(ids);
    const logits = logitsTensor.dataSync() as Float32Array;
    logitsTensor.dispose();
    const nonFinite = logits.some((v) => !Number.isFinite(v));

    if (mutated.expect === "fail") {
      return { outcome: "unexpected", detail: "loaded a checkpoint that must be rejected", nonFinite };
    }
    if (nonFinite && !mutated.changesValues) {
      return { outcome: "unexpected", detail: "non-finite logits although no weight changed", nonFinite };
    }
    if (mutated.expect === "same") {
      const same = logits.length === base.logits.length && logits.every((v, i) => Object.is(v, base.logits[i]));
      if (!same) return { outcome: "unexpected", detail: "an equivalent checkpoint gave different logits", nonFinite };
    }
    return { outcome: "loaded", detail: nonFinite ? "loaded; logits contain NaN or Infinity" : "loaded", nonFinite };
  } catch (error) {
    const message = (error as Error)?.message ?? String(error);
    if (!(error instanceof CheckpointError) && !(error instanceof SafetensorsError)) {
      const name = (error as Error)?.name ?? typeof error;
      return { outcome: "unexpected", detail: `${name}: ${message.slice(0, 300)}`, nonFinite: false };
    }
    if (mutated.expect === "load" || mutated.expect === "same") {
      return {
        outcome: "unexpected",
        detail: `rejected a valid checkpoint: ${message.slice(0, 300)}`,
        nonFinite: false,
      };
    }
    if (!message.includes(dir)) {
      return {
        outcome: "unexpected",
        detail: `the message does not name the checkpoint: ${message.slice(0, 300)}`,
        nonFinite: false,
      };
    }
    if (mutated.mustMention !== undefined && !message.includes(mutated.mustMention)) {
      return {
        outcome: "unexpected",
        detail: `the message does not mention ${mutated.mustMention}: ${message.slice(0, 300)}`,
        nonFinite: false,
      };
    }
    return { outcome: "documented", detail: `${(error as Error).name}: ${message.slice(0, 300)}`, nonFinite: false };
  } finally {
    model?.dispose();
  }
}

/** Computes the logits of the unmutated base, which "same" mutations must reproduce bitwise. */
async function baseLogits(dir: string): Promise<{ ids: number[]; logits: Float32Array }> {
  const model = new Model(await loadCheckpoint(dir));
  try {
    const ids = [0, 1, 2];
    const t = model.forward(ids);
    const logits = t.dataSync() as Float32Array;
    t.dispose();
    return { ids, logits };
  } finally {
    model.dispose();
  }
}

function emptySummary(): ClassSummary {
  return { cases: 0, loaded: 0, documented: 0, unexpected: 0, nonFinite: 0 };
}

/**
 * Runs the fuzz cases and returns the summary. The tfjs backend must be selected first.
 *
 * @throws {RangeError} For a count or seed that is not a non-negative safe integer.
 */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const { count, seed } = options;
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new RangeError(`Invalid count ${count}: expected an integer >= 0.`);
  }
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`Invalid seed ${seed}: expected an integer >= 0.`);
  const limitMs = options.caseLimitMs ?? 5000;
  const load = options.load ?? ((dir: string) => loadCheckpoint(dir));
  const rssLimit = options.rssLimitBytes ?? 512 * 1024 * 1024;
  const started = performance.now();

  const workRoot = mkdtempSync(join(tmpdir(), "underhood-fuzz-"));
  try {
    const bases = new Map<string, Base>();
    const dirs = new Map<string, string>();
    for (const name of BASE_NAMES) {
      const partial = loadBase(options.fixturesDir, name);
      const dir = join(workRoot, name);
      mkdirSync(dir);
      syncDir(dir, new Map(), partial.files);
      bases.set(name, { ...partial, ...(await baseLogits(dir)) });
      dirs.set(name, dir);
    }
    const microNames = BASE_NAMES.filter((n) => n !== "gpt2-tiny-f16");

    const byClass = new Map<MutationClass, ClassSummary>(MUTATION_CLASSES.map((c) => [c, emptySummary()]));
    const unexpected: CaseResult[] = [];
    let slowest: CaseResult | undefined;
    const tensorsBefore = tf.memory().numTensors;
    const rssStart = process.memoryUsage().rss;
    let rssBaseline = rssStart;
    let rssPeak = rssStart;
    let memoryFailures = 0;

    const first = options.only ?? 0;
    const last = options.only !== undefined ? options.only + 1 : count;
    for (let i = first; i < last; i++) {
      const rng = createRng(caseSeed(seed, i));
      const mutationClass = pick(rng, MUTATION_CLASSES);
      const baseName = mutationClass === "index"
        ? "gpt2-micro-sharded"
        : chance(rng, TINY_SHARE)
        ? "gpt2-tiny-f16"
        : pick(rng, microNames);
      const base = bases.get(baseName)!;
      const dir = dirs.get(baseName)!;

      const mutated = mutate(mutationClass, rng, base.files, base);
      syncDir(dir, base.files, mutated.state);
      const t0 = performance.now();
      let judged: Outcome;
      try {
        judged = await judge(load, dir, mutated, base, limitMs);
      } finally {
        syncDir(dir, mutated.state, base.files);
      }
      const milliseconds = performance.now() - t0;

      if (judged.outcome !== "unexpected" && milliseconds > limitMs) {
        judged = { ...judged, outcome: "unexpected", detail: `took ${milliseconds.toFixed(0)} ms, over ${limitMs} ms` };
      }
      const leaked = tf.memory().numTensors - tensorsBefore;
      if (judged.outcome !== "unexpected" && leaked !== 0) {
        judged = { ...judged, outcome: "unexpected", detail: `${leaked} tensors left allocated` };
      }
      const rss = process.memoryUsage().rss;
      rssPeak = Math.max(rssPeak, rss);
      if (i === first + Math.min(50, count - 1)) rssBaseline = rss; // after warm-up
      if (judged.outcome !== "unexpected" && rss - rssBaseline > rssLimit) {
        memoryFailures++;
        judged = { ...judged, outcome: "unexpected", detail: `RSS grew to ${(rss / 2 ** 20).toFixed(0)} MiB` };
      }

      const result: CaseResult = {
        index: i,
        base: baseName,
        mutationClass,
        description: mutated.description,
        expect: mutated.expect,
        outcome: judged.outcome,
        detail: judged.detail,
        nonFiniteLogits: judged.nonFinite,
        milliseconds,
      };
      const summary = byClass.get(mutationClass)!;
      summary.cases++;
      summary[result.outcome]++;
      if (result.nonFiniteLogits) summary.nonFinite++;
      if (result.outcome === "unexpected") unexpected.push(result);
      if (slowest === undefined || milliseconds > slowest.milliseconds) slowest = result;
      options.onCase?.(result);
    }

    return {
      seed,
      count: last - first,
      backend: tf.getBackend(),
      byClass,
      unexpected,
      slowest,
      rssStartBytes: rssStart,
      rssPeakBytes: rssPeak,
      rssEndBytes: process.memoryUsage().rss,
      memoryFailures,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    rmSync(workRoot, { recursive: true, force: true });
  }
}

/** Formats the summary table and the list of unexpected outcomes. */
export function formatReport(report: FuzzReport): string {
  const lines: string[] = [];
  const row = (cells: Array<string | number>) =>
    lines.push(cells.map((c, i) => (i === 0 ? String(c).padEnd(20) : String(c).padStart(11))).join(""));

  // The table, one row per class and a total.
  row(["class", "cases", "loaded OK", "documented", "unexpected", "non-finite"]);
  const total = emptySummary();
  for (const [name, s] of report.byClass) {
    row([name, s.cases, s.loaded, s.documented, s.unexpected, s.nonFinite]);
    for (const key of Object.keys(total) as Array<keyof ClassSummary>) total[key] += s[key];
  }
  row(["total", total.cases, total.loaded, total.documented, total.unexpected, total.nonFinite]);

  lines.push("");
  lines.push(
    "non-finite: loaded cases whose logits contain NaN or Infinity, which is allowed only when the mutation " +
      "changed weight values.",
  );

  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  lines.push(
    `seed ${report.seed}, ${report.count} cases, backend ${report.backend}, ${report.seconds.toFixed(1)} s; ` +
      `RSS start ${mib(report.rssStartBytes)}, peak ${mib(report.rssPeakBytes)}, end ${mib(report.rssEndBytes)}`,
  );
  if (report.slowest) {
    lines.push(
      `slowest case: #${report.slowest.index} (${report.slowest.base}, ${report.slowest.mutationClass}) ` +
        `${report.slowest.milliseconds.toFixed(0)} ms`,
    );
  }

  for (const u of report.unexpected) {
    lines.push(`UNEXPECTED #${u.index} [${u.base}, ${u.mutationClass}, expect ${u.expect}] ${u.description}`);
    lines.push(`    ${u.detail}`);
    lines.push(`    reproduce: npm run fuzz -- --seed ${report.seed} --only ${u.index}`);
  }
  return lines.join("\n");
}
