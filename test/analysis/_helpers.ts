/**
 * Shared setup for the analysis tests: fixture paths, the goldens written by
 * test/fixtures/reference/analysis/make_goldens.py, and a tensor-count check.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { assertEquals } from "../_harness.ts";
import { loadModel } from "../../src/load_model.ts";
import type { Model } from "../../src/model.ts";

export function fixture(name: string): string {
  return fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
}

/** Reads a golden file from test/fixtures/reference/analysis/. */
export function golden(name: "gpt2-tiny-f32" | "gpt2-micro-untied"): any {
  return JSON.parse(readFileSync(fixture(`reference/analysis/analysis.${name}.json`), "utf8"));
}

/** Loads a fixture model, runs `fn` with it and disposes it. */
export async function withModel(name: string, fn: (model: Model) => void | Promise<void>): Promise<void> {
  const model = await loadModel(fixture(name));
  try {
    await fn(model);
  } finally {
    model.dispose();
  }
}

/** Runs `fn` and checks that it leaves tf.memory().numTensors unchanged. */
export async function withoutLeaks<T>(label: string, fn: () => T | Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  const result = await fn();
  assertEquals(tf.memory().numTensors, before, `tensors left by ${label}`);
  return result;
}
