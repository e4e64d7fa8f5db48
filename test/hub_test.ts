/**
 * Hub downloads against a node:http server on 127.0.0.1 that serves the fixtures in the
 * Hugging Face layout `/<repo>/resolve/<revision>/<file>`, and against an injected fetch for
 * huggingface.co. Every test uses a fresh cache directory and closes its server.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertThrows, test } from "./_harness.ts";
import {
  defaultCacheDir,
  DownloadError,
  downloadModel,
  type DownloadProgress,
  parseHubUrl,
  repoCacheDir,
  validateRepoName,
} from "../src/hub.ts";
import { loadModel, type ModelLoadProgress } from "../src/load_model.ts";
import { CheckpointError } from "../src/loader.ts";

function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

const TINY_REPO = "test-org/tiny-f16";
const SHARDED_REPO = "test-org/micro-sharded";
/** GPT-2 ids of "The quick brown fox jumps". */
const IDS = [464, 2068, 7586, 21831, 18045];

/** Reads every file of a fixture directory into memory. */
function readFixture(name: string): Map<string, Uint8Array> {
  const dir = fixture(name);
  return new Map(readdirSync(dir).map((file) => [file, new Uint8Array(readFileSync(join(dir, file)))]));
}

const REPOS: Record<string, Map<string, Uint8Array>> = {
  [TINY_REPO]: readFixture("gpt2-tiny-f16"),
  [SHARDED_REPO]: readFixture("gpt2-micro-sharded"),
};
const TINY_WEIGHTS = REPOS[TINY_REPO]!.get("model.safetensors")!;

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** What the server received in one request, for overrides. */
interface RequestInfo {
  path: string;
  repo: string;
  file: string;
  /** The file's bytes, when the repo and file exist. */
  bytes: Uint8Array | undefined;
  /** Start offset of a `Range: bytes=N-` header, or undefined. */
  rangeStart: number | undefined;
  /** How many earlier requests had this path. */
  seen: number;
}

/** Handles a request itself and returns true, or returns false for the default behaviour. */
type Override = (req: IncomingMessage, res: ServerResponse, info: RequestInfo) => boolean;

interface HubServer {
  baseUrl: string;
  /** Every request as `<path> <range header or "-">`. */
  requests: string[];
  /** Keeps a response open until close() (for stalls). */
  hold(res: ServerResponse): void;
  close(): Promise<void>;
}

/**
 * Starts a hub on 127.0.0.1. By default it serves `REPOS` at `/<repo>/resolve/main/<file>`
 * with Content-Length, Range support (206) and, for safetensors files, X-Linked-ETag.
 */
async function startHub(override?: Override): Promise<HubServer> {
  const requests: string[] = [];
  const heldResponses = new Set<ServerResponse>();
  const seenCounts = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const rangeHeader = req.headers["range"];
    requests.push(`${path} ${rangeHeader ?? "-"}`);
    const seen = seenCounts.get(path) ?? 0;
    seenCounts.set(path, seen + 1);

    const match = /^\/(.+)\/resolve\/main\/([^/]+)$/.exec(path);
    const repo = match?.[1] ?? "";
    const file = match?.[2] ?? "";
    const bytes = REPOS[repo]?.get(file);
    const rangeMatch = typeof rangeHeader === "string" ? /^bytes=(\d+)-$/.exec(rangeHeader) : null;
    const info: RequestInfo = {
      path,
      repo,
      file,
      bytes,
      rangeStart: rangeMatch ? Number(rangeMatch[1]) : undefined,
      seen,
    };
    if (override?.(req, res, info)) return;
    serveFile(res, info);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", () => done()));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    hold: (res) => heldResponses.add(res),
    async close() {
      for (const res of heldResponses) res.destroy();
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}

/** Serves `info.bytes` as a hub would, honouring a Range header. */
function serveFile(res: ServerResponse, info: RequestInfo, extraHeaders: Record<string, string> = {}): void {
  const { bytes, file } = info;
  if (bytes === undefined) {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("Entry not found");
    return;
  }
  const headers: Record<string, string> = { "content-type": "application/octet-stream", ...extraHeaders };
  if (file.endsWith(".safetensors") && !("x-linked-etag" in headers)) headers["x-linked-etag"] = `"${sha256(bytes)}"`;
  const start = info.rangeStart;
  if (start !== undefined && start < bytes.length) {
    res.writeHead(206, {
      ...headers,
      "content-length": String(bytes.length - start),
      "content-range": `bytes ${start}-${bytes.length - 1}/${bytes.length}`,
    });
    res.end(bytes.subarray(start));
    return;
  }
  if (start !== undefined) {
    res.writeHead(416, { "content-range": `bytes */${bytes.length}` });
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, "content-length": String(bytes.length) });
  res.end(bytes);
}

