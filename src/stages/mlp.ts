/**
 * The MLP of a GPT-2 block: a linear map up to dMlp neurons, a nonlinearity, and a linear
 * map back to dModel.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Activation } from "../types.ts";

/** The MLP weights of one block, as tensors. */
export interface MlpWeights {
  /** [dModel, dMlp] */
  W_in: tf.Tensor2D;
  /** [dMlp] */
  b_in: tf.Tensor1D;
  /** [dMlp, dModel] */
  W_out: tf.Tensor2D;
  /** [dModel] */
  b_out: tf.Tensor1D;
}

/** Neuron activations before and after the nonlinearity, and the MLP output. */
export interface MlpOutput {
  /** x @ W_in + b_in [pos, dMlp]: hook_pre. */
  pre: tf.Tensor2D;
  /** act(pre) [pos, dMlp]: hook_post. */
  post: tf.Tensor2D;
  /** post @ W_out + b_out [pos, dModel]: what the block adds to the residual. */
  out: tf.Tensor2D;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * Applies a GPT-2 activation function elementwise.
 *
 * `gelu_new` and `gelu_pytorch_tanh` are the tanh approximation
 * 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))); `gelu` is the exact 0.5·x·(1 + erf(x/√2)).
 */
export function activate(x: tf.Tensor, activation: Activation): tf.Tensor {
  return tf.tidy(() => {
    switch (activation) {
      case "gelu_new":
      case "gelu_pytorch_tanh": {
        const cube = tf.mul(tf.mul(x, x), x);
        const inner = tf.mul(tf.add(x, tf.mul(cube, 0.044715)), SQRT_2_OVER_PI);
        return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
      }
      case "gelu":
        return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
      case "relu":
        return tf.relu(x);
      default:
        throw new RangeError(`Unsupported activation "${activation as string}": expected gelu_new, gelu, relu or gelu_pytorch_tanh`);
    }
  });
}

/**
 * Runs the MLP on normalized input.
 *
 * @param x Normalized residual `[pos, dModel]` (the output of ln2).
 * @param weights The block's MLP weights.
 * @param activation The nonlinearity.
 * @param hook Called on each activation by its local name; returns the tensor to use.
 */
export function mlp(
  x: tf.Tensor2D,
  weights: MlpWeights,
  activation: Activation,
  hook: (name: "hook_pre" | "hook_post", t: tf.Tensor) => tf.Tensor = (_n, t) => t,
): MlpOutput {
  return tf.tidy(() => {
    const pre = hook("hook_pre", tf.fused.matMul({ a: x, b: weights.W_in, bias: weights.b_in })) as tf.Tensor2D; // [pos, dModel] -> [pos, dMlp]
    const post = hook("hook_post", activate(pre, activation)) as tf.Tensor2D; // [pos, dMlp]
    const out = tf.fused.matMul({ a: post, b: weights.W_out, bias: weights.b_out }) as tf.Tensor2D; // [pos, dMlp] -> [pos, dModel]
    return { pre, post, out };
  });
}
