/**
 * Shared types: the model configuration and the weights in paper notation.
 *
 * Checkpoint names (`c_attn`, `c_fc`, the `transformer.` prefix) and the Conv1D `[in, out]`
 * layout are translated into these types by the loader and appear nowhere else.
 */

/** An activation function named in a Hugging Face GPT-2 config. */
export type Activation = "gelu_new" | "gelu" | "relu" | "gelu_pytorch_tanh";

/** The dimensions and options of a GPT-2-architecture model. */
export interface ModelConfig {
  nLayers: number;
  nHeads: number;
  dModel: number;
  /** dModel / nHeads. */
  dHead: number;
  /** Width of the MLP hidden layer (`n_inner`, or 4 * dModel when it is null). */
  dMlp: number;
  dVocab: number;
  /** Number of positions (`n_positions`). */
  nCtx: number;
  layerNormEps: number;
  activation: Activation;
  /** Divide attention scores by sqrt(dHead). */
  scaleAttnWeights: boolean;
  /** Also divide the scores of layer L (0-based) by L + 1. */
  scaleAttnByInverseLayerIdx: boolean;
  tieWordEmbeddings: boolean;
}

/** A float32 array on the host with its shape, row-major. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** Layer-norm parameters: `w` and `b`, both `[dModel]`. */
export interface LayerNormWeights {
  w: HostTensor;
  b: HostTensor;
}

/**
 * One transformer block. Head h of W_Q/W_K/W_V owns columns `h*dHead .. (h+1)*dHead`,
 * and head h of W_O owns rows `h*dHead .. (h+1)*dHead`.
 */
export interface BlockWeights {
  ln1: LayerNormWeights;
  /** [dModel, dModel] */
  W_Q: HostTensor;
  W_K: HostTensor;
  W_V: HostTensor;
  /** [dModel] */
  b_Q: HostTensor;
  b_K: HostTensor;
  b_V: HostTensor;
  /** [dModel, dModel] */
  W_O: HostTensor;
  /** [dModel] */
  b_O: HostTensor;
  ln2: LayerNormWeights;
  /** [dModel, dMlp] */
  W_in: HostTensor;
  /** [dMlp] */
  b_in: HostTensor;
  /** [dMlp, dModel] */
  W_out: HostTensor;
  /** [dModel] */
  b_out: HostTensor;
}

/** All weights of a GPT-2 model, in paper notation, as float32 host arrays. */
export interface ModelWeights {
  /** Token embedding [dVocab, dModel]. */
  W_E: HostTensor;
  /** Position embedding [nCtx, dModel]. */
  W_pos: HostTensor;
  blocks: BlockWeights[];
  lnFinal: LayerNormWeights;
  /**
   * Unembedding [dModel, dVocab]. When the head is tied this is W_E transposed; the
   * loader makes that copy so the unembedding matmul needs no transpose.
   */
  W_U: HostTensor;
}

/** Details the loader found in the checkpoint, for reports and debugging. */
export interface CheckpointInfo {
  /** Directory or URL the model came from. */
  source: string;
  files: string[];
  /** `"transformer."` or `""`. */
  namePrefix: string;
  /** `"tied"` when W_U is W_E transposed, `"separate"` when lm_head.weight was used. */
  lmHead: "tied" | "separate";
  /** Number of tensors stored per dtype, such as `{ F16: 28 }`. */
  storedDtypes: Record<string, number>;
  /** Names of ignored buffers (`attn.bias`, `attn.masked_bias`). */
  ignored: string[];
}

/** A loaded checkpoint: config, weights and what the loader found. */
export interface LoadedCheckpoint {
  config: ModelConfig;
  weights: ModelWeights;
  info: CheckpointInfo;
}