/** Runs `fn` with a fresh cache directory and a started hub, then removes and closes both. */
async function withHub(
  override: Override | undefined,
  fn: (hub: HubServer, cacheDir: string) => Promise<void>,
): Promise<void> {
  const hub = await startHub(override);
  const cacheDir = mkdtempSync(join(tmpdir(), "underhood-hub-"));
  try {
    await fn(hub, cacheDir);
  } finally {
    await hub.close();
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

/** Lists every file under `dir`, relative to it, sorted. */
function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const visit = (sub: string) => {
    for (const name of readdirSync(join(dir, sub)).sort()) {
      const rel = sub ? `${sub}/${name}` : name;
      if (statSync(join(dir, rel)).isDirectory()) visit(rel);
      else out.push(rel);
    }
  };
  visit("");
  return out;
}

/** Returns the logits of `ids` (default IDS) from a model, then disposes the model. */
async function logitsOf(modelPromise: ReturnType<typeof loadModel>, ids: number[] = IDS): Promise<Float32Array> {
  const model = await modelPromise;
  try {
    const logits = model.forward(ids);
    const values = logits.dataSync() as Float32Array;
    logits.dispose();
    return values;
  } finally {
    model.dispose();
  }
}

function assertSameBytes(actual: Uint8Array, expected: Uint8Array, label: string): void {
  assertEquals(actual.length, expected.length, `${label}: length`);
  assertEquals(sha256(actual), sha256(expected), `${label}: sha256`);
}

test("hub download loads and matches directory", async () => {
  await withHub(undefined, async (hub, cacheDir) => {
    const events: ModelLoadProgress[] = [];
    const fromHub = await logitsOf(
      loadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir, onProgress: (p) => events.push(p) }),
    );
    const fromDir = await logitsOf(loadModel(fixture("gpt2-tiny-f16")));
    assertEquals(fromHub.length, fromDir.length);
    assert(fromHub.every((v, i) => Object.is(v, fromDir[i])), "logits from the hub differ from the directory's");

    const dir = join(cacheDir, "test-org--tiny-f16", "main");
    assertEquals(listFiles(cacheDir), [
      "test-org--tiny-f16/main/config.json",
      "test-org--tiny-f16/main/model.safetensors",
    ]);
    assertSameBytes(new Uint8Array(readFileSync(join(dir, "model.safetensors"))), TINY_WEIGHTS, "cached weights");
    assertEquals(hub.requests, [
      "/test-org/tiny-f16/resolve/main/config.json -",
      "/test-org/tiny-f16/resolve/main/model.safetensors -",
    ]);

    const downloads = events.filter((e): e is DownloadProgress => e.phase === "download");
    const lastWeights = downloads.filter((e) => e.file === "model.safetensors").at(-1);
    assertEquals(lastWeights, {
      phase: "download",
      file: "model.safetensors",
      loaded: TINY_WEIGHTS.length,
      total: TINY_WEIGHTS.length,
    });
    assert(downloads.some((e) => e.file === "config.json"), "no progress for config.json");
    assert(events.some((e) => e.phase === "read" && e.file === "model.safetensors"), "no read progress");
    assert(
      events.findIndex((e) => e.phase === "read") > events.findIndex((e) => e.phase === "download"),
      "read before download",
    );

    // A second load is served from the cache with no request.
    const again = await logitsOf(loadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir }));
    assertEquals(hub.requests.length, 2, "a cached model was requested again");
    assert(again.every((v, i) => Object.is(v, fromDir[i])), "logits from the cache differ");
  });
});

