/**
 * Loads a Hugging Face GPT-2 checkpoint (config.json plus model.safetensors, or shards listed
 * in model.safetensors.index.json) into float32 host arrays in paper notation, from any
 * {@link CheckpointFiles}: a directory (src/loader.ts) or a base URL (src/browser/fetch_files.ts).
 *
 * This is the only module that handles checkpoint names (`c_attn`, `c_fc`, the `transformer.`
 * prefix) and the Conv1D `[in, out]` layout. src/types.ts describes the result. It imports no
 * Node module, so the browser build can use it.
 */
import {
  type ByteSource,
  readHeader,
  readTensor,
  type SafetensorsHeader,
  SafetensorsError,
  type TensorInfo,
} from "./safetensors.ts";
import type {
  Activation,
  BlockWeights,
  CheckpointInfo,
  HostTensor,
  LayerNormWeights,
  LoadedCheckpoint,
  ModelConfig,
  ModelWeights,
} from "./types.ts";

/**
 * Failure to load a checkpoint: a missing file, an invalid config, missing, unexpected or
 * wrongly shaped tensors, or a corrupt safetensors file (then `cause` is the SafetensorsError).
 */
export class CheckpointError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CheckpointError";
  }
}

/** Progress of reading one weight file. */
export interface LoadProgress {
  /** File name inside the checkpoint directory. */
  file: string;
  /** Bytes of tensor data read from this file so far. */
  loaded: number;
  /** Bytes of tensor data that will be read from this file. */
  total: number;
}

/** Options for {@link loadCheckpointFiles} and `loadCheckpoint` (src/loader.ts). */
export interface LoadCheckpointOptions {
  /** Called when a file starts and after each chunk read from it. */
  onProgress?: (progress: LoadProgress) => void;
}

const ACTIVATION_ALIASES: Readonly<Record<string, Activation>> = {
  gelu_new: "gelu_new",
  gelu: "gelu",
  relu: "relu",
  gelu_pytorch_tanh: "gelu_pytorch_tanh",
  // transformers computes gelu_fast with the same tanh formula as gelu_new.
  gelu_fast: "gelu_new",
};

/**
 * Checks a parsed config.json of a GPT-2 model and converts it to a {@link ModelConfig}.
 *
 * Required: `n_embd`, `n_layer`, `n_head`, `vocab_size`, and `n_positions` (or `n_ctx`).
 * Defaults: `layer_norm_epsilon` 1e-5, `activation_function` "gelu_new", `n_inner` null
 * (4 * n_embd), `scale_attn_weights` true, `scale_attn_by_inverse_layer_idx` false,
 * `tie_word_embeddings` true. `gelu_fast` is read as "gelu_new". Other keys are ignored.
 *
 * @param raw The parsed JSON.
 * @param source Path or URL of the config, used in error messages.
 * @throws CheckpointError when a value is missing, has the wrong type, or is unsupported.
 * @example
 * ```ts
 * const config = parseConfig({ n_embd: 8, n_layer: 1, n_head: 2, n_positions: 16, vocab_size: 64 }, "inline");
 * config.dMlp; // 32
 * ```
 */
