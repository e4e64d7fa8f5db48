/**
 * Checkpoint files read over HTTP with `fetch`, for browsers (and any runtime with fetch).
 *
 * Weight files are read with HTTP Range requests when the server supports them, so only the
 * header and then one tensor at a time is in flight. A server that ignores Range gets one
 * plain GET, and the whole file is kept in memory.
 */
import { CheckpointError, type CheckpointFiles } from "../checkpoint.ts";
import { bytesSource, type ByteSource } from "../safetensors.ts";

/** Options for {@link urlFiles}. */
export interface UrlFilesOptions {
  /** The fetch function to use (default: `globalThis.fetch`). */
  fetch?: typeof fetch;
}

/**
 * Returns read access to the checkpoint files under a base URL, such as
 * `https://example.org/models/default/`.
 *
 * @param baseUrl The URL of the checkpoint "directory". A missing trailing slash is added.
 * @throws {TypeError} When `baseUrl` is not an absolute URL or fetch is not available.
 */
export function urlFiles(baseUrl: string | URL, options: UrlFilesOptions = {}): CheckpointFiles {
  const fetchFn = options.fetch ?? globalThis.fetch;
  if (typeof fetchFn !== "function") {
    throw new TypeError("Cannot read a checkpoint over HTTP: fetch is not available. Pass options.fetch.");
  }
  const base = directoryUrl(baseUrl);
  const urlOf = (name: string): string => fileUrl(base, name);

  return {
    location: base.href,
    path: urlOf,
    async readText(name) {
      const url = urlOf(name);
      const response = await request(fetchFn, url, {});
      if (response.status === 404 || response.status === 410) return null;
      checkStatus(response, url, [200]);
      return await response.text();
    },
    async open(name) {
      return await openUrl(fetchFn, urlOf(name));
    },
    async exists(name) {
      const url = urlOf(name);
      const response = await request(fetchFn, url, { method: "HEAD" });
      return response.ok;
    },
  };
}

/** Parses `baseUrl` as a directory URL: absolute, with a trailing slash and no query or fragment. */
function directoryUrl(baseUrl: string | URL): URL {
  let url: URL;
  try {
    url = new URL(String(baseUrl));
  } catch (error) {
    throw new TypeError(
      `Invalid checkpoint URL ${JSON.stringify(String(baseUrl))}: expected an absolute URL such as ` +
        `"https://example.org/models/default/". In a page, resolve a relative one with new URL(path, location.href).`,
      { cause: error },
    );
  }
  url.search = "";
  url.hash = "";
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url;
}

/**
 * Resolves a file name inside the base URL. Each path segment is percent-encoded, so `?`, `#`
 * and `%` in a name stay part of the file name. src/checkpoint.ts rejects `..` segments and
 * absolute names before they reach here.
 */
function fileUrl(base: URL, name: string): string {
  const encoded = name.split("/").map((segment) => encodeURIComponent(segment)).join("/");
  return new URL(encoded, base).href;
}

/** Sends one request; a network failure becomes a CheckpointError that names the URL. */
async function request(fetchFn: typeof fetch, url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetchFn(url, init);
  } catch (error) {
    throw new CheckpointError(`Cannot fetch ${url}: ${(error as Error).message}. Check the URL and the server.`, {
      cause: error,
    });
  }
}

function checkStatus(response: Response, url: string, expected: number[]): void {
  if (!expected.includes(response.status)) {
    throw new CheckpointError(
      `Cannot fetch ${url}: the server responded with HTTP ${response.status} ${response.statusText}`.trimEnd() +
        `, expected ${expected.join(" or ")}.`,
    );
  }
}

/**
 * Opens a remote file for random access. A first request for byte 0 learns the size from
 * Content-Range (status 206). A server that sends the whole file (status 200) instead is read
 * once into memory.
 */
async function openUrl(fetchFn: typeof fetch, url: string): Promise<ByteSource | null> {
  const probe = await request(fetchFn, url, { headers: { Range: "bytes=0-0" } });
  if (probe.status === 404 || probe.status === 410) return null;
  if (probe.status === 200) return bytesSource(new Uint8Array(await probe.arrayBuffer()), url);
  if (probe.status === 416) return bytesSource(new Uint8Array(0), url); // an empty file has no byte 0
  checkStatus(probe, url, [200, 206]);
  await probe.arrayBuffer();
  const size = contentRangeTotal(probe);
  if (size === null) {
    // A cross-origin server may support ranges but not expose Content-Range to scripts
    // (Access-Control-Expose-Headers), so without the size, read the whole file once.
    const whole = await request(fetchFn, url, {});
    checkStatus(whole, url, [200]);
    return bytesSource(new Uint8Array(await whole.arrayBuffer()), url);
  }

  return {
    size,
    name: url,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
        throw new RangeError(`${url}: invalid read of ${length} bytes at offset ${offset}`);
      }
      if (offset + length > size) {
        throw new RangeError(`${url}: cannot read ${length} bytes at offset ${offset}: the file has only ${size} bytes`);
      }
      if (length === 0) return new Uint8Array(0);

      const response = await request(fetchFn, url, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
      checkStatus(response, url, [206]);
      const total = contentRangeTotal(response);
      if (total !== size) {
        throw new CheckpointError(
          total === null
            ? `${url}: the server responded to a range request without a valid Content-Range header. Load the model again.`
            : `${url}: the file changed while it was read (its size went from ${size} to ${total} bytes). ` +
              `Load the model again.`,
        );
      }
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (bytes.length !== length) {
        throw new CheckpointError(
          `${url}: a range request for ${length} bytes at offset ${offset} returned ${bytes.length} bytes. ` +
            `The server may compress ranges; serve the file without Content-Encoding.`,
        );
      }
      return bytes;
    },
  };
}

/** Returns the total size from a `Content-Range: bytes a-b/size` header, or null without one. */
function contentRangeTotal(response: Response): number | null {
  const header = response.headers.get("Content-Range") ?? "";
  const match = /^bytes \d+-\d+\/(\d+)$/.exec(header.trim());
  return match === null ? null : Number(match[1]);
}
