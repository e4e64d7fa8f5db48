/**
 * Seeded mutations of checkpoint files for the fuzzer in `scripts/_fuzz.ts`: truncations, bit
 * flips, header and config edits, shape and dtype lies, rewrites that must not change the
 * logits, and swapped or deleted files. Each mutation states what loading the result must do.
 *
 * Safetensors bytes are parsed and rebuilt here with plain JSON and DataView code, independent
 * of src/safetensors.ts, so a reader bug cannot hide in the fuzzer.
 */
import type { Rng } from "../src/sampling.ts";
import { MAX_HEADER_LENGTH } from "../src/safetensors.ts";
import { float32ToFloat16Bits } from "../src/safetensors_write.ts";

/** The mutation classes, in the order of the summary table. */
export const MUTATION_CLASSES = [
  "truncate",
  "bit-flip-header",
  "bit-flip-data",
  "byte-overwrite",
  "header-length",
  "header-offsets",
  "header-shape",
  "header-dtype",
  "header-names",
  "header-json",
  "metadata",
  "equivalent-rewrite",
  "dtype-convert",
  "config-values",
  "config-json",
  "index",
  "file-swap",
  "combined",
] as const;

export type MutationClass = typeof MUTATION_CLASSES[number];

/**
 * The required result of loading a mutated checkpoint: a documented error ("fail"), a
 * successful load ("load"), a load with bitwise the same logits as the unmutated checkpoint
 * ("same"), or either of the first two ("any").
 */
export type Expectation = "fail" | "load" | "same" | "any";

/** Checkpoint files by name; a file absent from the map does not exist. */
export type FileState = Map<string, Uint8Array>;

/** A mutated file state and what loading it must do. */
export interface Mutated {
  description: string;
  expect: Expectation;
  /** True when tensor values may differ from the base, so non-finite logits are possible. */
  changesValues: boolean;
  /** A substring every documented error message must contain, beyond the directory. */
  mustMention?: string;
  state: FileState;
}

/** An unmutated checkpoint: its files, the names of its weight files and its parsed config. */
export interface BaseCheckpoint {
  name: string;
  files: FileState;
  weightFiles: string[];
  config: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Random helpers

export function randomInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[randomInt(rng, items.length)]!;
}

export function chance(rng: Rng, p: number): boolean {
  return rng() < p;
}

// ---------------------------------------------------------------------------------------------
// Safetensors bytes, parsed and rebuilt independently of src/safetensors.ts

const encoder = new TextEncoder();
const ITEM_SIZE: Record<string, number> = {
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

interface TensorEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

interface ParsedFile {
  /** Header entries in file order, `__metadata__` included. */
  entries: Array<[string, unknown]>;
  headerLength: number;
  data: Uint8Array;
}

/**
 * Parses a safetensors file with at least one tensor, or returns undefined when an earlier
 * mutation broke it.
 */
function parseFile(bytes: Uint8Array | undefined): ParsedFile | undefined {
  if (bytes === undefined || bytes.length < 8) return undefined;
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > bytes.length - 8) return undefined;
  try {
    const header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
    if (typeof header !== "object" || header === null || Array.isArray(header)) return undefined;
    const entries = Object.entries(header as Record<string, unknown>);
    for (const [name, value] of entries) {
      if (name === "__metadata__") continue;
      const entry = value as Partial<TensorEntry>;
      if (!Array.isArray(entry?.shape) || !Array.isArray(entry.data_offsets) || typeof entry.dtype !== "string") {
        return undefined;
      }
    }
    if (!entries.some(([name]) => name !== "__metadata__")) return undefined;
    return { entries, headerLength, data: bytes.subarray(8 + headerLength) };
  } catch {
    return undefined;
  }
}

/** Builds a file from header text and data, with the length field set to the header's length. */
function fileFromText(json: string, data: Uint8Array, lengthField?: bigint): Uint8Array {
  const header = encoder.encode(json);
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthField ?? BigInt(header.length), true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

function fileFromEntries(entries: Array<[string, unknown]>, data: Uint8Array, padding = 0): Uint8Array {
  return fileFromText(JSON.stringify(Object.fromEntries(entries)) + " ".repeat(padding), data);
}

function tensorEntries(file: ParsedFile): Array<[string, TensorEntry]> {
  return file.entries.filter(([name]) => name !== "__metadata__") as Array<[string, TensorEntry]>;
}

function cloneEntries(file: ParsedFile): Array<[string, unknown]> {
  return file.entries.map(([name, value]) => [name, structuredClone(value)]);
}

/** Lays the given tensors out back to back in the given order and returns entries and data. */
function relayout(
  tensors: Array<{ name: string; dtype: string; shape: number[]; bytes: Uint8Array }>,
  metadata: unknown,
): { entries: Array<[string, unknown]>; data: Uint8Array } {
  const total = tensors.reduce((sum, t) => sum + t.bytes.length, 0);
  const data = new Uint8Array(total);
  const entries: Array<[string, unknown]> = metadata === undefined ? [] : [["__metadata__", metadata]];
  let offset = 0;
  for (const t of tensors) {
    data.set(t.bytes, offset);
    entries.push([t.name, { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] }]);
    offset += t.bytes.length;
  }
  return { entries, data };
}

