/**
 * Loads a Hugging Face GPT-2 checkpoint directory (config.json plus model.safetensors, or
 * shards listed in model.safetensors.index.json) into float32 host arrays in paper notation.
 *
 * The checkpoint logic lives in src/checkpoint.ts, which reads through a `CheckpointFiles`
 * interface. This module is its node:fs implementation for a directory.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  CheckpointError,
  type CheckpointFiles,
  type LoadCheckpointOptions,
  loadCheckpointFiles,
} from "./checkpoint.ts";
import { type ByteSource, openFileSource } from "./safetensors.ts";
import type { LoadedCheckpoint } from "./types.ts";

export {
  CheckpointError,
  type CheckpointFiles,
  type LoadCheckpointOptions,
  loadCheckpointFiles,
  type LoadProgress,
  parseConfig,
} from "./checkpoint.ts";

/**
 * Loads a GPT-2 checkpoint directory into float32 host arrays in paper notation.
 *
 * Reads `config.json`, then `model.safetensors`, or, when that file is absent, the shards
 * listed in `model.safetensors.index.json`. Tensor names may carry the `transformer.` prefix
 * or not. The buffers `h.N.attn.bias` and `h.N.attn.masked_bias` are skipped and listed in
 * `info.ignored`. All headers, names, dtypes and shapes are checked before any tensor data is
 * read. F16, BF16 and F64 weights are converted to float32.
 *
 * With `tie_word_embeddings` true, W_U is W_E transposed and a stored `lm_head.weight` is
 * not read (transformers also ties it to wte). With false, W_U is `lm_head.weight`
 * transposed, and the file must contain it.
 *
 * @param dir Checkpoint directory.
 * @param options.onProgress Receives `{ file, loaded, total }` in bytes per weight file.
 * @throws CheckpointError for every problem with the checkpoint, with the file, the tensor,
 *   and the expected and found values in the message.
 * @example
 * ```ts
 * const { config, weights } = await loadCheckpoint("test/fixtures/gpt2-tiny-f32");
 * weights.blocks[0]!.W_Q.shape; // [32, 32]
 * ```
 */
export async function loadCheckpoint(dir: string, options: LoadCheckpointOptions = {}): Promise<LoadedCheckpoint> {
  await checkDirectory(dir);
  return await loadCheckpointFiles(directoryFiles(dir), options);
}

/**
 * Returns node:fs access to the files of a checkpoint directory. Names are joined to `dir`, and
 * src/checkpoint.ts only passes names that stay inside it.
 */
export function directoryFiles(dir: string): CheckpointFiles {
  return {
    location: dir,
    path: (name) => join(dir, name),
    async readText(name) {
      try {
        return await readFile(join(dir, name), "utf8");
      } catch (error) {
        if (errorCode(error) === "ENOENT") return null;
        throw error;
      }
    },
    async open(name): Promise<ByteSource | null> {
      // A directory with a weight file's name counts as missing, as it did for stat().isFile().
      if (!(await isFile(join(dir, name)))) return null;
      try {
        return await openFileSource(join(dir, name));
      } catch (error) {
        if (errorCode(error) === "ENOENT") return null;
        throw error;
      }
    },
    exists: (name) => isFile(join(dir, name)),
  };
}

async function checkDirectory(dir: string): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(dir)).isDirectory();
  } catch (error) {
    if (errorCode(error) === "ENOENT") {
      throw new CheckpointError(`Checkpoint directory ${dir} not found.`, { cause: error });
    }
    throw error;
  }
  if (!isDirectory) {
    throw new CheckpointError(`${dir} is not a directory. Pass the directory that contains config.json.`);
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (error) {
    if (errorCode(error) === "ENOENT") return false;
    throw error;
  }
}

function errorCode(error: unknown): unknown {
  return typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
}
