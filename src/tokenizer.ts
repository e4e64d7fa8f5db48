/**
 * The GPT-2 tokenizer: byte-level BPE with the r50k_base vocabulary (50,257 ids), with token
 * offsets, stateless decoding and a streaming decoder.
 *
 * The merge ranks come from the npm package gpt-tokenizer 4.0.0, but pre-tokenization, the
 * merge loop and decoding are implemented here, because gpt-tokenizer 4.0.0 has three bugs.
 * It matches special tokens only at the start of its input. Its decode() carries partial UTF-8
 * bytes from one call into the next. Its merge loop takes quadratic time in the length of a
 * piece. The tests compare the ids from this module with gpt-tokenizer's on a full text.
 *
 * @example
 * ```ts
 * const tokenizer = gpt2Tokenizer();
 * tokenizer.encode("Hello world"); // [15496, 995]
 * tokenizer.decode([15496, 995]); // "Hello world"
 * ```
 */
import r50kRanks from "gpt-tokenizer/bpeRanks/r50k_base";

/** The one special token of GPT-2, which separates documents. */
export const ENDOFTEXT = "<|endoftext|>";
/** The id of {@link ENDOFTEXT}. */
export const ENDOFTEXT_ID = 50256;

const VOCAB_SIZE = 50257;

/**
 * The GPT-2 pre-tokenization pattern. The input is split into pieces by this pattern before
 * BPE, and no token crosses a piece boundary. Every character matches one of the alternatives,
 * so the matches cover the input without gaps.
 */
const PRETOKEN_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const ASCII_ONLY = /^[\x00-\x7f]*$/;

/** Pieces longer than this many UTF-16 code units are encoded without caching the result. */
const MAX_CACHED_PIECE_LENGTH = 256;
/** The piece cache is cleared when it reaches this many entries, to bound its memory. */
const MAX_CACHE_ENTRIES = 100_000;

/** The multiplier that packs a rank and a byte position into one heap key (see bytePairMerge). */
const POSITION_RANGE = 2 ** 32;

/**
 * One token of an input string.
 *
 * `start` and `end` are UTF-16 offsets into the input (end exclusive), and `text` is always
 * `input.slice(start, end)`. When the bytes of one character are split across tokens (many
 * emoji and CJK characters are), the character belongs to the token that contains its
 * last byte. The earlier tokens of that character get an empty span (`start === end`) and
 * `text === ""`. Use {@link Tokenizer.decodeToken} or {@link Tokenizer.tokenBytes} for the
 * token's own bytes.
 */
export interface Token {
  id: number;
  text: string;
  start: number;
  end: number;
}

/** Options of {@link Tokenizer.encode} and {@link Tokenizer.tokenize}. */
export interface EncodeOptions {
  /**
   * Encode each "<|endoftext|>" in the input as the special token 50256. Default false: the
   * string is then encoded as ordinary text, as several tokens.
   */
  allowSpecial?: boolean;
}

/** An incremental decoder created by {@link Tokenizer.createStreamDecoder}. */
export interface StreamDecoder {
  /**
   * Adds one token id and returns the text completed by it. The bytes of a character that is
   * still incomplete are held back until a later push completes it, so the output has U+FFFD
   * only where the bytes are not valid UTF-8.
   */
  push(id: number): string;
  /**
   * Returns the held-back bytes of an incomplete character as U+FFFD (or "" when there are
   * none) and resets the decoder, so it can be used for a new stream.
   */
  flush(): string;
}

/**
 * A non-streaming TextDecoder. Each decode() call without `{ stream: true }` decodes its input
 * completely and keeps no state, so one instance can be shared. `ignoreBOM` keeps a leading
 * U+FEFF in the output.
 */
const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/**
 * The GPT-2 byte-level BPE tokenizer.
 *
 * Constructing one builds lookup tables over the 50,257-token vocabulary, which takes tens of
 * milliseconds, so prefer the shared instance from {@link gpt2Tokenizer}.
 */
export class Tokenizer {
  /** The number of token ids: 50,257, the last being {@link ENDOFTEXT_ID}. */
  readonly vocabSize: number = VOCAB_SIZE;

  /** Maps the bytes of each ordinary token, as a byte string, to its id (which is its BPE rank). */
  readonly #ranks = new Map<string, number>();
  /** The bytes of every token, indexed by id. */
  readonly #tokenBytes: Uint8Array[] = [];
  /** Token ids of recently encoded pieces, keyed by the piece text. */
  readonly #pieceCache = new Map<string, readonly number[]>();

