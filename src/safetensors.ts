/**
 * A safetensors reader that parses the header first and then reads each tensor at its
 * offset, so a multi-gigabyte file is never loaded into one buffer.
 *
 * File layout: 8 bytes holding the header length N as an unsigned 64-bit little-endian
 * integer, N bytes of UTF-8 JSON, then the data section. The JSON maps each tensor name to
 * `{ dtype, shape, data_offsets: [begin, end] }` with offsets relative to the start of the
 * data section, plus an optional `__metadata__` object. Tensor data is row-major and
 * little-endian.
 *
 * Bytes come from a {@link ByteSource}, so files, in-memory buffers and (later) HTTP range
 * requests plug in the same way.
 */
import { open } from "node:fs/promises";

/** Random-access bytes: a file, a buffer or a remote resource. */
export interface ByteSource {
  /** Total length in bytes. */
  readonly size: number;
  /** File path or URL, used in error messages. */
  readonly name?: string;
  /**
   * Reads exactly `length` bytes starting at `offset`. The result may share memory with the
   * source, so callers must not modify it.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the underlying resource (a file handle). */
  close?(): void | Promise<void>;
}

/** Failure to read a safetensors file because it is corrupt, truncated or unsupported. */
export class SafetensorsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SafetensorsError";
  }
}

/** Storage dtypes defined by the safetensors format that this reader recognises. */
export type Dtype =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U64"
  | "U32"
  | "U16"
  | "U8"
  | "BOOL"
  | "F8_E4M3"
  | "F8_E5M2";

const ITEM_SIZE: Readonly<Record<Dtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

/** Largest accepted header length in bytes. A longer header marks the file as corrupt. */
export const MAX_HEADER_LENGTH = 100_000_000;

const LFS_POINTER_PREFIX = "version https://git-lfs.github.com/spec";

/** One tensor entry of a safetensors header. */
export interface TensorInfo {
  dtype: Dtype;
  shape: number[];
  /** `[begin, end)` byte offsets relative to the start of the data section. */
  dataOffsets: [number, number];
}

/** A validated safetensors header. */
export interface SafetensorsHeader {
  /** File path or URL the header was read from. */
  source: string;
  /** Length in bytes of the JSON header. */
  headerLength: number;
  /** Absolute byte offset of the data section (8 + headerLength). */
  dataStart: number;
  /** Tensor entries in header order, without `__metadata__`. */
  tensors: Map<string, TensorInfo>;
  /** The `__metadata__` object, or null when the file has none. */
  metadata: Record<string, unknown> | null;
}

/**
 * Decoded tensor values. F64, F32, F16 and BF16 become a Float32Array (F64 rounded to the
 * nearest float32, F16 and BF16 exactly). Integer dtypes keep their own width and sign:
 * I8 -> Int8Array, U8 -> Uint8Array, I16 -> Int16Array, U16 -> Uint16Array,
 * I32 -> Int32Array, U32 -> Uint32Array, I64 -> BigInt64Array, U64 -> BigUint64Array.
 * BOOL becomes a Uint8Array of the stored bytes (0 or 1).
 */
export type TensorData =
  | Float32Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** A tensor read from a safetensors file. */
export interface DecodedTensor {
  /** The dtype stored in the file. */
  dtype: Dtype;
  shape: number[];
  data: TensorData;
}

// Node 20 aborts the process on one read of 2^31 bytes or more (the length must fit an int32),
// so larger reads are split into calls of this size.
const MAX_READ_CALL = 1 << 30;

/**
 * Opens a file for offset-based reads through a node:fs file handle.
 *
 * @param path Path of the file.
 * @returns A source whose `read` reads only the requested range. Call `close()` when done.
 */
export async function openFileSource(path: string): Promise<ByteSource> {
  const handle = await open(path, "r");
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (error) {
    await handle.close();
    throw error;
  }

  return {
    size,
    name: path,
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkRange(offset, length, size, path);
      const out = new Uint8Array(length);
      let done = 0;

      // A single read may return fewer bytes than requested, so keep reading until full.
      while (done < length) {
        const want = Math.min(length - done, MAX_READ_CALL);
        const { bytesRead } = await handle.read(out, done, want, offset + done);
        if (bytesRead === 0) {
          throw new SafetensorsError(
            `${path}: the file ended at byte ${offset + done} while reading ${length} bytes at offset ` +
              `${offset}. It was probably truncated or changed while reading. Download it again.`,
          );
        }
        done += bytesRead;
      }
      return out;
    },
    close(): Promise<void> {
      return handle.close();
    },
  };
}

