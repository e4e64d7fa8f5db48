/**
 * Starts tfjs-backend-wasm's multithreaded build in Node, Deno and Bun. This is a shim around
 * tfjs-backend-wasm 4.22, which turns threads off outside browsers (its WASM_HAS_MULTITHREAD_SUPPORT
 * check returns false when tfjs's IS_NODE flag is set) and has no maintained loader for them.
 *
 * The threaded build loads in a browser way: it passes Blob URLs to `new Worker()` and to the
 * worker's `importScripts()`, and neither accepts a Blob URL under node:worker_threads. While the
 * backend starts, this module records the text of the Blobs tfjs creates, writes it to two files
 * in the temp directory, and gives the Emscripten runtime a Worker class that runs those files.
 * The runtime also caps the thread pool at half of `os.cpus().length`, taking every second
 * logical core to be a hyperthread, so while it starts `os.cpus()` reports two entries per
 * requested thread. Everything it replaces is put back before `startThreadedWasm` returns.
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import os, { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker as NodeWorker } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs-core";
import { getThreadsCount, setThreadsCount } from "@tensorflow/tfjs-backend-wasm";

/** The tfjs-backend-wasm version whose loader this shim matches. */
const SUPPORTED_VERSION = "4.22.0";

/**
 * Names the node bundle of tfjs-backend-wasm 4.22 gives to modules and helpers that the
 * threaded factory uses but does not define. The factory's source runs again inside each
 * worker, so they must exist there as globals.
 */
const WORKER_PRELUDE = `
globalThis.require$$0 = require("fs");
globalThis.require$$1 = require("path");
globalThis.require$$3 = require("perf_hooks");
globalThis.require$$4 = require("os");
globalThis.commonjsGlobal = globalThis;
globalThis._scriptDir = globalThis.location ? globalThis.location.href : "";
globalThis.__values = (o) => {
  const method = typeof Symbol === "function" && o[Symbol.iterator];
  if (method) return method.call(o);
  let i = 0;
  return { next: () => ({ value: o && o[i++], done: !o || i > o.length }) };
};
globalThis.__read = (o, n) => {
  const method = typeof Symbol === "function" && o[Symbol.iterator];
  if (!method) return o;
  const it = method.call(o), out = [];
  for (let r; (n === undefined || n-- > 0) && !(r = it.next()).done;) out.push(r.value);
  return out;
};
globalThis.__spreadArray = (to, from) => to.concat(Array.prototype.slice.call(from));
`;

/**
 * Runs in each worker before Emscripten's worker script. That script assigns `self`, `location`,
 * `postMessage` and `performance` on the global object, which Deno's worker scope defines as
 * read-only accessors, so they become plain writable properties first.
 */
const WORKER_SETUP = `
for (const name of ["self", "location", "Worker", "importScripts", "postMessage", "performance"]) {
  try {
    Object.defineProperty(globalThis, name, { value: globalThis[name], writable: true, configurable: true, enumerable: true });
  } catch {}
}
`;

interface MessageLike {
  cmd?: string;
  urlOrBlob?: unknown;
}

/**
 * Starts the wasm backend with `threads` threads (the calling thread counts as one).
 *
 * @returns The number of threads the backend reports.
 * @throws {Error} When the tfjs-backend-wasm version is not the supported one, or the backend fails to start.
 */