test("hub URL and sharded checkpoint", async () => {
  await withHub(undefined, async (hub, cacheDir) => {
    const ids = [5, 63, 0, 17];
    const fromHub = await logitsOf(loadModel(`${hub.baseUrl}/${SHARDED_REPO}/tree/main`, { cacheDir }), ids);
    const fromDir = await logitsOf(loadModel(fixture("gpt2-micro-sharded")), ids);
    assertEquals(fromHub.length, ids.length * 64);
    assert(fromHub.every((v, i) => Object.is(v, fromDir[i])), "sharded logits differ");
    // model.safetensors is tried first, then the index and its shards.
    assertEquals(hub.requests.slice(0, 3).map((r) => r.split(" ")[0]!.split("/").at(-1)), [
      "config.json",
      "model.safetensors",
      "model.safetensors.index.json",
    ]);
    const cached = listFiles(join(cacheDir, "test-org--micro-sharded", "main"));
    assertEquals(cached.length, 10, `cached files: ${cached.join(", ")}`);
  });
});

test("hub 404 is a DownloadError", async () => {
  await withHub(undefined, async (hub, cacheDir) => {
    const error = await assertThrows(
      () => loadModel("test-org/missing", { baseUrl: hub.baseUrl, cacheDir }),
      DownloadError,
      [
        "test-org/missing is not a local path",
        `${hub.baseUrl}/test-org/missing/resolve/main/config.json`,
        "404",
        "not found",
        "repo name",
      ],
    );
    assertEquals((error as DownloadError).status, 404);
    assertEquals(error.name, "DownloadError");
    assertEquals(listFiles(cacheDir), []);
  });
});

test("hub without safetensors names the fix", async () => {
  const override: Override = (_req, res, info) => {
    if (info.file !== "config.json") return false;
    serveFile(res, { ...info, bytes: REPOS[TINY_REPO]!.get("config.json") });
    return true;
  };
  await withHub(override, async (hub, cacheDir) => {
    await assertThrows(
      () => downloadModel("test-org/pickle-only", { baseUrl: hub.baseUrl, cacheDir }),
      DownloadError,
      ["neither model.safetensors nor model.safetensors.index.json", "pytorch_model.bin", "convert"],
    );
    assert(!hub.requests.some((r) => r.includes("pytorch_model.bin")), "pytorch_model.bin was requested");
  });
});

/** Sends the first `cut` bytes of the file on the first request, then drops the connection. */
function dropFirstRequest(cut: number): Override {
  return (_req, res, info) => {
    if (info.file !== "model.safetensors" || info.seen > 0) return false;
    res.writeHead(200, {
      "content-type": "application/octet-stream",
      "content-length": String(TINY_WEIGHTS.length),
      "x-linked-etag": `"${sha256(TINY_WEIGHTS)}"`,
    });
    res.write(TINY_WEIGHTS.subarray(0, cut));
    setTimeout(() => res.destroy(), 100);
    return true;
  };
}

test("dropped download resumes with Range", async () => {
  const cut = 1_000_000;
  await withHub(dropFirstRequest(cut), async (hub, cacheDir) => {
    const dir = await downloadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir });
    assertSameBytes(new Uint8Array(readFileSync(join(dir, "model.safetensors"))), TINY_WEIGHTS, "resumed file");
    const weightRequests = hub.requests.filter((r) => r.includes("model.safetensors"));
    assertEquals(weightRequests.length, 2, weightRequests.join("; "));
    const resumedAt = Number(/bytes=(\d+)-/.exec(weightRequests[1]!)?.[1]);
    assert(resumedAt > 0, `resumed with ${weightRequests[1]}, expected bytes=N- with N > 0`);
    assert(resumedAt <= cut, `resumed at byte ${resumedAt}, after the ${cut} bytes sent`);
    assertEquals(listFiles(dir), ["config.json", "model.safetensors"]);
  });
});

