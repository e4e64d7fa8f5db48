/**
 * Serves the browser example on 127.0.0.1: builds dist/browser/ first, then serves the page,
 * the bundle and the models read-only, with HTTP Range support for the weight files.
 *
 * Usage: npx tsx examples/browser/serve.ts [--port N] [--no-build]
 * (`npm run serve:browser` runs it), then open http://127.0.0.1:8787/.
 *
 * Only GET and HEAD requests for files under examples/browser/, dist/browser/ and models/ are
 * answered; everything else gets 404 or 405.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, extname, join, resolve, sep } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { buildBrowser } from "../../scripts/build-browser.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** URL path prefixes that are served, each mapped to the same path under the repository root. */
const SERVED_PREFIXES = ["/examples/browser/", "/dist/browser/", "/models/"];

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".md": "text/plain; charset=utf-8",
  ".safetensors": "application/octet-stream",
};

/** A running example server. */
export interface ExampleServer {
  /** The server's base URL, such as `http://127.0.0.1:8787/`. */
  url: string;
  server: Server;
  /** Stops accepting connections and closes the open ones. */
  close(): Promise<void>;
}

/**
 * Starts the static server on 127.0.0.1.
 *
 * @param options.port TCP port; 0 (default) picks a free one.
 * @param options.root Directory the URL paths map to (default: the repository root).
 */
export async function startServer(options: { port?: number; root?: string } = {}): Promise<ExampleServer> {
  const root = resolve(options.root ?? ROOT);
  const server = createServer((request, response) => {
    handle(root, request, response).catch((error: unknown) => {
      console.error(`serve: ${request.method} ${request.url} failed: ${(error as Error).message}`);
      if (!response.headersSent) send(response, 500, "Internal server error\n");
      else response.destroy();
    });
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolveListen());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    server,
    close: () =>
      new Promise<void>((resolveClose) => {
        server.closeAllConnections();
        server.close(() => resolveClose());
      }),
  };
}

async function handle(root: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    response.setHeader("Allow", "GET, HEAD");
    send(response, 405, "Only GET and HEAD are allowed\n");
    return;
  }
  const pathname = decodedPath(request.url ?? "/");
  if (pathname === "/") {
    response.writeHead(302, { Location: "/examples/browser/" });
    response.end();
    return;
  }
  const file = pathname === null ? null : servedFile(root, pathname.endsWith("/") ? pathname + "index.html" : pathname);
  const info = file === null ? null : await stat(file).catch(() => null);
  if (file === null || info === null || !info.isFile()) {
    send(response, 404, "Not found\n");
    return;
  }

  const size = info.size;
  const headers: Record<string, string | number> = {
    "Content-Type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
    "Accept-Ranges": "bytes",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
  };
  const range = parseRange(request.headers.range, size);
  if (range === "invalid") {
    response.writeHead(416, { ...headers, "Content-Range": `bytes */${size}` });
    response.end();
    return;
  }
  const [start, end] = range ?? [0, size - 1];
  const length = size === 0 ? 0 : end - start + 1;
  if (range !== null) headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
  response.writeHead(range !== null ? 206 : 200, { ...headers, "Content-Length": length });
  if (request.method === "HEAD" || length === 0) {
    response.end();
    return;
  }
  createReadStream(file, { start, end }).on("error", () => response.destroy()).pipe(response);
}

/** Decodes the path of a request URL, or returns null for one that cannot be decoded. */
function decodedPath(url: string): string | null {
  try {
    return decodeURIComponent(new URL(url, "http://127.0.0.1").pathname);
  } catch {
    return null;
  }
}

/** Maps a URL path to a file under `root`, or null when it is outside the served prefixes. */
function servedFile(root: string, pathname: string): string | null {
  if (!SERVED_PREFIXES.some((prefix) => pathname.startsWith(prefix))) return null;
  if (pathname.split("/").some((segment) => segment.startsWith(".")) || pathname.includes("\0")) return null;
  const file = resolve(join(root, pathname));
  return file.startsWith(root + sep) ? file : null;
}

/**
 * Parses a single-range `Range: bytes=a-b` header (also `a-` and `-n`). Returns null when there
 * is none (or it has several ranges, which get the whole file), and "invalid" when it cannot
 * be satisfied.
 */
function parseRange(header: string | undefined, size: number): [number, number] | null | "invalid" {
  if (header === undefined) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return null;
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") return "invalid";
  let start: number;
  let end: number;
  if (first === "") {
    start = Math.max(0, size - Number(last));
    end = size - 1;
  } else {
    start = Number(first);
    end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  }
  if (start >= size || start > end) return "invalid";
  return [start, end];
}

function send(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": Buffer.byteLength(body) });
  response.end(body);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const portIndex = args.indexOf("--port");
  const port = portIndex >= 0 ? Number(args[portIndex + 1]) : 8787;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`Invalid --port ${args[portIndex + 1]}: expected an integer from 0 to 65535.`);
    process.exit(2);
  }
  if (!args.includes("--no-build")) {
    const build = await buildBrowser();
    console.log(`Built ${build.bundle} (${(build.bytes / 1e6).toFixed(2)} MB).`);
  }
  const running = await startServer({ port });
  console.log(`Serving the browser example at ${running.url}examples/browser/ (Ctrl+C stops the server).`);
}
