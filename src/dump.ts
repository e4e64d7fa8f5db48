/**
 * The parity dump: the model's outputs in the JSON format of the gpt2ref reference tool, so
 * parity can be checked from outside the test suite.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { HookName } from "./hooks.ts";
import type { Model } from "./model.ts";
import { generate } from "./generate.ts";

/** Options that select the parts of a dump. */
export interface DumpOptions {
  ids: number[];
  /** Logits of every position or of the last one. Default "last". */
  logits?: "all" | "last" | "none";
  /** Attention pattern of this layer. */
  attnLayer?: number;
  /** A head of `attnLayer`, or -1 for all heads. Default -1. */
  attnHead?: number;
  /** Greedy steps to run after the ids. Default 0. */
  greedy?: number;
}

/** The dump, with the reference tool's field names. */
export interface Dump {
  input_ids: number[];
  n_tokens: number;
  backend: string;
  logits_all?: number[][];
  logits_last?: number[];
  resid_norms: { resid_pre: number[][]; resid_mid: number[][]; ln_f_out: number[] };
  attention?: { layer: number; head: number; pattern: number[][] | number[][][] };
  greedy?: { n: number; new_ids: number[]; all_ids: number[] };
}

/** Runs the model on `options.ids` and collects the dump. */
export async function dumpParity(model: Model, options: DumpOptions): Promise<Dump> {
  const { nLayers, nHeads } = model.config;
  const ids = model.toTokens(options.ids);
  const attnLayer = options.attnLayer;
  const attnHead = options.attnHead ?? -1;
  if (attnLayer !== undefined) {
    if (!Number.isInteger(attnLayer) || attnLayer < 0 || attnLayer >= nLayers) {
      throw new RangeError(`Invalid attention layer ${attnLayer} (--attn-layer): expected an integer in [0, ${nLayers}).`);
    }
    if (!Number.isInteger(attnHead) || attnHead < -1 || attnHead >= nHeads) {
      throw new RangeError(`Invalid attention head ${attnHead} (--attn-head): expected -1 (all heads) or an integer in [0, ${nHeads}).`);
    }
  }

  const names: HookName[] = ["ln_final.hook_normalized"];
  for (let layer = 0; layer < nLayers; layer++) {
    names.push(`blocks.${layer}.hook_resid_pre`, `blocks.${layer}.hook_resid_mid`);
  }
  names.push(`blocks.${nLayers - 1}.hook_resid_post`);
  if (attnLayer !== undefined) names.push(`blocks.${attnLayer}.attn.hook_pattern`);
  const { logits, cache } = model.runWithCache(ids, { names });

  try {
    const norms = async (name: HookName): Promise<number[]> => {
      const norm = tf.norm(cache.get(name), "euclidean", -1); // [pos, dModel] -> [pos]
      const values = (await norm.array()) as number[];
      norm.dispose();
      return values;
    };
    const residPre: number[][] = [];
    const residMid: number[][] = [];
    for (let layer = 0; layer < nLayers; layer++) {
      residPre.push(await norms(`blocks.${layer}.hook_resid_pre`));
      residMid.push(await norms(`blocks.${layer}.hook_resid_mid`));
    }
    residPre.push(await norms(`blocks.${nLayers - 1}.hook_resid_post`));

    const dump: Dump = {
      input_ids: Array.from(ids),
      n_tokens: ids.length,
      backend: tf.getBackend(),
      resid_norms: { resid_pre: residPre, resid_mid: residMid, ln_f_out: await norms("ln_final.hook_normalized") },
    };
    const rows = (await logits.array()) as number[][];
    if ((options.logits ?? "last") === "all") dump.logits_all = rows;
    else if ((options.logits ?? "last") === "last") dump.logits_last = rows[rows.length - 1]!;

    if (attnLayer !== undefined) {
      const pattern = (await cache.get(`blocks.${attnLayer}.attn.hook_pattern`).array()) as number[][][];
      dump.attention = { layer: attnLayer, head: attnHead, pattern: attnHead === -1 ? pattern : pattern[attnHead]! };
    }
    if (options.greedy) {
      const out = await generate(model, ids, { maxNewTokens: options.greedy, temperature: 0, stopAtEndOfText: false });
      dump.greedy = { n: options.greedy, new_ids: out.ids, all_ids: [...out.promptIds, ...out.ids] };
    }
    return dump;
  } finally {
    logits.dispose();
    cache.dispose();
  }
}
