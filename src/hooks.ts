/**
 * Hook points and the activation cache. Names follow TransformerLens exactly, so code and
 * papers written against it carry over.
 */
import * as tf from "@tensorflow/tfjs-core";
import { INSPECT_CUSTOM, JUPYTER_DISPLAY, type MimeBundle } from "./display/figure.ts";
import { activationCacheBundle, activationCacheText } from "./display/results.ts";

/** Hook names inside `blocks.L.attn`. */
export type AttnHook = "hook_q" | "hook_k" | "hook_v" | "hook_attn_scores" | "hook_pattern" | "hook_z" | "hook_result";

/** Hook names directly under `blocks.L`. */
export type BlockHook = "hook_resid_pre" | "hook_attn_out" | "hook_resid_mid" | "hook_mlp_out" | "hook_resid_post";

/** Every hook name, typed so a typo fails to compile. */
export type HookName =
  | "hook_embed"
  | "hook_pos_embed"
  | `blocks.${number}.${BlockHook}`
  | `blocks.${number}.ln1.${"hook_scale" | "hook_normalized"}`
  | `blocks.${number}.ln2.${"hook_scale" | "hook_normalized"}`
  | `blocks.${number}.attn.${AttnHook}`
  | `blocks.${number}.mlp.${"hook_pre" | "hook_post"}`
  | `ln_final.${"hook_scale" | "hook_normalized"}`;

/** The hook names of one block, in the order the forward pass reaches them. */
const BLOCK_HOOKS: readonly string[] = [
  "hook_resid_pre",
  "ln1.hook_scale",
  "ln1.hook_normalized",
  "attn.hook_q",
  "attn.hook_k",
  "attn.hook_v",
  "attn.hook_attn_scores",
  "attn.hook_pattern",
  "attn.hook_z",
  "attn.hook_result",
  "hook_attn_out",
  "hook_resid_mid",
  "ln2.hook_scale",
  "ln2.hook_normalized",
  "mlp.hook_pre",
  "mlp.hook_post",
  "hook_mlp_out",
  "hook_resid_post",
];

/** Returns every hook name of a model with `nLayers` blocks, in forward order. */
export function hookNames(nLayers: number): HookName[] {
  const names: string[] = ["hook_embed", "hook_pos_embed"];
  for (let layer = 0; layer < nLayers; layer++) {
    for (const hook of BLOCK_HOOKS) names.push(`blocks.${layer}.${hook}`);
  }
  names.push("ln_final.hook_scale", "ln_final.hook_normalized");
  return names as HookName[];
}

/** Selects hook names: a list of names, one name, or a predicate. */
export type NamesFilter = HookName | readonly HookName[] | ((name: HookName) => boolean);

/**
 * Resolves a names filter against the valid names of a model.
 *
 * @throws {RangeError} For an unknown name (the message suggests the nearest valid names), or
 *   when the filter matches no hook.
 */
export function resolveNames(filter: NamesFilter | undefined, valid: readonly HookName[]): Set<HookName> {
  if (filter === undefined) return new Set(valid);
  if (typeof filter === "function") {
    const matched = valid.filter((name) => filter(name));
    if (matched.length === 0) {
      throw new RangeError(
        `The names filter matched no hook point. Valid names look like ${valid.slice(0, 3).join(", ")}; ` +
          `list them all with model.hookNames().`,
      );
    }
    return new Set(matched);
  }
  if (typeof filter !== "string" && !Array.isArray(filter)) {
    throw new TypeError(
      `Invalid names filter ${String(filter)}: pass a hook name, a list of hook names, or a predicate (name) => boolean.`,
    );
  }
  const names = typeof filter === "string" ? [filter] : filter;
  if (names.length === 0) {
    throw new RangeError("The names filter is an empty list, so no activation would be cached; pass at least one hook name.");
  }
  const validSet = new Set<string>(valid);
  for (const name of names) checkHookName(name, valid, validSet);
  return new Set(names);
}

/**
 * Checks that `name` is a valid hook name.
 *
 * @throws {RangeError} Naming the unknown hook and the nearest valid names.
 */
export function checkHookName(name: string, valid: readonly string[], validSet = new Set(valid)): void {
  if (validSet.has(name)) return;
  const nearest = [...valid]
    .map((candidate) => ({ candidate, distance: editDistance(name, candidate) }))
    .sort((a, b) => a.distance - b.distance)
    .slice(0, 3)
    .map((c) => `"${c.candidate}"`);
  throw new RangeError(`Unknown hook name "${name}". Did you mean ${nearest.join(", ")}?`);
}

/** Whether `name` has the form of a hook name, such as `blocks.3.attn.hook_pattern`. */
function validHookNameShape(name: string): boolean {
  const block = name.match(/^blocks\.\d+\.(.+)$/);
  if (block) return BLOCK_HOOKS.includes(block[1]!);
  return ["hook_embed", "hook_pos_embed", "ln_final.hook_scale", "ln_final.hook_normalized"].includes(name);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * Activations recorded by `runWithCache`, by hook name. The cache owns its tensors: call
 * `dispose()` when done with it.
 *
 * Shapes have no batch axis: `hook_embed` is `[pos, dModel]`, `attn.hook_q` is
 * `[pos, head, dHead]`, `attn.hook_pattern` is `[head, queryPos, keyPos]`.
 */
export class ActivationCache {
  readonly #tensors = new Map<HookName, tf.Tensor>();

  /** Stores a copy of `activation` under `name`, kept alive past the enclosing tf.tidy. */
  set(name: HookName, activation: tf.Tensor): void {
    this.#tensors.get(name)?.dispose();
    this.#tensors.set(name, tf.keep(activation.clone()));
  }

  /**
   * Returns the activation stored under `name`.
   *
   * @throws {RangeError} If the name was not cached; the message lists what was.
   */
  get(name: HookName): tf.Tensor {
    const tensor = this.#tensors.get(name);
    if (!tensor) {
      const names = [...this.#tensors.keys()];
      if (!validHookNameShape(name)) checkHookName(name, names);
      throw new RangeError(
        `"${name}" is not in this cache, which holds ${names.length} activations` +
          (names.length ? ` (${names.slice(0, 4).join(", ")}${names.length > 4 ? ", …" : ""})` : "") +
          `. Include it in the names filter of runWithCache.`,
      );
    }
    return tensor;
  }

  /** Whether `name` is cached. */
  has(name: HookName): boolean {
    return this.#tensors.has(name);
  }

  /** The cached hook names, in the order the forward pass reached them. */
  keys(): HookName[] {
    return [...this.#tensors.keys()];
  }

  /** The number of cached activations. */
  get size(): number {
    return this.#tensors.size;
  }

  /** Each cached name with its shape. */
  shapes(): Array<{ name: HookName; shape: number[] }> {
    return [...this.#tensors].map(([name, t]) => ({ name, shape: t.shape.slice() }));
  }

  /** Returns the MIME bundle Deno's Jupyter kernel shows: a table of hook names and shapes. */
  [JUPYTER_DISPLAY](): MimeBundle {
    return activationCacheBundle(this);
  }

  /** Returns the text util.inspect shows in a terminal: hook names and shapes. */
  [INSPECT_CUSTOM](_depth: number, options?: { colors?: boolean }): string {
    return activationCacheText(this, { colors: Boolean(options?.colors) });
  }

  /** Frees every cached tensor. */
  dispose(): void {
    for (const t of this.#tensors.values()) t.dispose();
    this.#tensors.clear();
  }
}
