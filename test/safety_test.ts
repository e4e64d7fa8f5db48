/**
 * Safety: model files are parsed only as data, hostile headers and configs cannot make the
 * loader allocate or loop without bound, cache paths stay inside the cache directory, and the
 * bad-input cases that test/errors_test.ts does not cover get clear errors.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertThrows, test } from "./_harness.ts";
import { dumpParity } from "../src/dump.ts";
import { generate } from "../src/generate.ts";
import type { HookName } from "../src/hooks.ts";
import { repoCacheDir, validateRepoName } from "../src/hub.ts";
import { loadModel } from "../src/load_model.ts";
import { CheckpointError, loadCheckpoint } from "../src/loader.ts";
import type { Model } from "../src/model.ts";
import { createRng } from "../src/sampling.ts";
import {
  type ByteSource,
  MAX_HEADER_LENGTH,
  openFileSource,
  readHeader,
  SafetensorsError,
} from "../src/safetensors.ts";

function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

/** Copies a fixture checkpoint into a fresh temporary directory, runs `fn`, then removes it. */
async function withCopy(name: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "underhood-safety-"));
  const dir = join(root, name);
  cpSync(fixture(name), dir, { recursive: true });
  try {
    await fn(dir);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * Builds a pickle (protocol 2) that calls os.system("touch <marker>") when unpickled, as a
 * malicious pytorch_model.bin would.
 */
function maliciousPickle(marker: string): Uint8Array {
  const command = new TextEncoder().encode(`touch ${marker}`);
  return Uint8Array.of(
    0x80,
    0x02, // PROTO 2
    ...new TextEncoder().encode("cos\nsystem\n"), // GLOBAL os.system
    0x58,
    command.length,
    0,
    0,
    0,
    ...command, // BINUNICODE
    0x85, // TUPLE1
    0x52, // REDUCE
    0x2e, // STOP
  );
}

test("pytorch_model.bin is never unpickled", async () => {
  await withCopy("gpt2-micro", async (dir) => {
    const marker = join(dir, "pickle-ran");
    rmSync(join(dir, "model.safetensors"));
    writeFileSync(join(dir, "pytorch_model.bin"), maliciousPickle(marker));
    await assertThrows(() => loadModel(dir), CheckpointError, ["pytorch_model.bin", "convert it to safetensors"]);
    assert(!existsSync(marker), "the pickle ran");

    // The same bytes under the safetensors name are rejected as a corrupt file.
    writeFileSync(join(dir, "model.safetensors"), maliciousPickle(marker));
    const error = await assertThrows(() => loadCheckpoint(dir), CheckpointError, ["model.safetensors"]);
    assert(error.cause instanceof SafetensorsError, `cause is ${error.cause}`);
    assert(!existsSync(marker), "the pickle ran");
  });
});

/** Lists every .ts file under `dir`. */
function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out;
}