function tensorsOf(file: ParsedFile) {
  return tensorEntries(file).map(([name, entry]) => ({
    name,
    dtype: entry.dtype,
    shape: entry.shape,
    bytes: file.data.subarray(entry.data_offsets[0], entry.data_offsets[1]),
  }));
}

function metadataOf(file: ParsedFile): unknown {
  return file.entries.find(([name]) => name === "__metadata__")?.[1];
}

function float16ToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

// ---------------------------------------------------------------------------------------------
// Mutations. Each takes the current file state (an earlier mutation may have changed it) and
// returns a new one. Mutations that need a well-formed file fall back to a bit flip.

type Mutator = (rng: Rng, state: FileState, base: BaseCheckpoint) => Mutated;

function withFile(state: FileState, file: string, bytes: Uint8Array | undefined): FileState {
  const next = new Map(state);
  if (bytes === undefined) next.delete(file);
  else next.set(file, bytes);
  return next;
}

function pickWeightFile(rng: Rng, state: FileState, base: BaseCheckpoint): string {
  const present = base.weightFiles.filter((f) => state.has(f));
  return present.length > 0 ? pick(rng, present) : pick(rng, base.weightFiles);
}

function flipBits(
  rng: Rng,
  bytes: Uint8Array,
  from: number,
  to: number,
  flips: number,
): { bytes: Uint8Array; where: number[] } {
  const out = bytes.slice();
  const where: number[] = [];
  for (let i = 0; i < flips && to > from; i++) {
    const position = from + randomInt(rng, to - from);
    out[position]! ^= 1 << randomInt(rng, 8);
    where.push(position);
  }
  return { bytes: out, where };
}

const truncate: Mutator = (rng, state, base) => {
  const file = pickWeightFile(rng, state, base);
  const bytes = state.get(file) ?? new Uint8Array(0);
  const headerEnd = Math.min(bytes.length, 8 + (parseFile(bytes)?.headerLength ?? 0));
  const cut = bytes.length === 0 ? 0 : chance(rng, 0.3) ? randomInt(rng, headerEnd + 1) : randomInt(rng, bytes.length);
  return {
    description: `${file}: keep the first ${cut} of ${bytes.length} bytes`,
    expect: "fail",
    changesValues: true,
    state: withFile(state, file, bytes.subarray(0, cut)),
  };
};

const bitFlipHeader: Mutator = (rng, state, base) => {
  const file = pickWeightFile(rng, state, base);
  const bytes = state.get(file) ?? new Uint8Array(8);
  const end = Math.min(bytes.length, 8 + (parseFile(bytes)?.headerLength ?? 0));
  const flipped = flipBits(rng, bytes, 0, end, 1 + randomInt(rng, 3));
  return {
    description: `${file}: flip bits at header bytes ${flipped.where.join(", ")}`,
    expect: "any",
    changesValues: true,
    state: withFile(state, file, flipped.bytes),
  };
};

const bitFlipData: Mutator = (rng, state, base) => {
  const file = pickWeightFile(rng, state, base);
  const bytes = state.get(file) ?? new Uint8Array(0);
  const parsed = parseFile(bytes);
  const start = parsed ? 8 + parsed.headerLength : 0;
  const flipped = flipBits(rng, bytes, start, bytes.length, 1 + randomInt(rng, 8));
  return {
    description: `${file}: flip bits at data bytes ${flipped.where.join(", ")}`,
    // Tensor bytes are free-form float data, so a well-formed file must still load.
    expect: parsed ? "load" : "any",
    changesValues: true,
    state: withFile(state, file, flipped.bytes),
  };
};

const byteOverwrite: Mutator = (rng, state, base) => {
  const file = pickWeightFile(rng, state, base);
  const bytes = (state.get(file) ?? new Uint8Array(0)).slice();
  const length = 1 + randomInt(rng, 64);
  const at = randomInt(rng, Math.max(1, bytes.length - length));
  for (let i = at; i < Math.min(bytes.length, at + length); i++) bytes[i] = randomInt(rng, 256);
  return {
    description: `${file}: overwrite ${length} bytes at ${at} with random bytes`,
    expect: "any",
    changesValues: true,
    state: withFile(state, file, bytes),
  };
};

const headerLength: Mutator = (rng, state, base) => {
  const file = pickWeightFile(rng, state, base);
  const bytes = (state.get(file) ?? new Uint8Array(8)).slice();
  if (bytes.length < 8) return truncate(rng, state, base);
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const current = view.getBigUint64(0, true);
  const size = BigInt(bytes.length);
  const limit = BigInt(MAX_HEADER_LENGTH);
  const choices = [
    0n,
    1n,
    7n,
    current - 1n,
    current + 1n,
    current - 8n,
    current + 8n,
    size - 8n,
    size - 7n,
    size,
    limit,
    limit + 1n,
    2n ** 32n,
    2n ** 32n + current,
    2n ** 53n,
    2n ** 63n,
    2n ** 64n - 1n,
    BigInt(randomInt(rng, 2 ** 30)) * BigInt(randomInt(rng, 2 ** 30)),
  ].filter((v) => v >= 0n && v < 2n ** 64n && v !== current);
  const value = pick(rng, choices);
  view.setBigUint64(0, value, true);
  return {
    description: `${file}: set the header length field from ${current} to ${value}`,
    expect: parseFile(state.get(file)) ? "fail" : "any",
    changesValues: false,
    state: withFile(state, file, bytes),
  };
};

