import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { encode as referenceEncode } from "gpt-tokenizer/encoding/r50k_base";
import { assert, assertEquals, assertThrows, test } from "./_harness.ts";
import { ENDOFTEXT, ENDOFTEXT_ID, gpt2Tokenizer, type Token, Tokenizer } from "../src/tokenizer.ts";

const SHAKESPEARE_PATH = fileURLToPath(new URL("../data/tinyshakespeare.txt", import.meta.url));
const REPLACEMENT_CHARACTER = "\uFFFD";

/** A seeded pseudo-random generator (mulberry32) returning floats in [0, 1). */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function randomLetters(length: number, seed: number): string {
  const random = seededRandom(seed);
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  let text = "";
  for (let i = 0; i < length; i++) text += alphabet[Math.floor(random() * alphabet.length)];
  return text;
}

function readShakespeare(): string {
  assert(
    existsSync(SHAKESPEARE_PATH),
    `missing ${SHAKESPEARE_PATH}: copy tinyshakespeare.txt (1,115,394 bytes) into data/`,
  );
  return readFileSync(SHAKESPEARE_PATH, "utf8");
}

/** Checks that the token spans cover `text` in order, without gaps or overlaps. */
function assertContiguous(tokens: readonly Token[], text: string): void {
  let expectedStart = 0;
  for (const [i, token] of tokens.entries()) {
    assertEquals(token.start, expectedStart, `start of token ${i} (id ${token.id})`);
    assert(token.end >= token.start, `token ${i} ends at ${token.end} before its start ${token.start}`);
    expectedStart = token.end;
  }
  assertEquals(expectedStart, text.length, "end of the last token");
}

test("vocabulary size and shared instance", () => {
  const tokenizer = gpt2Tokenizer();
  assertEquals(tokenizer.vocabSize, 50257);
  assert(gpt2Tokenizer() === tokenizer, "gpt2Tokenizer() returned a new instance on the second call");
  assertEquals(ENDOFTEXT_ID, 50256);
  assertEquals(ENDOFTEXT, "<|endoftext|>");
});

test("encode known sentences", () => {
  const tokenizer = gpt2Tokenizer();
  const cases: [string, number[]][] = [
    ["Hello world", [15496, 995]],
    ["Hello, world!", [15496, 11, 995, 0]],
    ["The quick brown fox jumps over the lazy dog.", [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13]],
    ["", []],
  ];
  for (const [text, expected] of cases) {
    assertEquals(tokenizer.encode(text), expected, JSON.stringify(text));
  }
});

test("encode matches gpt-tokenizer on mixed text", () => {
  // Seeded random strings over ASCII, accented letters, CJK, emoji, digits and whitespace runs
  // exercise the merge loop on multi-byte characters and on tokens that split characters.
  const tokenizer = gpt2Tokenizer();
  const random = seededRandom(7);
  const alphabet = [..."aeiou tnsrl TH 0123456789 ,.;'!?-\n\n\t  éüñßø жизнь 日本語 한국어 👋🌍🎉👨‍👩‍👧 “”’…"];
  for (let round = 0; round < 300; round++) {
    const length = 1 + Math.floor(random() * 80);
    let text = "";
    for (let i = 0; i < length; i++) text += alphabet[Math.floor(random() * alphabet.length)];
    assertEquals(tokenizer.encode(text), referenceEncode(text), `round ${round}, text ${JSON.stringify(text)}`);
  }
});

test("encode long piece matches gpt-tokenizer", () => {
  // 4,000 letters without spaces form one piece, short enough for gpt-tokenizer's quadratic merge.
  const tokenizer = gpt2Tokenizer();
  const text = randomLetters(4000, 11);
  assertEquals(tokenizer.encode(text), referenceEncode(text));
});

