/**
 * Activation steering: add a scaled vector to an activation at every position, and generate
 * with it. A vector is often the difference of two prompts' residuals at one layer.
 */
import * as tf from "@tensorflow/tfjs-core";
import { checkHookName, type HookName } from "../hooks.ts";
import type { Hook, Model, TokenInput, TokenOptions } from "../model.ts";
import { generate, type GenerateOptions, type Generation } from "../generate.ts";
import { checkLayer, toVector } from "./_common.ts";

/** A vector to add, its scale and the hook point it is added at. */
export interface SteeringOptions {
  /**
   * A hook point whose activation is `[pos, d]`: hook_embed, hook_pos_embed, a block's
   * hook_resid_pre, hook_attn_out, hook_resid_mid, hook_mlp_out or hook_resid_post, a layer
   * norm's hook_normalized, or mlp.hook_pre / mlp.hook_post (where d is dMlp).
   */
  hookName: HookName;
  /** The direction `[d]`. A tensor is read once when the hook is made and is not kept. */
  vector: ArrayLike<number> | tf.Tensor1D;
  /** Multiplies the vector. Default 1. */
  scale?: number;
}

/**
 * Makes a hook that adds `scale * vector` to the activation at `hookName`, at every position
 * from `fromPosition` on.
 *
 * The hook counts the positions it has seen to know their absolute positions, because with a
 * KV cache each call receives only the new positions. So use a new hook for each forward pass or
 * generation unless `fromPosition` is 0.
 *
 * @param options.fromPosition The first position steered. Default 0 (all).
 * @throws {RangeError} For a hook point without a `[pos, d]` activation, or an invalid scale
 *   or position.
 * @throws {TypeError} When the vector does not have d values.
 * @example
 * ```ts
 * const hook = steeringHook(model, { hookName: "blocks.2.hook_resid_pre", vector, scale: 4 });
 * const logits = model.runWithHooks("I think that", { hooks: [hook] });
 * ```
 */
export function steeringHook(model: Model, options: SteeringOptions & { fromPosition?: number }): Hook {
  const name = checkSteeringName(model, options.hookName);
  const width = name.includes(".mlp.hook_") ? model.config.dMlp : model.config.dModel;
  const vector = toVector(options.vector, width, `steering vector for ${name}`);
  const scale = options.scale ?? 1;
  if (typeof scale !== "number" || !Number.isFinite(scale)) {
    throw new RangeError(`Invalid steering scale ${String(scale)}: expected a finite number.`);
  }
  const from = options.fromPosition ?? 0;
  if (!Number.isInteger(from) || from < 0) {
    throw new RangeError(`Invalid fromPosition ${from}: expected a non-negative integer.`);
  }
  const scaled = vector.map((v) => v * scale);

  let seen = 0;
  return {
    name,
    fn: (x) => {
      const nPos = x.shape[0]!;
      const start = seen;
      seen += nPos;
      if (start + nPos <= from) return;
      const steered = new Float32Array(nPos);
      for (let i = 0; i < nPos; i++) steered[i] = start + i >= from ? 1 : 0;
      const added = tf.mul(tf.tensor2d(steered, [nPos, 1]), tf.tensor2d(scaled, [1, width])); // [pos, 1] * [1, d] -> [pos, d]
      return tf.add(x, added); // [pos, d]
    },
  };
}

/** Options for `generateSteered`. */
export interface SteeredGenerateOptions extends GenerateOptions {
  /** One or more vectors to add. */
  steering: SteeringOptions | readonly SteeringOptions[];
  /** `all` (the default) steers the prompt and the generated tokens; `new` only the generated tokens. */
  positions?: "all" | "new";
}

/**
 * Generates a continuation with steering vectors added, through `generate` with hooks. The
 * hooks run after `options.hooks`, and a new set is made for each call.
 *
 * With `positions: "new"`, the first generated token is predicted from the unsteered prompt,
 * and steering starts with the activations of that token.
 *
 * @example
 * ```ts
 * const vector = steeringVector(model, { promptA: "Love", promptB: "Hate", layer: 2 });
 * const out = await generateSteered(model, "I think that", {
 *   steering: { hookName: "blocks.2.hook_resid_pre", vector, scale: 5 },
 *   maxNewTokens: 20, seed: 1,
 * });
 * ```
 */
