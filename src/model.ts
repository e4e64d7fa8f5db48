/**
 * The model: weights on a tfjs backend, wired to the stage functions, hook points and the
 * activation cache. Every stage can also be called alone on the user's own tensors.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { CheckpointInfo, HostTensor, LoadedCheckpoint, ModelConfig, ModelWeights } from "./types.ts";
import { embed } from "./stages/embed.ts";
import { layerNorm } from "./stages/layer_norm.ts";
import { attention, type AttentionWeights } from "./stages/attention.ts";
import { mlp, type MlpWeights } from "./stages/mlp.ts";
import { unembed, unembedLogits } from "./stages/unembed.ts";
import { ActivationCache, checkHookName, type HookName, hookNames, type NamesFilter, resolveNames } from "./hooks.ts";
import { AttentionResult, EmbedResult, LayerNormResult, MlpResult, UnembedResult } from "./results.ts";
import { assertShape } from "./shapes.ts";
import { gpt2Tokenizer, type Tokenizer } from "./tokenizer.ts";

/** Layer-norm parameters as tensors, each `[dModel]`. */
export interface LayerNormTensors {
  w: tf.Tensor1D;
  b: tf.Tensor1D;
}

/** One block's weights as tensors. */
export interface BlockTensors {
  ln1: LayerNormTensors;
  attn: AttentionWeights;
  ln2: LayerNormTensors;
  mlp: MlpWeights;
}

/** Input accepted where the model expects tokens: text, or token ids. */
export type TokenInput = string | readonly number[] | Int32Array;

/** Input accepted where a stage expects a residual `[pos, dModel]`. */
export type ResidualInput = tf.Tensor | readonly (readonly number[])[];

/**
 * A function called at a hook point. It may read the activation and may return a tensor of
 * the same shape to replace it. Tensors it creates are freed when the forward pass ends,
 * so copy out with `await t.array()` (or `tf.keep(t.clone())`) to keep one.
 */
export type HookFn = (activation: tf.Tensor, context: { name: HookName }) => tf.Tensor | void;

/** A hook: which hook points (a name, a list, or a predicate) and the function to run. */
export interface Hook {
  name: NamesFilter;
  fn: HookFn;
}

/** Options for turning text into tokens. */
export interface TokenOptions {
  /** Treat `<|endoftext|>` in the text as the special token. Default true. */
  allowSpecial?: boolean;
  /** Put `<|endoftext|>` (id 50256) before the text, as TransformerLens does by default. Default false. */
  prependBos?: boolean;
}

/** Options for the {@link Model} constructor. */
export interface ModelOptions {
  /**
   * Empty each host array of `checkpoint.weights` once it is on the backend. The constructor then
   * collects garbage where the runtime allows it (Bun.gc, or gc() under --expose-gc), so the host
   * copy is gone before the warm-up pass makes XNNPACK pack the weights. The checkpoint cannot be
   * used again afterwards. Default false.
   */
  releaseHostWeights?: boolean;
}

/** Keys and values of earlier positions, per layer, for incremental decoding. */
export class KVCache {
  constructor(
    /** Per layer: keys and values `[pos, head, dHead]`. */
    readonly layers: Array<{ k: tf.Tensor3D; v: tf.Tensor3D }>,
  ) {}

  /** The number of positions cached. */
  get length(): number {
    return this.layers[0]?.k.shape[0] ?? 0;
  }

  /** Frees the cached tensors. */
  dispose(): void {
    for (const { k, v } of this.layers) {
      k.dispose();
      v.dispose();
    }
  }
}

type InternalHook = (name: HookName, activation: tf.Tensor) => tf.Tensor;

interface RunOptions {
  hook?: InternalHook;
  /**
   * Frees each layer's intermediates when the layer ends, not when the pass ends. Only for
   * passes without user hooks, because a user hook may keep an earlier layer's activation
   * until the pass ends.
   */
  freePerLayer?: boolean;
  /** Compute each head's result (hook_result). */
  computeResult: boolean;
  past?: KVCache;
  /** Return the KV cache of all positions. */
  returnKV?: boolean;
}

interface RunOutput {
  logits: tf.Tensor2D;
  kv?: KVCache;
}

const BOS_ID = 50256;

/**
 * A GPT-2-architecture language model opened up for inspection.
 *
 * Create one with `loadModel()`. Shapes have no batch axis: one sequence at a time.
 */