export function parseConfig(raw: unknown, source: string): ModelConfig {
  if (!isPlainObject(raw)) {
    throw new CheckpointError(`${source}: the config must be a JSON object, found ${describe(raw)}.`);
  }
  const modelType = raw["model_type"];
  if (modelType !== undefined && modelType !== "gpt2") {
    throw new CheckpointError(
      `${source}: model_type is ${JSON.stringify(modelType)}, but only "gpt2" checkpoints are supported.`,
    );
  }

  const dModel = positiveInteger(raw, "n_embd", source);
  const nLayers = positiveInteger(raw, "n_layer", source);
  const nHeads = positiveInteger(raw, "n_head", source);
  const dVocab = positiveInteger(raw, "vocab_size", source);
  const nCtx = raw["n_positions"] != null
    ? positiveInteger(raw, "n_positions", source)
    : raw["n_ctx"] != null
    ? positiveInteger(raw, "n_ctx", source)
    : missing("n_positions (or n_ctx)", source);
  if (dModel % nHeads !== 0) {
    throw new CheckpointError(
      `${source}: n_embd (${dModel}) must be divisible by n_head (${nHeads}) so every head gets the same width.`,
    );
  }
  const dMlp = raw["n_inner"] == null ? 4 * dModel : positiveInteger(raw, "n_inner", source);

  const eps = raw["layer_norm_epsilon"] ?? 1e-5;
  if (typeof eps !== "number" || !Number.isFinite(eps) || eps <= 0) {
    throw new CheckpointError(
      `${source}: layer_norm_epsilon must be a positive number, found ${JSON.stringify(eps)}.`,
    );
  }

  const activationName = raw["activation_function"] ?? "gelu_new";
  const activation = typeof activationName === "string" && Object.hasOwn(ACTIVATION_ALIASES, activationName)
    ? ACTIVATION_ALIASES[activationName]!
    : undefined;
  if (activation === undefined) {
    throw new CheckpointError(
      `${source}: activation_function ${JSON.stringify(activationName)} is not supported. ` +
        `Supported: ${Object.keys(ACTIVATION_ALIASES).join(", ")}.`,
    );
  }

  return {
    nLayers,
    nHeads,
    dModel,
    dHead: dModel / nHeads,
    dMlp,
    dVocab,
    nCtx,
    layerNormEps: eps,
    activation,
    scaleAttnWeights: booleanOption(raw, "scale_attn_weights", true, source),
    scaleAttnByInverseLayerIdx: booleanOption(raw, "scale_attn_by_inverse_layer_idx", false, source),
    tieWordEmbeddings: booleanOption(raw, "tie_word_embeddings", true, source),
  };
}

function positiveInteger(raw: Record<string, unknown>, key: string, source: string): number {
  const value = raw[key];
  if (value === undefined || value === null) missing(key, source);
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new CheckpointError(`${source}: ${key} must be a positive integer, found ${JSON.stringify(value)}.`);
  }
  return value;
}

function booleanOption(raw: Record<string, unknown>, key: string, fallback: boolean, source: string): boolean {
  const value = raw[key] ?? fallback;
  if (typeof value !== "boolean") {
    throw new CheckpointError(`${source}: ${key} must be true or false, found ${JSON.stringify(value)}.`);
  }
  return value;
}

function missing(key: string, source: string): never {
  throw new CheckpointError(`${source}: ${key} is missing. Add it to config.json.`);
}

const PREFIX = "transformer.";
const LM_HEAD = "lm_head.weight";
const FLOAT_DTYPES = new Set(["F32", "F16", "BF16", "F64"]);
// Causal-mask constants that older transformers versions stored. They are not weights.
const MASK_BUFFER = /^h\.\d+\.attn\.(bias|masked_bias)$/;

/** A weight file with its validated header. */
interface Shard {
  file: string;
  source: ByteSource;
  header: SafetensorsHeader;
}

/** Storage location of one expected tensor. */
interface StoredTensor {
  shard: Shard;
  storedName: string;
  info: TensorInfo;
}

/**
 * Read access to the files of one checkpoint, by file name (`config.json`,
 * `model.safetensors`, shard names from the index).
 */
export interface CheckpointFiles {
  /** The directory path or base URL, used in messages and as `info.source`. */
  readonly location: string;
  /** The path or URL of one file, used in messages. */
  path(name: string): string;
  /** Returns the text of a file, or null when it does not exist. */
  readText(name: string): Promise<string | null>;
  /** Opens a file for random access, or returns null when it does not exist. The caller closes it. */
  open(name: string): Promise<ByteSource | null>;
  /** Returns whether a file exists. Only used to add hints to error messages. */
  exists(name: string): Promise<boolean>;
}

/**
 * Loads a GPT-2 checkpoint into float32 host arrays in paper notation.
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
 * @param files Access to the checkpoint's files.
 * @param options.onProgress Receives `{ file, loaded, total }` in bytes per weight file.
 * @throws CheckpointError for every problem with the checkpoint, with the file, the tensor,
 *   and the expected and found values in the message.
 */