export function generateSteered(model: Model, prompt: TokenInput, options: SteeredGenerateOptions): Promise<Generation> {
  const positions = options.positions ?? "all";
  if (positions !== "all" && positions !== "new") {
    throw new RangeError(`Invalid positions ${JSON.stringify(positions)}: use "all" or "new".`);
  }
  const specs: readonly SteeringOptions[] = Array.isArray(options.steering)
    ? options.steering
    : [options.steering as SteeringOptions];
  if (specs.length === 0) throw new RangeError("Invalid steering: pass at least one { hookName, vector }.");
  const fromPosition = positions === "all" ? 0 : model.toTokens(prompt).length;
  const hooks = specs.map((spec) => steeringHook(model, { ...spec, fromPosition }));
  const { steering: _steering, positions: _positions, ...rest } = options;
  return generate(model, prompt, { ...rest, hooks: [...(options.hooks ?? []), ...hooks] });
}

/** Options for `steeringVector`. */
export interface SteeringVectorOptions extends TokenOptions {
  /** The prompt whose activation counts positively. */
  promptA: TokenInput;
  /** The prompt whose activation is subtracted. */
  promptB: TokenInput;
  /** The block whose residual is read. */
  layer: number;
  /** The residual of the block to read. Default `hook_resid_pre`. */
  hook?: "hook_resid_pre" | "hook_resid_mid" | "hook_resid_post";
  /** `mean` over each prompt's positions (the default), or the `last` position. */
  reduce?: "mean" | "last";
}

/**
 * Computes a steering vector: the residual of promptA minus that of promptB at one layer, each
 * reduced over its own positions, so the prompts may differ in length.
 *
 * @returns `[dModel]` values, to pass as `SteeringOptions.vector` at `blocks.{layer}.{hook}`.
 */
export function steeringVector(model: Model, options: SteeringVectorOptions): Float32Array {
  checkLayer(model, options.layer, "layer");
  const hook = options.hook ?? "hook_resid_pre";
  if (!["hook_resid_pre", "hook_resid_mid", "hook_resid_post"].includes(hook)) {
    throw new RangeError(`Invalid hook ${JSON.stringify(hook)}: use hook_resid_pre, hook_resid_mid or hook_resid_post.`);
  }
  const reduce = options.reduce ?? "mean";
  if (reduce !== "mean" && reduce !== "last") {
    throw new RangeError(`Invalid reduce ${JSON.stringify(reduce)}: use "mean" or "last".`);
  }
  const name: HookName = `blocks.${options.layer}.${hook}`;
  const a = reducedResidual(model, options.promptA, name, reduce, options);
  const b = reducedResidual(model, options.promptB, name, reduce, options);
  return a.map((value, i) => value - b[i]!);
}

function reducedResidual(
  model: Model,
  prompt: TokenInput,
  name: HookName,
  reduce: "mean" | "last",
  options: TokenOptions,
): Float32Array {
  const { logits, cache } = model.runWithCache(prompt, { ...tokenOptions(options), names: [name] });
  logits.dispose();
  try {
    const reduced = tf.tidy(() => {
      const residual = cache.get(name); // [pos, dModel]
      return reduce === "mean"
        ? tf.mean(residual, 0) // -> [dModel]
        : tf.reshape(tf.slice(residual, [residual.shape[0]! - 1, 0], [1, -1]), [-1]); // -> [dModel]
    });
    const values = reduced.dataSync() as Float32Array;
    reduced.dispose();
    return values;
  } finally {
    cache.dispose();
  }
}

function tokenOptions(options: TokenOptions): TokenOptions {
  const out: TokenOptions = {};
  if (options.allowSpecial !== undefined) out.allowSpecial = options.allowSpecial;
  if (options.prependBos !== undefined) out.prependBos = options.prependBos;
  return out;
}

const STEERABLE = /^(hook_embed|hook_pos_embed|blocks\.\d+\.(hook_resid_pre|hook_attn_out|hook_resid_mid|hook_mlp_out|hook_resid_post|ln[12]\.hook_normalized|mlp\.hook_pre|mlp\.hook_post)|ln_final\.hook_normalized)$/;

function checkSteeringName(model: Model, name: HookName): HookName {
  checkHookName(name, model.hookNames());
  if (!STEERABLE.test(name)) {
    throw new RangeError(
      `Cannot steer at "${name}": its activation is not [pos, d]. Use a residual such as ` +
        `"blocks.0.hook_resid_pre", a block output, a hook_normalized, or mlp.hook_pre / mlp.hook_post.`,
    );
  }
  return name;
}