  constructor() {
    const ranks = r50kRanks as readonly (string | number[])[];
    if (ranks.length !== ENDOFTEXT_ID) {
      throw new Error(
        `Invalid r50k_base ranks in gpt-tokenizer: expected ${ENDOFTEXT_ID} ordinary tokens, found ` +
          `${ranks.length}. Reinstall gpt-tokenizer 4.0.0.`,
      );
    }

    // Entries are strings when the token's bytes are valid UTF-8, and byte arrays otherwise.
    for (let id = 0; id < ranks.length; id++) {
      const entry = ranks[id]!;
      const bytes = typeof entry === "string" ? utf8Encoder.encode(entry) : Uint8Array.from(entry);
      this.#tokenBytes.push(bytes);
      // An ASCII string is already the byte string of its UTF-8 bytes.
      const isAscii = typeof entry === "string" && ASCII_ONLY.test(entry);
      this.#ranks.set(isAscii ? entry : bytesToByteString(bytes), id);
    }
    this.#tokenBytes.push(utf8Encoder.encode(ENDOFTEXT));
  }

  /**
   * Encodes `text` into token ids.
   *
   * Lone surrogates in `text` are encoded as U+FFFD (as TextEncoder does), so for such input
   * decode(encode(text)) differs from `text`.
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    checkText(text, "encode");
    const ids: number[] = [];

    for (const segment of splitOnSpecial(text, options.allowSpecial ?? false)) {
      if (segment.special) {
        ids.push(ENDOFTEXT_ID);
        continue;
      }
      for (const match of segment.text.matchAll(PRETOKEN_PATTERN)) {
        for (const id of this.#encodePiece(match[0])) ids.push(id);
      }
    }
    return ids;
  }

  /**
   * Encodes `text` into tokens with their UTF-16 offsets. The ids are those of
   * {@link Tokenizer.encode}, and the spans of the tokens cover `text` in order without gaps.
   * See {@link Token} for the offsets of tokens that split a character.
   */
  tokenize(text: string, options: EncodeOptions = {}): Token[] {
    checkText(text, "tokenize");
    const tokens: Token[] = [];

    for (const segment of splitOnSpecial(text, options.allowSpecial ?? false)) {
      if (segment.special) {
        const end = segment.start + ENDOFTEXT.length;
        tokens.push({ id: ENDOFTEXT_ID, text: ENDOFTEXT, start: segment.start, end });
        continue;
      }
      for (const match of segment.text.matchAll(PRETOKEN_PATTERN)) {
        const piece = match[0];
        const pieceStart = segment.start + match.index!;
        this.#pushPieceTokens(tokens, text, piece, pieceStart);
      }
    }
    return tokens;
  }

  /**
   * Decodes token ids into a string. Each call is independent: the bytes of all tokens are
   * joined and decoded as UTF-8 at once, and bytes that do not form valid UTF-8 (such as an
   * incomplete character at the end) become U+FFFD.
   *
   * @throws TypeError when `ids` is not an array or an id is not a number.
   * @throws RangeError when an id is not an integer in [0, 50257).
   */
  decode(ids: readonly number[] | Int32Array): string {
    if (!Array.isArray(ids) && !(ids instanceof Int32Array)) {
      throw new TypeError(`Cannot decode ${describe(ids)}: expected an array or Int32Array of token ids.`);
    }

    let byteLength = 0;
    for (let i = 0; i < ids.length; i++) {
      byteLength += this.#bytesOf(ids[i], `decode, index ${i}`).length;
    }

    const joined = new Uint8Array(byteLength);
    let offset = 0;
    for (const id of ids) {
      const bytes = this.#tokenBytes[id]!;
      joined.set(bytes, offset);
      offset += bytes.length;
    }
    return utf8Decoder.decode(joined);
  }