export class Model {
  readonly config: ModelConfig;
  readonly info: CheckpointInfo;
  readonly tokenizer: Tokenizer;
  /** Token embedding `[dVocab, dModel]`. */
  readonly W_E: tf.Tensor2D;
  /** Position embedding `[nCtx, dModel]`. */
  readonly W_pos: tf.Tensor2D;
  readonly blocks: BlockTensors[];
  readonly lnFinalWeights: LayerNormTensors;
  /** Unembedding `[dModel, dVocab]`. */
  readonly W_U: tf.Tensor2D;
  readonly #hookNames: HookName[];
  #disposed = false;

  /**
   * Uploads host weights to the current tfjs backend. Prefer `loadModel()`. On the wasm backend
   * it then runs one single-token pass, so that XNNPACK packs the weights now and not in the
   * first real pass.
   */
  constructor(checkpoint: LoadedCheckpoint, tokenizer: Tokenizer = gpt2Tokenizer(), options: ModelOptions = {}) {
    const { config, weights } = checkpoint;
    this.config = config;
    this.info = checkpoint.info;
    this.tokenizer = tokenizer;
    this.#hookNames = hookNames(config.nLayers);
    const upload = toTensors(weights, options.releaseHostWeights ?? false);
    if (options.releaseHostWeights) collectGarbage();
    this.W_E = upload.W_E;
    this.W_pos = upload.W_pos;
    this.blocks = upload.blocks;
    this.lnFinalWeights = upload.lnFinal;
    this.W_U = upload.W_U;
    this.#warmUp();
  }

  /** Every hook name of this model, in the order the forward pass reaches them. */
  hookNames(): HookName[] {
    return this.#hookNames.slice();
  }

  // ---------------------------------------------------------------------------------------
  // Tokens

  /**
   * Turns text or ids into checked token ids.
   *
   * @throws {RangeError} For empty input, ids outside [0, dVocab) or input longer than nCtx.
   */
  toTokens(input: TokenInput, options: TokenOptions = {}): Int32Array {
    this.#checkAlive();
    let ids: number[];
    if (typeof input === "string") {
      if (input.length === 0) {
        throw new RangeError("Cannot tokenize an empty prompt: pass at least one character or token id.");
      }
      ids = this.tokenizer.encode(input, { allowSpecial: options.allowSpecial ?? true });
    } else if (Array.isArray(input) || input instanceof Int32Array) {
      ids = Array.from(input as ArrayLike<number>);
    } else {
      throw new TypeError(`Invalid tokens: expected a string, a number[] or an Int32Array, got ${describe(input)}`);
    }
    if (options.prependBos) ids.unshift(BOS_ID);
    if (ids.length === 0) {
      throw new RangeError("Cannot run on an empty token list: pass at least one token id.");
    }
    const { dVocab, nCtx } = this.config;
    ids.forEach((id, i) => {
      if (typeof id !== "number") {
        throw new TypeError(`Invalid token id ${JSON.stringify(id)} at index ${i}: ids must be numbers, not ${typeof id}.`);
      }
      if (!Number.isInteger(id) || id < 0 || id >= dVocab) {
        throw new RangeError(`Invalid token id ${id} at index ${i}: ids must be integers in [0, ${dVocab}).`);
      }
    });
    if (ids.length > nCtx) {
      throw new RangeError(
        `Input has ${ids.length} tokens, more than this model's ${nCtx} positions (nCtx); shorten it to ${nCtx} tokens.`,
      );
    }
    return Int32Array.from(ids);
  }

  /** The display text of one token id. Partial UTF-8 bytes show as U+FFFD. */
  tokenText(id: number): string {
    return this.tokenizer.decodeToken(id);
  }

  // ---------------------------------------------------------------------------------------
  // Stages, each callable alone

  /**
   * Embeds tokens: the token part W_E[ids], the position part W_pos[offset..], and their sum.
   *
   * @param input Text or token ids.
   * @param options.offset Position of the first token (default 0).
   * @returns Tensors `[pos, dModel]`, owned by the caller.
   */
  embed(input: TokenInput, options: TokenOptions & { offset?: number } = {}): EmbedResult {
    const ids = this.toTokens(input, options);
    const offset = options.offset ?? 0;
    this.#checkPositions(offset, ids.length);
    const e = embed(ids, this.W_E, this.W_pos, offset);
    return new EmbedResult(ids, e.tokenEmbed, e.posEmbed, e.residual);
  }

