/**
 * Backend selection. underhood computes with tfjs; the wasm backend is the default in
 * Node, Deno and Bun, and cpu is the fallback that always works.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";

/** A tfjs backend name that underhood supports. */
export type BackendName = "wasm" | "cpu" | "webgl";

const SUPPORTED: readonly BackendName[] = ["wasm", "cpu", "webgl"];

let initialised = false;

function configureEnvironment(): void {
  if (initialised) return;
  initialised = true;
  // The cpu backend prints a "use tfjs-node" banner on first use in Node unless PROD is set.
  // PROD also turns off tfjs's per-op debug checks, which underhood does not use.
  tf.env().set("PROD", true);
}

/**
 * Selects the tfjs backend and waits until it is ready.
 *
 * @param name `"wasm"` (default), `"cpu"`, or `"webgl"` (browsers only; register
 *   `@tensorflow/tfjs-backend-webgl` first).
 * @param options.fallback When true (default for wasm), falls back to cpu if wasm cannot start.
 * @returns The backend actually in use.
 * @example
 * ```ts
 * import { setBackend } from "./mod.ts";
 * const used = await setBackend("cpu"); // "cpu"
 * ```
 */
export async function setBackend(
  name: BackendName = "wasm",
  { fallback = name === "wasm" }: { fallback?: boolean } = {},
): Promise<BackendName> {
  if (!SUPPORTED.includes(name)) {
    throw new RangeError(
      `Cannot select backend "${name}": expected one of ${SUPPORTED.map((s) => `"${s}"`).join(", ")}`,
    );
  }
  configureEnvironment();
  let ok = false;
  let reason: unknown;
  try {
    ok = await tf.setBackend(name);
    if (ok) await tf.ready();
  } catch (error) {
    reason = error;
    ok = false;
  }
  if (!ok) {
    if (fallback && name !== "cpu") {
      await tf.setBackend("cpu");
      await tf.ready();
      return "cpu";
    }
    throw new Error(
      `Cannot start the tfjs "${name}" backend${reason ? `: ${(reason as Error).message}` : ""}. ` +
        `Use setBackend("cpu"), which always works.`,
    );
  }
  return name;
}

/** Returns the name of the tfjs backend in use, starting the default (wasm) if none is. */
export function getBackend(): string {
  return tf.getBackend();
}

/** Makes sure a backend is ready, selecting the default (wasm, then cpu) if none was chosen. */
export async function ensureBackend(): Promise<string> {
  configureEnvironment();
  if (!backendChosen()) await setBackend("wasm");
  await tf.ready();
  return tf.getBackend();
}

function backendChosen(): boolean {
  // tf.engine().backendName is null until a backend has been set or initialised.
  return (tf.engine() as unknown as { backendName: string | null }).backendName != null;
}