  /**
   * Returns the display text of one token: its bytes decoded as UTF-8 on their own. A token
   * that contains only part of a character's bytes decodes to U+FFFD for those bytes (token
   * 12520, a space and the first two bytes of many emoji, gives " \uFFFD"). Use {@link Tokenizer.decode} or a
   * stream decoder to decode a sequence.
   *
   * @throws TypeError when `id` is not a number.
   * @throws RangeError when `id` is not an integer in [0, 50257).
   */
  decodeToken(id: number): string {
    return utf8Decoder.decode(this.#bytesOf(id, "decodeToken"));
  }

  /**
   * Returns a copy of the raw bytes of one token. Id 50256 gives the UTF-8 bytes of
   * "<|endoftext|>".
   *
   * @throws TypeError when `id` is not a number.
   * @throws RangeError when `id` is not an integer in [0, 50257).
   */
  tokenBytes(id: number): Uint8Array {
    return this.#bytesOf(id, "tokenBytes").slice();
  }

  /**
   * Creates a decoder for a stream of token ids, such as the output of a sampling loop. Each
   * push returns only complete characters, so joining the outputs of every push and the final
   * flush gives decode() of all ids.
   */
  createStreamDecoder(): StreamDecoder {
    const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    return {
      push: (id: number): string => decoder.decode(this.#bytesOf(id, "push"), { stream: true }),
      flush: (): string => decoder.decode(),
    };
  }

  /** Returns the ids of one pre-tokenized piece, from the cache when possible. */
  #encodePiece(piece: string): readonly number[] {
    const cached = this.#pieceCache.get(piece);
    if (cached !== undefined) return cached;

    const bytes = ASCII_ONLY.test(piece) ? piece : bytesToByteString(utf8Encoder.encode(piece));
    const wholeId = this.#ranks.get(bytes);
    const ids = wholeId !== undefined ? [wholeId] : bytePairMerge(bytes, this.#ranks);

    if (piece.length <= MAX_CACHED_PIECE_LENGTH) {
      if (this.#pieceCache.size >= MAX_CACHE_ENTRIES) this.#pieceCache.clear();
      this.#pieceCache.set(piece, ids);
    }
    return ids;
  }

  /** Appends the tokens of one piece, which starts at UTF-16 offset `pieceStart` of `text`. */
  #pushPieceTokens(tokens: Token[], text: string, piece: string, pieceStart: number): void {
    const ids = this.#encodePiece(piece);

    // In ASCII every byte is one UTF-16 code unit, so byte offsets are code-unit offsets.
    const unitsAt = ASCII_ONLY.test(piece) ? null : completedUnitsByByte(piece);

    let byteOffset = 0;
    for (const id of ids) {
      const byteEnd = byteOffset + this.#tokenBytes[id]!.length;
      const start = pieceStart + (unitsAt === null ? byteOffset : unitsAt[byteOffset]!);
      const end = pieceStart + (unitsAt === null ? byteEnd : unitsAt[byteEnd]!);
      tokens.push({ id, text: text.slice(start, end), start, end });
      byteOffset = byteEnd;
    }
  }

  /** Returns the stored bytes of token `id` after checking the id. */
  #bytesOf(id: unknown, where: string): Uint8Array {
    if (typeof id !== "number") {
      throw new TypeError(`Invalid token id ${describe(id)} (${where}): expected a number.`);
    }
    if (!Number.isInteger(id) || id < 0 || id >= VOCAB_SIZE) {
      throw new RangeError(
        `Invalid token id ${id} (${where}): ids must be integers in [0, ${VOCAB_SIZE}).`,
      );
    }
    return this.#tokenBytes[id]!;
  }
}

let sharedTokenizer: Tokenizer | undefined;

/** Returns the shared GPT-2 tokenizer, building it on the first call. */
export function gpt2Tokenizer(): Tokenizer {
  sharedTokenizer ??= new Tokenizer();
  return sharedTokenizer;
}

/** A run of input text, or one occurrence of {@link ENDOFTEXT} to encode as the special token. */
interface Segment {
  text: string;
  /** UTF-16 offset of the segment in the input. */
  start: number;
  special: boolean;
}

/** Splits `text` at every occurrence of {@link ENDOFTEXT} when `allowSpecial` is true. */
function splitOnSpecial(text: string, allowSpecial: boolean): Segment[] {
  if (!allowSpecial) return [{ text, start: 0, special: false }];

  const segments: Segment[] = [];
  let start = 0;
  for (let found = text.indexOf(ENDOFTEXT); found !== -1; found = text.indexOf(ENDOFTEXT, start)) {
    if (found > start) segments.push({ text: text.slice(start, found), start, special: false });
    segments.push({ text: ENDOFTEXT, start: found, special: true });
    start = found + ENDOFTEXT.length;
  }
  if (start < text.length) segments.push({ text: text.slice(start), start, special: false });
  return segments;
}

/**
 * Converts bytes to a byte string, a string with one char code (0-255) per byte. Byte strings
 * serve as map keys for token bytes, and their slices as keys for byte ranges.
 */
function bytesToByteString(bytes: Uint8Array): string {
  // String.fromCharCode takes its codes as arguments, so a long input goes in chunks to stay
  // under the engines' argument count limits.
  const chunkSize = 8192;
  let result = "";
  for (let i = 0; i < bytes.length; i += chunkSize) {
    result += String.fromCharCode(...bytes.subarray(i, i + chunkSize));
  }
  return result;
}

/**
 * Maps each byte offset of the UTF-8 encoding of `piece` to the number of UTF-16 code units of
 * the characters that end at or before it. A token covering bytes [b0, b1) then spans code
 * units [result[b0], result[b1]), which gives each character to the token holding its last byte.
 * A lone surrogate counts as 3 bytes, the length of the U+FFFD that TextEncoder writes for it.
 */
function completedUnitsByByte(piece: string): Int32Array {
  const result = new Int32Array(utf8ByteLength(piece) + 1);
  let byteOffset = 0;
  let units = 0;

  for (const char of piece) {
    const byteCount = utf8LengthOf(char.codePointAt(0)!);
    // Bytes inside the character complete nothing new.
    for (let i = 1; i < byteCount; i++) result[byteOffset + i] = units;
    units += char.length;
    byteOffset += byteCount;
    result[byteOffset] = units;
  }
  return result;
}

function utf8ByteLength(text: string): number {
  let length = 0;
  for (const char of text) length += utf8LengthOf(char.codePointAt(0)!);
  return length;
}

/** Returns the number of UTF-8 bytes of one code point. A lone surrogate takes 3, as U+FFFD. */
function utf8LengthOf(codePoint: number): number {
  if (codePoint < 0x80) return 1;
  if (codePoint < 0x800) return 2;
  if (codePoint < 0x10000) return 3;
  return 4;
}

/**
 * Splits a byte string into token ids by byte-level BPE.
 *
 * Starting from single bytes, it merges the adjacent pair of parts whose joined bytes have the
 * lowest rank, the leftmost such pair on ties, until no adjacent pair joins into a token. This
 * is the merge rule of tiktoken and gpt-tokenizer. The parts form a linked list and the
 * candidate pairs a binary heap, so a piece of n bytes takes O(n log n) time where a rescan of
 * all pairs after each merge takes O(n^2).
 */
function bytePairMerge(bytes: string, ranks: ReadonlyMap<string, number>): number[] {
  const n = bytes.length;

  // Parts are identified by their first byte. next[i] is the first byte of the following part
  // (n after the last part) and -1 once part i has been merged into the part before it.
  const next = new Int32Array(n + 1);
  const prev = new Int32Array(n + 1);
  for (let i = 0; i <= n; i++) {
    next[i] = i + 1;
    prev[i] = i - 1;
  }

  // Heap of candidate pairs. A key is rank * 2^32 + first byte of the left part, so the smallest
  // key is the lowest rank and, among equal ranks, the leftmost pair. ends[] is the end of the
  // right part, which shows whether the entry still describes two adjacent parts. Each merge adds
  // at most 2 entries, so 3n entries always fit.
  const keys = new Float64Array(3 * n);
  const ends = new Int32Array(3 * n);
  let size = 0;

  const pushPair = (left: number): void => {
    const right = next[left]!;
    if (right >= n) return;
    const end = next[right]!;
    const rank = ranks.get(bytes.slice(left, end));
    if (rank === undefined) return;

    // Sift the new entry up.
    const key = rank * POSITION_RANGE + left;
    let child = size++;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      if (keys[parent]! <= key) break;
      keys[child] = keys[parent]!;
      ends[child] = ends[parent]!;
      child = parent;
    }
    keys[child] = key;
    ends[child] = end;
  };

