/**
 * Text generation with a KV cache: run the prompt once, then one new token per step.
 * Sampling happens in JavaScript from the final probabilities, so a seed gives the same
 * ids on every backend unless a draw lands within the backends' logit difference (about
 * 1e-6) of a boundary between two tokens.
 */
import type { Hook, KVCache, Model, TokenInput } from "./model.ts";
import { createRng, type Rng, sampleFromLogits, type SamplingOptions, validateSamplingOptions } from "./sampling.ts";
import { ENDOFTEXT_ID } from "./tokenizer.ts";
import { withGenerationDisplay } from "./display/results.ts";

/** Options for `generate`. */
export interface GenerateOptions extends SamplingOptions {
  /** How many tokens to add at most. A positive integer; default 20. */
  maxNewTokens?: number;
  /** Seed for the sampler; the same seed gives the same ids. Default: a random seed, reported in the result. */
  seed?: number;
  /** Stop once the generated text contains one of these strings (kept in the output). */
  stop?: string | readonly string[];
  /** Stop after generating `<|endoftext|>`. Default true. */
  stopAtEndOfText?: boolean;
  /** Hooks that fire on each step's new positions only. */
  hooks?: readonly Hook[];
  /** Called after each new token; generation waits for a returned promise. */
  onToken?: (step: GenerationStep) => unknown;
}

/** One generated token. */
export interface GenerationStep {
  /** The token's position in the full sequence. */
  position: number;
  id: number;
  /** Display text of the token. */
  text: string;
  /** Its probability in the temperature-scaled distribution before top-k/top-p. */
  prob: number;
}

/**
 * The result of `generate`. The object also has non-enumerable display methods
 * (`Symbol.for("Jupyter.display")`, `Symbol.for("nodejs.util.inspect.custom")`) that draw the
 * tokens coloured by their sampled probability.
 */
export interface Generation {
  promptIds: number[];
  /** The new ids only. */
  ids: number[];
  steps: GenerationStep[];
  /** The new text only, decoded as a whole. */
  text: string;
  /** The reason generation ended. */
  stopReason: "maxNewTokens" | "stop" | "endOfText";
  /** The seed used (the one given, or the random one chosen). */
  seed: number;
}

/**
 * Generates a continuation of `prompt`.
 *
 * Temperature 0 is greedy (ties go to the lower id). Top-k is applied before top-p.
 *
 * @throws {RangeError} For invalid options, or when the prompt plus maxNewTokens exceeds nCtx.
 * @example
 * ```ts
 * const out = await generate(model, "ROMEO:", { maxNewTokens: 30, temperature: 0.8, topK: 40, seed: 1 });
 * console.log(out.text);
 * ```
 */
export async function generate(model: Model, prompt: TokenInput, options: GenerateOptions = {}): Promise<Generation> {
  const plan = planGeneration(model, prompt, options);
  const { sampling, maxNewTokens, promptIds, rng, seed } = plan;
  if (options.onToken !== undefined && typeof options.onToken !== "function") {
    throw new TypeError(`Invalid onToken ${String(options.onToken)}: expected a function (step) => void.`);
  }

  const ids: number[] = [];
  const steps: GenerationStep[] = [];
  let stopReason: Generation["stopReason"] = "maxNewTokens";
  let cache: KVCache | undefined;
  let input = promptIds;
  try {
    for (let step = 0; step < maxNewTokens; step++) {
      const next = await runStep(model, input, cache, options.hooks);
      cache = next.cache;
      const last = next.lastLogits;

      const { id, prob } = sampleFromLogits(last, sampling, rng);
      const position = promptIds.length + step;
      const record = { position, id, text: model.tokenText(id), prob };
      ids.push(id);
      steps.push(record);
      await options.onToken?.(record);

      // Let timers and other tasks run between tokens, so a notebook or page stays responsive.
      await yieldToEventLoop();

      const stopped = stopReasonAfter(model, ids, plan);
      if (stopped) {
        stopReason = stopped;
        break;
      }
      input = Int32Array.of(id);
    }
  } finally {
    cache?.dispose();
  }
  return withGenerationDisplay({
    promptIds: Array.from(promptIds),
    ids,
    steps,
    text: model.tokenizer.decode(ids),
    stopReason,
    seed,
  });
}

