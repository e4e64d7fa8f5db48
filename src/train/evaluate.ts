/**
 * Checks on exported (full-vocabulary) weights: validation loss with a plain softmax over all
 * dVocab ids, and the loss on repeated random token sequences.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Batch } from "./data.ts";
import { forwardHidden, fullLogits, tokenLosses, type TrainModelConfig } from "./model.ts";
import type { Rng } from "./rng.ts";

function toTensors(params: Record<string, Float32Array>, shapes: Record<string, number[]>): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, data] of Object.entries(params)) {
    const shape = shapes[name];
    if (shape === undefined) throw new TypeError(`Cannot evaluate: the shape of "${name}" is unknown`);
    out[name] = tf.tensor(data, shape);
  }
  return out;
}

/**
 * Computes log(sum(exp(x))) over the last axis, summing in blocks of about sqrt(vocab) values
 * and then summing the block totals. One float32 pass over 50,257 values drifts. On the trained
 * default model's validation split (tfjs-wasm 4.22), tf.logSoftmax gave a mean loss 1.4e-4 nats
 * below a float64 computation, and this blocked sum came within 1e-6 of it.
 *
 * @param x `[n, vocab]`
 * @returns `[n]`
 */
export function blockedLogSumExp(x: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const [n, vocab] = x.shape;
    const blockSize = Math.ceil(Math.sqrt(vocab));
    const blocks = Math.ceil(vocab / blockSize);
    const max = tf.max(x, -1, true); // [n, vocab] -> [n, 1]
    const shifted = tf.exp(tf.sub(x, max)); // [n, vocab]
    const padded = tf.pad(shifted, [[0, 0], [0, blocks * blockSize - vocab]]); // [n, blocks * blockSize]
    const blockSums = tf.sum(tf.reshape(padded, [n, blocks, blockSize]), 2); // [n, blocks]
    return tf.add(tf.log(tf.sum(blockSums, 1)), tf.reshape(max, [n])) as tf.Tensor1D; // [n]
  });
}

/** Shapes of full-vocabulary parameters, from the compact shapes. */
export function fullShapes(config: TrainModelConfig, shapes: Record<string, number[]>): Record<string, number[]> {
  return { ...shapes, W_E: [config.dVocab, config.dModel] };
}

/**
 * Computes the mean cross-entropy (nats/token) over all `dVocab` ids of full-vocabulary weights:
 * logits for every id, their log-sum-exp, minus the target's logit, with no compact vocabulary
 * involved.
 *
 * @param full Parameters with `W_E` `[dVocab, dModel]`.
 * @param batches Windows to score; every target of every window counts once.
 */
export function fullSoftmaxLoss(
  config: TrainModelConfig,
  full: Record<string, Float32Array>,
  shapes: Record<string, number[]>,
  batches: Batch[],
): number {
  const params = toTensors(full, fullShapes(config, shapes));
  let sum = 0;
  let count = 0;
  try {
    for (const batch of batches) {
      const total = tf.tidy(() => {
        const ids = tf.tensor1d(batch.inputs, "int32");
        const logits = fullLogits(config, params, ids, batch.batch, batch.nPos); // [n, dVocab]
        const flatIndex = Int32Array.from(batch.targets, (target, i) => i * config.dVocab + target);
        const picked = tf.gather(tf.reshape(logits, [-1]), tf.tensor1d(flatIndex, "int32")); // [n]
        return tf.sum(tf.sub(blockedLogSumExp(logits), picked));
      });
      sum += total.dataSync()[0]!;
      total.dispose();
      count += batch.inputs.length;
    }
  } finally {
    for (const tensor of Object.values(params)) tensor.dispose();
  }
  return sum / count;
}

/**
 * Computes full-vocabulary logits for one sequence of ids.
 *
 * @returns `[ids.length * dVocab]`, row-major by position.
 */
export function logitsFor(
  config: TrainModelConfig,
  full: Record<string, Float32Array>,
  shapes: Record<string, number[]>,
  ids: number[],
): Float32Array {
  const params = toTensors(full, fullShapes(config, shapes));
  try {
    const logits = tf.tidy(() => fullLogits(config, params, tf.tensor1d(ids, "int32"), 1, ids.length));
    const data = logits.dataSync() as Float32Array;
    logits.dispose();
    return data;
  } finally {
    for (const tensor of Object.values(params)) tensor.dispose();
  }
}

/** Mean losses on the first and second copy of repeated random sequences. */
export interface RepeatedTokenLoss {
  firstHalf: number;
  secondHalf: number;
  sequences: number;
  length: number;
}

/**
 * Scores `sequences` sequences made of `length` random ids followed by the same ids again. The
 * first half averages the targets at positions 1..length-1 (inside the first copy), the second
 * half the targets at positions length..2*length-1 (the second copy). A model that copies from
 * context has a much lower loss on the second half.
 *
 * @param pool Ids to draw from (for example the ids seen in training).
 */
export function repeatedTokenLoss(
  config: TrainModelConfig,
  full: Record<string, Float32Array>,
  shapes: Record<string, number[]>,
  pool: Int32Array,
  rng: Rng,
  { sequences = 20, length = 50 }: { sequences?: number; length?: number } = {},
): RepeatedTokenLoss {
  const nPos = 2 * length;
  if (nPos > config.nCtx) throw new RangeError(`Cannot score 2 x ${length} tokens: nCtx is ${config.nCtx}`);
  const inputs = new Int32Array(sequences * nPos);
  const targets = new Int32Array(sequences * nPos);
  for (let s = 0; s < sequences; s++) {
    const half = Array.from({ length }, () => pool[rng.int(pool.length)]!);
    const sequence = [...half, ...half];
    // The window predicts tokens 1..2*length-1 from tokens 0..2*length-2; the last input is padding.
    for (let i = 0; i < nPos; i++) {
      inputs[s * nPos + i] = sequence[i]!;
      targets[s * nPos + i] = sequence[i + 1] ?? sequence[0]!;
    }
  }

  const params = toTensors(full, fullShapes(config, shapes));
  try {
    const losses = tf.tidy(() => {
      const hidden = forwardHidden(config, params, tf.tensor1d(inputs, "int32"), sequences, nPos);
      return tokenLosses(hidden, params.W_E as tf.Tensor2D, null, tf.tensor1d(targets, "int32"));
    });
    const values = losses.dataSync();
    losses.dispose();
    let first = 0;
    let second = 0;
    for (let s = 0; s < sequences; s++) {
      // Input position i predicts token i + 1.
      for (let i = 0; i < length - 1; i++) first += values[s * nPos + i]!;
      for (let i = length - 1; i < nPos - 1; i++) second += values[s * nPos + i]!;
    }
    return {
      firstHalf: first / (sequences * (length - 1)),
      secondHalf: second / (sequences * length),
      sequences,
      length,
    };
  } finally {
    for (const tensor of Object.values(params)) tensor.dispose();
  }
}