test("encode special token with allowSpecial", () => {
  const tokenizer = gpt2Tokenizer();
  const options = { allowSpecial: true };
  assertEquals(tokenizer.encode("a<|endoftext|>b", options), [64, ENDOFTEXT_ID, 65]);
  assertEquals(tokenizer.encode("x<|endoftext|>", options), [87, ENDOFTEXT_ID]);
  assertEquals(tokenizer.encode("<|endoftext|>", options), [ENDOFTEXT_ID]);
  assertEquals(tokenizer.encode("<|endoftext|><|endoftext|>", options), [ENDOFTEXT_ID, ENDOFTEXT_ID]);

  // Text around each special token is encoded as if the special token were not there.
  const text = "Hello world<|endoftext|> The end<|endoftext|>\n";
  const expected = [
    ...tokenizer.encode("Hello world"),
    ENDOFTEXT_ID,
    ...tokenizer.encode(" The end"),
    ENDOFTEXT_ID,
    ...tokenizer.encode("\n"),
  ];
  assertEquals(tokenizer.encode(text, options), expected);
});

test("encode special token as text by default", () => {
  const tokenizer = gpt2Tokenizer();
  for (const options of [undefined, {}, { allowSpecial: false }]) {
    const ids = tokenizer.encode("a<|endoftext|>b", options);
    assert(!ids.includes(ENDOFTEXT_ID), `ids ${JSON.stringify(ids)} contain ${ENDOFTEXT_ID}`);
    assertEquals(tokenizer.decode(ids), "a<|endoftext|>b");
  }
  assert(tokenizer.encode(ENDOFTEXT).length > 1, "<|endoftext|> as text should take several tokens");
});

test("encode rejects non-string input", async () => {
  const tokenizer = gpt2Tokenizer();
  await assertThrows(() => tokenizer.encode(42 as unknown as string), TypeError, ["42", "expected a string"]);
  await assertThrows(() => tokenizer.tokenize(null as unknown as string), TypeError, ["null", "expected a string"]);
});

test("encode 100,000 repeated letters", () => {
  const tokenizer = gpt2Tokenizer();
  const text = "a".repeat(100_000);

  const started = performance.now();
  const ids = tokenizer.encode(text);
  const elapsedMs = performance.now() - started;

  assertEquals(ids.length, 25_000);
  assert(ids.every((id) => id === 24794), "every id should be 24794 ('aaaa')");
  assert(elapsedMs < 1000, `encoding took ${elapsedMs.toFixed(0)} ms, expected under 1000 ms`);
  console.log(`        100,000 x "a": ${elapsedMs.toFixed(1)} ms`);
});

test("encode 100,000 mixed letters", () => {
  const tokenizer = gpt2Tokenizer();
  const text = randomLetters(100_000, 3);

  const started = performance.now();
  const ids = tokenizer.encode(text);
  const elapsedMs = performance.now() - started;

  assertEquals(tokenizer.decode(ids), text);
  assert(elapsedMs < 1000, `encoding took ${elapsedMs.toFixed(0)} ms, expected under 1000 ms`);
  console.log(`        100,000 mixed letters: ${elapsedMs.toFixed(1)} ms, ${ids.length} tokens`);
});

test("tokenize ASCII offsets", () => {
  const tokenizer = gpt2Tokenizer();
  const text = "Hello, world!  It's 2024:\n\tthe   end.\n\n";
  const tokens = tokenizer.tokenize(text);

  assertEquals(tokens.map((t) => t.id), tokenizer.encode(text));
  assertContiguous(tokens, text);
  for (const token of tokens) {
    assertEquals(token.text, text.slice(token.start, token.end), `text of token ${token.id}`);
    assertEquals(token.text, tokenizer.decodeToken(token.id), `display text of token ${token.id}`);
    assert(token.end > token.start, `ASCII token ${token.id} has an empty span`);
  }
  assertEquals(tokens.slice(0, 4).map((t) => t.text), ["Hello", ",", " world", "!"]);
});

test("tokenize emoji split across tokens", () => {
  // " 👋" is token 50169 (a space and the first 3 bytes of 👋) plus token 233 (the last byte).
  // " 🌍" is 12520 (a space and 2 bytes), 234 (1 byte) and 235 (the last byte). Each character
  // belongs to the token holding its last byte, and the others get an empty span.
  const tokenizer = gpt2Tokenizer();
  const text = "hello 👋 world 🌍";
  const tokens = tokenizer.tokenize(text);

  assertEquals(tokens, [
    { id: 31373, text: "hello", start: 0, end: 5 },
    { id: 50169, text: " ", start: 5, end: 6 },
    { id: 233, text: "👋", start: 6, end: 8 },
    { id: 995, text: " world", start: 8, end: 14 },
    { id: 12520, text: " ", start: 14, end: 15 },
    { id: 234, text: "", start: 15, end: 15 },
    { id: 235, text: "🌍", start: 15, end: 17 },
  ]);
  assertContiguous(tokens, text);
});

