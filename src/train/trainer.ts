/**
 * The training loop: AdamW with warm-up and cosine decay, global-norm gradient clipping, the
 * compact softmax of vocab.ts, periodic validation and resumable state.
 */
import * as tf from "@tensorflow/tfjs-core";
import { writeSafetensors, type TensorToWrite } from "../safetensors_write.ts";
import { evaluationBatches, sampleBatch, type Batch } from "./data.ts";
import {
  forwardHidden,
  initialParameters,
  isDecayed,
  parameterShapes,
  tokenLosses,
  type TrainModelConfig,
} from "./model.ts";
import { createRng, stepSeed } from "./rng.ts";
import { readSafetensors } from "./safetensors_read.ts";
import { compactLogitOffset, toRows, type CompactVocab } from "./vocab.ts";

/** Optimizer and schedule settings. */
export interface Hyperparameters {
  /** Total optimizer steps; the cosine decay ends here. */
  steps: number;
  /** Windows per batch. */
  batchSize: number;
  /** Tokens per window (at most nCtx). */
  nPos: number;
  /** Peak learning rate. */
  learningRate: number;
  /** Final learning rate as a fraction of the peak. */
  minLearningRateRatio: number;
  /** Steps of linear warm-up from 0 to the peak. */
  warmupSteps: number;
  /** Decoupled (AdamW) weight decay on matrices and embeddings; gains and biases are not decayed. */
  weightDecay: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Maximum global gradient norm; 0 turns clipping off. */
  gradClip: number;
  /** Seed of the initial weights and of the batch order. */
  seed: number;
}

/** Defaults for the 4-layer, 128-wide model on tiny Shakespeare. */
export const DEFAULT_HYPERPARAMETERS: Hyperparameters = {
  steps: 2000,
  batchSize: 8,
  nPos: 128,
  learningRate: 3e-3,
  minLearningRateRatio: 0.1,
  warmupSteps: 100,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  epsilon: 1e-8,
  gradClip: 1.0,
  seed: 0,
};

/** Returns the learning rate of a 0-based step: linear warm-up, then cosine decay to the minimum. */
export function learningRateAt(step: number, h: Hyperparameters): number {
  if (step < h.warmupSteps) return (h.learningRate * (step + 1)) / h.warmupSteps;
  const span = Math.max(1, h.steps - h.warmupSteps);
  const progress = Math.min(1, (step - h.warmupSteps) / span);
  const minimum = h.learningRate * h.minLearningRateRatio;
  return minimum + 0.5 * (h.learningRate - minimum) * (1 + Math.cos(Math.PI * progress));
}

let trainerCount = 0;

/** The result of one optimizer step. */
export interface StepResult {
  loss: number;
  gradNorm: number;
  learningRate: number;
}

/**
 * A model being trained: its parameters and Adam moments as tf.Variables. Owns its tensors until
 * dispose().
 */
export class Trainer {
  readonly config: TrainModelConfig;
  readonly vocab: CompactVocab;
  readonly hyper: Hyperparameters;
  readonly shapes: Record<string, number[]>;
  /** Number of optimizer steps taken so far. */
  step = 0;

  private readonly names: string[];
  private readonly params: Record<string, tf.Variable> = {};
  private readonly moment1: Record<string, tf.Variable> = {};
  private readonly moment2: Record<string, tf.Variable> = {};
  private readonly logitOffset: tf.Tensor1D;

  constructor(config: TrainModelConfig, vocab: CompactVocab, hyper: Hyperparameters) {
    if (config.dModel % config.nHeads !== 0) {
      throw new RangeError(`Cannot build the model: dModel ${config.dModel} is not a multiple of nHeads ${config.nHeads}`);
    }
    if (hyper.nPos > config.nCtx) {
      throw new RangeError(`Cannot train on windows of ${hyper.nPos} tokens: nCtx is ${config.nCtx}`);
    }
    this.config = config;
    this.vocab = vocab;
    this.hyper = hyper;
    this.shapes = parameterShapes(config, vocab.unseenRow + 1);
    this.names = Object.keys(this.shapes);
    const initial = initialParameters(config, vocab.unseenRow + 1, createRng(hyper.seed));
    const prefix = `underhood_train_${trainerCount++}`;
    for (const name of this.names) {
      const shape = this.shapes[name]!;
      this.params[name] = tf.variable(tf.tensor(initial[name]!, shape), true, `${prefix}/${name}`);
      this.moment1[name] = tf.variable(tf.zeros(shape), false, `${prefix}/m/${name}`);
      this.moment2[name] = tf.variable(tf.zeros(shape), false, `${prefix}/v/${name}`);
    }
    this.logitOffset = tf.tensor1d(compactLogitOffset(vocab));
  }