  /** Applies block `layer`'s first layer norm to a residual `[pos, dModel]`. */
  ln1(layer: number, residual: ResidualInput): LayerNormResult {
    return this.#layerNormStage(this.#block(layer, "ln1").ln1, residual, `ln1 of block ${layer}`);
  }

  /** Applies block `layer`'s second layer norm to a residual `[pos, dModel]`. */
  ln2(layer: number, residual: ResidualInput): LayerNormResult {
    return this.#layerNormStage(this.#block(layer, "ln2").ln2, residual, `ln2 of block ${layer}`);
  }

  /** Applies the final layer norm to a residual `[pos, dModel]`. */
  lnFinal(residual: ResidualInput): LayerNormResult {
    return this.#layerNormStage(this.lnFinalWeights, residual, "ln_final");
  }

  /**
   * Runs block `layer`'s attention on a residual: ln1, then causal attention.
   *
   * @param residual `[pos, dModel]`, any tensor or nested array (for example one you built yourself).
   * @returns ln1, q/k/v `[pos, head, dHead]`, scores and pattern `[head, pos, pos]`, z, each
   *   head's result `[pos, head, dModel]`, the block output and residual + output `[pos, dModel]`.
   * @example
   * ```ts
   * const e = model.embed("Hello world");
   * const a = model.attentionBlock(0, e.residual);
   * a.pattern.print();
   * a.dispose(); e.dispose();
   * ```
   */
  attentionBlock(layer: number, residual: ResidualInput): AttentionResult {
    const block = this.#block(layer, "attentionBlock");
    return tf.tidy(() => {
      const x = this.#residual(residual, `residual for attentionBlock(${layer})`);
      const ln = layerNorm(x, block.ln1.w, block.ln1.b, this.config.layerNormEps);
      const a = attention(ln.normalized, block.attn, this.#attentionOptions(layer, true));
      const residOut = tf.add(x, a.out) as tf.Tensor2D;
      return new AttentionResult(
        layer,
        new LayerNormResult(ln.scale, ln.normalized),
        a.q,
        a.k,
        a.v,
        a.scores,
        a.pattern,
        a.z,
        a.result!,
        a.out,
        residOut,
      ) as unknown as tf.TensorContainer;
    }) as unknown as AttentionResult;
  }

  /**
   * Runs block `layer`'s MLP on a residual: ln2, then the MLP.
   *
   * @param residual `[pos, dModel]`.
   * @returns ln2, neuron activations before and after the nonlinearity `[pos, dMlp]`, the block
   *   output and residual + output `[pos, dModel]`.
   */
  mlpBlock(layer: number, residual: ResidualInput): MlpResult {
    const block = this.#block(layer, "mlpBlock");
    return tf.tidy(() => {
      const x = this.#residual(residual, `residual for mlpBlock(${layer})`);
      const ln = layerNorm(x, block.ln2.w, block.ln2.b, this.config.layerNormEps);
      const m = mlp(ln.normalized, block.mlp, this.config.activation);
      const residOut = tf.add(x, m.out) as tf.Tensor2D;
      return new MlpResult(
        layer,
        new LayerNormResult(ln.scale, ln.normalized),
        m.pre,
        m.post,
        m.out,
        residOut,
      ) as unknown as tf.TensorContainer;
    }) as unknown as MlpResult;
  }

  /**
   * Turns a final residual into next-token predictions: ln_final, then W_U.
   *
   * @param residual `[pos, dModel]` (for example blocks.{nLayers-1}.hook_resid_post).
   * @returns logits and log-probabilities `[pos, dVocab]`, and `topK(k, position)`.
   */
  unembed(residual: ResidualInput): UnembedResult {
    this.#checkAlive();
    return tf.tidy(() => {
      const x = this.#residual(residual, "residual for unembed");
      const ln = layerNorm(x, this.lnFinalWeights.w, this.lnFinalWeights.b, this.config.layerNormEps);
      const u = unembed(ln.normalized, this.W_U, this.#unembedRows());
      return new UnembedResult(
        new LayerNormResult(ln.scale, ln.normalized),
        u.logits,
        u.logProbs,
        (id) => this.tokenText(id),
      ) as unknown as tf.TensorContainer;
    }) as unknown as UnembedResult;
  }

  // ---------------------------------------------------------------------------------------
  // Whole forward passes

  /**
   * Runs the whole model.
   *
   * @returns Logits `[pos, dVocab]`, owned by the caller.
   */
  forward(input: TokenInput, options: TokenOptions = {}): tf.Tensor2D {
    const ids = this.toTokens(input, options);
    return this.#run(ids, { computeResult: false, freePerLayer: true }).logits;
  }

  /**
   * Runs the model and records activations.
   *
   * @param options.names Which hook points to record: a name, a list, or a predicate (default: all).
   * @returns Logits `[pos, dVocab]` and the cache; the caller owns both.
   * @throws {RangeError} For an unknown hook name, or a filter that matches nothing.
   */
  runWithCache(
    input: TokenInput,
    options: TokenOptions & { names?: NamesFilter } = {},
  ): { logits: tf.Tensor2D; cache: ActivationCache } {
    const ids = this.toTokens(input, options);
    const names = resolveNames(options.names, this.#hookNames);
    const cache = new ActivationCache();
    try {
      const { logits } = this.#run(ids, {
        computeResult: [...names].some((n) => n.endsWith("attn.hook_result")),
        // The cache keeps its own references, so the pass may free each layer's tensors.
        freePerLayer: true,
        hook: (name, activation) => {
          if (names.has(name)) cache.set(name, activation);
          return activation;
        },
      });
      return { logits, cache };
    } catch (error) {
      cache.dispose();
      throw error;
    }
  }

  /**
   * Runs the model with hooks that may read or replace activations.
   *
   * @param options.hooks Hooks run in order at each matching hook point.
   * @returns Logits `[pos, dVocab]`, owned by the caller.
   * @throws {RangeError} For an unknown hook name; {TypeError} when a hook returns a tensor
   *   of the wrong shape.
   * @example
   * ```ts
   * // Zero-ablate head 3 of block 0.
   * const logits = model.runWithHooks("Hello world", {
   *   hooks: [{ name: "blocks.0.attn.hook_z", fn: (z) => z.mul(tf.oneHot(3, 4).reshape([1, 4, 1]).neg().add(1)) }],
   * });
   * ```
   */
  runWithHooks(input: TokenInput, options: TokenOptions & { hooks: readonly Hook[] }): tf.Tensor2D {
    const ids = this.toTokens(input, options);
    const resolved = this.#resolveHooks(options.hooks);
    const needResult = resolved.some((h) => [...h.names].some((n) => n.endsWith("attn.hook_result")));
    return this.#run(ids, { computeResult: needResult, hook: composeHooks(resolved) }).logits;
  }

  /**
   * Runs new tokens after the positions held in `past`, returning their logits and the
   * extended KV cache. `past` is not modified or freed.
   *
   * @param ids New token ids `[pos]`.
   * @param past Cache of the earlier positions, or undefined to start.
   * @param hooks Hooks fired on the new positions only.
   */
  forwardIncremental(
    ids: Int32Array,
    past: KVCache | undefined,
    hooks: readonly Hook[] = [],
  ): { logits: tf.Tensor2D; cache: KVCache } {
    const checked = this.toTokens(ids);
    if (past !== undefined) this.#checkKVCache(past);
    this.#checkPositions(past?.length ?? 0, checked.length);
    const resolved = this.#resolveHooks(hooks);
    const needResult = resolved.some((h) => [...h.names].some((n) => n.endsWith("attn.hook_result")));
    const out = this.#run(checked, {
      computeResult: needResult,
      hook: resolved.length ? composeHooks(resolved) : undefined,
      freePerLayer: resolved.length === 0,
      past,
      returnKV: true,
    });
    return { logits: out.logits, cache: out.kv! };
  }

  /** Frees the model's weights. The model cannot be used afterwards. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const t of allTensors(this)) t.dispose();
  }

  // ---------------------------------------------------------------------------------------
  // Internals

  /** The one forward pass behind forward, runWithCache, runWithHooks and generation. */
  #run(ids: Int32Array, options: RunOptions): RunOutput {
    this.#checkAlive();
    const offset = options.past?.length ?? 0;
    this.#checkPositions(offset, ids.length);
    const hook = options.hook;
    const at = hook
      ? (name: HookName, t: tf.Tensor) => hook(name, t)
      : (_name: HookName, t: tf.Tensor) => t;
    const prefixed = (prefix: string) => (local: string, t: tf.Tensor) => at(`${prefix}${local}` as HookName, t);

    const raw = tf.tidy(() => {
      const e = embed(ids, this.W_E, this.W_pos, offset, prefixed(""));
      let residual = e.residual;
      const kv: Array<{ k: tf.Tensor3D; v: tf.Tensor3D }> = [];

      for (let layer = 0; layer < this.config.nLayers; layer++) {
        const runLayer = (): { residual: tf.Tensor2D; k: tf.Tensor3D; v: tf.Tensor3D } => {
          const block = this.blocks[layer]!;
          const p = `blocks.${layer}.`;
          const residPre = at(`${p}hook_resid_pre` as HookName, residual) as tf.Tensor2D;

          // Attention: resid_pre -> ln1 -> attn -> resid_mid.
          const ln1 = layerNorm(residPre, block.ln1.w, block.ln1.b, this.config.layerNormEps, prefixed(`${p}ln1.`));
          const attnOptions = this.#attentionOptions(layer, options.computeResult);
          const past = options.past?.layers[layer];
          if (past) attnOptions.past = past;
          const a = attention(ln1.normalized, block.attn, attnOptions, prefixed(`${p}attn.`));
          const attnOut = at(`${p}hook_attn_out` as HookName, a.out);
          const residMid = at(`${p}hook_resid_mid` as HookName, tf.add(residPre, attnOut));

          // MLP: resid_mid -> ln2 -> mlp -> resid_post.
          const ln2 = layerNorm(residMid as tf.Tensor2D, block.ln2.w, block.ln2.b, this.config.layerNormEps, prefixed(`${p}ln2.`));
          const m = mlp(ln2.normalized, block.mlp, this.config.activation, prefixed(`${p}mlp.`));
          const mlpOut = at(`${p}hook_mlp_out` as HookName, m.out);
          const residPost = at(`${p}hook_resid_post` as HookName, tf.add(residMid, mlpOut)) as tf.Tensor2D;
          return { residual: residPost, k: a.kAll, v: a.vAll };
        };
        // Without user hooks, free the layer's intermediates now: a 512-token pass of GPT-2 small
        // would otherwise hold about 50 MB of attention scores per layer until its end.
        const out = options.freePerLayer
          ? tf.tidy(() => {
            const r = runLayer();
            return (options.returnKV ? r : { residual: r.residual }) as unknown as tf.TensorContainer;
          }) as unknown as { residual: tf.Tensor2D; k: tf.Tensor3D; v: tf.Tensor3D }
          : runLayer();
        residual = out.residual;
        if (options.returnKV) kv.push({ k: out.k, v: out.v });
      }

      const lnF = layerNorm(residual, this.lnFinalWeights.w, this.lnFinalWeights.b, this.config.layerNormEps, prefixed("ln_final."));
      const logits = unembedLogits(lnF.normalized, this.W_U, this.#unembedRows());
      const out: { logits: tf.Tensor2D; kv?: Array<{ k: tf.Tensor3D; v: tf.Tensor3D }> } = { logits };
      if (options.returnKV) out.kv = kv;
      return out as unknown as tf.TensorContainer;
    }) as unknown as { logits: tf.Tensor2D; kv?: Array<{ k: tf.Tensor3D; v: tf.Tensor3D }> };
    return raw.kv ? { logits: raw.logits, kv: new KVCache(raw.kv) } : { logits: raw.logits };
  }

  /** W_U transposed `[dVocab, dModel]` when it is at hand without a copy: W_E, for a tied head. */
  #unembedRows(): tf.Tensor2D | undefined {
    return this.config.tieWordEmbeddings ? this.W_E : undefined;
  }

  /**
   * Runs one single-token pass on the wasm backend, so the first real pass is not slow. XNNPACK
   * packs each weight matrix into its own layout the first time a matmul uses it, which made the
   * first 64-token pass of GPT-2 small take 1.8 s against 1.0 s (bench/run.ts, 2-vCPU Xeon).
   */
  #warmUp(): void {
    if (tf.getBackend() !== "wasm") return;
    this.#run(Int32Array.of(0), { computeResult: false, freePerLayer: true }).logits.dispose();
  }

  #attentionOptions(layer: number, computeResult: boolean) {
    const options: Parameters<typeof attention>[2] = {
      nHeads: this.config.nHeads,
      scaleAttnWeights: this.config.scaleAttnWeights,
      computeResult,
    };
    if (this.config.scaleAttnByInverseLayerIdx) options.inverseLayerScale = layer + 1;
    return options;
  }

  #resolveHooks(hooks: readonly Hook[]): Array<{ names: Set<HookName>; fn: HookFn }> {
    if (!Array.isArray(hooks)) {
      throw new TypeError(`Invalid hooks: expected an array of { name, fn }, got ${describe(hooks)}`);
    }
    return hooks.map((h, i) => {
      if (!h || typeof h.fn !== "function") {
        throw new TypeError(`Invalid hook at index ${i}: expected { name, fn } with fn a function`);
      }
      return { names: resolveNames(h.name, this.#hookNames), fn: h.fn };
    });
  }

  #layerNormStage(weights: LayerNormTensors, residual: ResidualInput, what: string): LayerNormResult {
    this.#checkAlive();
    return tf.tidy(() => {
      const x = this.#residual(residual, `residual for ${what}`);
      const ln = layerNorm(x, weights.w, weights.b, this.config.layerNormEps);
      return new LayerNormResult(ln.scale, ln.normalized) as unknown as tf.TensorContainer;
    }) as unknown as LayerNormResult;
  }

  /** Checks that a KV cache fits this model and that its tensors are not disposed. */
  #checkKVCache(past: KVCache): void {
    const { nLayers, nHeads, dHead } = this.config;
    if (!(past instanceof KVCache)) {
      throw new TypeError(`Invalid KV cache ${describe(past)}: pass the cache returned by forwardIncremental.`);
    }
    if (past.layers.length !== nLayers) {
      throw new TypeError(
        `Invalid KV cache: it has ${past.layers.length} layers, this model has ${nLayers}. ` +
          `Pass a cache made by this model's forwardIncremental.`,
      );
    }
    for (const [layer, { k, v }] of past.layers.entries()) {
      if (k.isDisposed || v.isDisposed) {
        throw new TypeError(`Invalid KV cache: layer ${layer} has been disposed. Keep the cache until the next step.`);
      }
      if (k.shape[1] !== nHeads || k.shape[2] !== dHead || v.shape.join() !== k.shape.join()) {
        throw new TypeError(
          `Invalid KV cache: layer ${layer} has keys [${k.shape.join(", ")}] and values [${v.shape.join(", ")}], ` +
            `expected [pos, ${nHeads}, ${dHead}] for both.`,
        );
      }
    }
  }

  #block(layer: number, what: string): BlockTensors {
    this.#checkAlive();
    const n = this.config.nLayers;
    if (!Number.isInteger(layer) || layer < 0 || layer >= n) {
      throw new RangeError(`Cannot run ${what} on layer ${layer}: layer must be an integer in [0, ${n}) (nLayers = ${n}).`);
    }
    return this.blocks[layer]!;
  }

  /** Converts a user residual to a `[pos, dModel]` float32 tensor, checking shape and values. */
  #residual(input: ResidualInput, what: string): tf.Tensor2D {
    let x: tf.Tensor;
    if (input instanceof tf.Tensor) {
      if (input.isDisposed) throw new TypeError(`Invalid ${what}: the tensor has been disposed.`);
      x = input.dtype === "float32" ? input : tf.cast(input, "float32");
    } else if (Array.isArray(input)) {
      checkRectangular(input, what);
      x = tf.tensor(input as number[][], undefined, "float32");
    } else {
      throw new TypeError(`Invalid ${what}: expected a tf.Tensor or number[][], got ${describe(input)}`);
    }
    assertShape(x.shape, ["pos", "dModel"], { dModel: this.config.dModel }, what);
    if (x.shape[0] === 0) throw new RangeError(`Invalid ${what}: it has no positions.`);
    const bad = tf.tidy(() => tf.any(tf.logicalNot(tf.isFinite(x))).dataSync()[0]);
    if (bad) {
      throw new RangeError(`Invalid ${what}: it contains NaN or Infinity; pass finite values only.`);
    }
    return x as tf.Tensor2D;
  }

  #checkPositions(offset: number, nPos: number): void {
    const nCtx = this.config.nCtx;
    if (!Number.isInteger(offset) || offset < 0) {
      throw new RangeError(`Invalid position offset ${offset}: expected a non-negative integer.`);
    }
    if (offset + nPos > nCtx) {
      throw new RangeError(
        `Cannot use position ${offset + nPos - 1}: this model has ${nCtx} positions (nCtx), numbered 0 to ${nCtx - 1}. ` +
          `Shorten the input or generate fewer tokens.`,
      );
    }
  }

  #checkAlive(): void {
    if (this.#disposed) throw new Error("This model has been disposed; load it again with loadModel().");
  }
}