/** Resolves on a later turn of the event loop (setImmediate where it exists, else setTimeout). */
function yieldToEventLoop(): Promise<void> {
  const immediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
  return new Promise((resolve) => (immediate ? immediate(resolve) : setTimeout(resolve, 0)));
}

/** Checked generation options: what `generate` and `inspectGeneration` share. */
export interface GenerationPlan {
  sampling: ReturnType<typeof validateSamplingOptions>;
  maxNewTokens: number;
  promptIds: Int32Array;
  stops: string[];
  stopAtEndOfText: boolean;
  seed: number;
  rng: Rng;
}

/**
 * Checks generation options and the prompt, and seeds the sampler.
 *
 * @throws {RangeError} For invalid values, or a prompt plus maxNewTokens longer than nCtx.
 * @throws {TypeError} For values of the wrong type.
 */
export function planGeneration(model: Model, prompt: TokenInput, options: GenerateOptions): GenerationPlan {
  const sampling = validateSamplingOptions(options);
  const maxNewTokens = options.maxNewTokens ?? 20;
  if (typeof maxNewTokens !== "number") {
    throw new TypeError(`Invalid maxNewTokens ${JSON.stringify(maxNewTokens)}: expected a number, such as 20.`);
  }
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
    throw new RangeError(`Invalid maxNewTokens ${maxNewTokens}: expected a positive integer.`);
  }
  const promptIds = model.toTokens(prompt);
  const nCtx = model.config.nCtx;
  if (promptIds.length + maxNewTokens > nCtx) {
    throw new RangeError(
      `Cannot generate ${maxNewTokens} tokens after a ${promptIds.length}-token prompt: the model has ${nCtx} positions ` +
        `(nCtx). ` +
        (promptIds.length < nCtx
          ? `Use maxNewTokens <= ${nCtx - promptIds.length} or a shorter prompt.`
          : `Shorten the prompt to at most ${nCtx - 1} tokens.`),
    );
  }
  let stops: string[] = [];
  if (typeof options.stop === "string") stops = [options.stop];
  else if (options.stop !== undefined) stops = [...options.stop];
  for (const s of stops) {
    if (typeof s !== "string" || s.length === 0) {
      throw new RangeError(`Invalid stop string ${JSON.stringify(s)}: expected a non-empty string.`);
    }
  }
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
  const rng = createRng(seed);
  const stopAtEndOfText = options.stopAtEndOfText ?? true;
  if (typeof stopAtEndOfText !== "boolean") {
    throw new TypeError(`Invalid stopAtEndOfText ${JSON.stringify(stopAtEndOfText)}: expected true or false.`);
  }

  return { sampling, maxNewTokens, promptIds, stops, stopAtEndOfText, seed, rng };
}

/** Returns why generation stops after the newest of `ids`, or undefined to go on. */
export function stopReasonAfter(
  model: Model,
  ids: readonly number[],
  plan: GenerationPlan,
): "stop" | "endOfText" | undefined {
  if (plan.stopAtEndOfText && ids[ids.length - 1] === ENDOFTEXT_ID) return "endOfText";
  if (plan.stops.length && plan.stops.some((s) => model.tokenizer.decode(ids).includes(s))) return "stop";
  return undefined;
}

/**
 * Runs the new positions `input` after those in `past` (which the KV cache contains), frees
 * `past`, and returns the extended cache with the logits of the last position `[dVocab]`.
 */
export async function runStep(
  model: Model,
  input: Int32Array,
  past: KVCache | undefined,
  hooks: readonly Hook[] | undefined,
): Promise<{ cache: KVCache; lastLogits: Float32Array }> {
  const out = model.forwardIncremental(input, past, hooks);
  past?.dispose();
  const [nPos, dVocab] = out.logits.shape;
  const all = (await out.logits.data()) as Float32Array;
  out.logits.dispose();
  return { cache: out.cache, lastLogits: all.subarray((nPos - 1) * dVocab, nPos * dVocab) };
}
