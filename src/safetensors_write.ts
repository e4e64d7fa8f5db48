/**
 * A safetensors writer that produces the byte layout Hugging Face transformers writes.
 * The file starts with an 8-byte little-endian header length. A compact JSON header follows,
 * with `__metadata__` first and the tensors in name order, padded with spaces to a multiple of 8.
 * The tensor data comes last, back to back in the same order.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";

/** A tensor to store: float32 values on the host, stored as F32 or converted to F16. */
export interface TensorToWrite {
  dtype: "F32" | "F16";
  shape: number[];
  data: Float32Array;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/**
 * Converts one float32 value to IEEE half-precision bits with round-to-nearest-even.
 * Values too large for float16 become +-Infinity, tiny values become subnormals or +-0,
 * and NaN stays NaN.
 */
export function float32ToFloat16Bits(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;

  // NaN and Infinity.
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);

  // Unbiased exponent, rebiased for float16 (bias 15).
  const halfExponent = exponent - 127 + 15;

  // Overflow: the largest finite float16 is 65504; anything that rounds above it is Infinity.
  if (halfExponent >= 0x1f) return sign | 0x7c00;

  if (halfExponent <= 0) {
    // Subnormal float16 (or zero): shift the mantissa with its implicit leading 1.
    if (halfExponent < -10) return sign; // Below half of the smallest subnormal: rounds to 0.
    const full = mantissa | 0x800000;
    const shift = 14 - halfExponent; // 24-bit significand down to 10 bits of subnormal
    const truncated = full >>> shift;
    const remainder = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    let rounded = truncated;
    if (remainder > halfway || (remainder === halfway && (truncated & 1) === 1)) rounded += 1;
    // A carry into bit 10 correctly yields the smallest normal number.
    return sign | rounded;
  }

  // Normal float16: keep 10 of 23 mantissa bits and round the 13 dropped bits.
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const dropped = mantissa & 0x1fff;
  if (dropped > 0x1000 || (dropped === 0x1000 && (half & 1) === 1)) half += 1;
  // A carry out of the mantissa raises the exponent; a carry into 0x7c00 is Infinity.
  return sign | half;
}

/** Converts IEEE half-precision bits to a number. */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Converts a float32 array to float16 bits, element by element. */
export function float32ArrayToFloat16(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = float32ToFloat16Bits(data[i]!);
  return out;
}

/**
 * Builds the bytes of a safetensors file.
 *
 * @param tensors Tensors by name; each `data.length` must equal the product of `shape`.
 * @param metadata String entries for `__metadata__`; `format: "pt"` is added first unless given.
 * @returns The whole file as one byte array.
 */
export function encodeSafetensors(
  tensors: Record<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = { __metadata__: { format: "pt", ...metadata } };
  const payloads: Uint8Array[] = [];
  let offset = 0;

  for (const name of names) {
    const tensor = tensors[name]!;
    const count = tensor.shape.reduce((a, b) => a * b, 1);
    if (tensor.dtype !== "F32" && tensor.dtype !== "F16") {
      throw new TypeError(`Cannot write tensor "${name}": dtype ${String(tensor.dtype)} is not F32 or F16`);
    }
    if (count !== tensor.data.length) {
      throw new TypeError(
        `Cannot write tensor "${name}": shape [${tensor.shape}] has ${count} elements but data has ${tensor.data.length}`,
      );
    }
    const bytes = tensor.dtype === "F16"
      ? new Uint8Array(float32ArrayToFloat16(tensor.data).buffer)
      : new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    header[name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + bytes.length] };
    payloads.push(bytes);
    offset += bytes.length;
  }

  // Pad the JSON header with spaces so the data starts at a multiple of 8 bytes.
  let json = JSON.stringify(header);
  const jsonLength = new TextEncoder().encode(json).length;
  json += " ".repeat((8 - ((8 + jsonLength) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);

  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let position = 8 + headerBytes.length;
  for (const bytes of payloads) {
    out.set(bytes, position);
    position += bytes.length;
  }
  return out;
}

/**
 * Writes a safetensors file in the Hugging Face layout. The bytes go to a temporary file that
 * is then renamed over `path`, so an interrupted write never leaves a truncated file behind.
 *
 * @param path Destination file.
 * @param tensors Tensors by name, float32 on the host; `dtype` picks the stored precision.
 * @param metadata Extra `__metadata__` strings (`format: "pt"` is always present).
 * @example
 * ```ts
 * writeSafetensors("/tmp/x.safetensors", { w: { dtype: "F16", shape: [2], data: new Float32Array([1, 2]) } });
 * ```
 */
export function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): void {
  const bytes = encodeSafetensors(tensors, metadata);
  const temporary = `${path}.tmp-${process.pid}`;
  const fd = openSync(temporary, "w");
  try {
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(temporary);
    throw error;
  }
  closeSync(fd);
  renameSync(temporary, path);
}