/** Checks that a nested array is rectangular, which tfjs only checks in debug mode. */
function checkRectangular(input: readonly unknown[], what: string): void {
  const rowLength = Array.isArray(input[0]) ? (input[0] as unknown[]).length : -1;
  input.forEach((row, i) => {
    const length = Array.isArray(row) ? row.length : -1;
    if (length !== rowLength) {
      throw new TypeError(
        `Invalid ${what}: row ${i} has ${length < 0 ? "no array" : `${length} values`}, expected ${rowLength} values; ` +
          `pass a rectangular [pos, dModel] array.`,
      );
    }
    if (Array.isArray(row) && row.some((v) => typeof v !== "number")) {
      throw new TypeError(`Invalid ${what}: row ${i} contains a value that is not a number.`);
    }
  });
}

function composeHooks(hooks: Array<{ names: Set<HookName>; fn: HookFn }>): InternalHook {
  return (name, activation) => {
    let current = activation;
    for (const h of hooks) {
      if (!h.names.has(name)) continue;
      const replaced = h.fn(current, { name });
      if (replaced === undefined) continue;
      if (!(replaced instanceof tf.Tensor)) {
        throw new TypeError(`Hook on "${name}" returned ${describe(replaced)}; return a tf.Tensor or nothing.`);
      }
      if (replaced.shape.join() !== current.shape.join()) {
        throw new TypeError(
          `Hook on "${name}" returned shape [${replaced.shape.join(", ")}], expected [${current.shape.join(", ")}]; ` +
            `return a tensor of the activation's shape.`,
        );
      }
      current = replaced.dtype === "float32" ? replaced : tf.cast(replaced, "float32");
    }
    return current;
  };
}

