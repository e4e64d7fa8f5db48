/**
 * Export of trained weights as a Hugging Face GPT-2 checkpoint directory: config.json and
 * model.safetensors with GPT2LMHeadModel names, Conv1D `[in, out]` matrices and no lm_head
 * (the unembedding is tied to wte).
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeSafetensors, type TensorToWrite } from "../safetensors_write.ts";
import { BLOCK_PARAMS, type TrainModelConfig } from "./model.ts";
import { expandEmbedding, type CompactVocab } from "./vocab.ts";

const CHECKPOINT_NAMES: Record<(typeof BLOCK_PARAMS)[number], string> = {
  "ln1.w": "ln_1.weight",
  "ln1.b": "ln_1.bias",
  W_QKV: "attn.c_attn.weight",
  b_QKV: "attn.c_attn.bias",
  W_O: "attn.c_proj.weight",
  b_O: "attn.c_proj.bias",
  "ln2.w": "ln_2.weight",
  "ln2.b": "ln_2.bias",
  W_in: "mlp.c_fc.weight",
  b_in: "mlp.c_fc.bias",
  W_out: "mlp.c_proj.weight",
  b_out: "mlp.c_proj.bias",
};

/** Returns the Hugging Face name of a training parameter. */
export function checkpointName(name: string): string {
  if (name === "W_E") return "transformer.wte.weight";
  if (name === "W_pos") return "transformer.wpe.weight";
  if (name === "ln_final.w") return "transformer.ln_f.weight";
  if (name === "ln_final.b") return "transformer.ln_f.bias";
  const match = /^blocks\.(\d+)\.(.+)$/.exec(name);
  const mapped = match ? CHECKPOINT_NAMES[match[2] as (typeof BLOCK_PARAMS)[number]] : undefined;
  if (!match || mapped === undefined) throw new RangeError(`Cannot export parameter "${name}": no checkpoint name for it`);
  return `transformer.h.${match[1]}.${mapped}`;
}

/**
 * Replaces the compact embedding by the full `[dVocab, dModel]` table (the shared unseen row
 * copied into every unseen id). Other parameters are passed through unchanged.
 */
export function expandParameters(
  config: TrainModelConfig,
  vocab: CompactVocab,
  compact: Record<string, Float32Array>,
): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = { ...compact };
  out.W_E = expandEmbedding(vocab, compact.W_E!, config.dModel);
  return out;
}

/** Builds the GPT-2 config.json object for a model. */
export function huggingFaceConfig(config: TrainModelConfig): Record<string, unknown> {
  return {
    activation_function: "gelu_new",
    architectures: ["GPT2LMHeadModel"],
    attn_pdrop: 0.0,
    bos_token_id: 50256,
    embd_pdrop: 0.0,
    eos_token_id: 50256,
    initializer_range: 0.02,
    layer_norm_epsilon: config.layerNormEps,
    model_type: "gpt2",
    n_ctx: config.nCtx,
    n_embd: config.dModel,
    n_head: config.nHeads,
    n_inner: null,
    n_layer: config.nLayers,
    n_positions: config.nCtx,
    reorder_and_upcast_attn: false,
    resid_pdrop: 0.0,
    scale_attn_by_inverse_layer_idx: false,
    scale_attn_weights: true,
    tie_word_embeddings: true,
    torch_dtype: "float16",
    use_cache: true,
    vocab_size: config.dVocab,
  };
}

/**
 * Writes `dir/config.json` and `dir/model.safetensors` (F16) from full-vocabulary parameters.
 *
 * @param full Parameters by training name, with `W_E` already `[dVocab, dModel]`.
 * @param shapes Shape of each parameter.
 */
export function writeHuggingFaceModel(
  dir: string,
  config: TrainModelConfig,
  full: Record<string, Float32Array>,
  shapes: Record<string, number[]>,
  metadata: Record<string, string> = {},
): void {
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, data] of Object.entries(full)) {
    const shape = name === "W_E" ? [config.dVocab, config.dModel] : shapes[name];
    if (shape === undefined) throw new RangeError(`Cannot export parameter "${name}": its shape is unknown`);
    tensors[checkpointName(name)] = { dtype: "F16", shape, data };
  }
  writeSafetensors(join(dir, "model.safetensors"), tensors, metadata);
  const configPath = join(dir, "config.json");
  writeFileSync(`${configPath}.tmp`, JSON.stringify(huggingFaceConfig(config), null, 2) + "\n");
  renameSync(`${configPath}.tmp`, configPath);
}

/** Converts a loaded checkpoint (Hugging Face names) back to training names. */
export function fromCheckpointNames(
  config: TrainModelConfig,
  tensors: Record<string, { data: Float32Array }>,
): Record<string, Float32Array> {
  const names = ["W_E", "W_pos", "ln_final.w", "ln_final.b"];
  for (let layer = 0; layer < config.nLayers; layer++) for (const p of BLOCK_PARAMS) names.push(`blocks.${layer}.${p}`);
  const out: Record<string, Float32Array> = {};
  for (const name of names) {
    const tensor = tensors[checkpointName(name)];
    if (tensor === undefined) throw new TypeError(`Cannot load the checkpoint: tensor "${checkpointName(name)}" is missing`);
    out[name] = tensor.data;
  }
  return out;
}