/**
 * Wraps bytes already in memory as a {@link ByteSource}. Reads return views into `bytes`
 * without copying.
 *
 * @param bytes The whole file.
 * @param name Name shown in error messages.
 */
export function bytesSource(bytes: Uint8Array, name = "<in-memory bytes>"): ByteSource {
  return {
    size: bytes.length,
    name,
    read(offset: number, length: number): Promise<Uint8Array> {
      checkRange(offset, length, bytes.length, name);
      return Promise.resolve(bytes.subarray(offset, offset + length));
    },
  };
}

function checkRange(offset: number, length: number, size: number, name: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new RangeError(`${name}: invalid read of ${length} bytes at offset ${offset}`);
  }
  if (offset + length > size) {
    throw new RangeError(
      `${name}: cannot read ${length} bytes at offset ${offset}: the source has only ${size} bytes`,
    );
  }
}

/**
 * Reads and validates the header of a safetensors file without reading any tensor data.
 *
 * The header length must fit the file and the 100,000,000-byte limit, and the JSON must be an
 * object. Every dtype must be known, and every shape a list of non-negative integers. Each
 * `data_offsets` range must be as long as its shape and dtype require, and together the ranges
 * must tile the data section exactly, with no gaps, overlaps or trailing bytes.
 *
 * @throws SafetensorsError for a corrupt, truncated or unsupported file, and for a Git LFS
 *   pointer file in place of the real file.
 */
export async function readHeader(source: ByteSource): Promise<SafetensorsHeader> {
  const name = sourceName(source);
  if (source.size < 8) {
    throw new SafetensorsError(
      `${name}: the file is ${source.size} bytes long, too short for a safetensors file ` +
        `(at least 8 bytes). Download it again.`,
    );
  }

  // The header length is a u64, so check it before allocating anything of that size.
  const prefix = await source.read(0, 8);
  await rejectLfsPointer(source, prefix, name);
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_LENGTH)) {
    throw new SafetensorsError(
      `${name}: the header length field is ${declared} bytes, over the limit of ${MAX_HEADER_LENGTH}. ` +
        `This is not a safetensors file, or it is corrupt. Download it again.`,
    );
  }
  const headerLength = Number(declared);
  if (headerLength > source.size - 8) {
    throw new SafetensorsError(
      `${name}: the header claims ${headerLength} bytes but the file has only ${source.size - 8} ` +
        `bytes after the length field. The file is truncated. Download it again.`,
    );
  }

  const json = await source.read(8, headerLength);
  const parsed = parseHeaderJson(json, name);
  const dataStart = 8 + headerLength;
  const dataLength = source.size - dataStart;

  let metadata: Record<string, unknown> | null = null;
  const tensors = new Map<string, TensorInfo>();
  for (const [key, value] of Object.entries(parsed)) {
    if (key === "__metadata__") {
      if (!isPlainObject(value)) {
        throw new SafetensorsError(`${name}: "__metadata__" must be a JSON object, found ${describe(value)}.`);
      }
      metadata = value;
      continue;
    }
    tensors.set(key, parseTensorEntry(key, value, name));
  }

  checkDataLayout(tensors, dataLength, name);
  return { source: name, headerLength, dataStart, tensors, metadata };
}

async function rejectLfsPointer(source: ByteSource, prefix: Uint8Array, name: string): Promise<void> {
  if (String.fromCharCode(...prefix) !== "version ") return;
  const head = await source.read(0, Math.min(source.size, 1024));
  const text = new TextDecoder().decode(head);
  if (!text.startsWith(LFS_POINTER_PREFIX)) return;

  const size = /^size (\d+)$/m.exec(text)?.[1];
  throw new SafetensorsError(
    `${name} is a Git LFS pointer file${size ? ` for a ${size}-byte file` : ""}, not the safetensors file ` +
      `itself. Run "git lfs pull" in the repository that contains it, or download the real file.`,
  );
}

function parseHeaderJson(bytes: Uint8Array, name: string): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new SafetensorsError(`${name}: the header is not valid UTF-8. The file is corrupt.`, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new SafetensorsError(
      `${name}: the header is not valid JSON (${(error as Error).message}). The file is corrupt or ` +
        `not a safetensors file.`,
      { cause: error },
    );
  }
  if (!isPlainObject(parsed)) {
    throw new SafetensorsError(`${name}: the header must be a JSON object, found ${describe(parsed)}.`);
  }
  return parsed;
}

