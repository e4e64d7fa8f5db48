// Checkpoint loading over HTTP (src/browser/fetch_files.ts) against an in-memory fake server, so
// it runs on Node, Deno and Bun without a network. The real server is exercised by chromium.ts.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertThrows, test } from "../_harness.ts";
import { urlFiles } from "../../src/browser/fetch_files.ts";
import { CheckpointError, loadCheckpointFiles } from "../../src/checkpoint.ts";
import { loadCheckpoint } from "../../src/loader.ts";
import type { LoadedCheckpoint } from "../../src/types.ts";

const BASE = "https://models.example/gpt2-micro/";

function fixtureFiles(name: string): Map<string, Uint8Array> {
  const dir = fileURLToPath(new URL(`../fixtures/${name}/`, import.meta.url));
  const files = new Map<string, Uint8Array>();
  for (const file of readdirSync(dir)) files.set(file, new Uint8Array(readFileSync(join(dir, file))));
  return files;
}

interface FakeServer {
  fetch: typeof fetch;
  /** Every request as "METHOD URL [Range]". */
  requests: string[];
}

/**
 * A fetch over in-memory files under BASE. `ranges` selects how the fake server handles Range headers:
 * "yes" (206 with Content-Range), "ignored" (200 with the whole file), "hidden" (206 without a
 * readable Content-Range, as a cross-origin server that does not expose it).
 */
function fakeServer(
  files: Map<string, Uint8Array>,
  options: { ranges?: "yes" | "ignored" | "hidden"; status?: number; sizeChangesAfter?: number } = {},
): FakeServer {
  const requests: string[] = [];
  const fetchFn = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = String(input);
    const method = init.method ?? "GET";
    const range = new Headers(init.headers).get("Range");
    requests.push(`${method} ${url}${range ? ` ${range}` : ""}`);
    if (options.status !== undefined) return Promise.resolve(new Response("failed", { status: options.status }));
    const name = url.startsWith(BASE) ? decodeURIComponent(url.slice(BASE.length)) : undefined;
    const body = name === undefined ? undefined : files.get(name);
    if (body === undefined) return Promise.resolve(new Response("not found", { status: 404 }));
    if (method === "HEAD") return Promise.resolve(new Response(null, { status: 200 }));

    const match = range === null ? null : /^bytes=(\d+)-(\d+)$/.exec(range);
    if (match === null || options.ranges === "ignored") return Promise.resolve(new Response(body.slice(), { status: 200 }));
    const start = Number(match[1]);
    const end = Math.min(Number(match[2]), body.length - 1);
    const total = options.sizeChangesAfter !== undefined && requests.length > options.sizeChangesAfter
      ? body.length + 1
      : body.length;
    const headers: Record<string, string> = options.ranges === "hidden" ? {} : { "Content-Range": `bytes ${start}-${end}/${total}` };
    return Promise.resolve(new Response(body.slice(start, end + 1), { status: 206, headers }));
  };
  return { fetch: fetchFn as typeof fetch, requests };
}

function assertSameCheckpoint(actual: LoadedCheckpoint, expected: LoadedCheckpoint): void {
  assertEquals(actual.config, expected.config, "config");
  assertEquals(actual.info.files, expected.info.files, "files");
  assertEquals(actual.info.storedDtypes, expected.info.storedDtypes, "stored dtypes");
  const flat = (c: LoadedCheckpoint): number[] => [
    ...c.weights.W_E.data,
    ...c.weights.W_pos.data,
    ...c.weights.W_U.data,
    ...c.weights.blocks.flatMap((b) => [...b.W_Q.data, ...b.W_O.data, ...b.W_in.data, ...b.b_out.data]),
  ];
  assertEquals(flat(actual), flat(expected), "weights");
}

const expectedMicro = () => loadCheckpoint(fileURLToPath(new URL("../fixtures/gpt2-micro", import.meta.url)));

test("url checkpoint with range reads", async () => {
  const server = fakeServer(fixtureFiles("gpt2-micro"));
  const loaded = await loadCheckpointFiles(urlFiles(BASE, { fetch: server.fetch }));
  assertSameCheckpoint(loaded, await expectedMicro());
  assertEquals(loaded.info.source, BASE, "info.source");
  const ranged = server.requests.filter((r) => r.includes("model.safetensors bytes="));
  assert(ranged.length > 3, `expected one range request per tensor, got ${ranged.length}`);
  assert(server.requests.every((r) => r.split(" ")[1]!.startsWith(BASE)), "a request left the base URL");
});

test("url checkpoint when ranges are ignored", async () => {
  const server = fakeServer(fixtureFiles("gpt2-micro"), { ranges: "ignored" });
  assertSameCheckpoint(await loadCheckpointFiles(urlFiles(BASE, { fetch: server.fetch })), await expectedMicro());
  const weightRequests = server.requests.filter((r) => r.includes("model.safetensors"));
  assertEquals(weightRequests.length, 1, "one request reads the whole weight file");
});

