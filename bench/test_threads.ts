/**
 * Runs test/run.ts with the wasm backend started on 2 threads first (the experimental thread
 * shim). Arguments go to test/run.ts, for example: `npx tsx bench/test_threads.ts parity`.
 */
import { setBackend, wasmThreadCount } from "../src/backend.ts";

await setBackend("wasm", { fallback: false, threads: 2 });
console.log(`wasm threads: ${wasmThreadCount()}`);
await import("../test/run.ts");
