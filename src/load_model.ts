/**
 * `loadModel`: read a checkpoint directory, or download one from a Hugging Face-style hub, and
 * put its weights on a tfjs backend.
 */
import { stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { type BackendName, ensureBackend, setBackend } from "./backend.ts";
import {
  DownloadError,
  downloadModel,
  type DownloadProgress,
  type HubOptions,
  parseHubUrl,
  validateRepoName,
} from "./hub.ts";
import { CheckpointError, loadCheckpoint, type LoadProgress } from "./loader.ts";
import { Model } from "./model.ts";

/** Progress of `loadModel`: file downloads first (hub models only), then reading the weights. */
export type ModelLoadProgress = DownloadProgress | (LoadProgress & { phase: "read" });

/** Options for `loadModel`. The hub options apply only when the model is a repo name or URL. */
export interface LoadModelOptions extends Omit<HubOptions, "onProgress"> {
  /** Select this backend first (default: keep the current one, or start wasm with a cpu fallback). */
  backend?: BackendName;
  /** Called as files are downloaded (`phase: "download"`) and as checkpoint bytes are read (`phase: "read"`). */
  onProgress?: (progress: ModelLoadProgress) => void;
}

/** The directory of the default model, trained in this repository on tiny Shakespeare. */
export function defaultModelDir(): string {
  return fileURLToPath(new URL("../models/default/", import.meta.url));
}

/**
 * Loads a GPT-2-family model from a Hugging Face-layout directory (config.json plus
 * model.safetensors, or a sharded model.safetensors.index.json), or from a hub.
 *
 * `source` is read as, in this order:
 * 1. an `http://` or `https://` URL of a repository, such as `https://huggingface.co/openai-community/gpt2`;
 * 2. a local path, when something exists at that path;
 * 3. a hub repo name, `name` or `owner/name`, downloaded from `options.baseUrl` into the cache.
 *
 * @param source The checkpoint; default: the model trained in this repository.
 * @param options Backend, progress callback, and the download options of `downloadModel`.
 * @returns The model, with weights on the selected backend.
 * @throws {CheckpointError} When the files are not a valid GPT-2 checkpoint, or `source` is
 *   neither an existing path nor a valid repo name.
 * @throws {DownloadError} When a hub file cannot be downloaded, or (offline) is not cached.
 * @throws {RangeError} For an invalid URL, repo name or option.
 * @example
 * ```ts
 * import { loadModel } from "./mod.ts";
 * const model = await loadModel();                 // the default model
 * const gpt2 = await loadModel("openai-community/gpt2", { onProgress: (p) => console.log(p.phase, p.file, p.loaded) });
 * const logits = model.forward("To be, or not to be");
 * ```
 */
export async function loadModel(source: string = defaultModelDir(), options: LoadModelOptions = {}): Promise<Model> {
  if (typeof source !== "string" || source === "") {
    throw new TypeError(
      `Invalid model source ${
        JSON.stringify(source)
      }: expected a directory path, a repo name such as "gpt2", or a URL.`,
    );
  }
  const dir = await resolveSource(source, options);

  if (options.backend) await setBackend(options.backend);
  else await ensureBackend();
  const onProgress = options.onProgress;
  const loadOptions = onProgress ? { onProgress: (p: LoadProgress) => onProgress({ phase: "read", ...p }) } : {};
  const checkpoint = await loadCheckpoint(dir, loadOptions);
  return new Model(checkpoint, undefined, { releaseHostWeights: true });
}

/** Returns the local directory for `source`, downloading hub files first when needed. */
async function resolveSource(source: string, options: LoadModelOptions): Promise<string> {
  const hubOptions: HubOptions = { ...options };
  delete (hubOptions as LoadModelOptions).backend;
  if (options.onProgress) hubOptions.onProgress = options.onProgress;

  if (/^https?:\/\//i.test(source)) {
    const reference = parseHubUrl(source);
    if (options.baseUrl !== undefined && options.baseUrl.replace(/\/$/, "") !== reference.baseUrl) {
      throw new RangeError(
        `Conflicting hub addresses: the model URL ${source} points at ${reference.baseUrl}, but baseUrl is ` +
          `${options.baseUrl}. Pass a repo name with baseUrl, or the URL alone.`,
      );
    }
    if (reference.revision !== undefined && options.revision !== undefined && options.revision !== reference.revision) {
      throw new RangeError(
        `Conflicting revisions: the model URL names ${reference.revision}, but the revision option is ` +
          `${options.revision}. Pass only one of them.`,
      );
    }
    hubOptions.baseUrl = reference.baseUrl;
    if (reference.revision !== undefined) hubOptions.revision = reference.revision;
    return await downloadModel(reference.repo, hubOptions);
  }

  if (await exists(source)) return source;

  try {
    validateRepoName(source);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw new CheckpointError(
      `${source} not found: there is no file or directory at that path, and it is not a hub repo name ` +
        `("name" or "owner/name"). Check the path.`,
      { cause: error },
    );
  }
  try {
    return await downloadModel(source, hubOptions);
  } catch (error) {
    // A mistyped local directory name also reads as a repo name, so mention that no path matched either.
    if (!(error instanceof DownloadError) || error.status !== 404) throw error;
    throw new DownloadError(`${source} is not a local path, and the hub has no such repo: ${error.message}`, {
      cause: error,
      url: error.url,
      status: error.status,
    });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return false;
    throw error;
  }
}