export async function startThreadedWasm(threads: number, version: string): Promise<number> {
  if (version !== SUPPORTED_VERSION) {
    throw new Error(
      `Cannot start wasm threads: the loader shim supports @tensorflow/tfjs-backend-wasm ${SUPPORTED_VERSION}, ` +
        `found ${version}. Start the backend without the threads option.`,
    );
  }
  const texts = new WeakMap<object, string>();
  const urls = new Map<string, string>();
  const g = globalThis as Record<string, unknown>;
  const OriginalBlob = globalThis.Blob;
  const originalCreateObjectURL = URL.createObjectURL;
  const workerDescriptor = Object.getOwnPropertyDescriptor(globalThis, "Worker");
  const dir = join(tmpdir(), "underhood-wasm-threads");
  let mainScriptPath: string | undefined;

  // Record the text of each Blob built from strings, and the object URL made from it.
  class RecordingBlob extends OriginalBlob {
    constructor(parts?: BlobPart[], options?: BlobPropertyBag) {
      super(parts, options);
      if (parts?.every((p) => typeof p === "string")) texts.set(this, parts.join(""));
    }
  }
  URL.createObjectURL = (object: Blob | MediaSource): string => {
    const url = originalCreateObjectURL.call(URL, object as Blob);
    const text = texts.get(object);
    if (text !== undefined) urls.set(url, text);
    return url;
  };

  /** Writes `text` to a file named by its hash, once, so concurrent processes share it. */
  const writeScript = (name: string, text: string): string => {
    const path = join(dir, `${hashText(text)}-${name}`);
    if (existsSync(path)) return path;
    mkdirSync(dir, { recursive: true });
    const partial = `${path}.${process.pid}.part`;
    writeFileSync(partial, text);
    renameSync(partial, path);
    return path;
  };

  /**
   * The part of the Web Worker interface that the Emscripten pthread runtime uses, on
   * node:worker_threads. The runtime creates a pool of 8 workers, and each would cost tens of MB
   * of memory, so a FileWorker starts its thread only when the runtime first runs a pthread on
   * it. Until then it replies to the runtime's "load" command itself and keeps the command for the
   * thread.
   */
  class FileWorker {
    readonly #script: string;
    #worker: NodeWorker | undefined;
    #load: MessageLike | undefined;
    readonly #listeners: Array<[string, (...args: unknown[]) => void]> = [];

    constructor(url: string) {
      const text = urls.get(String(url));
      if (text === undefined) throw new Error(`Cannot start a wasm thread from ${String(url)}: its script was not recorded.`);
      this.#script = writeScript("worker.cjs", WORKER_SETUP + text);
    }

    postMessage(message: MessageLike, transfer?: readonly Transferable[]): void {
      if (message?.cmd === "load" && this.#worker === undefined) {
        this.#load = { ...message, urlOrBlob: mainScript(message.urlOrBlob) };
        // The runtime waits for "loaded" from every pooled worker before it resolves.
        queueMicrotask(() => this.#emit("message", { cmd: "loaded" }));
        return;
      }
      this.#start().postMessage(message, transfer as never);
    }

    on(event: string, listener: (...args: unknown[]) => void): this {
      this.#listeners.push([event, listener]);
      this.#worker?.on(event, listener);
      return this;
    }

    terminate(): Promise<number> {
      return this.#worker?.terminate() ?? Promise.resolve(0);
    }

    /**
     * Does nothing: the runtime refs a worker while a pthread runs on it, and the thread pool's
     * pthreads run until the process ends, so a referenced worker would keep the process alive.
     */
    ref(): void {}

    unref(): void {
      this.#worker?.unref();
    }

    #start(): NodeWorker {
      if (this.#worker) return this.#worker;
      const worker = new NodeWorker(this.#script);
      for (const [event, listener] of this.#listeners) {
        // The thread's own "loaded" reply would count as a second load; the runtime already had one.
        const filtered = event === "message"
          ? (data: unknown) => {
            if ((data as MessageLike)?.cmd !== "loaded") listener(data);
          }
          : listener;
        worker.on(event, filtered);
      }
      worker.unref();
      if (this.#load) worker.postMessage(this.#load);
      this.#worker = worker;
      return worker;
    }

    #emit(event: string, data: unknown): void {
      for (const [name, listener] of this.#listeners) if (name === event) listener(data);
    }
  }

  /** Writes the module's script with the prelude once, and returns its path for the worker's importScripts(). */
  const mainScript = (urlOrBlob: unknown): string => {
    if (typeof urlOrBlob === "string") return urlOrBlob;
    const text = typeof urlOrBlob === "object" && urlOrBlob !== null ? texts.get(urlOrBlob) : undefined;
    if (text === undefined) throw new Error("Cannot load the wasm module into a thread: its script was not recorded.");
    mainScriptPath ??= writeScript("main.js", WORKER_PRELUDE + text);
    return mainScriptPath;
  };

  // Read once, when the module's static constructors run, as os.cpus().length / 2.
  const originalCpus = os.cpus;
  os.cpus = () => {
    const cpus = originalCpus.call(os);
    return Array.from({ length: 2 * threads }, (_, i) => cpus[i % cpus.length]!);
  };
  g.Blob = RecordingBlob;
  // The Emscripten runtime assigns worker_threads' Worker to globalThis.Worker when it starts and
  // then calls `new Worker(...)`: the setter ignores that assignment, the getter returns FileWorker.
  Object.defineProperty(globalThis, "Worker", { configurable: true, get: () => FileWorker, set: () => {} });
  try {
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
    setThreadsCount(threads);
    const ok = await tf.setBackend("wasm");
    if (!ok) throw new Error("tf.setBackend(\"wasm\") returned false.");
    await tf.ready();
    return getThreadsCount();
  } finally {
    os.cpus = originalCpus;
    g.Blob = OriginalBlob;
    URL.createObjectURL = originalCreateObjectURL;
    if (workerDescriptor) Object.defineProperty(globalThis, "Worker", workerDescriptor);
    else delete g.Worker;
  }
}

/** FNV-1a hash of a string, as 8 hex digits. */
function hashText(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, "0");
}
