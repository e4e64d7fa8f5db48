/**
 * The main job, as text: run a prompt through the model stage by stage and print what each
 * stage produced.
 */
import * as tf from "@tensorflow/tfjs-core";
import { getBackend } from "./backend.ts";
import { loadModel } from "./load_model.ts";
import { generate } from "./generate.ts";
import type { HookName } from "./hooks.ts";
import { progressBar } from "./display/progress.ts";

/** Options for `runDemo`. */
export interface DemoOptions {
  prompt?: string;
  /** Checkpoint directory; default: the model trained in this repository. */
  modelDir?: string;
  /** Sampling seed. Default 42. */
  seed?: number;
  /** Tokens to sample. Default 40. */
  maxNewTokens?: number;
  /** Receives each output line. */
  write: (line: string) => void;
}

export const DEFAULT_PROMPT = "ROMEO:\nBut soft, what light through yonder window breaks?\n\nJULIET:\n";

/** Shows a token's text with whitespace made visible. */
export function showToken(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}

/** Runs the demo and writes its report line by line. */
export async function runDemo(options: DemoOptions): Promise<void> {
  const out = options.write;
  const prompt = options.prompt ?? DEFAULT_PROMPT;
  const started = performance.now();
  const bar = progressBar(process.stderr);
  const model = await loadModel(options.modelDir, { onProgress: bar.onProgress });
  bar.done();
  try {
    const { nLayers, nHeads, dModel, nCtx, dVocab } = model.config;
    out(`model: ${model.info.source}  (${nLayers} layers, ${nHeads} heads, dModel ${dModel}, nCtx ${nCtx}, ` +
      `vocab ${dVocab}; backend ${getBackend()})`);
    out(`prompt: ${JSON.stringify(prompt)}`);

    // 1. Text -> tokens.
    const tokens = model.tokenizer.tokenize(prompt, { allowSpecial: true });
    out("");
    out(`1. tokens (${tokens.length})`);
    out(tokens.map((t, i) => `  ${String(i).padStart(3)} ${String(t.id).padStart(6)}  "${showToken(t.text)}"`).join("\n"));

    // 2. Tokens -> vectors.
    const e = model.embed(tokens.map((t) => t.id));
    const [tokNorm, posNorm, sumNorm] = await Promise.all(
      [e.tokenEmbed, e.posEmbed, e.residual].map((t) => rowNorms(t)),
    );
    e.dispose();
    out("");
    out("2. embedding norms (|token part|, |position part|, |sum|)");
    tokens.forEach((t, i) => {
      out(`  ${String(i).padStart(3)} ${`"${showToken(t.text)}"`.padEnd(14)} ${fmt(tokNorm![i]!)}  ${fmt(posNorm![i]!)}  ${fmt(sumNorm![i]!)}`);
    });

    // 3. Attention: the earlier token each head attends to most, from the last position.
    const names: HookName[] = [];
    for (let layer = 0; layer < nLayers; layer++) names.push(`blocks.${layer}.attn.hook_pattern`);
    names.push(`blocks.${nLayers - 1}.hook_resid_post`);
    const { logits, cache } = model.runWithCache(tokens.map((t) => t.id), { names });
    const last = tokens.length - 1;
    out("");
    out(`3. attention from the last token "${showToken(tokens[last]!.text)}": the most-attended earlier token per head`);
    for (let layer = 0; layer < nLayers; layer++) {
      const pattern = (await cache.get(`blocks.${layer}.attn.hook_pattern`).array()) as number[][][];
      const cells: string[] = [];
      for (let head = 0; head < nHeads; head++) {
        const row = pattern[head]![last]!;
        let best = 0;
        for (let k = 1; k < last; k++) if (row[k]! > row[best]!) best = k;
        const target = last === 0 ? "(none)" : `"${showToken(tokens[best]!.text)}"@${best} ${fmt(row[best]!, 2)}`;
        cells.push(`h${head} ${target}`);
      }
      out(`  block ${layer}: ${cells.join("  |  ")}`);
    }

    // 4. The last vector -> a distribution over the next token.
    const u = model.unembed(cache.get(`blocks.${nLayers - 1}.hook_resid_post`));
    const top = u.topK(10);
    u.dispose();
    logits.dispose();
    cache.dispose();
    out("");
    out("4. top-10 next tokens");
    for (const t of top) {
      out(`  ${(100 * t.prob).toFixed(2).padStart(6)}%  ${String(t.id).padStart(6)}  "${showToken(t.token)}"`);
    }

    // 5. Sample, append, repeat.
    const seed = options.seed ?? 42;
    const maxNewTokens = Math.min(options.maxNewTokens ?? 40, nCtx - tokens.length);
    const gen = await generate(model, tokens.map((t) => t.id), {
      maxNewTokens,
      temperature: 0.8,
      topK: 40,
      seed,
    });
    out("");
    out(`5. sampled continuation (temperature 0.8, top-k 40, seed ${seed}, ${gen.ids.length} tokens, stop: ${gen.stopReason})`);
    out(prompt + gen.text);
    out("");
    out(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    model.dispose();
  }
}

async function rowNorms(t: tf.Tensor2D): Promise<number[]> {
  const norms = tf.norm(t, "euclidean", -1); // [pos, dModel] -> [pos]
  const values = (await norms.array()) as number[];
  norms.dispose();
  return values;
}

function fmt(x: number, digits = 3): string {
  return x.toFixed(digits).padStart(digits + 4);
}