  /** Total number of trained values (the compact embedding counted once). */
  get parameterCount(): number {
    return this.names.reduce((sum, name) => sum + this.shapes[name]!.reduce((a, b) => a * b, 1), 0);
  }

  /** Draws the batch of a step; it depends only on the seed and the step number. */
  batchFor(train: Int32Array, step: number): Batch {
    return sampleBatch(train, this.hyper.batchSize, this.hyper.nPos, createRng(stepSeed(this.hyper.seed, step)));
  }

  /** Takes one AdamW step on a batch and returns the loss before the update. */
  trainStep(batch: Batch): StepResult {
    const h = this.hyper;
    const learningRate = learningRateAt(this.step, h);
    const t = this.step + 1;
    const correction1 = 1 - h.beta1 ** t;
    const correction2 = 1 - h.beta2 ** t;
    const variables = this.names.map((name) => this.params[name]!);

    const result = tf.tidy(() => {
      const inputs = tf.tensor1d(toRows(this.vocab, batch.inputs), "int32");
      const targets = tf.tensor1d(toRows(this.vocab, batch.targets), "int32");
      const { value, grads } = tf.variableGrads(() => {
        const hidden = forwardHidden(this.config, this.params, inputs, batch.batch, batch.nPos);
        return tf.mean(tokenLosses(hidden, this.params.W_E as tf.Tensor2D, this.logitOffset, targets)) as tf.Scalar;
      }, variables);

      // Global-norm clipping: one scale factor for every gradient.
      const gradientList = this.names.map((name) => grads[this.params[name]!.name]!);
      const gradNorm = tf.sqrt(tf.addN(gradientList.map((g) => tf.sum(tf.mul(g, g)))));
      const scale = h.gradClip > 0 ? tf.minimum(1, tf.div(h.gradClip, tf.add(gradNorm, 1e-6))) : tf.scalar(1);

      // AdamW update with bias-corrected moments.
      this.names.forEach((name, i) => {
        const p = this.params[name]!;
        const m = this.moment1[name]!;
        const v = this.moment2[name]!;
        const g = tf.mul(gradientList[i]!, scale);
        m.assign(tf.add(tf.mul(m, h.beta1), tf.mul(g, 1 - h.beta1)));
        v.assign(tf.add(tf.mul(v, h.beta2), tf.mul(tf.mul(g, g), 1 - h.beta2)));
        let update = tf.div(tf.div(m, correction1), tf.add(tf.sqrt(tf.div(v, correction2)), h.epsilon));
        if (h.weightDecay > 0 && isDecayed(name)) update = tf.add(update, tf.mul(p, h.weightDecay));
        p.assign(tf.sub(p, tf.mul(update, learningRate)));
      });
      return tf.stack([value, gradNorm]);
    });

    const [loss, gradNorm] = result.dataSync();
    result.dispose();
    this.step += 1;
    return { loss: loss!, gradNorm: gradNorm!, learningRate };
  }

  /** Mean loss (nats/token) of the compact softmax over the given batches, without updating. */
  evaluate(batches: Batch[]): number {
    let sum = 0;
    let count = 0;
    for (const batch of batches) {
      const total = tf.tidy(() => {
        const inputs = tf.tensor1d(toRows(this.vocab, batch.inputs), "int32");
        const targets = tf.tensor1d(toRows(this.vocab, batch.targets), "int32");
        const hidden = forwardHidden(this.config, this.params, inputs, batch.batch, batch.nPos);
        const losses = tokenLosses(hidden, this.params.W_E as tf.Tensor2D, this.logitOffset, targets);
        // An unseen target's probability is exp(h·u) / Z: its loss needs no further correction.
        return tf.sum(losses);
      });
      sum += total.dataSync()[0]!;
      total.dispose();
      count += batch.inputs.length;
    }
    return sum / count;
  }