test("dropped download resumes next call", async () => {
  await withHub(dropFirstRequest(1_500_000), async (hub, cacheDir) => {
    const options = { baseUrl: hub.baseUrl, cacheDir, retries: 0 };
    const error = await assertThrows(() => downloadModel(TINY_REPO, options), DownloadError, [
      "model.safetensors",
      "partial file",
      "resumes",
    ]);
    assert((error as DownloadError).retryable, "a dropped connection must be retryable");
    const dir = repoCacheDir(TINY_REPO, "main", cacheDir);
    assert(!existsSync(join(dir, "model.safetensors")), "a partial download was renamed into place");
    const partSize = statSync(join(dir, "model.safetensors.part")).size;
    assert(partSize > 0, "the part file is empty");
    assert(partSize < TINY_WEIGHTS.length, `part size ${partSize} is the whole file`);

    await downloadModel(TINY_REPO, options);
    assertEquals(hub.requests.at(-1), `/test-org/tiny-f16/resolve/main/model.safetensors bytes=${partSize}-`);
    assertSameBytes(new Uint8Array(readFileSync(join(dir, "model.safetensors"))), TINY_WEIGHTS, "resumed file");
    assert(!existsSync(join(dir, "model.safetensors.part")), "the part file was left behind");
  });
});

test("server ignoring Range restarts", async () => {
  const override: Override = (req, res, info) => {
    if (info.file !== "model.safetensors") return false;
    if (info.seen === 0) return dropFirstRequest(800_000)(req, res, info);
    serveFile(res, { ...info, rangeStart: undefined }); // returns 200 with the whole file
    return true;
  };
  await withHub(override, async (hub, cacheDir) => {
    const dir = await downloadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir });
    assertSameBytes(new Uint8Array(readFileSync(join(dir, "model.safetensors"))), TINY_WEIGHTS, "restarted file");
  });
});

test("HTML page instead of file", async () => {
  const page = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Log in to continue</body></html>\n";
  const cases: Array<{ label: string; override: Override; includes: string[] }> = [
    {
      label: "text/html weights",
      override: (_req, res, info) => {
        if (info.file !== "model.safetensors") return false;
        res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
        res.end(page);
        return true;
      },
      includes: ["model.safetensors", "HTML page", "content-type text/html"],
    },
    {
      label: "HTML body as octet-stream",
      override: (_req, res, info) => {
        if (info.file !== "model.safetensors") return false;
        res.writeHead(200, { "content-type": "application/octet-stream" });
        res.end(page);
        return true;
      },
      includes: ["model.safetensors", "HTML page", "HTML tag"],
    },
    {
      label: "HTML config without content-type",
      override: (_req, res, info) => {
        if (info.file !== "config.json") return false;
        res.writeHead(200, {});
        res.end("  <html>Not here</html>");
        return true;
      },
      includes: ["config.json", "HTML page"],
    },
  ];
  for (const { label, override, includes } of cases) {
    await withHub(override, async (hub, cacheDir) => {
      const error = await assertThrows(
        () => downloadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir }),
        DownloadError,
        [
          hub.baseUrl,
          ...includes,
        ],
      );
      assert(!(error as DownloadError).retryable, `${label}: an HTML page must not be retried`);
      const left = listFiles(cacheDir).filter((f) => !f.endsWith("config.json"));
      assertEquals(left.filter((f) => !f.endsWith(".part")), [], `${label}: files left in the cache`);
    });
  }
});

test("Git LFS pointer instead of file", async () => {
  const pointer = "version https://git-lfs.github.com/spec/v1\n" +
    `oid sha256:${sha256(TINY_WEIGHTS)}\nsize ${TINY_WEIGHTS.length}\n`;
  const override: Override = (_req, res, info) => {
    if (info.file !== "model.safetensors") return false;
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "content-length": String(pointer.length) });
    res.end(pointer);
    return true;
  };
  await withHub(override, async (hub, cacheDir) => {
    await assertThrows(() => downloadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir }), DownloadError, [
      "Git LFS pointer",
      `${TINY_WEIGHTS.length}-byte file`,
      "model.safetensors",
      "git lfs pull",
    ]);
    assert(!existsSync(join(repoCacheDir(TINY_REPO, "main", cacheDir), "model.safetensors")), "pointer was cached");
  });
});

