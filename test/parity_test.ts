/**
 * Parity with the independent reference (gpt2ref, NumPy and PyTorch agreeing within 1e-5) on
 * every fixture checkpoint: logits, attention patterns, residual norms and greedy ids.
 */
import { readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { assertClose, assertEquals, test } from "./_harness.ts";
import { loadModel } from "../src/load_model.ts";
import { dumpParity } from "../src/dump.ts";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "fixtures");

/** Tolerances of the parity check, absolute. */
const LOGIT_ATOL = 1e-4;
const PATTERN_ATOL = 1e-5;
const NORM_ATOL = 1e-4;

const references = [
  "gpt2-tiny-f32.hello",
  "gpt2-tiny-f32.citizen",
  "gpt2-tiny-f16.hello",
  "gpt2-tiny-f16.citizen",
  "gpt2-tiny-bf16.hello",
  "gpt2-tiny-bf16.citizen",
  "fake-gpt2.hello",
];

function modelDir(ref: { model_dir: string }): string {
  const name = basename(ref.model_dir);
  return name === "fake-gpt2" ? join(fixtures, "hf-written", name) : join(fixtures, name);
}

for (const name of references) {
  test(`parity ${name}`, async () => {
    const ref = JSON.parse(readFileSync(join(fixtures, "reference", `${name}.json`), "utf8"));
    const raw = readFileSync(join(fixtures, "reference", ref.logits_file));
    const refLogits = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);

    const model = await loadModel(modelDir(ref));
    const before = tf.memory().numTensors;
    try {
      const dump = await dumpParity(model, {
        ids: ref.input_ids,
        logits: ref.logits_kind,
        attnLayer: ref.attention.layer,
        attnHead: ref.attention.head,
        greedy: ref.greedy.n,
      });
      const logits = ref.logits_kind === "all" ? dump.logits_all!.flat() : dump.logits_last!;
      assertClose(logits, refLogits, { atol: LOGIT_ATOL, label: "logits" });
      assertClose(dump.attention!.pattern, ref.attention.pattern, { atol: PATTERN_ATOL, label: "attention pattern" });
      assertClose(dump.resid_norms.resid_pre, ref.resid_norms.resid_pre, { atol: NORM_ATOL, label: "resid_pre norms" });
      assertClose(dump.resid_norms.resid_mid, ref.resid_norms.resid_mid, { atol: NORM_ATOL, label: "resid_mid norms" });
      assertClose(dump.resid_norms.ln_f_out, ref.resid_norms.ln_f_out, { atol: NORM_ATOL, label: "ln_f norms" });
      assertEquals(dump.greedy!.new_ids, ref.greedy.new_ids, "greedy ids");
      assertEquals(tf.memory().numTensors, before, "tensors left after the dump");
    } finally {
      model.dispose();
    }
  });
}