test("url checkpoint with hidden Content-Range", async () => {
  const server = fakeServer(fixtureFiles("gpt2-micro"), { ranges: "hidden" });
  assertSameCheckpoint(await loadCheckpointFiles(urlFiles(BASE, { fetch: server.fetch })), await expectedMicro());
  assertEquals(
    server.requests.filter((r) => r.includes("model.safetensors")),
    [`GET ${BASE}model.safetensors bytes=0-0`, `GET ${BASE}model.safetensors`],
    "a probe, then the whole file",
  );
});

test("url checkpoint with shards", async () => {
  const server = fakeServer(fixtureFiles("gpt2-micro-sharded"));
  const loaded = await loadCheckpointFiles(urlFiles(BASE, { fetch: server.fetch }));
  const expected = await loadCheckpoint(fileURLToPath(new URL("../fixtures/gpt2-micro-sharded", import.meta.url)));
  assertSameCheckpoint(loaded, expected);
});

test("url checkpoint missing files", async () => {
  const noConfig = fixtureFiles("gpt2-micro");
  noConfig.delete("config.json");
  await assertThrows(
    () => loadCheckpointFiles(urlFiles(BASE, { fetch: fakeServer(noConfig).fetch })),
    CheckpointError,
    [`${BASE}config.json`, "not found"],
  );

  const onlyBin = fixtureFiles("gpt2-micro");
  onlyBin.delete("model.safetensors");
  onlyBin.set("pytorch_model.bin", new Uint8Array(4));
  await assertThrows(
    () => loadCheckpointFiles(urlFiles(BASE, { fetch: fakeServer(onlyBin).fetch })),
    CheckpointError,
    ["model.safetensors", "pytorch_model.bin"],
  );
});

test("url checkpoint server errors", async () => {
  await assertThrows(
    () => loadCheckpointFiles(urlFiles(BASE, { fetch: fakeServer(new Map(), { status: 500 }).fetch })),
    CheckpointError,
    [`${BASE}config.json`, "HTTP 500"],
  );
  const offline = (() => Promise.reject(new TypeError("network down"))) as unknown as typeof fetch;
  const error = await assertThrows(
    () => loadCheckpointFiles(urlFiles(BASE, { fetch: offline })),
    CheckpointError,
    [`Cannot fetch ${BASE}config.json`, "network down"],
  );
  assert(error.cause instanceof TypeError, "the network error is kept as the cause");
});

test("url checkpoint file changed while read", async () => {
  const server = fakeServer(fixtureFiles("gpt2-micro"), { sizeChangesAfter: 4 });
  await assertThrows(
    () => loadCheckpointFiles(urlFiles(BASE, { fetch: server.fetch })),
    CheckpointError,
    ["model.safetensors", "changed while it was read"],
  );
});

test("url shard names stay under base", async () => {
  for (const bad of ["../elsewhere.safetensors", "/abs.safetensors", "a/../../x.safetensors", "C:x.safetensors", "..\\x.safetensors", "https://evil.example/x"]) {
    const files = fixtureFiles("gpt2-micro-sharded");
    const index = JSON.parse(new TextDecoder().decode(files.get("model.safetensors.index.json")!));
    index.weight_map["transformer.wte.weight"] = bad;
    files.set("model.safetensors.index.json", new TextEncoder().encode(JSON.stringify(index)));
    const server = fakeServer(files);
    if (bad.startsWith("https:")) {
      // Not a path escape, so the index check lets it through, but it is fetched under BASE as one segment name.
      await assertThrows(() => loadCheckpointFiles(urlFiles(BASE, { fetch: server.fetch })), CheckpointError, ["not found"]);
    } else {
      await assertThrows(
        () => loadCheckpointFiles(urlFiles(BASE, { fetch: server.fetch })),
        CheckpointError,
        [JSON.stringify(bad), "inside"],
      );
    }
    assert(server.requests.every((r) => r.split(" ")[1]!.startsWith(BASE)), `${bad}: a request left the base URL`);
  }
});

test("url files reject relative base", async () => {
  await assertThrows(() => urlFiles("models/default/", { fetch: fakeServer(new Map()).fetch }), TypeError, [
    "models/default/",
    "absolute URL",
  ]);
  const files = urlFiles("https://models.example/a/b?x=1#y", { fetch: fakeServer(new Map()).fetch });
  assertEquals(files.location, "https://models.example/a/b/", "query and fragment dropped, slash added");
  assertEquals(files.path("x?y#z.json"), "https://models.example/a/b/x%3Fy%23z.json", "special characters encoded");
});