const headerOffsets: Mutator = (rng, state, base) => {
  const file = pickWeightFile(rng, state, base);
  const parsed = parseFile(state.get(file));
  if (!parsed) return bitFlipHeader(rng, state, base);
  const entries = cloneEntries(parsed);
  const tensors = entries.filter(([name]) => name !== "__metadata__") as Array<[string, TensorEntry]>;
  const [name, entry] = pick(rng, tensors);
  const [b, e] = entry.data_offsets;

  // Swapping the offsets of two tensors with the same byte length keeps a valid file.
  if (chance(rng, 0.15)) {
    const partners = tensors.filter(([n, t]) =>
      n !== name && t.data_offsets[1] - t.data_offsets[0] === e - b && t.dtype === entry.dtype
    );
    if (partners.length > 0) {
      const [otherName, other] = pick(rng, partners);
      [entry.data_offsets, other.data_offsets] = [other.data_offsets, entry.data_offsets];
      // Each name keeps its own shape and reads the other's bytes.
      return {
        description: `${file}: swap the data_offsets of "${name}" and "${otherName}"`,
        expect: "load",
        changesValues: true,
        state: withFile(state, file, fileFromEntries(entries, parsed.data)),
      };
    }
  }

  const edits: Array<[string, unknown]> = [
    ["shift by 1", [b + 1, e + 1]],
    ["shift by -1", [b - 1, e - 1]],
    ["end - 1", [b, e - 1]],
    ["end + 2", [b, e + 2]],
    ["reversed", [e, b]],
    ["empty", [b, b]],
    ["negative", [-4, e]],
    ["fractional", [b + 0.5, e]],
    ["strings", [String(b), String(e)]],
    ["one number", [b]],
    ["three numbers", [b, e, e]],
    ["null", null],
    ["huge", [2 ** 53, 2 ** 53 + (e - b)]],
    ["unsafe", [b, 2 ** 60]],
    ["past the end", [parsed.data.length, parsed.data.length + (e - b)]],
    ["object", { begin: b, end: e }],
  ];
  const [label, value] = pick(rng, edits);
  (entry as unknown as Record<string, unknown>)["data_offsets"] = value;
  return {
    description: `${file}: data_offsets of "${name}" ${label}: ${JSON.stringify(value)}`,
    expect: b === e ? "any" : "fail",
    changesValues: false,
    state: withFile(state, file, fileFromEntries(entries, parsed.data)),
  };
};

const headerShape: Mutator = (rng, state, base) => {
  const file = pickWeightFile(rng, state, base);
  const parsed = parseFile(state.get(file));
  if (!parsed) return bitFlipHeader(rng, state, base);
  const entries = cloneEntries(parsed);
  const [name, entry] = pick(rng, entries.filter(([n]) => n !== "__metadata__") as Array<[string, TensorEntry]>);

  const shape = entry.shape;
  const last = shape.length - 1;
  const edits: Array<[string, unknown]> = [
    ["last dim + 1", shape.map((d, i) => (i === last ? d + 1 : d))],
    ["last dim - 1", shape.map((d, i) => (i === last ? d - 1 : d))],
    ["first dim * 2", shape.map((d, i) => (i === 0 ? d * 2 : d))],
    ["reversed", [...shape].reverse()],
    ["leading 1", [1, ...shape]],
    ["trailing 1", [...shape, 1]],
    ["flattened", [shape.reduce((a, c) => a * c, 1)]],
    ["scalar", []],
    ["zero dim", shape.map((d, i) => (i === 0 ? 0 : d))],
    ["negative", shape.map((d, i) => (i === 0 ? -d : d))],
    ["fractional", shape.map((d, i) => (i === 0 ? d + 0.5 : d))],
    ["huge", [2 ** 31, 2 ** 31, 2 ** 31]],
    ["strings", shape.map(String)],
    ["null", null],
    ["nested", [shape]],
    ["split", shape.length === 2 ? [shape[0], 2, shape[1]! / 2] : [2, shape[0]! / 2]],
  ];
  const [label, value] = pick(rng, edits);
  (entry as unknown as Record<string, unknown>)["shape"] = value;

  const unchanged = JSON.stringify(value) === JSON.stringify(shape);
  return {
    description: `${file}: shape of "${name}" ${label}: ${JSON.stringify(shape)} -> ${JSON.stringify(value)}`,
    expect: unchanged ? "same" : "fail",
    changesValues: false,
    state: withFile(state, file, fileFromEntries(entries, parsed.data)),
  };
};

