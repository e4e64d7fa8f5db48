import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertThrows, test } from "./_harness.ts";
import {
  bytesSource,
  type ByteSource,
  type DecodedTensor,
  MAX_HEADER_LENGTH,
  openFileSource,
  readHeader,
  readTensor,
  SafetensorsError,
} from "../src/safetensors.ts";

function edgeFixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/safetensors-edge/${name}.safetensors`, import.meta.url));
}

/** Opens a file, reads its header and every tensor, and closes it. */
async function readFileTensors(path: string): Promise<Map<string, DecodedTensor>> {
  const source = await openFileSource(path);
  try {
    const header = await readHeader(source);
    const out = new Map<string, DecodedTensor>();
    for (const name of header.tensors.keys()) out.set(name, await readTensor(source, header, name));
    return out;
  } finally {
    await source.close?.();
  }
}

/** Builds a file from a header given as a JSON value (or raw text) and a data section. */
function fileBytes(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Builds a one-tensor file named "t" holding `data`. */
function oneTensorFile(dtype: string, shape: number[], data: Uint8Array): Uint8Array {
  return fileBytes({ t: { dtype, shape, data_offsets: [0, data.length] } }, data);
}

async function readOne(bytes: Uint8Array): Promise<DecodedTensor> {
  const source = bytesSource(bytes, "test.safetensors");
  return await readTensor(source, await readHeader(source), "t");
}

function littleEndian(array: ArrayBufferView): Uint8Array {
  // All three runtimes run on little-endian hosts here, so the in-memory bytes are the file bytes.
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

async function headerError(bytes: Uint8Array, includes: string[]): Promise<Error> {
  return await assertThrows(() => readHeader(bytesSource(bytes, "crafted.safetensors")), SafetensorsError, includes);
}

test("scalar_i32 is a 0-d I32 tensor", async () => {
  const tensors = await readFileTensors(edgeFixture("scalar_i32"));
  const t = tensors.get("test")!;
  assertEquals(t.dtype, "I32");
  assertEquals(t.shape, []);
  assert(t.data instanceof Int32Array, "I32 data must be an Int32Array");
  assertEquals(Array.from(t.data as Int32Array), [7]);
});

test("empty_and_w skips metadata", async () => {
  const source = await openFileSource(edgeFixture("empty_and_w"));
  try {
    const header = await readHeader(source);
    assertEquals([...header.tensors.keys()], ["e", "w"]);
    assertEquals(header.metadata, { format: "pt" });

    const e = await readTensor(source, header, "e");
    assertEquals(e.shape, [0]);
    assertEquals(e.data.length, 0);

    const w = await readTensor(source, header, "w");
    assert(w.data instanceof Float32Array, "F32 data must be a Float32Array");
    assertEquals(Array.from(w.data as Float32Array), [1.5, -2]);
  } finally {
    await source.close?.();
  }
});

test("unaligned F32 data decodes", async () => {
  const source = await openFileSource(edgeFixture("unaligned"));
  try {
    const header = await readHeader(source);
    assertEquals(header.dataStart % 4, 2, "the fixture must place data at an offset not divisible by 4");
    const w = await readTensor(source, header, "w");
    assertEquals(Array.from(w.data as Float32Array), [1.5, -2]);
  } finally {
    await source.close?.();
  }
});

test("bf16_one decodes", async () => {
  const w = (await readFileTensors(edgeFixture("bf16_one"))).get("w")!;
  assertEquals(w.dtype, "BF16");
  assert(w.data instanceof Float32Array, "BF16 data must widen to a Float32Array");
  assertEquals(Array.from(w.data as Float32Array), [1, -2]);
});

test("f16_edges decodes exactly", async () => {
  const w = (await readFileTensors(edgeFixture("f16_edges"))).get("w")!;
  const data = w.data as Float32Array;
  assertEquals(w.dtype, "F16");
  assertEquals(data.length, 5);
  assertEquals(data[0], 1);
  assertEquals(data[1], 65504);
  assertEquals(data[2], Infinity);
  assertEquals(data[3], 5.960464477539063e-8);
  assert(Object.is(data[4], -0), `expected -0, found ${data[4]}`);
});

test("truncated file is rejected", async () => {
  const path = edgeFixture("truncated");
  const source = await openFileSource(path);
  try {
    await assertThrows(() => readHeader(source), SafetensorsError, [path, '"w"', "truncated"]);
  } finally {
    await source.close?.();
  }
});

test("gap in data_offsets is rejected", async () => {
  const path = edgeFixture("gap_offsets");
  const source = await openFileSource(path);
  try {
    await assertThrows(() => readHeader(source), SafetensorsError, [path, '"b"', "gap"]);
  } finally {
    await source.close?.();
  }
});

test("Git LFS pointer is named", async () => {
  const path = edgeFixture("lfs_pointer");
  const source = await openFileSource(path);
  try {
    await assertThrows(() => readHeader(source), SafetensorsError, [path, "Git LFS", "git lfs pull", "548105171"]);
  } finally {
    await source.close?.();
  }
});

test("header length over limit", async () => {
  const bytes = new Uint8Array(64);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(MAX_HEADER_LENGTH + 1), true);
  await headerError(bytes, ["crafted.safetensors", "100000001", "limit"]);

  // The largest u64 must be rejected before anything of that size is allocated.
  new DataView(bytes.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
  await headerError(bytes, ["18446744073709551615"]);
});

test("header longer than file", async () => {
  const bytes = fileBytes({ t: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4));
  await headerError(bytes.subarray(0, 20), ["truncated"]);
});

test("file shorter than 8 bytes", async () => {
  await headerError(new Uint8Array(5), ["5 bytes"]);
});

test("invalid header entries are rejected", async () => {
  const four = new Uint8Array(4);
  const cases: { header: unknown; includes: string[] }[] = [
    { header: "{not json", includes: ["not valid JSON"] },
    { header: [1, 2], includes: ["JSON object", "an array"] },
    { header: { t: 5 }, includes: ['"t"', "object"] },
    { header: { t: { dtype: "F9", shape: [1], data_offsets: [0, 4] } }, includes: ['"t"', '"F9"', "BF16"] },
    { header: { t: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, includes: ['"t"', "shape [-1]"] },
    { header: { t: { dtype: "F32", shape: [1.5], data_offsets: [0, 4] } }, includes: ["shape [1.5]"] },
    { header: { t: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, includes: ["data_offsets [4,0]"] },
    { header: { t: { dtype: "F32", shape: [1], data_offsets: [0] } }, includes: ["data_offsets [0]"] },
    { header: { t: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, includes: ["needs 8"] },
    { header: { t: { dtype: "F32", shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }, includes: ["too large"] },
    { header: { __metadata__: "x" }, includes: ["__metadata__"] },
  ];
  for (const { header, includes } of cases) await headerError(fileBytes(header, four), includes);
});

test("overlap and trailing bytes", async () => {
  const overlap = fileBytes({
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    b: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
  }, new Uint8Array(8));
  await headerError(overlap, ['"b"', "overlap"]);

  const trailing = fileBytes({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(6));
  await headerError(trailing, ["cover 4", "6 bytes"]);
});

test("empty tensors share an offset", async () => {
  // An empty tensor spans [k, k], which must not count as an overlap with a tensor starting at k.
  const bytes = fileBytes({
    w: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
    e: { dtype: "F32", shape: [0, 3], data_offsets: [0, 0] },
  }, littleEndian(new Float32Array([3])));
  const source = bytesSource(bytes);
  const header = await readHeader(source);
  assertEquals((await readTensor(source, header, "e")).shape, [0, 3]);
  assertEquals(Array.from((await readTensor(source, header, "w")).data as Float32Array), [3]);
});

/** Decodes float16 bits by assembling the float32 bit pattern, independent of the reader. */
function float16ViaBits(bits: number): number {
  const sign = (bits & 0x8000) << 16;
  let exponent = (bits >>> 10) & 0x1f;
  let mantissa = bits & 0x3ff;
  let f32: number;
  if (exponent === 0x1f) {
    f32 = sign | 0x7f800000 | (mantissa << 13);
  } else if (exponent === 0) {
    if (mantissa === 0) {
      f32 = sign;
    } else {
      // Normalise the subnormal: shift until the implicit bit appears.
      exponent = 1;
      while ((mantissa & 0x400) === 0) {
        mantissa <<= 1;
        exponent--;
      }
      f32 = sign | ((exponent - 15 + 127) << 23) | ((mantissa & 0x3ff) << 13);
    }
  } else {
    f32 = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
  }
  return new Float32Array(new Uint32Array([f32 >>> 0]).buffer)[0]!;
}

test("every F16 bit pattern", async () => {
  const bits = new Uint16Array(65536).map((_, i) => i);
  const t = await readOne(oneTensorFile("F16", [65536], littleEndian(bits)));
  const data = t.data as Float32Array;
  let mismatches = 0;
  let first = -1;
  for (let i = 0; i < 65536; i++) {
    const expected = float16ViaBits(i);
    if (!Object.is(data[i], expected) && !(Number.isNaN(expected) && Number.isNaN(data[i]))) {
      mismatches++;
      if (first < 0) first = i;
    }
  }
  assertEquals(mismatches, 0, `first mismatch at bits 0x${first.toString(16)}`);
});

test("BF16 special values", async () => {
  const bits = new Uint16Array([0x3f80, 0x7f80, 0xff80, 0x8000, 0x0001, 0x7fc0, 0xc2f7]);
  const data = (await readOne(oneTensorFile("BF16", [7], littleEndian(bits)))).data as Float32Array;
  assertEquals(data[0], 1);
  assertEquals(data[1], Infinity);
  assertEquals(data[2], -Infinity);
  assert(Object.is(data[3], -0), `expected -0, found ${data[3]}`);
  assertEquals(data[4], 2 ** -133);
  assert(Number.isNaN(data[5]), `expected NaN, found ${data[5]}`);
  assertEquals(data[6], -123.5);
});

test("F64 narrows to float32", async () => {
  const values = new Float64Array([1 / 3, 1e300, -0, -2.5]);
  const t = await readOne(oneTensorFile("F64", [2, 2], littleEndian(values)));
  assertEquals(t.shape, [2, 2]);
  const data = t.data as Float32Array;
  assert(t.data instanceof Float32Array, "F64 data must narrow to a Float32Array");
  assertEquals(data[0], Math.fround(1 / 3));
  assertEquals(data[1], Infinity);
  assert(Object.is(data[2], -0), `expected -0, found ${data[2]}`);
  assertEquals(data[3], -2.5);
});

test("integer dtypes keep their kind", async () => {
  const cases: { dtype: string; values: ArrayBufferView; kind: string; expected: unknown[] }[] = [
    { dtype: "I8", values: new Int8Array([-1, 127]), kind: "Int8Array", expected: [-1, 127] },
    { dtype: "U8", values: new Uint8Array([255, 0]), kind: "Uint8Array", expected: [255, 0] },
    { dtype: "BOOL", values: new Uint8Array([1, 0]), kind: "Uint8Array", expected: [1, 0] },
    { dtype: "I16", values: new Int16Array([-2, 300]), kind: "Int16Array", expected: [-2, 300] },
    { dtype: "U16", values: new Uint16Array([65535, 1]), kind: "Uint16Array", expected: [65535, 1] },
    { dtype: "I32", values: new Int32Array([-7, 2 ** 31 - 1]), kind: "Int32Array", expected: [-7, 2 ** 31 - 1] },
    { dtype: "U32", values: new Uint32Array([2 ** 32 - 1, 0]), kind: "Uint32Array", expected: [2 ** 32 - 1, 0] },
  ];
  for (const { dtype, values, kind, expected } of cases) {
    const t = await readOne(oneTensorFile(dtype, [2], littleEndian(values)));
    assertEquals(t.dtype, dtype);
    assertEquals(t.data.constructor.name, kind, dtype);
    assertEquals(Array.from(t.data as ArrayLike<number>), expected, dtype);
  }

  const i64 = await readOne(oneTensorFile("I64", [2], littleEndian(new BigInt64Array([-5n, 2n ** 62n]))));
  assert(i64.data instanceof BigInt64Array, "I64 data must be a BigInt64Array");
  assert(i64.data[0] === -5n, `I64 element 0 is ${i64.data[0]}`);
  assert(i64.data[1] === 2n ** 62n, `I64 element 1 is ${i64.data[1]}`);

  const u64 = await readOne(oneTensorFile("U64", [1], littleEndian(new BigUint64Array([2n ** 64n - 1n]))));
  assert(u64.data instanceof BigUint64Array, "U64 data must be a BigUint64Array");
  assert(u64.data[0] === 2n ** 64n - 1n, `U64 value ${u64.data[0]}`);
});

test("unaligned in-memory sources", async () => {
  // Each file starts at byte 1 of its buffer, so views at file offsets are misaligned.
  for (const [dtype, bits] of [["F32", littleEndian(new Float32Array([1.5, -2]))], [
    "F16",
    littleEndian(new Uint16Array([0x3e00, 0xc000])),
  ], ["BF16", littleEndian(new Uint16Array([0x3fc0, 0xc000]))]] as const) {
    const file = oneTensorFile(dtype, [2], bits);
    const shifted = new Uint8Array(file.length + 1);
    shifted.set(file, 1);
    const source = bytesSource(shifted.subarray(1));
    const t = await readTensor(source, await readHeader(source), "t");
    assertEquals(Array.from(t.data as Float32Array), [1.5, -2], dtype);
  }
});

test("large tensor reads in chunks", async () => {
  // 4.5 M float32 values = 18 MiB, which spans two 16 MiB chunks.
  const count = 4.5 * 1024 * 1024;
  const values = new Float32Array(count).map((_, i) => i);
  const source = bytesSource(oneTensorFile("F32", [count], littleEndian(values)));
  const progress: number[] = [];
  const t = await readTensor(source, await readHeader(source), "t", { onProgress: (n) => progress.push(n) });
  assertEquals(progress, [16 * 1024 * 1024, count * 4]);
  const data = t.data as Float32Array;
  for (const i of [0, 4 * 1024 * 1024 - 1, 4 * 1024 * 1024, count - 1]) assertEquals(data[i], i, `element ${i}`);
});

test("readTensor unknown name", async () => {
  const source = bytesSource(oneTensorFile("F32", [1], new Uint8Array(4)), "one.safetensors");
  const header = await readHeader(source);
  await assertThrows(() => readTensor(source, header, "missing"), SafetensorsError, [
    "one.safetensors",
    '"missing"',
    '"t"',
  ]);
});

test("F8 is listed but not decoded", async () => {
  const source = bytesSource(oneTensorFile("F8_E4M3", [2], new Uint8Array(2)));
  const header = await readHeader(source);
  assertEquals(header.tensors.get("t")!.dtype, "F8_E4M3");
  await assertThrows(() => readTensor(source, header, "t"), SafetensorsError, ["F8_E4M3", "cannot decode"]);
});

test("file source reads ranges", async () => {
  const path = edgeFixture("scalar_i32");
  const source: ByteSource = await openFileSource(path);
  try {
    assertEquals(source.size, 68);
    assertEquals(source.name, path);
    assertEquals(Array.from(await source.read(64, 4)), [7, 0, 0, 0]);
    assertEquals((await source.read(10, 0)).length, 0);
    await assertThrows(() => source.read(66, 4), RangeError, ["68 bytes"]);
    await assertThrows(() => source.read(-1, 1), RangeError, ["offset -1"]);
  } finally {
    await source.close?.();
  }
});
