/**
 * Copies of contiguous blocks of a tensor. tfjs-backend-wasm 4.22 reads the whole input into a
 * new JS array for every slice whose result is one contiguous block of the input, so `tf.slice`
 * and `tf.unstack` cost the input size per call and leave that much garbage. On wasm these
 * helpers copy only the block, inside the wasm memory. On other backends they call `tf.slice` and
 * `tf.unstack`.
 */
import * as tf from "@tensorflow/tfjs-core";

/** The public methods of tfjs-backend-wasm's BackendWasm that give direct access to tensor memory. */
interface WasmHeapAccess {
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
  typedArrayFromHeap(tensor: tf.TensorInfo): Float32Array;
}

function wasmBackend(x: tf.Tensor): WasmHeapAccess | undefined {
  if (x.dtype !== "float32" || tf.getBackend() !== "wasm") return undefined;
  const backend = tf.backend() as Partial<WasmHeapAccess>;
  return typeof backend.makeOutput === "function" && typeof backend.typedArrayFromHeap === "function"
    ? backend as WasmHeapAccess
    : undefined;
}

/** Copies the values of `x` from flat offset `start` on into a new tensor of `shape` (wasm only). */
function copyRange(wasm: WasmHeapAccess, x: tf.Tensor, start: number, shape: number[]): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const info = wasm.makeOutput(shape, "float32");
  // Take the views after the allocation, which may grow and so replace the wasm memory.
  const source = wasm.typedArrayFromHeap(x);
  wasm.typedArrayFromHeap(info).set(source.subarray(start, start + size));
  return tf.engine().makeTensorFromTensorInfo(info);
}

/**
 * Splits `[head, m, n]` into one `[m, n]` tensor per head. On wasm this costs one copy of the
 * input, where `tf.unstack` reads the whole input once per head: 26 ms against 1 ms for a
 * `[12, 512, 512]` attention pattern (bench/micro.ts, one thread of a 2-vCPU Xeon).
 */
export function splitHeads(x: tf.Tensor3D): tf.Tensor2D[] {
  const [heads, m, n] = x.shape;
  const wasm = wasmBackend(x);
  if (!wasm) return tf.unstack(x) as tf.Tensor2D[];
  return Array.from({ length: heads }, (_, h) => copyRange(wasm, x, h * m * n, [m, n]) as tf.Tensor2D);
}

/** Rows `start .. start + count` of `[rows, cols]`, as `tf.slice(x, [start, 0], [count, -1])`. */
export function sliceRows(x: tf.Tensor2D, start: number, count: number): tf.Tensor2D {
  const wasm = wasmBackend(x);
  if (!wasm) return tf.slice(x, [start, 0], [count, -1]);
  const cols = x.shape[1];
  return copyRange(wasm, x, start * cols, [count, cols]) as tf.Tensor2D;
}