test("library code never evaluates code", () => {
  const src = fileURLToPath(new URL("../src", import.meta.url));
  const forbidden: Array<[RegExp, string]> = [
    [/\beval\s*\(/, "eval("],
    [/\bnew\s+Function\s*\(/, "new Function("],
    [/["']node:vm["']|["']vm["']/, "the vm module"],
    [/["'](node:)?child_process["']/, "child_process"],
    [/\bimport\s*\(\s*[^"'\s]/, "import() of a computed specifier"],
    [/\brequire\s*\(\s*[A-Za-z_$][\w$.]*\s*\)/, "require() of a computed module name"],
    [/\bpickle\b|unpickl/i, "pickle handling"],
  ];
  const files = sourceFiles(src);
  assert(files.length > 10, `found only ${files.length} source files under ${src}`);
  const hits: string[] = [];
  for (const file of files) {
    const lines = readFileSync(file, "utf8").split("\n");
    lines.forEach((line, i) => {
      if (/^\s*(\*|\/\/)/.test(line)) return; // comments
      for (const [pattern, what] of forbidden) {
        if (pattern.test(line)) hits.push(`${relative(src, file)}:${i + 1}: ${what}`);
      }
    });
  }
  assertEquals(hits, []);
});

/** Wraps a source and records the length of every read. */
function recordingSource(source: ByteSource, reads: number[]): ByteSource {
  return {
    size: source.size,
    name: source.name ?? "recorded",
    read(offset, length) {
      reads.push(length);
      return source.read(offset, length);
    },
  };
}

test("bad headers read no claimed length", async () => {
  const edge = (name: string) => fixture(`safetensors-edge/${name}.safetensors`);
  for (const name of ["truncated", "gap_offsets", "lfs_pointer"]) {
    const source = await openFileSource(edge(name));
    try {
      const reads: number[] = [];
      await assertThrows(() => readHeader(recordingSource(source, reads)), SafetensorsError, [edge(name)]);
      // The length field, then at most the whole file once (the Git LFS check reads its text).
      const total = reads.reduce((a, b) => a + b, 0);
      assert(total <= 8 + source.size, `${name}: read ${total} bytes of a ${source.size}-byte file`);
      assert(reads.every((n) => n <= source.size), `${name}: reads of ${reads.join(", ")} bytes`);
    } finally {
      await source.close?.();
    }
  }

  // Header lengths up to the u64 maximum, in a 64-byte buffer: only the 8-byte length field is read.
  for (const claimed of [BigInt(MAX_HEADER_LENGTH) - 1n, BigInt(MAX_HEADER_LENGTH) + 1n, 2n ** 53n, 2n ** 64n - 1n]) {
    const bytes = new Uint8Array(64);
    new DataView(bytes.buffer).setBigUint64(0, claimed, true);
    const reads: number[] = [];
    const source: ByteSource = {
      size: bytes.length,
      name: "claimed.safetensors",
      read(offset, length) {
        reads.push(length);
        return Promise.resolve(bytes.subarray(offset, offset + length));
      },
    };
    await assertThrows(() => readHeader(source), SafetensorsError, [String(claimed)]);
    assertEquals(reads, [8], `reads for a claimed header of ${claimed} bytes`);
  }
});

test("huge n_layer fails fast", async () => {
  await withCopy("gpt2-micro", async (dir) => {
    for (const nLayer of [3, 1e9, 2 ** 53 - 1]) {
      const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
      config.n_layer = nLayer;
      writeFileSync(join(dir, "config.json"), JSON.stringify(config));
      const started = performance.now();
      await assertThrows(() => loadCheckpoint(dir), CheckpointError, [
        `n_layer to ${nLayer}`,
        "highest block in the weights is h.1 (2 layers)",
      ]);
      const ms = performance.now() - started;
      assert(ms < 1000, `n_layer ${nLayer} took ${ms.toFixed(0)} ms`);
    }
  });
});

test("random repo names stay in cache", () => {
  const cacheDir = resolve(tmpdir(), "underhood-cache-property");
  const alphabet = ["a", "Z", "0", "-", "_", ".", "..", "/", "\\", ":", "~", " ", "%2e", "\u0000", "é", "--", "C:"];
  const rng = createRng(7);
  let accepted = 0;
  for (let i = 0; i < 5000; i++) {
    const length = 1 + Math.floor(rng() * 8);
    let name = "";
    for (let j = 0; j < length; j++) name += alphabet[Math.floor(rng() * alphabet.length)];
    let valid = true;
    try {
      validateRepoName(name);
    } catch (error) {
      assert(error instanceof RangeError, `${JSON.stringify(name)}: ${error}`);
      valid = false;
    }
    if (!valid) continue;
    accepted++;
    const dir = repoCacheDir(name, "main", cacheDir);
    const rel = relative(cacheDir, dir);
    assert(
      !rel.startsWith("..") && !rel.includes(`..${sep}`) && !rel.startsWith(sep),
      `${JSON.stringify(name)} -> ${dir}`,
    );
    assertEquals(rel.split(sep).length, 2, `${JSON.stringify(name)} -> ${dir}`);
    assert(!name.includes(".."), `accepted ${JSON.stringify(name)}`);
    assert(!name.includes("\\"), `accepted ${JSON.stringify(name)}`);
    assert(!name.includes(":"), `accepted ${JSON.stringify(name)}`);
  }
  assert(accepted > 100, `only ${accepted} random names were valid, so the property was barely tested`);
});

// ---- Bad user input not covered by test/errors_test.ts.

async function withTiny(fn: (model: Model) => void | Promise<void>): Promise<void> {
  const model = await loadModel(fixture("gpt2-tiny-f32"));
  try {
    await fn(model);
  } finally {
    model.dispose();
  }
}

const IDS = [464, 2068, 7586];

test("head and layer out of range in dump", async () => {
  await withTiny(async (model) => {
    const { nHeads, nLayers } = model.config;
    for (const head of [nHeads, -2, 1.5, Number.NaN]) {
      await assertThrows(() => dumpParity(model, { ids: IDS, attnLayer: 0, attnHead: head }), RangeError, [
        `${head}`,
        `[0, ${nHeads})`,
      ]);
    }
    for (const layer of [nLayers, -1]) {
      await assertThrows(() => dumpParity(model, { ids: IDS, attnLayer: layer }), RangeError, [
        `${layer}`,
        `[0, ${nLayers})`,
      ]);
    }
  });
});

test("hook name for a missing layer", async () => {
  await withTiny(async (model) => {
    const n = model.config.nLayers;
    const name = `blocks.${n}.attn.hook_pattern` as HookName;
    await assertThrows(() => model.runWithCache(IDS, { names: [name] }), RangeError, [
      `"${name}"`,
      `"blocks.${n - 1}.attn.hook_pattern"`,
    ]);
    await assertThrows(() => model.runWithHooks(IDS, { hooks: [{ name, fn: () => {} }] }), RangeError, [`"${name}"`]);
  });
});

test("non-finite sampling options", async () => {
  await withTiny(async (model) => {
    const cases: Array<[Record<string, number>, string]> = [
      [{ temperature: Number.NaN }, "temperature NaN"],
      [{ topP: Infinity }, "topP Infinity"],
      [{ topK: Infinity }, "topK Infinity"],
      [{ maxNewTokens: Number.NaN }, "maxNewTokens NaN"],
      [{ maxNewTokens: Infinity }, "maxNewTokens Infinity"],
      [{ seed: 1.5 }, "seed 1.5"],
    ];
    for (const [options, part] of cases) await assertThrows(() => generate(model, IDS, options), RangeError, [part]);
  });
});

test("topK position and offset checks", async () => {
  await withTiny(async (model) => {
    const e = model.embed(IDS);
    const u = model.unembed(e.residual);
    try {
      await assertThrows(() => u.topK(3, IDS.length), RangeError, [
        `position ${IDS.length}`,
        `[-${IDS.length}, ${IDS.length})`,
      ]);
      await assertThrows(() => u.topK(0), RangeError, ["k = 0", ">= 1"]);
    } finally {
      u.dispose();
      e.dispose();
    }
    await assertThrows(() => model.embed(IDS, { offset: 1.5 }), RangeError, ["offset 1.5"]);

    // Positions past nCtx through the KV cache.
    const nCtx = model.config.nCtx;
    const first = model.forwardIncremental(Int32Array.from({ length: nCtx }, (_, i) => i), undefined);
    first.logits.dispose();
    try {
      await assertThrows(() => model.forwardIncremental(Int32Array.of(1), first.cache), RangeError, [
        `position ${nCtx}`,
        "nCtx",
      ]);
    } finally {
      first.cache.dispose();
    }
  });
});
