/**
 * `loadModel`: read a checkpoint directory and put its weights on a tfjs backend.
 */
import { fileURLToPath } from "node:url";
import { type BackendName, ensureBackend, setBackend } from "./backend.ts";
import { loadCheckpoint, type LoadProgress } from "./loader.ts";
import { Model } from "./model.ts";

/** Options for `loadModel`. */
export interface LoadModelOptions {
  /** Select this backend first (default: keep the current one, or start wasm with a cpu fallback). */
  backend?: BackendName;
  /** Called as checkpoint bytes are read. */
  onProgress?: (progress: LoadProgress) => void;
}

/** The directory of the default model, trained in this repository on tiny Shakespeare. */
export function defaultModelDir(): string {
  return fileURLToPath(new URL("../models/default/", import.meta.url));
}

/**
 * Loads a GPT-2-family model from a Hugging Face-layout directory (config.json plus
 * model.safetensors, or a sharded model.safetensors.index.json).
 *
 * @param dir The checkpoint directory; default: the model trained in this repository.
 * @returns The model, with weights on the selected backend.
 * @throws {CheckpointError} When the directory is not a valid GPT-2 checkpoint.
 * @example
 * ```ts
 * import { loadModel } from "./mod.ts";
 * const model = await loadModel();
 * const logits = model.forward("To be, or not to be");
 * ```
 */
export async function loadModel(dir: string = defaultModelDir(), options: LoadModelOptions = {}): Promise<Model> {
  if (options.backend) await setBackend(options.backend);
  else await ensureBackend();
  const loadOptions = options.onProgress ? { onProgress: options.onProgress } : {};
  const checkpoint = await loadCheckpoint(dir, loadOptions);
  return new Model(checkpoint);
}