const headerDtype: Mutator = (rng, state, base) => {
  const file = pickWeightFile(rng, state, base);
  const parsed = parseFile(state.get(file));
  if (!parsed) return bitFlipHeader(rng, state, base);
  const entries = cloneEntries(parsed);
  const [name, entry] = pick(rng, entries.filter(([n]) => n !== "__metadata__") as Array<[string, TensorEntry]>);

  const original = entry.dtype;
  const value = pick(rng, [
    "F64",
    "F32",
    "F16",
    "BF16",
    "I64",
    "I32",
    "I16",
    "I8",
    "U8",
    "U16",
    "BOOL",
    "F8_E4M3",
    "f32",
    "FP16",
    "F9",
    "",
    16,
    null,
  ] as unknown[]);
  (entry as unknown as Record<string, unknown>)["dtype"] = value;

  // Only a float dtype of the same width keeps the file valid, because the bytes are then read as that type.
  const sameWidthFloat = typeof value === "string" && ["F32", "F16", "BF16", "F64"].includes(value) &&
    ITEM_SIZE[value] === ITEM_SIZE[original];
  const unchanged = value === original;
  let expect: Expectation = "fail";
  if (unchanged) expect = "same";
  else if (sameWidthFloat) expect = "load";
  return {
    description: `${file}: dtype of "${name}" ${original} -> ${JSON.stringify(value)}`,
    expect,
    changesValues: !unchanged,
    state: withFile(state, file, fileFromEntries(entries, parsed.data)),
  };
};

const headerNames: Mutator = (rng, state, base) => {
  const file = pickWeightFile(rng, state, base);
  const parsed = parseFile(state.get(file));
  if (!parsed) return bitFlipHeader(rng, state, base);

  const entries = cloneEntries(parsed);
  const tensorIndexes = entries.map(([n], i) => (n === "__metadata__" ? -1 : i)).filter((i) => i >= 0);
  const index = pick(rng, tensorIndexes);
  const name = entries[index]![0];
  const bare = name.startsWith("transformer.") ? name.slice("transformer.".length) : name;
  const prefix = name.startsWith("transformer.") ? "transformer." : "";
  const renames: Array<[string, string | null]> = [
    ["toggle the prefix", prefix ? bare : `transformer.${bare}`],
    ["unknown suffix", `${name}x`],
    ["layer out of range", `${prefix}h.7.ln_1.weight`],
    ["huge layer index", `${prefix}h.99999999999.ln_1.weight`],
    ["empty name", ""],
    ["__proto__", "__proto__"],
    ["constructor", "constructor"],
    ["unicode", `${name}\u00e9`],
    ["long name", name + "a".repeat(10_000)],
    ["renamed to __metadata__", "__metadata__"],
    ["removed", null],
    ["duplicate key", "DUPLICATE"],
  ];
  const [label, renamed] = pick(rng, renames);

  let bytes: Uint8Array;
  let duplicateOfItself = false;
  if (renamed === "DUPLICATE") {
    // JSON.parse keeps the last of two equal keys, so the first tensor's bytes become a gap.
    const other = entries[pick(rng, tensorIndexes)]!;
    if (other[0] === name) duplicateOfItself = true;
    const json = JSON.stringify(Object.fromEntries(entries)).replace(
      /}$/,
      `,${JSON.stringify(name)}:${JSON.stringify(other[1])}}`,
    );
    bytes = fileFromText(json, parsed.data);
  } else if (renamed === null) {
    entries.splice(index, 1);
    bytes = fileFromEntries(entries, parsed.data);
  } else {
    // Object.fromEntries defines "__proto__" as an own key, so it reaches the JSON text.
    entries[index] = [renamed, entries[index]![1]];
    bytes = fileFromEntries(entries, parsed.data);
  }

  // "transformer.lm_head.weight" is read as lm_head.weight, so toggling its prefix changes nothing,
  // unless an index must list the new name.
  const lmHeadToggle = label === "toggle the prefix" && bare === "lm_head.weight" && base.weightFiles.length === 1;
  return {
    description: `${file}: tensor "${name.slice(0, 60)}" ${label}`,
    expect: lmHeadToggle || duplicateOfItself ? "same" : "fail",
    changesValues: false,
    state: withFile(state, file, bytes),
  };
};