export async function loadCheckpointFiles(
  files: CheckpointFiles,
  options: LoadCheckpointOptions = {},
): Promise<LoadedCheckpoint> {
  const opened: OpenedFile[] = [];
  try {
    const config = parseConfig(await readJson(files, "config.json", "config.json"), files.path("config.json"));
    const weightMap = await openWeightFiles(files, opened);
    const shards: Shard[] = [];
    for (const { file, source } of opened) shards.push({ file, source, header: await readHeader(source) });
    if (weightMap !== null) checkWeightMap(weightMap, shards, files.location);

    const plan = planTensors(config, shards, files);
    const values = await readPlannedTensors(plan.toRead, shards, options.onProgress);
    const weights = assembleWeights(config, values);
    const info: CheckpointInfo = {
      source: files.location,
      files: shards.map((s) => s.file),
      namePrefix: plan.namePrefix,
      lmHead: config.tieWordEmbeddings ? "tied" : "separate",
      storedDtypes: countDtypes(shards),
      ignored: plan.ignored,
    };
    return { config, weights, info };
  } catch (error) {
    if (error instanceof SafetensorsError) throw new CheckpointError(error.message, { cause: error });
    throw error;
  } finally {
    for (const { source } of opened) await source.close?.();
  }
}

async function readJson(files: CheckpointFiles, name: string, requiredFile: string): Promise<unknown> {
  const path = files.path(name);
  const text = await files.readText(name);
  if (text === null) {
    throw new CheckpointError(`${path} not found. A checkpoint directory needs ${requiredFile}.`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CheckpointError(`${path} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

/** A weight file opened for reading, before its header is read. */
interface OpenedFile {
  file: string;
  source: ByteSource;
}

/**
 * Opens the weight files into `opened` (which the caller closes): `model.safetensors`, or the
 * shards that `model.safetensors.index.json` lists, in name order. Returns the index's weight
 * map for a sharded checkpoint, null otherwise.
 */
async function openWeightFiles(files: CheckpointFiles, opened: OpenedFile[]): Promise<Map<string, string> | null> {
  const single = await files.open("model.safetensors");
  if (single !== null) {
    opened.push({ file: "model.safetensors", source: single });
    return null;
  }

  const indexName = "model.safetensors.index.json";
  const indexPath = files.path(indexName);
  if (!(await files.exists(indexName))) {
    const hint = await files.exists("pytorch_model.bin")
      ? " It has pytorch_model.bin, which cannot be read here: convert it to safetensors first."
      : "";
    throw new CheckpointError(
      `${files.location} contains neither model.safetensors nor model.safetensors.index.json.${hint}`,
    );
  }

  const index = await readJson(files, indexName, indexName);
  const rawMap = isPlainObject(index) ? index["weight_map"] : undefined;
  if (!isPlainObject(rawMap)) {
    throw new CheckpointError(`${indexPath}: "weight_map" must be an object mapping tensor names to file names.`);
  }
  const weightMap = new Map<string, string>();
  for (const [tensor, file] of Object.entries(rawMap)) {
    if (typeof file !== "string" || !isInsideDirectory(file)) {
      throw new CheckpointError(
        `${indexPath}: tensor "${tensor}" maps to ${JSON.stringify(file)}. Expected a file name inside ${files.location}.`,
      );
    }
    weightMap.set(tensor, file);
  }
  if (weightMap.size === 0) throw new CheckpointError(`${indexPath}: "weight_map" is empty.`);

  for (const file of [...new Set(weightMap.values())].sort()) {
    const source = await files.open(file);
    if (source === null) {
      throw new CheckpointError(
        `${files.path(file)} not found, but model.safetensors.index.json lists it. Download the missing shard.`,
      );
    }
    opened.push({ file, source });
  }
  return weightMap;
}

/**
 * Returns whether a shard name from the index is a relative path that stays inside the
 * checkpoint: not absolute (`/x`, `\x`, `C:x`), and no `..` segment that climbs above the top.
 * Both `/` and `\` count as separators, so the check holds for paths and URLs alike.
 */
function isInsideDirectory(file: string): boolean {
  if (file === "" || /^[\\/]/.test(file) || /^[A-Za-z]:/.test(file)) return false;
  const parts: string[] = [];
  for (const part of file.split(/[\\/]/)) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (parts.length === 0) return false;
      parts.pop();
    } else {
      parts.push(part);
    }
  }
  return parts.length > 0 && !parts[0]!.startsWith("..");
}

/** Requires every shard to hold exactly the tensors the index assigns to it. */
function checkWeightMap(weightMap: Map<string, string>, shards: Shard[], dir: string): void {
  const foundIn = new Map<string, string>();
  for (const shard of shards) {
    for (const tensor of shard.header.tensors.keys()) {
      const earlier = foundIn.get(tensor);
      if (earlier !== undefined) {
        throw new CheckpointError(
          `${dir}: tensor "${tensor}" is stored in two shards, ${earlier} and ${shard.file}. ` +
            `Keep one copy and fix model.safetensors.index.json.`,
        );
      }
      foundIn.set(tensor, shard.file);
      const listed = weightMap.get(tensor);
      if (listed !== shard.file) {
        throw new CheckpointError(
          `${dir}: tensor "${tensor}" is stored in ${shard.file}, but model.safetensors.index.json ` +
            (listed === undefined ? "does not list it." : `maps it to ${listed}.`),
        );
      }
    }
  }
  for (const [tensor, file] of weightMap) {
    if (!foundIn.has(tensor)) {
      throw new CheckpointError(
        `${dir}: model.safetensors.index.json maps tensor "${tensor}" to ${file}, but that file does not contain it.`,
      );
    }
  }
}

/** The tensors a checkpoint must contain (names without the prefix) and their shapes. */
function expectedShapes(config: ModelConfig): Map<string, number[]> {
  const { dModel: D, dMlp: M, dVocab: V, nCtx } = config;
  const shapes = new Map<string, number[]>([
    ["wte.weight", [V, D]],
    ["wpe.weight", [nCtx, D]],
    ["ln_f.weight", [D]],
    ["ln_f.bias", [D]],
  ]);
  for (let layer = 0; layer < config.nLayers; layer++) {
    const p = `h.${layer}.`;
    shapes.set(p + "ln_1.weight", [D]);
    shapes.set(p + "ln_1.bias", [D]);
    shapes.set(p + "attn.c_attn.weight", [D, 3 * D]);
    shapes.set(p + "attn.c_attn.bias", [3 * D]);
    shapes.set(p + "attn.c_proj.weight", [D, D]);
    shapes.set(p + "attn.c_proj.bias", [D]);
    shapes.set(p + "ln_2.weight", [D]);
    shapes.set(p + "ln_2.bias", [D]);
    shapes.set(p + "mlp.c_fc.weight", [D, M]);
    shapes.set(p + "mlp.c_fc.bias", [M]);
    shapes.set(p + "mlp.c_proj.weight", [M, D]);
    shapes.set(p + "mlp.c_proj.bias", [D]);
  }
  if (!config.tieWordEmbeddings) shapes.set(LM_HEAD, [V, D]);
  return shapes;
}

interface TensorPlan {
  /** Tensors to read, keyed by name without the prefix. */
  toRead: Map<string, StoredTensor>;
  namePrefix: string;
  ignored: string[];
}

/** Matches stored names to expected ones and checks dtypes and shapes, reading no data. */
function planTensors(config: ModelConfig, shards: Shard[], files: CheckpointFiles): TensorPlan {
  const dir = files.location;
  const found = new Map<string, StoredTensor>();
  const ignored: string[] = [];
  let withPrefix = 0;
  let withoutPrefix = 0;

  for (const shard of shards) {
    for (const [storedName, info] of shard.header.tensors) {
      const hasPrefix = storedName.startsWith(PREFIX);
      const name = hasPrefix ? storedName.slice(PREFIX.length) : storedName;
      if (MASK_BUFFER.test(name)) {
        ignored.push(storedName);
        continue;
      }
      if (name !== LM_HEAD) {
        if (hasPrefix) withPrefix++;
        else withoutPrefix++;
      }
      const other = found.get(name);
      if (other !== undefined) {
        throw new CheckpointError(
          `${dir}: "${other.storedName}" and "${storedName}" are the same tensor with and without the ` +
            `"${PREFIX}" prefix. Remove one of them.`,
        );
      }
      found.set(name, { shard, storedName, info });
    }
  }
  checkLayerCount(config, found.keys(), dir);
  const expected = expectedShapes(config);
  if (withPrefix > 0 && withoutPrefix > 0) {
    throw new CheckpointError(
      `${dir}: ${withPrefix} tensor names start with "${PREFIX}" and ${withoutPrefix} do not. ` +
        `A checkpoint must use one naming scheme.`,
    );
  }

  const unexpected = [...found.keys()].filter((name) => !expected.has(name) && name !== LM_HEAD);
  if (unexpected.length > 0) {
    throw new CheckpointError(
      `${dir}: unexpected tensors for a GPT-2 with ${config.nLayers} layers: ` +
        `${listNames(unexpected.map((n) => found.get(n)!.storedName))}. Check n_layer in config.json ` +
        `and that this is a GPT-2 checkpoint.`,
    );
  }
  const namePrefix = withPrefix > 0 ? PREFIX : "";
  const absent = [...expected.keys()]
    .filter((name) => !found.has(name))
    .map((name) => (name === LM_HEAD ? name : namePrefix + name));
  if (absent.length > 0) {
    const lmHeadHint = absent.includes(LM_HEAD)
      ? ` config.json sets tie_word_embeddings to false, so ${LM_HEAD} is required.`
      : "";
    throw new CheckpointError(`${dir}: missing tensors: ${listNames(absent)}.${lmHeadHint}`);
  }

  // With a tied head, a stored lm_head.weight is checked for shape but never read.
  const shapes = new Map(expected);
  if (found.has(LM_HEAD)) shapes.set(LM_HEAD, [config.dVocab, config.dModel]);
  const toRead = new Map<string, StoredTensor>();
  for (const [name, shape] of shapes) {
    const stored = found.get(name)!;
    const where = `${files.path(stored.shard.file)}: tensor "${stored.storedName}"`;
    if (!FLOAT_DTYPES.has(stored.info.dtype)) {
      throw new CheckpointError(
        `${where} has dtype ${stored.info.dtype}, but GPT-2 weights must be F32, F16, BF16 or F64.`,
      );
    }
    if (!sameShape(stored.info.shape, shape)) {
      throw new CheckpointError(
        `${where} has shape [${stored.info.shape.join(", ")}], expected [${shape.join(", ")}] ` +
          `from config.json. Check that config.json belongs to these weights.`,
      );
    }
    if (expected.has(name)) toRead.set(name, stored);
  }

  return { toRead, namePrefix, ignored };
}

/**
 * Rejects a config with more layers than the files store. This runs before the table of
 * expected names is built, because that table grows with n_layer, which config.json may set
 * to any integer.
 */
function checkLayerCount(config: ModelConfig, names: Iterable<string>, dir: string): void {
  let storedLayers = 0;
  for (const name of names) {
    const layer = /^h\.(\d+)\./.exec(name)?.[1];
    if (layer !== undefined) storedLayers = Math.max(storedLayers, Number(layer) + 1);
  }
  if (config.nLayers > storedLayers) {
    const stored = storedLayers === 0
      ? "the weights contain no block (h.N) tensors"
      : `the highest block in the weights is h.${storedLayers - 1} (${storedLayers} layers)`;
    throw new CheckpointError(
      `${dir}: config.json sets n_layer to ${config.nLayers}, but ${stored}. ` +
        `Check n_layer in config.json and that the config belongs to these weights.`,
    );
  }
}

/** Reads the planned tensors file by file in offset order and converts them to float32. */
async function readPlannedTensors(
  toRead: Map<string, StoredTensor>,
  shards: Shard[],
  onProgress: LoadCheckpointOptions["onProgress"],
): Promise<Map<string, Float32Array>> {
  const values = new Map<string, Float32Array>();
  for (const shard of shards) {
    const entries = [...toRead].filter(([, stored]) => stored.shard === shard);
    entries.sort(([, a], [, b]) => a.info.dataOffsets[0] - b.info.dataOffsets[0]);
    const total = entries.reduce((sum, [, s]) => sum + s.info.dataOffsets[1] - s.info.dataOffsets[0], 0);

    let loaded = 0;
    onProgress?.({ file: shard.file, loaded, total });
    for (const [name, stored] of entries) {
      const before = loaded;
      const tensor = await readTensor(shard.source, shard.header, stored.storedName, {
        onProgress: onProgress && ((bytes) => onProgress({ file: shard.file, loaded: before + bytes, total })),
      });
      loaded += stored.info.dataOffsets[1] - stored.info.dataOffsets[0];
      // planTensors admits only float dtypes, which readTensor returns as Float32Array.
      values.set(name, tensor.data as Float32Array);
    }
  }
  return values;
}

/** Builds the paper-notation weights from tensors keyed by their unprefixed names. */
function assembleWeights(config: ModelConfig, values: Map<string, Float32Array>): ModelWeights {
  const { dModel: D, dMlp: M, dVocab: V, nCtx } = config;
  const get = (name: string): Float32Array => values.get(name)!;
  const host = (name: string, shape: number[]): HostTensor => ({ shape, data: get(name) });
  const layerNorm = (name: string): LayerNormWeights => ({
    w: host(`${name}.weight`, [D]),
    b: host(`${name}.bias`, [D]),
  });

  const blocks: BlockWeights[] = [];
  for (let layer = 0; layer < config.nLayers; layer++) {
    const p = `h.${layer}.`;
    const [W_Q, W_K, W_V] = splitColumns(get(p + "attn.c_attn.weight"), D, 3); // [D, 3D] -> 3 x [D, D]
    const [b_Q, b_K, b_V] = splitColumns(get(p + "attn.c_attn.bias"), 1, 3); // [3D] -> 3 x [D]
    blocks.push({
      ln1: layerNorm(p + "ln_1"),
      W_Q: { shape: [D, D], data: W_Q! },
      W_K: { shape: [D, D], data: W_K! },
      W_V: { shape: [D, D], data: W_V! },
      b_Q: { shape: [D], data: b_Q! },
      b_K: { shape: [D], data: b_K! },
      b_V: { shape: [D], data: b_V! },
      W_O: host(p + "attn.c_proj.weight", [D, D]),
      b_O: host(p + "attn.c_proj.bias", [D]),
      ln2: layerNorm(p + "ln_2"),
      W_in: host(p + "mlp.c_fc.weight", [D, M]),
      b_in: host(p + "mlp.c_fc.bias", [M]),
      W_out: host(p + "mlp.c_proj.weight", [M, D]),
      b_out: host(p + "mlp.c_proj.bias", [D]),
    });
  }

  const W_E = host("wte.weight", [V, D]);
  const head = config.tieWordEmbeddings ? W_E.data : get(LM_HEAD);
  return {
    W_E,
    W_pos: host("wpe.weight", [nCtx, D]),
    blocks,
    lnFinal: layerNorm("ln_f"),
    W_U: { shape: [D, V], data: transpose(head, V, D) }, // [V, D] -> [D, V]
  };
}

/**
 * Splits each row of a row-major `[rows, parts * width]` matrix into `parts` matrices of
 * `[rows, width]`: part k gets columns `k*width .. (k+1)*width`.
 */
function splitColumns(matrix: Float32Array, rows: number, parts: number): Float32Array[] {
  const width = matrix.length / rows / parts;
  const out = Array.from({ length: parts }, () => new Float32Array(rows * width));
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < parts; k++) {
      const start = (r * parts + k) * width;
      out[k]!.set(matrix.subarray(start, start + width), r * width);
    }
  }
  return out;
}

const TRANSPOSE_BLOCK = 32;

/**
 * Transposes a row-major `[rows, cols]` matrix into a new `[cols, rows]` one. The loop works in
 * 32 x 32 tiles, so the rows a tile reads and the rows it writes stay in cache whatever the
 * matrix shape, also for the `[50257, dModel]` GPT-2 embedding.
 */
function transpose(matrix: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r0 = 0; r0 < rows; r0 += TRANSPOSE_BLOCK) {
    const r1 = Math.min(r0 + TRANSPOSE_BLOCK, rows);
    for (let c0 = 0; c0 < cols; c0 += TRANSPOSE_BLOCK) {
      const c1 = Math.min(c0 + TRANSPOSE_BLOCK, cols);
      for (let r = r0; r < r1; r++) {
        const rowStart = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = matrix[rowStart + c]!;
      }
    }
  }
  return out;
}

function countDtypes(shards: Shard[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const shard of shards) {
    for (const info of shard.header.tensors.values()) counts[info.dtype] = (counts[info.dtype] ?? 0) + 1;
  }
  return counts;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function listNames(names: string[], max = 6): string {
  const quoted = names.slice(0, max).map((n) => `"${n}"`).join(", ");
  return names.length > max ? `${quoted} and ${names.length - max} more` : quoted;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}
