/**
 * A minimal safetensors reader for F32 and F16 tensors, used to resume training and to load
 * the exported model back for checks.
 */
import { readFileSync } from "node:fs";
import { float16BitsToFloat32 } from "../safetensors_write.ts";

/** A tensor read from a safetensors file, widened to float32. */
export interface ReadTensor {
  dtype: "F32" | "F16";
  shape: number[];
  data: Float32Array;
}

/** The parsed contents of a safetensors file. */
export interface SafetensorsContents {
  metadata: Record<string, string>;
  tensors: Record<string, ReadTensor>;
  /** Tensor names in header order. */
  headerNames: string[];
  headerLength: number;
}

/** Parses safetensors bytes. Throws TypeError on a malformed header or an unsupported dtype. */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsContents {
  if (bytes.length < 8) throw new TypeError(`Cannot read safetensors: ${bytes.length} bytes is shorter than the header length field`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (8 + headerLength > bytes.length) {
    throw new TypeError(`Cannot read safetensors: header length ${headerLength} runs past the end of the file`);
  }
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, unknown>;
  const dataStart = 8 + headerLength;
  const tensors: Record<string, ReadTensor> = {};
  const headerNames: string[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = entry as Record<string, string>;
      continue;
    }
    headerNames.push(name);
    const { dtype, shape, data_offsets: offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const count = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = offsets;
    if (dataStart + end > bytes.length) throw new TypeError(`Cannot read tensor "${name}": its data runs past the end of the file`);
    const data = new Float32Array(count);
    if (dtype === "F32") {
      if (end - begin !== count * 4) throw new TypeError(`Cannot read tensor "${name}": ${end - begin} bytes for ${count} F32 values`);
      const copy = bytes.slice(dataStart + begin, dataStart + end);
      data.set(new Float32Array(copy.buffer));
    } else if (dtype === "F16") {
      if (end - begin !== count * 2) throw new TypeError(`Cannot read tensor "${name}": ${end - begin} bytes for ${count} F16 values`);
      for (let i = 0; i < count; i++) data[i] = float16BitsToFloat32(view.getUint16(dataStart + begin + 2 * i, true));
    } else {
      throw new TypeError(`Cannot read tensor "${name}": dtype ${dtype} is not supported (F32, F16)`);
    }
    tensors[name] = { dtype, shape, data };
  }
  return { metadata, tensors, headerNames, headerLength };
}

/** Reads and parses a safetensors file. */
export function readSafetensors(path: string): SafetensorsContents {
  return decodeSafetensors(new Uint8Array(readFileSync(path)));
}