test("stalled server times out", async () => {
  const cases: Array<{ label: string; override: (hub: () => HubServer) => Override; includes: string[] }> = [
    {
      label: "stall mid-body",
      override: (hub) => (_req, res, info) => {
        if (info.file !== "model.safetensors") return false;
        res.writeHead(200, {
          "content-type": "application/octet-stream",
          "content-length": String(TINY_WEIGHTS.length),
        });
        res.write(TINY_WEIGHTS.subarray(0, 4096));
        hub().hold(res);
        return true;
      },
      includes: ["timed out", "500 ms", "timeoutMs"],
    },
    {
      label: "stall before headers",
      override: (hub) => (_req, res, info) => {
        if (info.file !== "config.json") return false;
        hub().hold(res);
        return true;
      },
      includes: ["timed out", "500 ms", "waiting for the response"],
    },
  ];
  for (const { label, override, includes } of cases) {
    let server: HubServer | undefined;
    await withHub(override(() => server!), async (hub, cacheDir) => {
      server = hub;
      const started = performance.now();
      const error = await assertThrows(
        () => downloadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir, timeoutMs: 500, retries: 1 }),
        DownloadError,
        includes,
      );
      const seconds = (performance.now() - started) / 1000;
      assert(seconds < 5, `${label}: took ${seconds.toFixed(1)} s`);
      assert((error as DownloadError).retryable, `${label}: a timeout must be retryable`);
      const file = label === "stall before headers" ? "config.json" : "model.safetensors";
      assertEquals(hub.requests.filter((r) => r.includes(file)).length, 2, `${label}: one try and one retry`);
    });
  }
});

test("sha256 mismatch deletes the file", async () => {
  const wrong = sha256(new TextEncoder().encode("something else"));
  const override: Override = (_req, res, info) => {
    if (info.file !== "model.safetensors") return false;
    serveFile(res, info, { "x-linked-etag": `"${wrong}"` });
    return true;
  };
  await withHub(override, async (hub, cacheDir) => {
    await assertThrows(() => downloadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir }), DownloadError, [
      "model.safetensors",
      `sha256 ${sha256(TINY_WEIGHTS)}`,
      `announced ${wrong}`,
      "deleted",
    ]);
    const dir = repoCacheDir(TINY_REPO, "main", cacheDir);
    assertEquals(listFiles(dir), ["config.json"]);
  });
});

test("size mismatch is rejected", async () => {
  const override: Override = (_req, res, info) => {
    if (info.file !== "model.safetensors") return false;
    serveFile(res, info, { "x-linked-size": String(TINY_WEIGHTS.length + 1) });
    return true;
  };
  await withHub(override, async (hub, cacheDir) => {
    await assertThrows(() => downloadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir }), DownloadError, [
      `sends ${TINY_WEIGHTS.length} bytes`,
      `announced ${TINY_WEIGHTS.length + 1} bytes`,
    ]);
  });
});

test("offline mode uses the cache", async () => {
  await withHub(undefined, async (hub, cacheDir) => {
    // Empty cache: the error names the missing file, and nothing is requested.
    const dir = repoCacheDir(TINY_REPO, "main", cacheDir);
    await assertThrows(
      () => loadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir, offline: true }),
      DownloadError,
      ["config.json", dir, "offline mode is on", "offline option"],
    );
    assertEquals(hub.requests, []);

    // Only config.json cached: the weights are named.
    await downloadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir });
    rmSync(join(dir, "model.safetensors"));
    await assertThrows(
      () => downloadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir, offline: true }),
      DownloadError,
      ["model.safetensors", "not in the cache"],
    );

    // Full cache: loads with the server closed, also through UNDERHOOD_OFFLINE.
    await downloadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir });
    const before = hub.requests.length;
    const failingFetch = (() => Promise.reject(new Error("no network in offline mode"))) as typeof fetch;
    const logits = await logitsOf(
      loadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir, offline: true, fetch: failingFetch }),
    );
    assertEquals(logits.length, IDS.length * 50257);

    const saved = process.env["UNDERHOOD_OFFLINE"];
    process.env["UNDERHOOD_OFFLINE"] = "1";
    try {
      await downloadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir, fetch: failingFetch });
      await assertThrows(() => downloadModel("test-org/other", { baseUrl: hub.baseUrl, cacheDir }), DownloadError, [
        "config.json",
        "UNDERHOOD_OFFLINE",
      ]);
      process.env["UNDERHOOD_OFFLINE"] = "maybe";
      await assertThrows(() => downloadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir }), RangeError, [
        "UNDERHOOD_OFFLINE",
        '"maybe"',
      ]);
    } finally {
      if (saved === undefined) delete process.env["UNDERHOOD_OFFLINE"];
      else process.env["UNDERHOOD_OFFLINE"] = saved;
    }
    assertEquals(hub.requests.length, before, "offline mode made requests");
  });
});