function parseTensorEntry(tensor: string, value: unknown, name: string): TensorInfo {
  const where = `${name}: tensor "${tensor}"`;
  if (!isPlainObject(value)) {
    throw new SafetensorsError(`${where}: the header entry must be an object, found ${describe(value)}.`);
  }

  const dtype = value["dtype"];
  if (typeof dtype !== "string" || !Object.hasOwn(ITEM_SIZE, dtype)) {
    throw new SafetensorsError(
      `${where}: unsupported dtype ${JSON.stringify(dtype)}. Supported: ${Object.keys(ITEM_SIZE).join(", ")}.`,
    );
  }

  const shape = value["shape"];
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new SafetensorsError(`${where}: invalid shape ${JSON.stringify(shape)}. Expected non-negative integers.`);
  }

  const offsets = value["data_offsets"];
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
  ) {
    throw new SafetensorsError(
      `${where}: invalid data_offsets ${JSON.stringify(offsets)}. Expected [begin, end] with 0 <= begin <= end.`,
    );
  }

  // numel * itemsize must equal end - begin. Each partial product is checked, so it cannot overflow.
  let expected = ITEM_SIZE[dtype as Dtype];
  for (const dim of shape as number[]) {
    expected *= dim;
    if (!Number.isSafeInteger(expected)) {
      throw new SafetensorsError(`${where}: shape ${JSON.stringify(shape)} is too large.`);
    }
  }
  const [begin, end] = offsets as [number, number];
  if (end - begin !== expected) {
    throw new SafetensorsError(
      `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes, but shape ` +
        `${JSON.stringify(shape)} of ${dtype} needs ${expected}. The file is corrupt.`,
    );
  }
  return { dtype: dtype as Dtype, shape: [...(shape as number[])], dataOffsets: [begin, end] };
}

function checkDataLayout(tensors: Map<string, TensorInfo>, dataLength: number, name: string): void {
  const spans = [...tensors].map(([tensor, info]) => ({ tensor, begin: info.dataOffsets[0], end: info.dataOffsets[1] }));
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);

  let position = 0;
  for (const { tensor, begin, end } of spans) {
    if (end > dataLength) {
      throw new SafetensorsError(
        `${name}: tensor "${tensor}" ends at byte ${end} of the data section, but the file has only ` +
          `${dataLength} data bytes. The file is truncated. Download it again.`,
      );
    }
    if (begin !== position) {
      const problem = begin > position ? "a gap" : "an overlap";
      throw new SafetensorsError(
        `${name}: tensor "${tensor}" starts at data byte ${begin}, but the previous tensor ends at ` +
          `${position} (${problem}). The file is corrupt.`,
      );
    }
    position = end;
  }
  if (position !== dataLength) {
    throw new SafetensorsError(
      `${name}: the tensors cover ${position} data bytes but the data section has ${dataLength} bytes. ` +
        `The file is corrupt or has trailing data.`,
    );
  }
}

/** Options for {@link readTensor}. */
export interface ReadTensorOptions {
  /** Called after each chunk with the number of bytes of this tensor read so far. */
  onProgress?: (loadedBytes: number) => void;
}

// Bytes read per call, a multiple of every item size.
const CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * Reads one tensor and decodes it. Reads go in chunks of 16 MiB into the output array, so
 * memory stays near the size of the decoded tensor.
 *
 * @param source The file the header was read from.
 * @param header The result of {@link readHeader} on `source`.
 * @param name Tensor name as stored in the header.
 * @returns The stored dtype, the shape, and the values as described in {@link TensorData}.
 * @throws SafetensorsError when the tensor is not in the header, its dtype cannot be decoded
 *   (F8_E4M3, F8_E5M2), or the file changed since the header was read.
 */
export async function readTensor(
  source: ByteSource,
  header: SafetensorsHeader,
  name: string,
  options: ReadTensorOptions = {},
): Promise<DecodedTensor> {
  const info = header.tensors.get(name);
  if (info === undefined) {
    throw new SafetensorsError(
      `${header.source}: no tensor "${name}" in the file. It has ${header.tensors.size} tensors, ` +
        `such as ${[...header.tensors.keys()].slice(0, 5).map((n) => `"${n}"`).join(", ")}.`,
    );
  }
  const { dtype, shape } = info;
  const [begin, end] = info.dataOffsets;
  const itemSize = ITEM_SIZE[dtype];
  const count = (end - begin) / itemSize;
  const decoder = DECODERS[dtype];
  if (decoder === undefined) {
    throw new SafetensorsError(
      `${header.source}: tensor "${name}" has dtype ${dtype}, which this reader cannot decode. ` +
        `Convert the checkpoint to F32, F16 or BF16.`,
    );
  }

  const data = decoder.allocate(count);
  const byteLength = end - begin;
  for (let done = 0; done < byteLength; done += CHUNK_BYTES) {
    const length = Math.min(CHUNK_BYTES, byteLength - done);
    const chunk = await source.read(header.dataStart + begin + done, length);
    if (chunk.length !== length) {
      throw new SafetensorsError(
        `${header.source}: tensor "${name}": a read returned ${chunk.length} bytes instead of ${length}.`,
      );
    }
    decoder.decode(chunk, data, done / itemSize);
    options.onProgress?.(done + length);
  }
  return { dtype, shape: [...shape], data };
}

