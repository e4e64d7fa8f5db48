/**
 * `train`: trains a small GPT-2 on a text file with tfjs-wasm and exports it as a Hugging Face
 * checkpoint directory.
 *
 * Usage: npx tsx src/train/cli.ts [--steps N] [--out DIR] [--seed S] [options]; --help lists them.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import "@tensorflow/tfjs-backend-cpu";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { float16BitsToFloat32, float32ToFloat16Bits } from "../safetensors_write.ts";
import { evaluationBatches, loadTokens, splitTokens, unigramLoss } from "./data.ts";
import { fullSoftmaxLoss, repeatedTokenLoss } from "./evaluate.ts";
import { expandParameters, fromCheckpointNames, writeHuggingFaceModel } from "./export.ts";
import type { TrainModelConfig } from "./model.ts";
import { createRng } from "./rng.ts";
import { readSafetensors } from "./safetensors_read.ts";
import { DEFAULT_HYPERPARAMETERS, train, Trainer, type Hyperparameters, type TrainProgress } from "./trainer.ts";
import { buildCompactVocab } from "./vocab.ts";

interface CliOptions {
  data: string;
  out: string;
  state: string | null;
  resume: boolean;
  report: string | null;
  backend: "wasm" | "cpu";
  nLayers: number;
  dModel: number;
  nHeads: number;
  nCtx: number;
  hyper: Hyperparameters;
  evalEvery: number;
  evalWindows: number;
  checkpointEvery: number;
  logEvery: number;
}

const HELP = `Usage: train [options]

Trains a GPT-2-architecture model with the GPT-2 tokenizer and writes config.json and
model.safetensors (float16, Hugging Face layout) to --out.

  --data FILE             training text (default data/tinyshakespeare.txt)
  --out DIR               output model directory (default models/default)
  --steps N               optimizer steps (default ${DEFAULT_HYPERPARAMETERS.steps})
  --seed S                seed of the initial weights and batch order (default 0)
  --layers N              transformer blocks (default 4)
  --d-model N             residual width (default 128)
  --heads N               attention heads (default 4)
  --ctx N                 positions of the model and tokens per training window (default 128)
  --batch N               windows per step (default ${DEFAULT_HYPERPARAMETERS.batchSize})
  --lr X                  peak learning rate (default ${DEFAULT_HYPERPARAMETERS.learningRate})
  --min-lr-ratio X        final learning rate as a fraction of the peak (default ${DEFAULT_HYPERPARAMETERS.minLearningRateRatio})
  --warmup N              warm-up steps (default ${DEFAULT_HYPERPARAMETERS.warmupSteps})
  --weight-decay X        AdamW weight decay (default ${DEFAULT_HYPERPARAMETERS.weightDecay})
  --grad-clip X           maximum global gradient norm, 0 for none (default ${DEFAULT_HYPERPARAMETERS.gradClip})
  --eval-every N          steps between validation runs (default 100)
  --eval-windows N        validation windows per periodic run (default 64)
  --checkpoint-every N    steps between exports to --out and state saves (default 200)
  --state FILE            save the full training state (weights and Adam moments, float32) here
  --resume                continue from --state if the file exists
  --report FILE           write the final numbers as JSON here
  --log-every N           steps between progress lines (default 10)
  --backend wasm|cpu      tfjs backend (default wasm)
  --help                  print this text
`;

function parseArgs(args: string[]): CliOptions | null {
  const options: CliOptions = {
    data: "data/tinyshakespeare.txt",
    out: "models/default",
    state: null,
    resume: false,
    report: null,
    backend: "wasm",
    nLayers: 4,
    dModel: 128,
    nHeads: 4,
    nCtx: 128,
    hyper: { ...DEFAULT_HYPERPARAMETERS },
    evalEvery: 100,
    evalWindows: 64,
    checkpointEvery: 200,
    logEvery: 10,
  };
  let ctxGiven = false;
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    const value = (): string => {
      const next = args[++i];
      if (next === undefined) throw new RangeError(`Missing value after ${flag}; see --help`);
      return next;
    };
    const number = (): number => {
      const text = value();
      const parsed = Number(text);
      if (!Number.isFinite(parsed)) throw new RangeError(`Invalid number "${text}" for ${flag}`);
      return parsed;
    };
    const integer = (min: number): number => {
      const parsed = number();
      if (!Number.isInteger(parsed) || parsed < min) throw new RangeError(`Invalid value ${parsed} for ${flag}: expected an integer >= ${min}`);
      return parsed;
    };
    switch (flag) {
      case "--help":
      case "-h":
        return null;
      case "--data": options.data = value(); break;
      case "--out": options.out = value(); break;
      case "--state": options.state = value(); break;
      case "--resume": options.resume = true; break;
      case "--report": options.report = value(); break;
      case "--backend": {
        const name = value();
        if (name !== "wasm" && name !== "cpu") throw new RangeError(`Invalid backend "${name}": expected wasm or cpu`);
        options.backend = name;
        break;
      }
      case "--steps": options.hyper.steps = integer(1); break;
      case "--seed": options.hyper.seed = integer(0); break;
      case "--layers": options.nLayers = integer(1); break;
      case "--d-model": options.dModel = integer(1); break;
      case "--heads": options.nHeads = integer(1); break;
      case "--ctx": options.nCtx = integer(2); ctxGiven = true; break;
      case "--batch": options.hyper.batchSize = integer(1); break;
      case "--lr": options.hyper.learningRate = number(); break;
      case "--min-lr-ratio": options.hyper.minLearningRateRatio = number(); break;
      case "--warmup": options.hyper.warmupSteps = integer(0); break;
      case "--weight-decay": options.hyper.weightDecay = number(); break;
      case "--grad-clip": options.hyper.gradClip = number(); break;
      case "--eval-every": options.evalEvery = integer(0); break;
      case "--eval-windows": options.evalWindows = integer(1); break;
      case "--checkpoint-every": options.checkpointEvery = integer(0); break;
      case "--log-every": options.logEvery = integer(1); break;
      default:
        throw new RangeError(`Unknown option "${flag}"; see --help`);
    }
  }
  if (ctxGiven || options.hyper.nPos > options.nCtx) options.hyper.nPos = options.nCtx;
  return options;
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

function printProgress(event: TrainProgress): void {
  if (event.kind === "step") {
    console.log(
      `step ${event.step}/${event.steps}  loss ${event.loss.toFixed(4)}  lr ${event.learningRate.toExponential(2)}  ` +
        `|g| ${event.gradNorm.toFixed(2)}  ${event.tokensPerSecond.toFixed(0)} tok/s  ` +
        `elapsed ${formatSeconds(event.elapsedSeconds)}  eta ${formatSeconds(event.etaSeconds)}`,
    );
  } else {
    console.log(`step ${event.step}  validation loss ${event.validationLoss.toFixed(4)} (${event.windows} windows)`);
  }
}

/** Rounds every value to the nearest float16, as the exported file stores it. */
function roundToFloat16(values: Record<string, Float32Array>): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [name, data] of Object.entries(values)) {
    out[name] = data.map((x) => float16BitsToFloat32(float32ToFloat16Bits(x)));
  }
  return out;
}