const headerJson: Mutator = (rng, state, base) => {
  const file = pickWeightFile(rng, state, base);
  const parsed = parseFile(state.get(file));
  if (!parsed) return bitFlipHeader(rng, state, base);

  const json = new TextDecoder().decode(state.get(file)!.subarray(8, 8 + parsed.headerLength));
  const at = randomInt(rng, json.length);
  const edits: Array<[string, () => string | Uint8Array, Expectation]> = [
    ["delete a character", () => json.slice(0, at) + json.slice(at + 1), "any"],
    [
      "insert a character",
      () => json.slice(0, at) + pick(rng, [...'{}[],:"\\0aZ-.e \u0000\u00ff']) + json.slice(at),
      "any",
    ],
    ["insert whitespace between tokens", () => json.replace(/,/g, ", \n\t"), "same"],
    ["invalid UTF-8", () => {
      const raw = encoder.encode(json);
      const out = new Uint8Array(raw.length);
      out.set(raw);
      out[at] = 0xff;
      return out;
    }, "fail"],
    ["deep nesting", () => "[".repeat(200_000) + "]".repeat(200_000), "fail"],
    ["deep object nesting", () => '{"a":'.repeat(100_000) + "1" + "}".repeat(100_000), "fail"],
    ["null", () => "null", "fail"],
    ["array", () => "[]", "fail"],
    ["string", () => '"safetensors"', "fail"],
    ["empty object", () => "{}", "fail"],
    ["number overflow", () => json.replace(/"data_offsets"\s*:\s*\[\s*\d+/, '"data_offsets":[1e999'), "fail"],
    ["trailing comma", () => json.replace(/}\s*$/, ",}"), "fail"],
    ["NUL padding", () => json + "\u0000\u0000\u0000", "fail"],
  ];
  const [label, edit, expect] = pick(rng, edits);

  const edited = edit();
  const header = typeof edited === "string" ? encoder.encode(edited) : edited;
  const out = new Uint8Array(8 + header.length + parsed.data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  out.set(parsed.data, 8 + header.length);
  return {
    description: `${file}: header JSON ${label}${label.includes("character") ? ` at ${at}` : ""}`,
    expect,
    changesValues: false,
    state: withFile(state, file, out),
  };
};

const metadata: Mutator = (rng, state, base) => {
  const file = pickWeightFile(rng, state, base);
  const parsed = parseFile(state.get(file));
  if (!parsed) return bitFlipHeader(rng, state, base);
  const entries = cloneEntries(parsed).filter(([n]) => n !== "__metadata__");
  const values: Array<[unknown, Expectation]> = [
    [{ format: "pt" }, "same"],
    [{}, "same"],
    [{ format: "tf", note: "x".repeat(100_000) }, "same"],
    [{ nested: { a: [1, 2, { b: null }] } }, "same"],
    ["pt", "fail"],
    [[], "fail"],
    [5, "fail"],
    [null, "fail"],
    [undefined, "same"],
  ];
  const [value, expect] = pick(rng, values);
  if (value !== undefined) entries.splice(randomInt(rng, entries.length + 1), 0, ["__metadata__", value]);
  return {
    description: `${file}: __metadata__ ${value === undefined ? "removed" : JSON.stringify(value).slice(0, 40)}`,
    expect,
    changesValues: false,
    state: withFile(state, file, fileFromEntries(entries, parsed.data)),
  };
};

/** Rewrites that keep every tensor's name, dtype, shape and bytes, so the logits must not change. */
const equivalentRewrite: Mutator = (rng, state, base) => {
  const file = pickWeightFile(rng, state, base);
  const parsed = parseFile(state.get(file));
  if (!parsed) return bitFlipData(rng, state, base);
  const tensors = tensorsOf(parsed);
  const rewrites = ["shuffle header keys", "pad header with spaces", "shuffle data layout"];
  // Renamed or added tensors would also need an index entry, so these rewrites skip sharded checkpoints.
  if (base.weightFiles.length === 1) rewrites.push("toggle the name prefix", "add attn.bias buffers");
  const rewrite = pick(rng, rewrites);
  let bytes: Uint8Array;
  if (rewrite === "shuffle header keys") {
    const entries = cloneEntries(parsed);
    shuffle(rng, entries);
    bytes = fileFromEntries(entries, parsed.data);
  } else if (rewrite === "pad header with spaces") {
    bytes = fileFromEntries(cloneEntries(parsed), parsed.data, 1 + randomInt(rng, 64));
  } else if (rewrite === "shuffle data layout") {
    shuffle(rng, tensors);
    const { entries, data } = relayout(tensors, metadataOf(parsed));
    bytes = fileFromEntries(entries, data);
  } else if (rewrite === "add attn.bias buffers") {
    const prefix = tensors.some((t) => t.name.startsWith("transformer.")) ? "transformer." : "";
    const mask = new Uint8Array(16 * 16).fill(1);
    tensors.push({ name: `${prefix}h.0.attn.bias`, dtype: "BOOL", shape: [1, 1, 16, 16], bytes: mask });
    tensors.push({ name: `${prefix}h.1.attn.masked_bias`, dtype: "F32", shape: [], bytes: new Uint8Array(4) });
    const { entries, data } = relayout(tensors, metadataOf(parsed));
    bytes = fileFromEntries(entries, data);
  } else {
    const renamed = tensors.map((t) => ({
      ...t,
      name: t.name === "lm_head.weight"
        ? t.name
        : t.name.startsWith("transformer.")
        ? t.name.slice("transformer.".length)
        : `transformer.${t.name}`,
    }));
    const { entries, data } = relayout(renamed, metadataOf(parsed));
    bytes = fileFromEntries(entries, data);
  }
  return {
    description: `${file}: ${rewrite}`,
    expect: "same",
    changesValues: false,
    state: withFile(state, file, bytes),
  };
};

/** Re-encodes one tensor in another float dtype and lays the file out again. */
const dtypeConvert: Mutator = (rng, state, base) => {
  const file = pickWeightFile(rng, state, base);
  const parsed = parseFile(state.get(file));
  if (!parsed) return bitFlipData(rng, state, base);
  const tensors = tensorsOf(parsed);
  const target = pick(rng, tensors);
  const values = decodeFloats(target.dtype, target.bytes);
  if (values === undefined) return bitFlipData(rng, state, base);
  // F16 -> F32 and F32 -> F64 are exact, so the logits must not change; F32 -> F16 rounds.
  const to = target.dtype === "F16" ? pick(rng, ["F32", "F64"]) : pick(rng, ["F64", "F16"]);
  target.bytes = encodeFloats(to, values);
  const from = target.dtype;
  target.dtype = to;
  const { entries, data } = relayout(tensors, metadataOf(parsed));
  const exact = !(from === "F32" && to === "F16");
  return {
    description: `${file}: store "${target.name}" as ${to} instead of ${from}`,
    expect: exact ? "same" : "load",
    changesValues: !exact,
    state: withFile(state, file, fileFromEntries(entries, data)),
  };
};

function decodeFloats(dtype: string, bytes: Uint8Array): Float64Array | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = ITEM_SIZE[dtype];
  if (size === undefined || bytes.length % size !== 0) return undefined;
  const n = bytes.length / size;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (dtype === "F32") out[i] = view.getFloat32(i * 4, true);
    else if (dtype === "F16") out[i] = float16ToFloat32(view.getUint16(i * 2, true));
    else if (dtype === "F64") out[i] = view.getFloat64(i * 8, true);
    else return undefined;
  }
  return out;
}

