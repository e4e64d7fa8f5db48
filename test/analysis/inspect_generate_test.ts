/**
 * Inspectable generation: the same ids as generate(), top-k against a full forward pass, step
 * caches for the new positions only, and cleanup when the consumer stops early.
 */
import * as tf from "@tensorflow/tfjs-core";
import { assert, assertClose, assertEquals, assertThrows, test } from "../_harness.ts";
import { inspectGeneration, type InspectStep } from "../../src/analysis/inspect_generate.ts";
import { generate } from "../../src/generate.ts";
import { withModel, withoutLeaks } from "./_helpers.ts";

/** GPT-2 ids of "The quick brown fox jumps". */
const PROMPT = [464, 2068, 7586, 21831, 18045];

for (const options of [
  { maxNewTokens: 10, temperature: 0.9, topK: 40, seed: 5 },
  { maxNewTokens: 8, temperature: 1.2, topP: 0.9, seed: 12 },
  { maxNewTokens: 6, temperature: 0 },
  { maxNewTokens: 12, temperature: 1, seed: 7, stop: "e" },
]) {
  const name = `temperature ${options.temperature}${"stop" in options ? " with a stop string" : ""}`;
  test(`inspected ids equal generate at ${name}`, async () => {
    await withModel("gpt2-tiny-f32", async (model) => {
      const expected = await generate(model, PROMPT, options);
      const iterator = inspectGeneration(model, PROMPT, options);
      const steps: InspectStep[] = [];
      let result = await iterator.next();
      while (!result.done) {
        steps.push(result.value);
        result = await iterator.next();
      }
      assertEquals(steps.map((s) => s.id), expected.ids, "ids");
      assertEquals(steps.map(({ position, id, text, prob }) => ({ position, id, text, prob })), expected.steps, "steps");
      assertEquals({ ...result.value, seed: 0 }, { ...expected, seed: 0 }, "summary");
      if ("stop" in options) assertEquals(expected.stopReason, "stop", "the stop string was reached");
      if (options.seed !== undefined) assertEquals(iterator.seed, options.seed, "seed");
    });
  });
}

test("inspected top-k matches forward pass", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    const steps: InspectStep[] = [];
    for await (const step of inspectGeneration(model, PROMPT, { maxNewTokens: 4, seed: 3, reportTopK: 5 })) steps.push(step);
    const all = [...PROMPT, ...steps.map((s) => s.id)];
    const probs = tf.tidy(() => tf.softmax(model.forward(all.slice(0, -1))));
    const rows = probs.arraySync() as number[][];
    for (const step of steps) {
      const row = rows[step.position - 1]!;
      assertEquals(step.topK.length, 5, "reported candidates");
      const expectedIds = row.map((p, id) => ({ p, id })).sort((a, b) => b.p - a.p || a.id - b.id).slice(0, 5);
      assertEquals(step.topK.map((t) => t.id), expectedIds.map((e) => e.id), `top-5 ids at ${step.position}`);
      assertClose(step.topK.map((t) => t.prob), expectedIds.map((e) => e.p), { atol: 1e-5, label: "top-5 probs" });
      assertEquals(step.topK[0]!.token, model.tokenText(step.topK[0]!.id), "token text");
    }
    probs.dispose();
  });
});

test("inspected cache covers new positions", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    const names = ["blocks.1.hook_resid_post", "blocks.0.attn.hook_pattern"] as const;
    const steps: InspectStep[] = [];
    const generation = inspectGeneration(model, PROMPT, { maxNewTokens: 4, seed: 9, cache: [...names], keepCaches: true });
    for await (const step of generation) steps.push(step);

    const all = [...PROMPT, ...steps.map((s) => s.id)];
    const { logits, cache: full } = model.runWithCache(all, { names: [...names] });
    const fullResid = full.get(names[0]).arraySync() as number[][];
    const fullPattern = full.get(names[1]).arraySync() as number[][][];
    steps.forEach((step, i) => {
      const start = i === 0 ? 0 : step.position - 1;
      assertEquals(step.inputStart, start, `inputStart of step ${i}`);
      const resid = step.cache!.get(names[0]);
      const pattern = step.cache!.get(names[1]);
      assertEquals(resid.shape, [step.position - start, model.config.dModel], `resid shape of step ${i}`);
      assertEquals(pattern.shape, [model.config.nHeads, step.position - start, step.position], `pattern shape of step ${i}`);
      assertClose(resid.arraySync() as number[][], fullResid.slice(start, step.position), { atol: 1e-4, label: "resid" });
      const expectedPattern = fullPattern.map((head) => head.slice(start, step.position).map((row) => row.slice(0, step.position)));
      assertClose(pattern.arraySync() as number[][][], expectedPattern, { atol: 1e-5, label: "pattern" });
      step.cache!.dispose();
    });
    logits.dispose();
    full.dispose();
  });
});

test("inspected hooks fire on new positions", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    const seen: number[] = [];
    const hooks = [{ name: "blocks.0.hook_resid_pre" as const, fn: (x: tf.Tensor) => void seen.push(x.shape[0]!) }];
    for await (const _ of inspectGeneration(model, PROMPT, { maxNewTokens: 3, temperature: 0, hooks })) {
      // Only the hook's record matters here.
    }
    assertEquals(seen, [PROMPT.length, 1, 1], "positions per call");
  });
});

test("inspection stopped early frees tensors", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    await withoutLeaks("break after two steps", async () => {
      let n = 0;
      for await (const step of inspectGeneration(model, PROMPT, { maxNewTokens: 10, seed: 1, cache: "blocks.0.hook_mlp_out" })) {
        assert(step.cache!.has("blocks.0.hook_mlp_out"), "cache present while the step is current");
        if (++n === 2) break;
      }
    });
    await withoutLeaks("return before the first step", async () => {
      const iterator = inspectGeneration(model, PROMPT, { maxNewTokens: 5, cache: "blocks.0.hook_mlp_out" });
      await iterator.return(undefined as never);
    });
    await withoutLeaks("run to the end", async () => {
      for await (const _ of inspectGeneration(model, PROMPT, { maxNewTokens: 3, seed: 2, cache: ["hook_embed"] })) {
        // Consume every step.
      }
    });
    await withoutLeaks("break with keptSteps caches", async () => {
      const keptSteps: InspectStep[] = [];
      for await (const step of inspectGeneration(model, PROMPT, { maxNewTokens: 10, seed: 1, cache: "hook_embed", keepCaches: true })) {
        keptSteps.push(step);
        if (keptSteps.length === 3) break;
      }
      for (const step of keptSteps) step.cache!.dispose();
    });
  });
});

test("inspection checks options before running", async () => {
  await withModel("gpt2-tiny-f32", async (model) => {
    await assertThrows(() => inspectGeneration(model, PROMPT, { reportTopK: 0 }), RangeError, "reportTopK");
    await assertThrows(() => inspectGeneration(model, PROMPT, { maxNewTokens: 60 }), RangeError, "nCtx");
    await assertThrows(() => inspectGeneration(model, PROMPT, { temperature: -1 }), RangeError, "temperature");
    await assertThrows(
      () => inspectGeneration(model, PROMPT, { cache: "blocks.7.hook_mlp_out" as "hook_embed" }),
      RangeError,
      "Unknown hook",
    );
  });
});