/** Runs the train command with command-line arguments (without the program name). */
export async function main(args: string[]): Promise<number> {
  const options = parseArgs(args);
  if (options === null) {
    console.log(HELP);
    return 0;
  }
  tf.env().set("PROD", true);
  if (!(await tf.setBackend(options.backend))) throw new Error(`Cannot start the tfjs ${options.backend} backend`);
  await tf.ready();
  const wallStart = performance.now();

  // Data: tokens, the 90/10 split, the compact vocabulary and the unigram baseline.
  const tokens = loadTokens(options.data);
  const split = splitTokens(tokens, 0.9);
  const config: TrainModelConfig = {
    nLayers: options.nLayers,
    nHeads: options.nHeads,
    dModel: options.dModel,
    nCtx: options.nCtx,
    dVocab: 50257,
    layerNormEps: 1e-5,
  };
  const vocab = buildCompactVocab(split.train, config.dVocab);
  const unigram = unigramLoss(split.train, split.validation, config.dVocab);
  console.log(
    `data: ${tokens.length} tokens (${split.train.length} train, ${split.validation.length} validation), ` +
      `${vocab.seenIds.length} ids seen in training, unigram baseline ${unigram.toFixed(4)} nats/token`,
  );

  const trainer = new Trainer(config, vocab, options.hyper);
  try {
    if (options.resume && options.state !== null && existsSync(options.state)) {
      trainer.loadState(options.state);
      console.log(`resumed from ${options.state} at step ${trainer.step}`);
    }
    console.log(
      `model: ${config.nLayers} layers, dModel ${config.dModel}, ${config.nHeads} heads, nCtx ${config.nCtx}, ` +
        `${trainer.parameterCount} trained values; batch ${options.hyper.batchSize} x ${options.hyper.nPos}, ` +
        `${options.hyper.steps} steps, backend ${tf.getBackend()}`,
    );

    // Train, exporting to --out (and saving the state) at every checkpoint.
    let bestValidation = Infinity;
    train(trainer, {
      train: split.train,
      validation: split.validation,
      evalEvery: options.evalEvery,
      evalWindows: options.evalWindows,
      checkpointEvery: options.checkpointEvery,
      logEvery: options.logEvery,
      onProgress: printProgress,
      onCheckpoint: (t, validationLoss) => {
        if (options.state !== null) {
          mkdirSync(dirname(options.state), { recursive: true });
          t.saveState(options.state);
        }
        const isLast = t.step === t.hyper.steps;
        if (isLast || validationLoss === null || validationLoss < bestValidation) {
          bestValidation = Math.min(bestValidation, validationLoss ?? Infinity);
          const full = expandParameters(config, vocab, t.parameters());
          writeHuggingFaceModel(options.out, config, full, t.shapes, { step: String(t.step) });
          console.log(`checkpoint: step ${t.step} exported to ${options.out}`);
        }
      },
    });
    const trainSeconds = (performance.now() - wallStart) / 1000;

    // Final numbers on the whole validation split.
    console.log("evaluating the exported model on the whole validation split ...");
    const validationBatches = evaluationBatches(split.validation, options.hyper.batchSize, options.hyper.nPos);
    const compactLoss = trainer.evaluate(validationBatches);
    const trainLoss = trainer.evaluate(evaluationBatches(split.train, options.hyper.batchSize, options.hyper.nPos, 256));

    // Reload the exported float16 file and score it with a plain softmax over all ids.
    const loaded = readSafetensors(join(options.out, "model.safetensors"));
    const exported = fromCheckpointNames(config, loaded.tensors);
    const smallBatches = evaluationBatches(split.validation, 2, options.hyper.nPos);
    const fullLoss = fullSoftmaxLoss(config, exported, trainer.shapes, smallBatches);

    // The compact softmax on the float16-rounded weights should equal the full softmax exactly.
    trainer.setParameters(roundToFloat16(trainer.parameters()));
    const compactLossF16 = trainer.evaluate(validationBatches);
    const repeated = repeatedTokenLoss(config, exported, trainer.shapes, vocab.seenIds, createRng(1234));

    const report = {
      steps: trainer.step,
      batchSize: options.hyper.batchSize,
      nPos: options.hyper.nPos,
      hyperparameters: options.hyper,
      config,
      parameterCountCompact: trainer.parameterCount,
      parameterCountExported: Object.values(loaded.tensors).reduce((sum, t) => sum + t.data.length, 0),
      fileBytes: statSync(join(options.out, "model.safetensors")).size,
      seenIds: vocab.seenIds.length,
      unseenIds: vocab.unseenCount,
      trainTokens: split.train.length,
      validationTokens: split.validation.length,
      validationTokensScored: validationBatches.reduce((sum, b) => sum + b.inputs.length, 0),
      unigramBaseline: unigram,
      trainLossSample: trainLoss,
      validationLossCompactF32: compactLoss,
      validationLossCompactF16: compactLossF16,
      validationLossFullSoftmaxExported: fullLoss,
      marginBelowUnigram: unigram - fullLoss,
      repeatedRandomTokens: repeated,
      wallSeconds: (performance.now() - wallStart) / 1000,
      trainSeconds,
      backend: tf.getBackend(),
    };
    console.log(JSON.stringify(report, null, 2));
    if (options.report !== null) {
      mkdirSync(dirname(resolve(options.report)), { recursive: true });
      writeFileSync(options.report, JSON.stringify(report, null, 2) + "\n");
    }
    return 0;
  } finally {
    trainer.dispose();
  }
}

const entry = process.argv[1];
if (entry !== undefined && resolve(entry) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}