test("repo names cannot escape the cache", async () => {
  const root = mkdtempSync(join(tmpdir(), "underhood-escape-"));
  const cacheDir = join(root, "cache");
  const calls: string[] = [];
  const recordingFetch = ((url: string) => {
    calls.push(String(url));
    return Promise.reject(new Error("unexpected request"));
  }) as typeof fetch;
  try {
    const bad = [
      "../evil",
      "owner/../../evil",
      "..",
      "owner/..",
      "/etc/passwd",
      "/abs/name",
      "a/b/c",
      "C:\\evil",
      "owner\\..\\evil",
      ".hidden",
      "owner/.git",
      "a--b",
      "owner/",
      "",
      "name with space",
      "x".repeat(97),
    ];
    for (const repo of bad) {
      await assertThrows(() => downloadModel(repo, { cacheDir, fetch: recordingFetch }), RangeError, [
        `Invalid repo name ${JSON.stringify(repo)}`,
      ]);
      await assertThrows(() => validateRepoName(repo), RangeError, ["owner/name"]);
    }
    await assertThrows(() => repoCacheDir("gpt2", "../main", cacheDir), RangeError, ["Invalid revision"]);
    await assertThrows(
      () => downloadModel("gpt2", { cacheDir, revision: "../../x", fetch: recordingFetch }),
      RangeError,
      ["Invalid revision"],
    );

    // loadModel reads path-like names as paths; a missing one is a CheckpointError, not a download.
    for (const source of ["../evil-underhood-missing", "owner/../../evil", "/no/such/underhood/dir"]) {
      await assertThrows(() => loadModel(source, { cacheDir, fetch: recordingFetch }), CheckpointError, [
        source,
        "not found",
      ]);
    }
    assertEquals(calls, []);
    assertEquals(readdirSync(root), [], "something was written next to the cache directory");

    for (const good of ["gpt2", "openai-community/gpt2", "a.b_c-d/E9"]) {
      assertEquals(validateRepoName(good), good);
      const dir = repoCacheDir(good, "main", cacheDir);
      assert(dir.startsWith(cacheDir + (cacheDir.includes("\\") ? "\\" : "/")), `${dir} is outside ${cacheDir}`);
      assertEquals(dirname(dirname(dir)), cacheDir);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("redirect to a disallowed host", async () => {
  const cases: Array<{ location: (base: string) => string; includes: string[] }> = [
    { location: () => "https://evil.example/model.safetensors", includes: ["evil.example is not an allowed host"] },
    { location: (base) => base.replace("127.0.0.1", "localhost") + "/x", includes: ["it is not https"] },
    { location: () => "http://cdn-lfs.huggingface.co/x", includes: ["it is not https"] },
    { location: () => "file:///etc/passwd", includes: ["it is not https"] },
  ];
  for (const { location, includes } of cases) {
    const calls: string[] = [];
    const recordingFetch = ((url: string, init?: RequestInit) => {
      calls.push(String(url));
      return fetch(url, init);
    }) as typeof fetch;
    let base = "";
    const override: Override = (_req, res, info) => {
      if (info.file !== "model.safetensors") return false;
      res.writeHead(302, { location: location(base) });
      res.end();
      return true;
    };
    await withHub(override, async (hub, cacheDir) => {
      base = hub.baseUrl;
      await assertThrows(
        () => downloadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir, fetch: recordingFetch }),
        DownloadError,
        ["Refused to follow the redirect", location(base), "allowedHosts", ...includes],
      );
      assert(calls.every((url) => url.startsWith(hub.baseUrl)), `requests left the base URL: ${calls.join(", ")}`);
    });
  }
});

test("same-origin redirect is followed", async () => {
  const override: Override = (_req, res, info) => {
    if (info.file === "model.safetensors") {
      res.writeHead(302, { location: `/lfs/${sha256(TINY_WEIGHTS)}`, "x-linked-etag": `"${sha256(TINY_WEIGHTS)}"` });
      res.end();
      return true;
    }
    if (info.path.startsWith("/lfs/")) {
      serveFile(res, { ...info, file: "blob", bytes: TINY_WEIGHTS });
      return true;
    }
    return false;
  };
  await withHub(override, async (hub, cacheDir) => {
    const dir = await downloadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir });
    assertSameBytes(new Uint8Array(readFileSync(join(dir, "model.safetensors"))), TINY_WEIGHTS, "redirected file");
    assertEquals(hub.requests.at(-1), `/lfs/${sha256(TINY_WEIGHTS)} -`);
  });
});

