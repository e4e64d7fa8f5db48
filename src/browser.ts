/**
 * underhood for web pages: the entry point of the browser build, `dist/browser/underhood.js`
 * (made by `scripts/build-browser.ts`). It loads checkpoints over HTTP and computes on tfjs's
 * WebGL backend, with wasm and then cpu as fallbacks.
 *
 * ```ts
 * import { generate, loadModel } from "./underhood.js";
 * const model = await loadModel("/models/default/");      // webgl, else wasm, else cpu
 * const out = await generate(model, "ROMEO:", { maxNewTokens: 20, seed: 1 });
 * ```
 *
 * The .wasm files of the wasm backend are expected next to the bundle. Call
 * `setWasmDirectory` before the wasm backend starts to fetch them from elsewhere.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  backendChosen,
  type BackendSelection,
  type BrowserBackendName,
  getBackend,
  selectBrowserBackend,
  setBackend,
} from "./browser/backend.ts";
import { urlFiles, type UrlFilesOptions } from "./browser/fetch_files.ts";
import { type LoadProgress, loadCheckpointFiles } from "./checkpoint.ts";
import { Model } from "./model.ts";
import type { ModelConfig } from "./types.ts";

export { tf };
export {
  BROWSER_BACKENDS,
  type BackendSelection,
  type BrowserBackendName,
  getBackend,
  selectBrowserBackend,
  setBackend,
  setWasmDirectory,
} from "./browser/backend.ts";
export {
  CheckpointError,
  type CheckpointFiles,
  loadCheckpointFiles,
  type LoadProgress,
  parseConfig,
} from "./checkpoint.ts";
export { urlFiles, type UrlFilesOptions } from "./browser/fetch_files.ts";
export { SafetensorsError } from "./safetensors.ts";
export {
  type BlockTensors,
  type Hook,
  type HookFn,
  KVCache,
  type LayerNormTensors,
  Model,
  type ResidualInput,
  type TokenInput,
  type TokenOptions,
} from "./model.ts";
export { ActivationCache, type HookName, hookNames, type NamesFilter } from "./hooks.ts";
export { AttentionResult, EmbedResult, LayerNormResult, MlpResult, type TopToken, UnembedResult } from "./results.ts";
export { ENDOFTEXT, ENDOFTEXT_ID, gpt2Tokenizer, type Token, Tokenizer } from "./tokenizer.ts";
export { generate, type GenerateOptions, type Generation, type GenerationStep } from "./generate.ts";
export { createRng, filterProbs, type Rng, sampleFromLogits, type SamplingOptions, softmax } from "./sampling.ts";
export type { Activation, CheckpointInfo, LoadedCheckpoint, ModelConfig, ModelWeights } from "./types.ts";

/** Options for the browser {@link loadModel}. */
export interface BrowserLoadModelOptions extends UrlFilesOptions {
  /**
   * The backend to compute on. Default: keep the current one if a backend was already chosen,
   * otherwise the first of webgl, wasm and cpu that starts and fits the model.
   */
  backend?: BrowserBackendName;
  /** Called as checkpoint bytes are read, with the file name and bytes of tensor data. */
  onProgress?: (progress: LoadProgress) => void;
  /** Called once the backend is settled, with the reasons earlier choices were skipped. */
  onBackend?: (selection: BackendSelection) => void;
}

/**
 * Loads a GPT-2-family checkpoint from a base URL: `config.json` and `model.safetensors` (or
 * the shards of `model.safetensors.index.json`) under it, read with HTTP Range requests when
 * the server supports them.
 *
 * Without `options.backend` and with no backend chosen yet, it starts WebGL, then wasm, then
 * cpu, and also leaves WebGL for wasm when the model's token embedding does not fit the
 * device's texture limit (see {@link webglTextureProblem}).
 *
 * @param baseUrl The checkpoint's URL, absolute or relative to the page. Default: the
 *   repository's `models/default/`, found relative to the bundle in `dist/browser/`.
 * @param options Backend, fetch function and callbacks.
 * @returns The model, with weights on the selected backend.
 * @throws {CheckpointError} When a file is missing, cannot be fetched, or is not a valid GPT-2 checkpoint.
 * @throws {RangeError} When WebGL was chosen explicitly and the model does not fit its texture limit.
 * @example
 * ```ts
 * const model = await loadModel("/models/default/", { onProgress: (p) => console.log(p.file, p.loaded, p.total) });
 * model.unembed(model.embed("To be").residual).topK(5);
 * ```
 */
export async function loadModel(
  baseUrl: string | URL = new URL("../../models/default/", import.meta.url),
  options: BrowserLoadModelOptions = {},
): Promise<Model> {
  const files = urlFiles(resolveUrl(baseUrl), options.fetch ? { fetch: options.fetch } : {});

  const automatic = options.backend === undefined && !backendChosen();
  let selection: BackendSelection;
  if (options.backend !== undefined) selection = { backend: await setBackend(options.backend), failures: [] };
  else if (automatic) selection = await selectBrowserBackend();
  else selection = { backend: getBackend() as BrowserBackendName, failures: [] };
  await tf.ready();

  const checkpoint = await loadCheckpointFiles(files, options.onProgress ? { onProgress: options.onProgress } : {});

  if (tf.getBackend() === "webgl") {
    const problem = webglTextureProblem(checkpoint.config, tf.env().getNumber("WEBGL_MAX_TEXTURE_SIZE"));
    if (problem !== null && !automatic) throw new RangeError(`${problem} Load it with { backend: "wasm" }.`);
    if (problem !== null) {
      const rest = await selectBrowserBackend(["wasm", "cpu"]);
      selection = { backend: rest.backend, failures: [{ backend: "webgl", message: problem }, ...rest.failures] };
    }
  }
  options.onBackend?.(selection);
  return new Model(checkpoint);
}

/**
 * Returns why a model's weights do not fit WebGL textures of at most `maxTextureSize` texels a
 * side, or null when they fit.
 *
 * tfjs-backend-webgl 4.22 looks up token embeddings (a gather) in an unpacked texture, one
 * value per texel. A `[dVocab, dModel]` matrix with a side over the limit is laid out as a
 * near-square of ceil(sqrt(dVocab * dModel)) texels a side, so that square must fit. Matrix
 * products use packed textures of four values per texel, which fit four times as many values.
 * For example GPT-2 small (50257 x 768) needs 6213 and fits 8192 but not 4096; the default
 * model (50257 x 128) needs 2537.
 *
 * @param config The model's dimensions.
 * @param maxTextureSize The device's `WEBGL_MAX_TEXTURE_SIZE`.
 */
export function webglTextureProblem(config: ModelConfig, maxTextureSize: number): string | null {
  const { dVocab, dModel } = config;
  if (dVocab <= maxTextureSize && dModel <= maxTextureSize) return null;
  const side = Math.ceil(Math.sqrt(dVocab * dModel));
  if (side <= maxTextureSize) return null;
  return (
    `The token embedding [${dVocab}, ${dModel}] needs a ${side}x${side} WebGL texture, more than this device's ` +
    `maximum of ${maxTextureSize}.`
  );
}

/** Resolves a relative URL against the page's address, when there is a page. */
function resolveUrl(url: string | URL): string | URL {
  const page = (globalThis as { location?: { href: string } }).location?.href;
  return typeof url === "string" && page !== undefined ? new URL(url, page) : url;
}