interface Decoder {
  allocate(count: number): TensorData;
  /** Decodes the little-endian items in `bytes` into `out` starting at element `start`. */
  decode(bytes: Uint8Array, out: TensorData, start: number): void;
}

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Copies little-endian items into a typed array of the same format. The byte copy also makes
 * unaligned data offsets safe, because `out` is always aligned.
 */
function copyDecoder(
  allocate: (count: number) => TensorData,
  readLittleEndian: (view: DataView, byteOffset: number) => number | bigint,
): Decoder {
  return {
    allocate,
    decode(bytes, out, start) {
      const itemSize = out.BYTES_PER_ELEMENT;
      if (HOST_IS_LITTLE_ENDIAN) {
        new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes, start * itemSize);
        return;
      }
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const n = bytes.length / itemSize;
      const items = out as unknown as (number | bigint)[];
      for (let i = 0; i < n; i++) items[start + i] = readLittleEndian(view, i * itemSize);
    },
  };
}

const DECODERS: Partial<Record<Dtype, Decoder>> = {
  F32: copyDecoder((n) => new Float32Array(n), (v, o) => v.getFloat32(o, true)),
  I64: copyDecoder((n) => new BigInt64Array(n), (v, o) => v.getBigInt64(o, true)),
  U64: copyDecoder((n) => new BigUint64Array(n), (v, o) => v.getBigUint64(o, true)),
  I32: copyDecoder((n) => new Int32Array(n), (v, o) => v.getInt32(o, true)),
  U32: copyDecoder((n) => new Uint32Array(n), (v, o) => v.getUint32(o, true)),
  I16: copyDecoder((n) => new Int16Array(n), (v, o) => v.getInt16(o, true)),
  U16: copyDecoder((n) => new Uint16Array(n), (v, o) => v.getUint16(o, true)),
  I8: copyDecoder((n) => new Int8Array(n), (v, o) => v.getInt8(o)),
  U8: copyDecoder((n) => new Uint8Array(n), (v, o) => v.getUint8(o)),
  BOOL: copyDecoder((n) => new Uint8Array(n), (v, o) => v.getUint8(o)),
  F64: {
    allocate: (n) => new Float32Array(n),
    decode(bytes, out, start) {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const n = bytes.length / 8;
      // Float32Array stores round each float64 to the nearest float32.
      for (let i = 0; i < n; i++) (out as Float32Array)[start + i] = view.getFloat64(i * 8, true);
    },
  },
  F16: {
    allocate: (n) => new Float32Array(n),
    decode(bytes, out, start) {
      const table = float16Table();
      const n = bytes.length / 2;
      for (let i = 0; i < n; i++) (out as Float32Array)[start + i] = table[bytes[2 * i]! | (bytes[2 * i + 1]! << 8)]!;
    },
  },
  BF16: {
    allocate: (n) => new Float32Array(n),
    decode(bytes, out, start) {
      // bfloat16 is the upper half of a float32, so shifting the bits left by 16 is exact.
      const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
      const n = bytes.length / 2;
      for (let i = 0; i < n; i++) bits[start + i] = ((bytes[2 * i]! | (bytes[2 * i + 1]! << 8)) << 16) >>> 0;
    },
  },
};

let float16Values: Float32Array | undefined;

/** Returns the float32 value of every float16 bit pattern (built on first use, 256 KiB). */
function float16Table(): Float32Array {
  if (float16Values !== undefined) return float16Values;
  const table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >>> 10) & 0x1f;
    const mantissa = bits & 0x3ff;
    if (exponent === 0) {
      table[bits] = sign * mantissa * 2 ** -24; // zero, subnormals and -0
    } else if (exponent === 0x1f) {
      table[bits] = mantissa === 0 ? sign * Infinity : NaN;
    } else {
      table[bits] = sign * (1024 + mantissa) * 2 ** (exponent - 25);
    }
  }
  float16Values = table;
  return table;
}

function sourceName(source: ByteSource): string {
  return source.name ?? "<safetensors source>";
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}