/** Uploads the weights; with `release`, empties each host array once it is uploaded. */
function toTensors(weights: ModelWeights, release: boolean) {
  const done = <T>(h: HostTensor, t: T): T => {
    if (release) h.data = new Float32Array(0);
    return t;
  };
  const t1 = (h: HostTensor) => done(h, tf.tensor1d(h.data));
  const t2 = (h: HostTensor) => done(h, tf.tensor2d(h.data, h.shape as [number, number]));
  return {
    W_E: t2(weights.W_E),
    W_pos: t2(weights.W_pos),
    W_U: t2(weights.W_U),
    lnFinal: { w: t1(weights.lnFinal.w), b: t1(weights.lnFinal.b) },
    blocks: weights.blocks.map((b): BlockTensors => ({
      ln1: { w: t1(b.ln1.w), b: t1(b.ln1.b) },
      attn: {
        W_Q: t2(b.W_Q),
        W_K: t2(b.W_K),
        W_V: t2(b.W_V),
        b_Q: t1(b.b_Q),
        b_K: t1(b.b_K),
        b_V: t1(b.b_V),
        W_O: t2(b.W_O),
        b_O: t1(b.b_O),
      },
      ln2: { w: t1(b.ln2.w), b: t1(b.ln2.b) },
      mlp: { W_in: t2(b.W_in), b_in: t1(b.b_in), W_out: t2(b.W_out), b_out: t1(b.b_out) },
    })),
  };
}

/**
 * Runs a full garbage collection where a script may ask for one: Bun.gc(true) under Bun, and
 * gc() under Node or Deno started with --expose-gc. Without it, Bun still held GPT-2 small's
 * 651 MB of released host arrays when the constructor returned (1.89 GB RSS against 1.24 GB).
 */
function collectGarbage(): void {
  const runtime = globalThis as { Bun?: { gc(force: boolean): void }; gc?: () => void };
  if (runtime.Bun) runtime.Bun.gc(true);
  else runtime.gc?.();
}

function allTensors(model: Model): tf.Tensor[] {
  const out: tf.Tensor[] = [model.W_E, model.W_pos, model.W_U, model.lnFinalWeights.w, model.lnFinalWeights.b];
  for (const b of model.blocks) {
    out.push(b.ln1.w, b.ln1.b, b.ln2.w, b.ln2.b, ...Object.values(b.attn), ...Object.values(b.mlp));
  }
  return out;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof tf.Tensor) return `a tensor of shape [${value.shape.join(", ")}]`;
  return typeof value === "object" ? (value.constructor?.name ?? "an object") : `${typeof value} ${String(value)}`;
}

export { checkHookName };
