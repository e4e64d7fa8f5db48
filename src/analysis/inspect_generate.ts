/**
 * Inspectable generation: an async iterator over generation steps that yields each token with
 * the model's top candidates and, on request, the activations of that step.
 */
import { ActivationCache, type HookName, type NamesFilter, resolveNames } from "../hooks.ts";
import type { Hook, KVCache, Model, TokenInput } from "../model.ts";
import { type GenerateOptions, type Generation, planGeneration, runStep, stopReasonAfter } from "../generate.ts";
import { type TopToken, topKOfRow } from "../results.ts";
import { sampleFromLogits } from "../sampling.ts";

/** Options for `inspectGeneration`: those of `generate` (except `onToken`) and what to report. */
export interface InspectGenerationOptions extends Omit<GenerateOptions, "onToken"> {
  /** How many of the most likely next tokens each step reports. Default 10. */
  reportTopK?: number;
  /** Record these hook points at each step, for the positions that step runs. */
  cache?: NamesFilter;
  /**
   * When false (the default), each step's cache is freed as soon as the iterator moves on, so
   * read it inside the loop. When true, the caller owns every step's cache and must dispose it.
   */
  keepCaches?: boolean;
}

/** One generation step. */
export interface InspectStep {
  /** The new token's position in the full sequence. */
  position: number;
  id: number;
  /** Display text of the token. */
  text: string;
  /** Its probability in the temperature-scaled distribution before top-k/top-p, as `generate` reports it. */
  prob: number;
  /**
   * The most likely next tokens under the model's own distribution (temperature 1, no
   * filtering), most likely first; equal logits go to the lower id.
   */
  topK: TopToken[];
  /**
   * The first position this step ran. The first step runs the whole prompt, positions 0 to
   * `position - 1`; every later step runs only `position - 1`, the token before the new one.
   */
  inputStart: number;
  /**
   * Activations of the positions this step ran, when `options.cache` names hook points. Its
   * `[pos, ...]` axes cover positions `inputStart` to `position - 1`, and attention patterns
   * are `[head, pos, keyPos]` over every earlier position.
   */
  cache?: ActivationCache;
}

/** The summary the iterator returns when it finishes, the same as `generate` returns. */
export type InspectSummary = Generation;

/** An async iterator over generation steps, with the seed it uses. */
export type InspectedGeneration = AsyncGenerator<InspectStep, InspectSummary, undefined> & {
  /** The seed used (the one given, or the random one chosen). */
  readonly seed: number;
  /** The prompt's token ids. */
  readonly promptIds: number[];
};

/**
 * Generates like `generate`, one step per iteration.
 *
 * It samples with the same generator, KV cache and stop rules, so the same seed and options
 * give the same ids as `generate`. Hooks fire on each step's new positions only. Options are
 * checked when this is called, before the first step. Breaking out of the loop frees the KV
 * cache and any step cache the caller does not own.
 *
 * NOTE: naming `attn.hook_result` in `options.cache` or a hook makes the attention sum the
 * heads' results instead of using one matmul. The logits then differ from `generate`'s by
 * float rounding, which can change a sampled id where two candidates are nearly tied.
 *
 * @throws {RangeError} For invalid options, an unknown hook name, or a prompt plus maxNewTokens
 *   longer than nCtx.
 * @example
 * ```ts
 * for await (const step of inspectGeneration(model, "ROMEO:", { maxNewTokens: 5, seed: 1, cache: "blocks.0.attn.hook_pattern" })) {
 *   console.log(step.text, step.topK.slice(0, 3), step.cache!.get("blocks.0.attn.hook_pattern").shape);
 * }
 * ```
 */
export function inspectGeneration(
  model: Model,
  prompt: TokenInput,
  options: InspectGenerationOptions = {},
): InspectedGeneration {
  const plan = planGeneration(model, prompt, options);
  const { sampling, maxNewTokens, promptIds, rng, seed } = plan;
  const reportTopK = options.reportTopK ?? 10;
  if (!Number.isInteger(reportTopK) || reportTopK < 1) {
    throw new RangeError(`Invalid reportTopK ${reportTopK}: expected a positive integer.`);
  }
  const cacheNames = options.cache === undefined ? undefined : [...resolveNames(options.cache, model.hookNames())];
  // Check hook names now rather than at the first step.
  for (const hook of options.hooks ?? []) resolveNames(hook.name, model.hookNames());

  async function* steps(): AsyncGenerator<InspectStep, InspectSummary, undefined> {
    const ids: number[] = [];
    let stopReason: Generation["stopReason"] = "maxNewTokens";
    const records: Generation["steps"] = [];
    let kv: KVCache | undefined;
    // A step cache the caller does not own yet, freed if the loop ends early.
    let pending: ActivationCache | undefined;
    let input = promptIds;
    try {
      for (let step = 0; step < maxNewTokens; step++) {
        // Run the new positions, recording the requested activations after the caller's hooks.
        const stepCache = cacheNames ? new ActivationCache() : undefined;
        pending = stepCache;
        const hooks: Hook[] = [...(options.hooks ?? [])];
        if (stepCache) hooks.push({ name: cacheNames as HookName[], fn: (x, { name }) => stepCache.set(name, x) });
        const inputStart = promptIds.length + step - input.length;
        const next = await runStep(model, input, kv, hooks);
        kv = next.cache;
        const last = next.lastLogits;

        // Sample exactly as generate() does, then report the candidates.
        const { id, prob } = sampleFromLogits(last, sampling, rng);
        const position = promptIds.length + step;
        const text = model.tokenText(id);
        ids.push(id);
        records.push({ position, id, text, prob });
        const topK = topKOfRow(last, reportTopK, (t) => model.tokenText(t));
        const record: InspectStep = { position, id, text, prob, topK, inputStart };
        if (stepCache) record.cache = stepCache;
        if (options.keepCaches) pending = undefined;
        yield record;
        pending?.dispose();
        pending = undefined;

        const stopped = stopReasonAfter(model, ids, plan);
        if (stopped) {
          stopReason = stopped;
          break;
        }
        input = Int32Array.of(id);
      }
    } finally {
      kv?.dispose();
      pending?.dispose();
    }
    return { promptIds: Array.from(promptIds), ids, steps: records, text: model.tokenizer.decode(ids), stopReason, seed };
  }

  return Object.assign(steps(), { seed, promptIds: Array.from(promptIds) });
}