/** A fake huggingface.co: serves the tiny fixture as "gpt2" and redirects weights to its CDN. */
function fakeHuggingFace(cdnHost: string, calls: string[]): typeof fetch {
  const files = REPOS[TINY_REPO]!;
  return ((input: string, init?: RequestInit) => {
    const url = new URL(String(input));
    calls.push(url.href);
    assertEquals(init?.redirect, "manual", "requests must not follow redirects on their own");
    const resolveMatch = /^\/gpt2\/resolve\/main\/(.+)$/.exec(url.pathname);
    if (url.hostname === "huggingface.co" && resolveMatch?.[1] === "model.safetensors") {
      return Promise.resolve(
        new Response(null, {
          status: 302,
          headers: { location: `https://${cdnHost}/repos/ab/cd/blob`, "x-linked-etag": `"${sha256(TINY_WEIGHTS)}"` },
        }),
      );
    }
    if (url.hostname === "huggingface.co" && resolveMatch?.[1] === "config.json") {
      return Promise.resolve(
        new Response(new Uint8Array(files.get("config.json")!), { status: 200, headers: { etag: '"1234abcd"' } }),
      );
    }
    if (url.hostname === cdnHost) {
      return Promise.resolve(
        new Response(new Uint8Array(TINY_WEIGHTS), {
          status: 200,
          headers: { "content-length": String(TINY_WEIGHTS.length), etag: `"${"0".repeat(64)}"` },
        }),
      );
    }
    return Promise.resolve(new Response("Entry not found", { status: 404 }));
  }) as typeof fetch;
}

test("gpt2 from huggingface.co and its CDN", async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), "underhood-hf-"));
  try {
    const calls: string[] = [];
    const model = await loadModel("gpt2", { cacheDir, fetch: fakeHuggingFace("cdn-lfs.huggingface.co", calls) });
    model.dispose();
    assertEquals(calls, [
      "https://huggingface.co/gpt2/resolve/main/config.json",
      "https://huggingface.co/gpt2/resolve/main/model.safetensors",
      "https://cdn-lfs.huggingface.co/repos/ab/cd/blob",
    ]);
    assertSameBytes(
      new Uint8Array(readFileSync(join(cacheDir, "gpt2", "main", "model.safetensors"))),
      TINY_WEIGHTS,
      "gpt2",
    );

    for (const host of ["cdn-lfs-us-1.huggingface.co", "cas-bridge.xethub.hf.co", "us.aws.cdn.hf.co", "hf.co"]) {
      const hostCalls: string[] = [];
      await downloadModel("gpt2", { cacheDir: join(cacheDir, host), fetch: fakeHuggingFace(host, hostCalls) });
      assertEquals(hostCalls.at(-1), `https://${host}/repos/ab/cd/blob`);
    }

    for (const host of ["cdn.evil.example", "hf.co.evil.example", "evilhf.co", "huggingface.co.evil.example"]) {
      const evilCalls: string[] = [];
      await assertThrows(
        () => downloadModel("gpt2", { cacheDir: join(cacheDir, host), fetch: fakeHuggingFace(host, evilCalls) }),
        DownloadError,
        [`${host} is not an allowed host`, "*.hf.co"],
      );
      assertEquals(evilCalls.length, 2, `requests for ${host}: ${evilCalls.join(", ")}`);
    }

    const allowed: string[] = [];
    await downloadModel("gpt2", {
      cacheDir: join(cacheDir, "allowed"),
      allowedHosts: ["*.mirror.example"],
      fetch: fakeHuggingFace("cdn.mirror.example", allowed),
    });
    assertEquals(allowed.at(-1), "https://cdn.mirror.example/repos/ab/cd/blob");
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
});

