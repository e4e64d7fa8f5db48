/**
 * Backend selection. underhood computes with tfjs; the wasm backend is the default in
 * Node, Deno and Bun, and cpu is the fallback that always works.
 */
import * as tf from "@tensorflow/tfjs-core";
// The union package registers the Tensor methods (t.slice(), t.print() ...) and the gradients,
// which the Node build of tfjs-core alone lacks. It costs about 0.45 s of import time on Node.
import "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-cpu";
import { version_wasm } from "@tensorflow/tfjs-backend-wasm";
import { startThreadedWasm } from "./_wasm_threads.ts";

/** A tfjs backend name that underhood supports. */
export type BackendName = "wasm" | "cpu" | "webgl";

/** Options for {@link setBackend}. */
export interface BackendOptions {
  /** Fall back to cpu when the backend cannot start. Default: true for wasm, false otherwise. */
  fallback?: boolean;
  /**
   * Threads for the wasm backend, an integer from 1 to 8 (default 1). More than 1 starts
   * tfjs-backend-wasm's multithreaded build through a loader shim, because tfjs 4.22 runs wasm on
   * one thread outside browsers. Experimental and off by default: see bench/ and BENCHMARKS.md
   * for what it gains. It must be chosen before the wasm backend first starts in the process.
   */
  threads?: number;
}

/** The maximum thread count of the shim, because tfjs-backend-wasm 4.22 creates a pool of 8 workers. */
const MAX_WASM_THREADS = 8;

const SUPPORTED: readonly BackendName[] = ["wasm", "cpu", "webgl"];

let initialised = false;
/** Threads the wasm backend started with, once it has started. */
let wasmThreads: number | undefined;

/** Whether the user picked a backend through setBackend (then ensureBackend keeps it). */
let chosenExplicitly = false;

function configureEnvironment(): void {
  if (initialised) return;
  initialised = true;
  // The cpu backend prints a "use tfjs-node" banner on first use in Node unless PROD is set.
  // PROD also turns off tfjs's per-op debug checks, which underhood does not use.
  tf.env().set("PROD", true);
  lowerWasmPriority();
}

/**
 * Re-registers wasm below cpu, so that a tfjs call made before any backend was set (such as
 * tf.zeros() before loadModel()) starts cpu synchronously. tfjs would otherwise pick wasm,
 * which cannot start synchronously, and the call fails. loadModel() still switches to wasm.
 */
function lowerWasmPriority(): void {
  const factory = tf.findBackendFactory("wasm");
  // tf.findBackend would start the backend, so look at the engine's registry instead.
  const started = (tf.engine() as unknown as { registry: Record<string, unknown> }).registry;
  if (!factory || "wasm" in started) return;
  tf.removeBackend("wasm");
  tf.registerBackend("wasm", factory, 0);
}

// Run at import, before user code can make a tensor. This touches only tfjs's registry.
configureEnvironment();

async function selectBackend(
  name: BackendName,
  { fallback = name === "wasm", threads }: BackendOptions,
): Promise<BackendName> {
  if (!SUPPORTED.includes(name)) {
    throw new RangeError(
      `Cannot select backend "${name}": expected one of ${SUPPORTED.map((s) => `"${s}"`).join(", ")}`,
    );
  }
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS)) {
    throw new RangeError(`Invalid threads ${threads}: expected an integer from 1 to ${MAX_WASM_THREADS}.`);
  }
  const threaded = name === "wasm" && threads !== undefined && threads > 1;
  if (name === "wasm" && wasmThreads !== undefined && threads !== undefined && threads !== wasmThreads) {
    throw new Error(
      `Cannot switch the wasm backend to ${threads} thread(s): it already runs with ${wasmThreads} in this process. ` +
        `Choose the thread count at the first setBackend("wasm") call.`,
    );
  }
  configureEnvironment();
  let ok = false;
  let reason: unknown;
  const listenersBefore = processListeners();
  try {
    if (threaded && wasmThreads === undefined) {
      wasmThreads = await startThreadedWasm(threads, version_wasm);
      ok = true;
    } else {
      ok = await tf.setBackend(name);
      if (ok) await tf.ready();
    }
    if (ok && name === "wasm") wasmThreads ??= 1;
  } catch (error) {
    reason = error;
    ok = false;
  } finally {
    removeAddedListeners(listenersBefore);
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

/**
 * Selects the tfjs backend and waits until it is ready.
 *
 * @param name `"wasm"` (default), `"cpu"`, or `"webgl"` (browsers only; register
 *   `@tensorflow/tfjs-backend-webgl` first).
 * @param options.fallback When true (default for wasm), falls back to cpu if wasm cannot start.
 * @param options.threads Threads for wasm (experimental, default 1); see {@link BackendOptions}.
 * @returns The backend actually in use.
 * @throws {RangeError} For an unknown backend or an invalid thread count.
 * @throws {Error} When wasm already runs with another thread count, or the backend cannot start
 *   and there is no fallback.
 * @example
 * ```ts
 * import { setBackend } from "./mod.ts";
 * const used = await setBackend("cpu"); // "cpu"
 * ```
 */
export async function setBackend(name: BackendName = "wasm", options: BackendOptions = {}): Promise<BackendName> {
  const used = await selectBackend(name, options);
  chosenExplicitly = true;
  return used;
}

/** Returns the threads the wasm backend runs with, or undefined before it has started. */
export function wasmThreadCount(): number | undefined {
  return wasmThreads;
}

/** Returns the name of the tfjs backend in use, starting the default (wasm) if none is. */
export function getBackend(): string {
  return tf.getBackend();
}

/** Makes sure a backend is ready, selecting the default (wasm, then cpu) if none was chosen. */
export async function ensureBackend(): Promise<string> {
  configureEnvironment();
  if (!chosenExplicitly && (!backendChosen() || tf.getBackend() === "cpu")) await selectBackend("wasm", {});
  await tf.ready();
  return tf.getBackend();
}

type ProcessEvent = "uncaughtException" | "unhandledRejection";
const PROCESS_EVENTS: readonly ProcessEvent[] = ["uncaughtException", "unhandledRejection"];

function processListeners(): Map<ProcessEvent, Set<unknown>> | undefined {
  const proc = (globalThis as { process?: NodeJS.Process }).process;
  if (typeof proc?.listeners !== "function") return undefined;
  const listeners = new Map<ProcessEvent, Set<unknown>>();
  for (const event of PROCESS_EVENTS) listeners.set(event, new Set<unknown>(proc.listeners(event as "uncaughtException")));
  return listeners;
}

/**
 * Removes the process-wide error listeners that tfjs-backend-wasm's Emscripten module adds
 * when it starts in Node. They rethrow every uncaught error from inside the minified module
 * source, so Node prints that whole source instead of the user's stack trace.
 */
function removeAddedListeners(before: Map<ProcessEvent, Set<unknown>> | undefined): void {
  const proc = (globalThis as { process?: NodeJS.Process }).process;
  if (!before || !proc) return;
  for (const event of PROCESS_EVENTS) {
    for (const listener of proc.listeners(event as "uncaughtException")) {
      if (!before.get(event)!.has(listener)) proc.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
}

function backendChosen(): boolean {
  // tf.engine().backendName is null until a backend has been set or initialised.
  return (tf.engine() as unknown as { backendName: string | null }).backendName != null;
}