  const popMin = (): void => {
    // Move the last entry to the root and sift it down.
    size--;
    const key = keys[size]!;
    const end = ends[size]!;
    let parent = 0;
    for (;;) {
      let child = 2 * parent + 1;
      if (child >= size) break;
      if (child + 1 < size && keys[child + 1]! < keys[child]!) child++;
      if (keys[child]! >= key) break;
      keys[parent] = keys[child]!;
      ends[parent] = ends[child]!;
      parent = child;
    }
    keys[parent] = key;
    ends[parent] = end;
  };

  for (let i = 0; i + 1 < n; i++) pushPair(i);

  while (size > 0) {
    const left = keys[0]! % POSITION_RANGE;
    const end = ends[0]!;
    popMin();

    // Skip entries whose parts have changed since they were pushed. Merges only remove
    // boundaries, so the pair is intact when part `left` still exists and the part after
    // next ends at `end`.
    const right = next[left]!;
    if (right === -1 || right >= n || next[right] !== end) continue;

    next[left] = end;
    next[right] = -1;
    prev[end] = left;

    if (left > 0) pushPair(prev[left]!);
    pushPair(left);
  }

  // Every remaining part is a single byte or the result of a merge, so each one is a token.
  const ids: number[] = [];
  for (let i = 0; i < n; i = next[i]!) ids.push(ranks.get(bytes.slice(i, next[i]))!);
  return ids;
}

function checkText(text: unknown, method: string): asserts text is string {
  if (typeof text !== "string") {
    throw new TypeError(`Cannot ${method} ${describe(text)}: expected a string.`);
  }
}

/** Describes a value for an error message: its JSON form when short, else its type. */
function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value);
  if (typeof value === "number" || typeof value === "boolean" || value == null) return String(value);
  return Array.isArray(value) ? "an array" : `a value of type ${typeof value}`;
}