function encodeFloats(dtype: string, values: Float64Array): Uint8Array {
  const size = ITEM_SIZE[dtype]!;
  const out = new Uint8Array(values.length * size);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    if (dtype === "F64") view.setFloat64(i * 8, values[i]!, true);
    else if (dtype === "F32") view.setFloat32(i * 4, values[i]!, true);
    else view.setUint16(i * 2, float32ToFloat16Bits(values[i]!), true);
  }
  return out;
}

const configValues: Mutator = (rng, state, base) => {
  const config = readConfig(state);
  if (config === undefined) return configJson(rng, state, base);
  const c = base.config;
  const nEmbd = c["n_embd"] as number;
  const nLayer = c["n_layer"] as number;
  const hasHead = base.weightFiles.some((f) =>
    parseFile(base.files.get(f))?.entries.some(([n]) => n === "lm_head.weight")
  );
  const edits: Array<[string, unknown, Expectation]> = [
    ["n_layer", nLayer + 1, "fail"],
    ["n_layer", nLayer - 1, "fail"],
    ["n_layer", 0, "fail"],
    ["n_layer", -1, "fail"],
    ["n_layer", 1.5, "fail"],
    ["n_layer", "2", "fail"],
    ["n_layer", 1e9, "fail"],
    ["n_layer", 2 ** 53, "fail"],
    ["n_layer", undefined, "fail"],
    ["n_embd", nEmbd * 2, "fail"],
    ["n_embd", nEmbd + 1, "fail"],
    ["n_embd", 0, "fail"],
    ["n_embd", 1e300, "fail"],
    ["n_head", 1, "load"],
    ["n_head", nEmbd, "load"],
    ["n_head", nEmbd + 1, "fail"],
    ["n_head", 3, nEmbd % 3 === 0 ? "load" : "fail"],
    ["n_head", 0, "fail"],
    ["vocab_size", (c["vocab_size"] as number) + 1, "fail"],
    ["vocab_size", (c["vocab_size"] as number) - 1, "fail"],
    ["vocab_size", 1e12, "fail"],
    ["vocab_size", -64, "fail"],
    ["n_positions", (c["n_positions"] as number) + 1, "fail"],
    ["n_positions", 2, "fail"],
    ["n_positions", undefined, "same"],
    ["activation_function", "relu", c["activation_function"] === "relu" ? "same" : "load"],
    ["activation_function", "gelu", c["activation_function"] === "gelu" ? "same" : "load"],
    ["activation_function", "gelu_fast", c["activation_function"] === "gelu_new" ? "same" : "load"],
    ["activation_function", "swish", "fail"],
    ["activation_function", 7, "fail"],
    ["activation_function", "__proto__", "fail"],
    ["activation_function", "toString", "fail"],
    ["layer_norm_epsilon", 0, "fail"],
    ["layer_norm_epsilon", -1e-5, "fail"],
    ["layer_norm_epsilon", "1e-5", "fail"],
    ["layer_norm_epsilon", 1e-300, "load"],
    ["layer_norm_epsilon", 1e30, "load"],
    ["tie_word_embeddings", !(c["tie_word_embeddings"] ?? true), hasHead ? "load" : "fail"],
    ["tie_word_embeddings", "yes", "fail"],
    ["model_type", "bert", "fail"],
    ["model_type", "gpt2", "same"],
    ["n_inner", (c["n_inner"] as number | null ?? 4 * nEmbd) + 1, "fail"],
    ["n_inner", 0, "fail"],
    ["scale_attn_weights", false, "load"],
    ["scale_attn_weights", 1, "fail"],
    ["scale_attn_by_inverse_layer_idx", true, "load"],
    ["__proto__", { n_layer: 99, vocab_size: 1 }, "same"],
    ["extra_key", { nested: [1, 2, 3] }, "same"],
  ];
  const [key, value, expect] = pick(rng, edits);
  let text: string;
  if (key === "__proto__") {
    // JSON.parse makes "__proto__" an own key; it must not reach the prototype.
    text = JSON.stringify(config).replace(/^\{/, `{"__proto__":${JSON.stringify(value)},`);
  } else {
    const edited = { ...config };
    if (value === undefined) delete edited[key];
    else edited[key] = value;
    text = JSON.stringify(edited, null, 2);
  }
  return {
    description: `config.json: ${key} = ${value === undefined ? "(removed)" : JSON.stringify(value)}`,
    expect: base.config === config || sameConfig(config, base.config) ? expect : "any",
    changesValues: false,
    state: withFile(state, "config.json", encoder.encode(text)),
  };
};

const configJson: Mutator = (rng, state) => {
  const text = new TextDecoder().decode(state.get("config.json") ?? new Uint8Array(0));
  const edits: Array<[string, () => string | Uint8Array, Expectation]> = [
    ["truncated", () => text.slice(0, randomInt(rng, Math.max(1, text.lastIndexOf("}")))), "fail"],
    ["trailing garbage", () => text + "}garbage", "fail"],
    ["empty file", () => "", "fail"],
    ["byte order mark", () => "\uFEFF" + text, "fail"],
    ["array", () => "[]", "fail"],
    ["null", () => "null", "fail"],
    ["number", () => "42", "fail"],
    ["deep nesting", () => "[".repeat(100_000) + "]".repeat(100_000), "fail"],
    ["NUL bytes", () => text.replace(/,/, ",\u0000"), "fail"],
    ["invalid UTF-8", () => {
      const raw = encoder.encode(text);
      const out = raw.slice();
      out[Math.max(0, raw.indexOf(0x3a))] = 0xff; // replace the first ":"
      return out;
    }, "fail"],
    ["single quotes", () => text.replace(/"/g, "'"), "fail"],
    ["comment", () => "// GPT-2\n" + text, "fail"],
    ["removed", () => "REMOVE", "fail"],
  ];
  const [label, edit, expect] = pick(rng, edits);
  const edited = edit();
  const next = edited === "REMOVE"
    ? withFile(state, "config.json", undefined)
    : withFile(state, "config.json", typeof edited === "string" ? encoder.encode(edited) : edited);
  return { description: `config.json: ${label}`, expect, changesValues: false, state: next };
};

function readConfig(state: FileState): Record<string, unknown> | undefined {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(state.get("config.json") ?? new Uint8Array(0)));
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function sameConfig(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

const index: Mutator = (rng, state, base) => {
  const indexFile = "model.safetensors.index.json";
  let parsed: { weight_map: Record<string, string> } & Record<string, unknown>;
  try {
    parsed = JSON.parse(new TextDecoder().decode(state.get(indexFile) ?? new Uint8Array(0)));
  } catch {
    return configJson(rng, state, base);
  }

  const weightMap = parsed.weight_map ?? {};
  const names = Object.keys(weightMap);
  const tensor = names.length > 0 ? pick(rng, names) : "x";
  const shards = [...new Set(Object.values(weightMap))];
  const otherShards = shards.filter((shard) => shard !== weightMap[tensor]);
  const mapWith = (entries: Record<string, unknown>) => ({ ...parsed, weight_map: { ...weightMap, ...entries } });
  const withoutTensor = () => {
    const map: Record<string, unknown> = { ...weightMap };
    delete map[tensor];
    return { ...parsed, weight_map: map };
  };
  const edits: Array<[string, () => unknown]> = [
    ["a tensor maps to a missing shard", () => mapWith({ [tensor]: "model-00009-of-00008.safetensors" })],
    ["a tensor maps outside the directory", () => mapWith({ [tensor]: "../../etc/passwd" })],
    ["a tensor maps to an absolute path", () => mapWith({ [tensor]: "/etc/passwd" })],
    [
      "a tensor maps to another shard",
      () => mapWith({ [tensor]: otherShards.length > 0 ? pick(rng, otherShards) : "x" }),
    ],
    ["a tensor is missing from the map", withoutTensor],
    ["an extra tensor is listed", () => mapWith({ "transformer.h.9.ln_1.weight": shards[0] ?? "x" })],
    ["an empty map", () => ({ ...parsed, weight_map: {} })],
    ["the map is an array", () => ({ ...parsed, weight_map: Object.values(weightMap) })],
    ["a shard name is a number", () => mapWith({ [tensor]: 7 })],
    ["a shard file is deleted", () => "DELETE_SHARD"],
    ["invalid JSON", () => "INVALID"],
  ];
  const [label, edit] = pick(rng, edits);

  const edited = edit();
  let next: FileState;
  if (edited === "DELETE_SHARD") {
    next = withFile(state, pick(rng, shards.length ? shards : base.weightFiles), undefined);
  } else if (edited === "INVALID") next = withFile(state, indexFile, encoder.encode('{"weight_map": {'));
  else next = withFile(state, indexFile, encoder.encode(JSON.stringify(edited, null, 2)));
  return { description: `${indexFile}: ${label}`, expect: "fail", changesValues: false, state: next };
};

const LFS_POINTER = "version https://git-lfs.github.com/spec/v1\n" +
  "oid sha256:4c0f2f1b7ce3a0c1d2ef4c2b1f0c77e0a3f1d9d17e1b8a8a6c7b0f8e5d4c3b2a\nsize 548105171\n";

const fileSwap: Mutator = (rng, state, base) => {
  const file = pickWeightFile(rng, state, base);
  const swaps: Array<[string, () => FileState, Expectation, string?]> = [
    ["a Git LFS pointer", () => withFile(state, file, encoder.encode(LFS_POINTER)), "fail", "Git LFS"],
    [
      "an HTML page",
      () => withFile(state, file, encoder.encode("<!DOCTYPE html><html><body>404</body></html>")),
      "fail",
    ],
    ["an empty file", () => withFile(state, file, new Uint8Array(0)), "fail"],
    [
      "a zip (PyTorch) archive",
      () => withFile(state, file, Uint8Array.of(0x50, 0x4b, 0x03, 0x04, ...new Uint8Array(60))),
      "fail",
    ],
    [
      "a pickle stream",
      () => withFile(state, file, Uint8Array.of(0x80, 0x02, 0x63, ...encoder.encode("os\nsystem\n"), 0x2e)),
      "fail",
    ],
    [
      "random bytes",
      () => withFile(state, file, Uint8Array.from({ length: 1 + randomInt(rng, 200) }, () => randomInt(rng, 256))),
      "fail",
    ],
    ["deleted", () => withFile(state, file, undefined), "fail"],
    ["config.json deleted", () => withFile(state, "config.json", undefined), "fail", "config.json"],
    [
      "only pytorch_model.bin",
      () => {
        let next = state;
        for (const f of base.weightFiles) next = withFile(next, f, undefined);
        next = withFile(next, "model.safetensors.index.json", undefined);
        return withFile(
          next,
          "pytorch_model.bin",
          Uint8Array.of(0x80, 0x02, 0x63, ...encoder.encode("os\nsystem\n"), 0x2e),
        );
      },
      "fail",
      "pytorch_model.bin",
    ],
  ];
  const [label, apply, expect, mention] = pick(rng, swaps);
  const mutated: Mutated = {
    description: `${label === "config.json deleted" || label === "only pytorch_model.bin" ? "" : `${file}: `}${label}`,
    expect,
    changesValues: false,
    state: apply(),
  };
  if (mention !== undefined) mutated.mustMention = mention;
  return mutated;
};

const SINGLE_MUTATORS: Record<Exclude<MutationClass, "combined">, Mutator> = {
  "truncate": truncate,
  "bit-flip-header": bitFlipHeader,
  "bit-flip-data": bitFlipData,
  "byte-overwrite": byteOverwrite,
  "header-length": headerLength,
  "header-offsets": headerOffsets,
  "header-shape": headerShape,
  "header-dtype": headerDtype,
  "header-names": headerNames,
  "header-json": headerJson,
  "metadata": metadata,
  "equivalent-rewrite": equivalentRewrite,
  "dtype-convert": dtypeConvert,
  "config-values": configValues,
  "config-json": configJson,
  "index": index,
  "file-swap": fileSwap,
};

const combined: Mutator = (rng, state, base) => {
  const classes = (Object.keys(SINGLE_MUTATORS) as Array<keyof typeof SINGLE_MUTATORS>).filter(
    (c) => c !== "index" || base.weightFiles.length > 1,
  );
  const steps = 2 + randomInt(rng, 2);
  const descriptions: string[] = [];
  let changesValues = false;
  let current = state;
  for (let i = 0; i < steps; i++) {
    const step = SINGLE_MUTATORS[pick(rng, classes)](rng, current, base);
    descriptions.push(step.description);
    changesValues ||= step.changesValues;
    current = step.state;
  }
  return { description: descriptions.join(" + "), expect: "any", changesValues, state: current };
};

function shuffle<T>(rng: Rng, items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomInt(rng, i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}

/** Applies one mutation of the given class to `state`, a file state of `base`. */
export function mutate(mutationClass: MutationClass, rng: Rng, state: FileState, base: BaseCheckpoint): Mutated {
  return mutationClass === "combined" ? combined(rng, state, base) : SINGLE_MUTATORS[mutationClass](rng, state, base);
}