  /** Copies the current parameters (compact embedding) to the host. */
  parameters(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const name of this.names) out[name] = this.params[name]!.dataSync() as Float32Array;
    return out;
  }

  /** Overwrites the parameters with host values of the same shapes. */
  setParameters(values: Record<string, Float32Array>): void {
    for (const name of this.names) {
      const data = values[name];
      if (data === undefined) throw new TypeError(`Cannot set parameters: "${name}" is missing`);
      tf.tidy(() => this.params[name]!.assign(tf.tensor(data, this.shapes[name]!)));
    }
  }

  /** Saves parameters, Adam moments and the step count (F32) so training can resume exactly. */
  saveState(path: string): void {
    const tensors: Record<string, TensorToWrite> = {};
    for (const name of this.names) {
      const shape = this.shapes[name]!;
      tensors[`param/${name}`] = { dtype: "F32", shape, data: this.params[name]!.dataSync() as Float32Array };
      tensors[`adam_m/${name}`] = { dtype: "F32", shape, data: this.moment1[name]!.dataSync() as Float32Array };
      tensors[`adam_v/${name}`] = { dtype: "F32", shape, data: this.moment2[name]!.dataSync() as Float32Array };
    }
    writeSafetensors(path, tensors, {
      step: String(this.step),
      hyperparameters: JSON.stringify(this.hyper),
      config: JSON.stringify(this.config),
      seen_ids: String(this.vocab.seenIds.length),
    });
  }

  /** Loads a state written by saveState for the same model and data. */
  loadState(path: string): void {
    const { metadata, tensors } = readSafetensors(path);
    if (metadata.config !== JSON.stringify(this.config) || Number(metadata.seen_ids) !== this.vocab.seenIds.length) {
      throw new RangeError(
        `Cannot resume from ${path}: it was saved for another model or vocabulary; delete it or pass another state file`,
      );
    }
    for (const name of this.names) {
      for (const [prefix, target] of [["param", this.params], ["adam_m", this.moment1], ["adam_v", this.moment2]] as const) {
        const tensor = tensors[`${prefix}/${name}`];
        if (tensor === undefined) throw new TypeError(`Cannot resume from ${path}: tensor "${prefix}/${name}" is missing`);
        tf.tidy(() => target[name]!.assign(tf.tensor(tensor.data, this.shapes[name]!)));
      }
    }
    this.step = Number(metadata.step);
  }

  /** Releases every tensor the trainer owns. */
  dispose(): void {
    for (const name of this.names) {
      this.params[name]!.dispose();
      this.moment1[name]!.dispose();
      this.moment2[name]!.dispose();
    }
    this.logitOffset.dispose();
  }
}

/** A progress event from train(). */
export type TrainProgress =
  | {
    kind: "step";
    step: number;
    steps: number;
    loss: number;
    gradNorm: number;
    learningRate: number;
    tokensPerSecond: number;
    elapsedSeconds: number;
    etaSeconds: number;
  }
  | { kind: "validation"; step: number; validationLoss: number; windows: number };

/** Options of train() beyond the hyperparameters. */
export interface TrainLoopOptions {
  train: Int32Array;
  validation: Int32Array;
  /** Steps between validation runs; 0 turns them off. */
  evalEvery: number;
  /** Windows of the validation split used by the periodic runs (spread evenly). */
  evalWindows: number;
  /** Steps between onCheckpoint calls; 0 turns them off. */
  checkpointEvery: number;
  onProgress?: (event: TrainProgress) => void;
  /** Called every checkpointEvery steps and after the last step. */
  onCheckpoint?: (trainer: Trainer, validationLoss: number | null) => void;
  /** Steps between step events (default 1). */
  logEvery?: number;
}

/** Trains from `trainer.step` up to `trainer.hyper.steps`, reporting progress through callbacks. */
export function train(trainer: Trainer, options: TrainLoopOptions): void {
  const h = trainer.hyper;
  const evalBatches = evaluationBatches(options.validation, h.batchSize, h.nPos, options.evalWindows);
  const evalWindows = evalBatches.reduce((sum, b) => sum + b.batch, 0);
  const logEvery = options.logEvery ?? 1;
  const started = performance.now();
  const firstStep = trainer.step;
  let lastValidation: number | null = null;

  while (trainer.step < h.steps) {
    const batch = trainer.batchFor(options.train, trainer.step);
    const result = trainer.trainStep(batch);
    const done = trainer.step;

    const elapsedSeconds = (performance.now() - started) / 1000;
    const perStep = elapsedSeconds / (done - firstStep);
    if (done % logEvery === 0 || done === h.steps) {
      options.onProgress?.({
        kind: "step",
        step: done,
        steps: h.steps,
        loss: result.loss,
        gradNorm: result.gradNorm,
        learningRate: result.learningRate,
        tokensPerSecond: ((done - firstStep) * h.batchSize * h.nPos) / elapsedSeconds,
        elapsedSeconds,
        etaSeconds: perStep * (h.steps - done),
      });
    }

    const isLast = done === h.steps;
    if ((options.evalEvery > 0 && done % options.evalEvery === 0) || isLast) {
      lastValidation = trainer.evaluate(evalBatches);
      options.onProgress?.({ kind: "validation", step: done, validationLoss: lastValidation, windows: evalWindows });
    }
    if ((options.checkpointEvery > 0 && done % options.checkpointEvery === 0) || isLast) {
      options.onCheckpoint?.(trainer, lastValidation);
    }
  }
}