test("hub options are checked", async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), "underhood-opts-"));
  try {
    const cases: Array<[Record<string, unknown>, string[]]> = [
      [{ baseUrl: "http://example.com" }, ["Invalid baseUrl", "https"]],
      [{ baseUrl: "ftp://127.0.0.1" }, ["Invalid baseUrl"]],
      [{ baseUrl: "not a url" }, ["Invalid baseUrl"]],
      [{ timeoutMs: 0 }, ["Invalid timeoutMs 0", "positive"]],
      [{ timeoutMs: Number.NaN }, ["Invalid timeoutMs NaN"]],
      [{ retries: -1 }, ["Invalid retries -1"]],
      [{ retries: 1.5 }, ["Invalid retries 1.5"]],
      [{ revision: "refs/pr/1" }, ["Invalid revision", '"/"']],
      [{ cacheDir: "" }, ["Invalid cacheDir"]],
      [{ allowedHosts: ["https://cdn.example.com"] }, ["Invalid allowedHosts"]],
      [{ allowedHosts: "cdn.example.com" }, ["Invalid allowedHosts"]],
    ];
    for (const [options, includes] of cases) {
      await assertThrows(() => downloadModel("gpt2", { cacheDir, ...options }), RangeError, includes);
    }
    await assertThrows(
      () => loadModel("http://127.0.0.1:9/a/b", { baseUrl: "http://127.0.0.1:10" }),
      RangeError,
      ["Conflicting hub addresses"],
    );
    await assertThrows(() => loadModel("https://huggingface.co/a/b/c/d"), RangeError, ["Invalid model URL"]);
    await assertThrows(() => loadModel("http://example.com/gpt2"), RangeError, ["Invalid baseUrl"]);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
});

test("parseHubUrl and defaultCacheDir", () => {
  assertEquals(parseHubUrl("https://huggingface.co/openai-community/gpt2"), {
    baseUrl: "https://huggingface.co",
    repo: "openai-community/gpt2",
  });
  assertEquals(parseHubUrl("https://huggingface.co/gpt2/tree/v1.0"), {
    baseUrl: "https://huggingface.co",
    repo: "gpt2",
    revision: "v1.0",
  });
  assertEquals(parseHubUrl("http://127.0.0.1:8080/o/n/resolve/abc123/"), {
    baseUrl: "http://127.0.0.1:8080",
    repo: "o/n",
    revision: "abc123",
  });

  assertEquals(defaultCacheDir({ UNDERHOOD_CACHE: "/tmp/uh", XDG_CACHE_HOME: "/tmp/xdg" }), "/tmp/uh");
  assertEquals(defaultCacheDir({ XDG_CACHE_HOME: "/tmp/xdg" }), join("/tmp/xdg", "underhood"));
  assert(defaultCacheDir({}).endsWith(join(".cache", "underhood")), defaultCacheDir({}));
});

test("short body and stale part", async () => {
  // A body shorter than Content-Length must not be renamed into place.
  const override: Override = (_req, res, info) => {
    if (info.file !== "config.json" || info.seen > 0) return false;
    const bytes = info.bytes!;
    res.writeHead(200, { "content-length": String(bytes.length) });
    res.write(bytes.subarray(0, 100));
    setTimeout(() => res.destroy(), 50);
    return true;
  };
  await withHub(override, async (hub, cacheDir) => {
    await assertThrows(
      () => downloadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir, retries: 0 }),
      DownloadError,
      ["config.json", "partial file"],
    );
    const dir = repoCacheDir(TINY_REPO, "main", cacheDir);
    assertEquals(listFiles(dir), ["config.json.part"]);

    // A stale part longer than the file gets 416, is deleted, and the retry starts over.
    writeFileSync(join(dir, "config.json.part"), "stale bytes ".repeat(200));
    await downloadModel(TINY_REPO, { baseUrl: hub.baseUrl, cacheDir, retries: 1 });
    const configRequests = hub.requests.filter((r) => r.includes("config.json"));
    assertEquals(configRequests.slice(1), [
      "/test-org/tiny-f16/resolve/main/config.json bytes=2400-",
      "/test-org/tiny-f16/resolve/main/config.json -",
    ]);
    assertSameBytes(
      new Uint8Array(readFileSync(join(dir, "config.json"))),
      REPOS[TINY_REPO]!.get("config.json")!,
      "config",
    );
    assertEquals(listFiles(dir), ["config.json", "model.safetensors"]);
  });
});