test("tokenize non-ASCII offsets", () => {
  const tokenizer = gpt2Tokenizer();
  const text = "Grüße aus 日本 — “quoted” 👨‍👩‍👧 naïve\u00a0café";
  const tokens = tokenizer.tokenize(text);

  assertEquals(tokens.map((t) => t.id), tokenizer.encode(text));
  assertContiguous(tokens, text);
  for (const token of tokens) {
    assertEquals(token.text, text.slice(token.start, token.end), `text of token ${token.id}`);
    assert(!token.text.includes(REPLACEMENT_CHARACTER), `token ${token.id} text has U+FFFD`);
  }
  // Joining the token texts gives the input back.
  assertEquals(tokens.map((t) => t.text).join(""), text);
});

test("tokenize special token offsets", () => {
  const tokenizer = gpt2Tokenizer();
  const text = "a<|endoftext|>b";
  const tokens = tokenizer.tokenize(text, { allowSpecial: true });
  assertEquals(tokens, [
    { id: 64, text: "a", start: 0, end: 1 },
    { id: ENDOFTEXT_ID, text: ENDOFTEXT, start: 1, end: 14 },
    { id: 65, text: "b", start: 14, end: 15 },
  ]);
});

test("tokenize lone surrogate", () => {
  // TextEncoder writes U+FFFD for a lone surrogate, so the token covers that one code unit.
  const tokenizer = gpt2Tokenizer();
  const text = "a\ud800b";
  const tokens = tokenizer.tokenize(text);
  assertContiguous(tokens, text);
  assertEquals(tokens.map((t) => t.id), tokenizer.encode("a\ufffdb"));
  assertEquals(tokenizer.decode(tokenizer.encode(text)), "a\ufffdb");
});

test("decode round trip", () => {
  const tokenizer = gpt2Tokenizer();
  const texts = ["", "Hello world", "\ufeffleading byte order mark", "日本語 👋🌍 “x”", "  \n\n\t x  "];
  for (const text of texts) {
    assertEquals(tokenizer.decode(tokenizer.encode(text)), text, JSON.stringify(text));
  }
  assertEquals(tokenizer.decode([ENDOFTEXT_ID]), ENDOFTEXT);
  assertEquals(tokenizer.decode([15496, ENDOFTEXT_ID, 995]), "Hello<|endoftext|> world");
});

test("decode keeps no state between calls", () => {
  // 12520 ends with 2 bytes of an incomplete character. They must not join the next call's bytes.
  const tokenizer = gpt2Tokenizer();
  assertEquals(tokenizer.decode([12520]), " " + REPLACEMENT_CHARACTER);
  assertEquals(tokenizer.decode([447, 250]), "“");
  assertEquals(tokenizer.decode([12520]), " " + REPLACEMENT_CHARACTER);
  assertEquals(tokenizer.decode([12520, 234, 235]), " 🌍");
});

test("decode rejects invalid ids", async () => {
  const tokenizer = gpt2Tokenizer();
  await assertThrows(() => tokenizer.decode([15496, 50257]), RangeError, ["50257", "[0, 50257)", "index 1"]);
  await assertThrows(() => tokenizer.decode([-1]), RangeError, ["-1", "[0, 50257)"]);
  await assertThrows(() => tokenizer.decode([1.5]), RangeError, ["1.5", "integers"]);
  await assertThrows(() => tokenizer.decode([NaN]), RangeError, ["NaN", "[0, 50257)"]);
  await assertThrows(() => tokenizer.decode([Infinity]), RangeError, ["Infinity"]);
  await assertThrows(() => tokenizer.decode(["5" as unknown as number]), TypeError, ['"5"', "expected a number"]);
  await assertThrows(() => tokenizer.decode(5 as unknown as number[]), TypeError, ["expected an array"]);
  await assertThrows(() => tokenizer.decodeToken(50257), RangeError, ["50257", "[0, 50257)"]);
  await assertThrows(() => tokenizer.tokenBytes(-3), RangeError, ["-3", "[0, 50257)"]);
});

