/**
 * Backend selection in browsers: WebGL first, then wasm, then cpu. src/backend.ts does the same
 * job for Node, Deno and Bun. It is not part of the browser build, because it can start the
 * wasm backend's threads through node:worker_threads.
 */
import * as tf from "@tensorflow/tfjs-core";
// The union package registers the Tensor methods (t.slice(), t.print() ...), the gradients and
// the cpu and WebGL backends, as src/backend.ts does in Node.
import "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-webgl";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";

/** A tfjs backend that the browser build supports. */
export type BrowserBackendName = "webgl" | "wasm" | "cpu";

/** The order in which {@link selectBrowserBackend} tries backends by default. */
export const BROWSER_BACKENDS: readonly BrowserBackendName[] = ["webgl", "wasm", "cpu"];

/** The backend that {@link selectBrowserBackend} started, and why each earlier one failed. */
export interface BackendSelection {
  backend: BrowserBackendName;
  /** One entry per backend tried before `backend`, with the error message it gave. */
  failures: Array<{ backend: BrowserBackendName; message: string }>;
}

/**
 * Sets where the wasm backend fetches its .wasm files: a URL prefix ending in `/`. Call it
 * before the wasm backend first starts. Until then, the files are fetched from the directory of
 * the bundle, where scripts/build-browser.ts copies them.
 */
export function setWasmDirectory(prefix: string | URL): void {
  setWasmPaths(String(prefix));
}

// In the bundle, import.meta.url is the address of dist/browser/underhood.js.
setWasmDirectory(new URL("./", import.meta.url));

/**
 * Selects a tfjs backend and waits until it is ready.
 *
 * @param name `"webgl"`, `"wasm"` or `"cpu"`.
 * @param options.fallback When true, falls back along webgl, wasm, cpu if `name` cannot start.
 *   Default false.
 * @returns The backend actually in use.
 * @throws {RangeError} For an unknown backend name.
 * @throws {Error} When the backend cannot start and there is no fallback.
 */
export async function setBackend(
  name: BrowserBackendName,
  { fallback = false }: { fallback?: boolean } = {},
): Promise<BrowserBackendName> {
  if (!BROWSER_BACKENDS.includes(name)) {
    throw new RangeError(
      `Cannot select backend ${JSON.stringify(name)}: expected one of ${BROWSER_BACKENDS.map((s) => `"${s}"`).join(", ")}.`,
    );
  }
  if (fallback) {
    return (await selectBrowserBackend(BROWSER_BACKENDS.slice(BROWSER_BACKENDS.indexOf(name)))).backend;
  }
  let reason: unknown;
  let ok = false;
  try {
    ok = await tf.setBackend(name);
    if (ok) await tf.ready();
  } catch (error) {
    reason = error;
    ok = false;
  }
  if (!ok) {
    throw new Error(
      `Cannot start the tfjs "${name}" backend${reason ? `: ${(reason as Error).message}` : ""}. ` +
        `Use setBackend("cpu"), which always works.`,
    );
  }
  return name;
}

/** Returns the name of the tfjs backend in use. */
export function getBackend(): string {
  return tf.getBackend();
}

/**
 * Starts the first backend of `order` that works in this browser: by default WebGL, then
 * wasm, then cpu.
 *
 * @param order Backends to try, in order.
 * @returns The backend in use and the failures before it.
 * @throws {Error} When no backend in `order` starts; the message lists each failure.
 */
export async function selectBrowserBackend(
  order: readonly BrowserBackendName[] = BROWSER_BACKENDS,
): Promise<BackendSelection> {
  const failures: BackendSelection["failures"] = [];
  for (const backend of order) {
    try {
      await setBackend(backend);
      return { backend, failures };
    } catch (error) {
      failures.push({ backend, message: (error as Error).message });
    }
  }
  throw new Error(
    `Cannot start any tfjs backend of ${order.join(", ")}: ` +
      `${failures.map((f) => `${f.backend}: ${f.message}`).join("; ")}.`,
  );
}

/** Returns whether a backend has been set or started. */
export function backendChosen(): boolean {
  // tf.engine().backendName is null until a backend has been set or initialised.
  return (tf.engine() as unknown as { backendName: string | null }).backendName != null;
}