test("decodeToken and tokenBytes", () => {
  const tokenizer = gpt2Tokenizer();
  assertEquals(tokenizer.decodeToken(15496), "Hello");
  assertEquals(tokenizer.decodeToken(ENDOFTEXT_ID), ENDOFTEXT);
  // A token holding part of a character shows U+FFFD for those bytes.
  assertEquals(tokenizer.decodeToken(12520), " " + REPLACEMENT_CHARACTER);
  assertEquals(Array.from(tokenizer.tokenBytes(12520)), [32, 240, 159]);
  assertEquals(Array.from(tokenizer.tokenBytes(995)), [32, 119, 111, 114, 108, 100]);
  assertEquals(tokenizer.tokenBytes(ENDOFTEXT_ID), new TextEncoder().encode(ENDOFTEXT));

  // The returned bytes are a copy.
  const bytes = tokenizer.tokenBytes(995);
  bytes[0] = 0;
  assertEquals(tokenizer.decode([995]), " world");
});

test("stream decoder emits whole characters", () => {
  const tokenizer = gpt2Tokenizer();
  const ids = [31373, 50169, 233, 995, 12520, 234, 235];
  const decoder = tokenizer.createStreamDecoder();

  const chunks = ids.map((id) => decoder.push(id));
  chunks.push(decoder.flush());

  for (const [i, chunk] of chunks.entries()) {
    assert(!chunk.includes(REPLACEMENT_CHARACTER), `chunk ${i} ${JSON.stringify(chunk)} contains U+FFFD`);
  }
  assertEquals(chunks, ["hello", " ", "👋", " world", " ", "", "🌍", ""]);
  assertEquals(chunks.join(""), "hello 👋 world 🌍");
  assertEquals(chunks.join(""), tokenizer.decode(ids));
});

test("stream decoder flush and reuse", async () => {
  const tokenizer = gpt2Tokenizer();
  const decoder = tokenizer.createStreamDecoder();

  // An incomplete character at the end comes out of flush() as U+FFFD.
  assertEquals(decoder.push(12520), " ");
  assertEquals(decoder.flush(), REPLACEMENT_CHARACTER);

  // After flush() the decoder starts a new stream.
  assertEquals(decoder.push(447), "");
  assertEquals(decoder.push(250), "“");
  assertEquals(decoder.flush(), "");

  // Two decoders do not share state.
  const other = tokenizer.createStreamDecoder();
  assertEquals(decoder.push(12520), " ");
  assertEquals(other.push(15496), "Hello");
  assertEquals(decoder.push(234), "");
  assertEquals(decoder.push(235), "🌍");

  await assertThrows(() => decoder.push(50257), RangeError, ["50257", "[0, 50257)"]);
});

test("Tokenizer instances agree", () => {
  const text = "Separate instances build the same tables. 👋";
  assertEquals(new Tokenizer().encode(text), gpt2Tokenizer().encode(text));
});

test("tiny Shakespeare matches gpt-tokenizer", () => {
  const tokenizer = gpt2Tokenizer();
  const text = readShakespeare();

  const ids = tokenizer.encode(text);
  assertEquals(ids.length, 338_025);
  assertEquals(tokenizer.decode(ids), text);

  const reference = referenceEncode(text);
  assertEquals(reference.length, ids.length, "gpt-tokenizer token count");
  const firstDifference = ids.findIndex((id, i) => id !== reference[i]);
  assertEquals(firstDifference, -1, "index of the first id that differs from gpt-tokenizer");
});

test("tiny Shakespeare tokenize offsets", () => {
  const tokenizer = gpt2Tokenizer();
  const text = readShakespeare();
  const tokens = tokenizer.tokenize(text);

  assertEquals(tokens.length, 338_025);
  assertContiguous(tokens, text);
  const ids = tokenizer.encode(text);
  const firstDifference = tokens.findIndex((token, i) => token.id !== ids[i]);
  assertEquals(firstDifference, -1, "index of the first tokenize id that differs from encode");
  const badText = tokens.findIndex((token) => token.text !== text.slice(token.start, token.end));
  assertEquals(badText, -1, "index of the first token whose text is not its slice");
});
