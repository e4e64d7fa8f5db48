/**
 * Downloads GPT-2 checkpoints from a Hugging Face-style hub into a local cache.
 *
 * Files come from `<baseUrl>/<repo>/resolve/<revision>/<file>` and land in
 * `<cacheDir>/<owner>--<name>/<revision>/<file>`. Each file is written to `<file>.part` in the
 * same directory, checked against its announced size and sha256, and renamed into place, so a
 * file under its final name is always complete. An interrupted download resumes from its
 * `.part` file with an HTTP Range request when the server supports ranges.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { type FileHandle, mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { isAbsolute, join, relative, resolve } from "node:path";
import process from "node:process";
import { CheckpointError } from "./loader.ts";

/**
 * Failure to download a checkpoint file: an HTTP error, a timeout or a dropped connection. It is
 * also thrown for a response that is not the file (an HTML page, a Git LFS pointer), a size or
 * sha256 mismatch, a rejected redirect, and a file missing from the cache in offline mode.
 */
export class DownloadError extends Error {
  /** The URL that failed, when a request was made. */
  readonly url: string | undefined;
  /** The HTTP status, when the server returned an error status. */
  readonly status: number | undefined;
  /** True for failures that a later attempt may not hit (timeouts, drops, 5xx). */
  readonly retryable: boolean;

  constructor(
    message: string,
    options: ErrorOptions & { url?: string; status?: number; retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DownloadError";
    this.url = options.url;
    this.status = options.status;
    this.retryable = options.retryable ?? false;
  }
}

/** Progress of one file download. */
export interface DownloadProgress {
  phase: "download";
  /** File name inside the repository, such as "model.safetensors". */
  file: string;
  /** Bytes of this file on disk so far, including a resumed part. */
  loaded: number;
  /** Size of the file in bytes, or undefined when the server sends no length. */
  total: number | undefined;
}

/** Options for {@link downloadModel}. */
export interface HubOptions {
  /**
   * Cache directory. Default: the UNDERHOOD_CACHE environment variable, else
   * `$XDG_CACHE_HOME/underhood`, else `~/.cache/underhood`.
   */
  cacheDir?: string;
  /** Use only cached files and make no requests. Default: true when UNDERHOOD_OFFLINE is 1. */
  offline?: boolean;
  /** Hub address. Default "https://huggingface.co". Plain http is accepted for 127.0.0.1 and localhost only. */
  baseUrl?: string;
  /** Branch, tag or commit to download. Default "main". */
  revision?: string;
  /**
   * Further hosts that https redirects may lead to: exact names, or `*.example.com` for every
   * subdomain of example.com. The base URL's host is always allowed, and for huggingface.co so
   * are its download hosts ({@link HUGGINGFACE_DOWNLOAD_HOSTS}).
   */
  allowedHosts?: readonly string[];
  /** Milliseconds without any received byte (or without response headers) before a request fails. Default 30,000. */
  timeoutMs?: number;
  /** Further attempts after a timeout, a dropped connection or a 5xx/429 response. Default 2. */
  retries?: number;
  /** The fetch function to use. Default `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch;
  /** Called when a file download starts and after each received chunk. */
  onProgress?: (progress: DownloadProgress) => void;
}

/** The default hub. */
export const DEFAULT_BASE_URL = "https://huggingface.co";

/**
 * Hosts that huggingface.co redirects file downloads to. They include cdn-lfs.huggingface.co,
 * cdn-lfs-us-1.huggingface.co, cas-bridge.xethub.hf.co (Xet storage) and CDN edges such as
 * us.aws.cdn.hf.co, and the set changes over time, so whole domains are allowed.
 */
export const HUGGINGFACE_DOWNLOAD_HOSTS: readonly string[] = ["*.huggingface.co", "hf.co", "*.hf.co"];

const DEFAULT_REVISION = "main";
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 2;
const MAX_REDIRECTS = 10;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const LFS_POINTER_PREFIX = "version https://git-lfs.github.com/spec";
const SHA256_PATTERN = /^[0-9a-f]{64}$/;
const REPO_PART = /^[A-Za-z0-9][\w.-]*$/;
const MAX_REPO_PART_LENGTH = 96;
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * Checks a hub repository name: `name` or `owner/name`, each part starting with a letter or
 * digit and made of letters, digits, `_`, `-` and `.`, at most 96 characters, without `..` or
 * `--`. These rules keep every cache path inside the cache directory: no part can be `..`, a
 * drive letter or an absolute path, and `--` is reserved as the owner/name separator of the
 * cache layout.
 *
 * @returns The name unchanged.
 * @throws {TypeError} When `repo` is not a string.
 * @throws {RangeError} When the name breaks a rule.
 * @example
 * ```ts
 * validateRepoName("openai-community/gpt2"); // "openai-community/gpt2"
 * ```
 */
export function validateRepoName(repo: string): string {
  if (typeof repo !== "string") {
    throw new TypeError(`Invalid repo name: expected a string such as "gpt2" or "owner/name", got ${typeof repo}.`);
  }
  const parts = repo.split("/");
  const valid = parts.length <= 2 &&
    parts.every((part) => REPO_PART.test(part) && part.length <= MAX_REPO_PART_LENGTH) &&
    !repo.includes("..") && !repo.includes("--");
  if (!valid) {
    throw new RangeError(
      `Invalid repo name ${JSON.stringify(repo)}: expected "name" or "owner/name", each part starting with a ` +
        `letter or digit and made of letters, digits, "_", "-" and ".", without ".." or "--". ` +
        `To load a local directory, pass its path to loadModel().`,
    );
  }
  return repo;
}

/** Checks a revision (branch, tag or commit hash), which becomes one directory level in the cache. */
function validateRevision(revision: string): string {
  if (typeof revision !== "string" || !REPO_PART.test(revision) || revision.includes("..") || revision.length > 200) {
    throw new RangeError(
      `Invalid revision ${JSON.stringify(revision)}: expected a branch, tag or commit hash made of letters, ` +
        `digits, "_", "-" and ".", starting with a letter or digit. Revisions containing "/" are not supported.`,
    );
  }
  return revision;
}

/**
 * Returns the cache directory: `UNDERHOOD_CACHE` when set, else `$XDG_CACHE_HOME/underhood`,
 * else `~/.cache/underhood`.
 *
 * @param env The environment to read (default: `process.env`).
 */
export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  if (env["UNDERHOOD_CACHE"]) return resolve(env["UNDERHOOD_CACHE"]);
  if (env["XDG_CACHE_HOME"]) return resolve(env["XDG_CACHE_HOME"], "underhood");
  return join(homedir(), ".cache", "underhood");
}

/**
 * Returns the cache directory of one repository revision, `<cacheDir>/<owner>--<name>/<revision>`.
 *
 * @throws {RangeError} For an invalid repo name or revision.
 */
export function repoCacheDir(repo: string, revision: string, cacheDir: string): string {
  validateRepoName(repo);
  validateRevision(revision);
  const root = resolve(cacheDir);
  const dir = resolve(root, repo.replace("/", "--"), revision);
  assertInside(root, dir);
  return dir;
}

/** Throws unless `path` lies strictly inside `root` (both absolute). */
function assertInside(root: string, path: string): void {
  const rel = relative(root, path);
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
    throw new RangeError(`Refusing to use ${path}: it is not inside the cache directory ${root}.`);
  }
}

/** A hub repository named by a URL such as `https://huggingface.co/owner/name/tree/main`. */
export interface HubReference {
  baseUrl: string;
  repo: string;
  /** Present when the URL names one (`/tree/<revision>` or `/resolve/<revision>`). */
  revision?: string;
}

/**
 * Parses a repository URL: `<origin>/<repo>`, optionally followed by `/tree/<revision>` or
 * `/resolve/<revision>`. The origin becomes the base URL, so a hub served under a path prefix
 * must be given as `baseUrl` plus a repo name instead.
 *
 * @throws {RangeError} When the URL does not have that form, or names an invalid repo.
 * @example
 * ```ts
 * parseHubUrl("https://huggingface.co/openai-community/gpt2");
 * // { baseUrl: "https://huggingface.co", repo: "openai-community/gpt2" }
 * ```
 */
export function parseHubUrl(url: string): HubReference {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new RangeError(`Invalid model URL ${JSON.stringify(url)}: ${(error as Error).message}.`, { cause: error });
  }
  const segments = parsed.pathname.split("/").filter((s) => s !== "");
  let repoSegments = segments;
  let revision: string | undefined;
  const marker = segments.findIndex((s) => s === "tree" || s === "resolve");
  if (marker >= 1 && marker === segments.length - 2) {
    repoSegments = segments.slice(0, marker);
    revision = validateRevision(decodeURIComponent(segments[marker + 1]!));
  }
  if (repoSegments.length < 1 || repoSegments.length > 2 || parsed.search !== "" || parsed.hash !== "") {
    throw new RangeError(
      `Invalid model URL ${JSON.stringify(url)}: expected <origin>/<owner>/<name>, optionally followed by ` +
        `/tree/<revision>, such as https://huggingface.co/openai-community/gpt2.`,
    );
  }
  const repo = validateRepoName(repoSegments.map((s) => decodeURIComponent(s)).join("/"));
  const reference: HubReference = { baseUrl: checkBaseUrl(parsed.origin).origin, repo };
  if (revision !== undefined) reference.revision = revision;
  return reference;
}

/** Parses the base URL and requires https, or http on a loopback host. */
function checkBaseUrl(baseUrl: string): URL {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch (error) {
    throw new RangeError(`Invalid baseUrl ${JSON.stringify(baseUrl)}: ${(error as Error).message}.`, { cause: error });
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname))) {
    throw new RangeError(
      `Invalid baseUrl ${JSON.stringify(baseUrl)}: expected an https URL (plain http only for 127.0.0.1 or ` +
        `localhost), so downloads cannot be altered in transit.`,
    );
  }
  if (url.search !== "" || url.hash !== "") {
    throw new RangeError(`Invalid baseUrl ${JSON.stringify(baseUrl)}: remove the query string or fragment.`);
  }
  return url;
}

/** Reads UNDERHOOD_OFFLINE: 1/true/yes/on turn offline mode on, 0/false/no/off or unset leave it off. */
function offlineFromEnv(env: Record<string, string | undefined>): boolean {
  const value = (env["UNDERHOOD_OFFLINE"] ?? "").trim().toLowerCase();
  if (["", "0", "false", "no", "off"].includes(value)) return false;
  if (["1", "true", "yes", "on"].includes(value)) return true;
  throw new RangeError(
    `Invalid UNDERHOOD_OFFLINE ${JSON.stringify(env["UNDERHOOD_OFFLINE"])}: expected 1 (offline) or 0 (online).`,
  );
}

/** Everything one download run needs, validated. */
interface HubContext {
  repo: string;
  revision: string;
  base: URL;
  dir: string;
  offline: boolean;
  offlineReason: string;
  /** Exact host names and `*.domain` patterns. */
  allowedHosts: string[];
  timeoutMs: number;
  retries: number;
  fetch: typeof globalThis.fetch;
  onProgress: ((progress: DownloadProgress) => void) | undefined;
}

function makeContext(repo: string, options: HubOptions): HubContext {
  validateRepoName(repo);
  const revision = validateRevision(options.revision ?? DEFAULT_REVISION);
  const base = checkBaseUrl(options.baseUrl ?? DEFAULT_BASE_URL);
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  if (typeof cacheDir !== "string" || cacheDir === "") {
    throw new RangeError(`Invalid cacheDir ${JSON.stringify(cacheDir)}: expected a directory path.`);
  }

  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`Invalid timeoutMs ${timeoutMs}: expected a positive number of milliseconds.`);
  }
  const retries = options.retries ?? DEFAULT_RETRIES;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new RangeError(`Invalid retries ${retries}: expected an integer >= 0.`);
  }
  const fetchFn = options.fetch ?? globalThis.fetch;
  if (typeof fetchFn !== "function") {
    throw new TypeError("No fetch function: this runtime has no globalThis.fetch, so pass options.fetch.");
  }

  const extraHosts = options.allowedHosts ?? [];
  if (
    !Array.isArray(extraHosts) || !extraHosts.every((h) => typeof h === "string" && /^(\*\.)?[a-z0-9.-]+$/i.test(h))
  ) {
    throw new RangeError(
      `Invalid allowedHosts ${JSON.stringify(extraHosts)}: expected host names such as "cdn.example.com" or ` +
        `"*.example.com".`,
    );
  }
  const allowedHosts = [base.hostname, ...extraHosts].map((h) => h.toLowerCase());
  if (base.hostname === new URL(DEFAULT_BASE_URL).hostname) allowedHosts.push(...HUGGINGFACE_DOWNLOAD_HOSTS);

  const offline = options.offline ?? offlineFromEnv(process.env);
  return {
    repo,
    revision,
    base,
    dir: repoCacheDir(repo, revision, cacheDir),
    offline,
    offlineReason: options.offline === undefined ? "UNDERHOOD_OFFLINE is set" : "the offline option is true",
    allowedHosts: [...new Set(allowedHosts)],
    timeoutMs,
    retries,
    fetch: fetchFn,
    onProgress: options.onProgress,
  };
}

/**
 * Downloads a GPT-2 checkpoint from the hub into the cache, unless it is cached already, and
 * returns its local directory for `loadCheckpoint`.
 *
 * Fetches config.json, then model.safetensors, or, when the hub has no such file,
 * model.safetensors.index.json and the shards it lists. A file already in the cache is not
 * requested again, so a moving revision such as "main" is not updated: delete its cache
 * directory, or pass a commit hash as `revision`, to get a newer version.
 *
 * @param repo `name` or `owner/name`, such as "openai-community/gpt2".
 * @returns The cache directory that contains the files.
 * @throws {DownloadError} When a file cannot be downloaded, fails its checks, or (offline) is not cached.
 * @throws {CheckpointError} When model.safetensors.index.json is invalid.
 * @throws {RangeError} For an invalid repo name, revision or option.
 * @example
 * ```ts
 * const dir = await downloadModel("openai-community/gpt2", { onProgress: (p) => console.log(p.file, p.loaded) });
 * ```
 */
export async function downloadModel(repo: string, options: HubOptions = {}): Promise<string> {
  const ctx = makeContext(repo, options);
  await fetchFile(ctx, "config.json");

  if (await isFile(join(ctx.dir, "model.safetensors"))) return ctx.dir;
  const indexPath = join(ctx.dir, "model.safetensors.index.json");
  if (!(await isFile(indexPath))) {
    if (ctx.offline) await fetchFile(ctx, "model.safetensors"); // throws, naming the missing file
    try {
      await fetchFile(ctx, "model.safetensors");
      return ctx.dir;
    } catch (error) {
      if (!(error instanceof DownloadError) || error.status !== 404) throw error;
    }
    try {
      await fetchFile(ctx, "model.safetensors.index.json");
    } catch (error) {
      if (!(error instanceof DownloadError) || error.status !== 404) throw error;
      throw new DownloadError(
        `${ctx.repo} (revision ${ctx.revision}) at ${ctx.base.origin} has neither model.safetensors nor ` +
          `model.safetensors.index.json. underhood reads only safetensors checkpoints: if the repository has ` +
          `only pytorch_model.bin, convert it to safetensors first.`,
        { url: error.url, status: 404, cause: error },
      );
    }
  }

  for (const shard of await readShardNames(indexPath)) await fetchFile(ctx, shard);
  return ctx.dir;
}

/** Returns the shard file names listed in an index, each checked to be a plain file name. */
async function readShardNames(indexPath: string): Promise<string[]> {
  let index: unknown;
  try {
    index = JSON.parse(await readFile(indexPath, "utf8"));
  } catch (error) {
    throw new CheckpointError(`${indexPath} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  const weightMap = typeof index === "object" && index !== null && !Array.isArray(index)
    ? (index as Record<string, unknown>)["weight_map"]
    : undefined;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new CheckpointError(`${indexPath}: "weight_map" must be an object mapping tensor names to file names.`);
  }
  const names = new Set<string>();
  for (const [tensor, file] of Object.entries(weightMap)) {
    if (typeof file !== "string" || !REPO_PART.test(file) || file.includes("..") || file.endsWith(".part")) {
      throw new CheckpointError(
        `${indexPath}: tensor "${tensor}" maps to ${JSON.stringify(file)}. Expected a plain file name such as ` +
          `"model-00001-of-00002.safetensors".`,
      );
    }
    names.add(file);
  }
  if (names.size === 0) throw new CheckpointError(`${indexPath}: "weight_map" is empty.`);
  return [...names].sort();
}

/** Makes sure `file` is in the cache, downloading it with retries when needed. Returns its path. */
async function fetchFile(ctx: HubContext, file: string): Promise<string> {
  const dest = join(ctx.dir, file);
  assertInside(ctx.dir, dest);
  if (await isFile(dest)) return dest;
  if (ctx.offline) {
    throw new DownloadError(
      `${file} of ${ctx.repo} (revision ${ctx.revision}) is not in the cache at ${dest}, and offline mode is on ` +
        `(${ctx.offlineReason}). Run once online to fill the cache, or copy the file there.`,
    );
  }

  // NOTE: there is no lock. Two processes that download the same file at once share its .part
  // file, and one of them may fail or, where the server gives no sha256, keep a mixed file.
  await mkdir(ctx.dir, { recursive: true });
  const url = new URL(
    `${ctx.base.pathname.replace(/\/$/, "")}/${ctx.repo}/resolve/${encodeURIComponent(ctx.revision)}/${file}`,
    ctx.base,
  ).href;
  for (let attempt = 0;; attempt++) {
    try {
      await downloadTo(ctx, url, file, dest);
      return dest;
    } catch (error) {
      if (!(error instanceof DownloadError) || !error.retryable || attempt >= ctx.retries) throw error;
      await sleep(Math.min(250 * 2 ** attempt, 4000));
    }
  }
}

/** Aborts a request when an awaited step takes longer than the stall timeout. */
class StallGuard {
  readonly controller = new AbortController();
  timedOut = false;

  constructor(readonly timeoutMs: number) {}

  /** Waits for `promise`, failing with a timeout when it does not settle in time. */
  async wait<T>(promise: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.timedOut = true;
        this.controller.abort();
        reject(new Error("stall timeout"));
      }, this.timeoutMs);
    });
    try {
      return await Promise.race([promise, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The final response of a redirect chain and what the chain announced about the file. */
interface ResolvedResponse {
  response: Response;
  url: string;
  expectedSha256: string | undefined;
  linkedSize: number | undefined;
}

/** Requests `url`, following only allowed redirects. */
async function request(ctx: HubContext, url: string, offset: number, guard: StallGuard): Promise<ResolvedResponse> {
  let current = new URL(url);
  let expectedSha256: string | undefined;
  let linkedSize: number | undefined;
  const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};

  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    let response: Response;
    try {
      response = await guard.wait(
        ctx.fetch(current.href, { redirect: "manual", headers, signal: guard.controller.signal }),
      );
    } catch (error) {
      throw networkError(ctx, error, current.href, guard, "while waiting for the response");
    }

    // HF announces the sha256 of LFS files in X-Linked-ETag on its own redirect. A CDN's ETag
    // follows the CDN's own scheme, so a plain ETag is trusted only from the hub's host.
    expectedSha256 ??= sha256FromHeader(response.headers.get("x-linked-etag"));
    if (current.hostname === ctx.base.hostname) expectedSha256 ??= sha256FromHeader(response.headers.get("etag"));
    linkedSize ??= parseLength(response.headers.get("x-linked-size"));

    if (response.type === "opaqueredirect") {
      throw new DownloadError(
        `${current.href} redirected, and this runtime hides the target of manual redirects, so the target ` +
          `host cannot be checked. Download the files yourself and pass the directory to loadModel().`,
        { url: current.href },
      );
    }
    if (!REDIRECT_STATUSES.has(response.status)) return { response, url: current.href, expectedSha256, linkedSize };

    await response.body?.cancel().catch(() => {});
    const location = response.headers.get("location");
    if (!location) {
      throw new DownloadError(`${current.href} returned ${response.status} without a Location header.`, {
        url: current.href,
        status: response.status,
      });
    }
    const next = new URL(location, current);
    checkRedirect(ctx, current, next);
    current = next;
  }
  throw new DownloadError(`${url}: more than ${MAX_REDIRECTS} redirects. The server is misconfigured.`, { url });
}

/** Allows https redirects to allowed hosts, and, for a loopback http base URL, the same origin. */
function checkRedirect(ctx: HubContext, from: URL, to: URL): void {
  if (to.protocol === "https:" && ctx.allowedHosts.some((pattern) => hostMatches(to.hostname, pattern))) return;
  if (ctx.base.protocol === "http:" && to.origin === ctx.base.origin) return;
  const reason = to.protocol !== "https:" ? `it is not https` : `${to.hostname} is not an allowed host`;
  throw new DownloadError(
    `Refused to follow the redirect from ${from.href} to ${to.href}: ${reason}. Redirects are followed only ` +
      `over https to ${ctx.allowedHosts.join(", ")}. Add the host to the allowedHosts option if you trust it.`,
    { url: from.href },
  );
}

/** Matches a host against an exact name or a `*.domain` pattern, which needs at least one more label. */
function hostMatches(host: string, pattern: string): boolean {
  const name = host.toLowerCase();
  return pattern.startsWith("*.")
    ? name.endsWith(pattern.slice(1)) && name.length > pattern.length - 1
    : name === pattern;
}

/**
 * Downloads one file into `<dest>.part`, resuming an existing part, checks it and renames it
 * to `dest`.
 */
async function downloadTo(ctx: HubContext, url: string, file: string, dest: string): Promise<void> {
  const part = `${dest}.part`;
  let offset = (await fileSize(part)) ?? 0;
  const guard = new StallGuard(ctx.timeoutMs);
  const resolved = await request(ctx, url, offset, guard);
  const { response } = resolved;
  const where = resolved.url;

  let total: number | undefined;
  if (response.status === 206 && offset > 0) {
    const range = parseContentRange(response.headers.get("content-range"));
    if (range === undefined || range.start !== offset) {
      await response.body?.cancel().catch(() => {});
      await rm(part, { force: true });
      throw new DownloadError(
        `${where} responded to a resume request at byte ${offset} with Content-Range ` +
          `${JSON.stringify(response.headers.get("content-range"))}. The partial file was deleted; the next ` +
          `attempt starts over.`,
        { url: where, status: 206, retryable: true },
      );
    }
    total = range.total;
  } else if (response.status === 200) {
    // A 200 response to a Range request means the server sends the whole file again.
    offset = 0;
    total = parseLength(response.headers.get("content-length"));
  } else if (response.status === 416 && offset > 0) {
    await response.body?.cancel().catch(() => {});
    await rm(part, { force: true });
    throw new DownloadError(
      `${where} rejected a resume at byte ${offset} (416 Range Not Satisfiable): the partial file does not ` +
        `match the file on the server. It was deleted; the next attempt starts over.`,
      { url: where, status: 416, retryable: true },
    );
  } else {
    await response.body?.cancel().catch(() => {});
    throw statusError(ctx, file, where, response);
  }

  if (resolved.linkedSize !== undefined && total !== undefined && resolved.linkedSize !== total) {
    await response.body?.cancel().catch(() => {});
    throw new DownloadError(
      `${where} sends ${total} bytes for ${file}, but the hub announced ${resolved.linkedSize} bytes ` +
        `(X-Linked-Size). Try again later; if it persists, the server is misconfigured.`,
      { url: where, status: response.status },
    );
  }
  const contentType = response.headers.get("content-type") ?? "";
  if (/\btext\/html\b/i.test(contentType)) {
    await response.body?.cancel().catch(() => {});
    throw htmlError(file, where, `content-type ${contentType}`);
  }
  if (response.body === null) {
    throw new DownloadError(`${where} returned ${response.status} without a body.`, { url: where });
  }

  await writeBody(ctx, { response, where, file, part, offset, total, guard, expectedSha256: resolved.expectedSha256 });
  await rename(part, dest);
}

interface BodyTarget {
  response: Response;
  where: string;
  file: string;
  part: string;
  offset: number;
  total: number | undefined;
  guard: StallGuard;
  expectedSha256: string | undefined;
}

/** Streams the response body into the part file, then checks its size and sha256. */
async function writeBody(ctx: HubContext, target: BodyTarget): Promise<void> {
  const { response, where, file, part, offset, total, guard, expectedSha256 } = target;
  const hash = expectedSha256 === undefined ? undefined : createHash("sha256");
  if (hash !== undefined && offset > 0) await hashFilePrefix(hash, part, offset);

  const handle = await open(part, offset > 0 ? "r+" : "w");
  let loaded = offset;
  const reader = response.body!.getReader();
  // The first bytes of a fresh download are held back until they show what the body is.
  let head: Uint8Array | undefined = offset === 0 ? new Uint8Array(0) : undefined;
  try {
    ctx.onProgress?.({ phase: "download", file, loaded, total });
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await guard.wait(reader.read());
      } catch (error) {
        throw networkError(ctx, error, where, guard, `after ${loaded} of ${total ?? "an unknown number of"} bytes`);
      }
      if (chunk.done) break;

      let bytes = chunk.value;
      if (head !== undefined) {
        head = concat(head, bytes);
        if (head.length < LFS_POINTER_PREFIX.length) continue;
        checkFileStart(head, file, where);
        bytes = head;
        head = undefined;
      }
      await writeAll(handle, bytes, loaded);
      hash?.update(bytes);
      loaded += bytes.length;
      ctx.onProgress?.({ phase: "download", file, loaded, total });
    }
    if (head !== undefined && head.length > 0) {
      checkFileStart(head, file, where);
      await writeAll(handle, head, loaded);
      hash?.update(head);
      loaded += head.length;
      ctx.onProgress?.({ phase: "download", file, loaded, total });
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  } finally {
    await handle.close();
  }

  if (total !== undefined && loaded < total) {
    throw new DownloadError(
      `Download of ${file} from ${where} ended after ${loaded} of ${total} bytes. The partial file ${part} ` +
        `is kept, and the next attempt resumes from it.`,
      { url: where, retryable: true },
    );
  }
  if (total !== undefined && loaded > total) {
    await rm(part, { force: true });
    throw new DownloadError(
      `Download of ${file} from ${where} produced ${loaded} bytes, more than the announced ${total}. ` +
        `The file was deleted; try again.`,
      { url: where },
    );
  }
  if (hash !== undefined) {
    const actual = hash.digest("hex");
    if (actual !== expectedSha256) {
      await rm(part, { force: true });
      throw new DownloadError(
        `${file} from ${where} has sha256 ${actual}, but the server announced ${expectedSha256}. The file was ` +
          `deleted, so the next attempt downloads it afresh. If this repeats, a proxy or the server corrupts it.`,
        { url: where },
      );
    }
  }
}

/** Rejects a body that is an HTML page or a Git LFS pointer instead of the requested file. */
function checkFileStart(head: Uint8Array, file: string, where: string): void {
  const text = new TextDecoder("utf-8", { fatal: false }).decode(head.subarray(0, 512));
  if (text.startsWith(LFS_POINTER_PREFIX)) {
    const size = /^size (\d+)$/m.exec(text)?.[1];
    throw new DownloadError(
      `${where} returned a Git LFS pointer file${size ? ` for a ${size}-byte file` : ""} instead of ${file}: the ` +
        `server stores the file with Git LFS and sent the pointer, not the content. Use a hub URL that resolves ` +
        `LFS files (".../resolve/<revision>/<file>"), or run "git lfs pull" in a clone and load that directory.`,
      { url: where },
    );
  }
  // A safetensors file starts with a little-endian u64 whose low byte may be "<", so binary files
  // count as HTML only with an HTML start tag. A JSON file never starts with "<".
  const trimmed = text.replace(/^\uFEFF?\s*/, "").toLowerCase();
  const looksHtml = file.endsWith(".json")
    ? trimmed.startsWith("<")
    : /^<(!doctype html|html|head|body|\?xml)[\s>]/.test(trimmed);
  if (looksHtml) throw htmlError(file, where, "a body starting with an HTML tag");
}

function htmlError(file: string, where: string, evidence: string): DownloadError {
  return new DownloadError(
    `${where} returned an HTML page (${evidence}) instead of ${file}. The URL leads to a web page, such as a ` +
      `login, error or file-browser page, not to the raw file. Check baseUrl, the repo name and the revision.`,
    { url: where },
  );
}

function statusError(ctx: HubContext, file: string, where: string, response: Response): DownloadError {
  const status = response.status;
  const label = `${status}${response.statusText ? ` ${response.statusText}` : ""}`;
  if (status === 404) {
    return new DownloadError(
      `${where} returned 404: ${file} was not found in ${ctx.repo} (revision ${ctx.revision}). Check the repo ` +
        `name and revision, or pass baseUrl for another hub.`,
      { url: where, status },
    );
  }
  if (status === 401 || status === 403) {
    return new DownloadError(
      `${where} returned ${label}. The repository may be private or gated, and underhood sends no access ` +
        `token. Download the files yourself and pass their directory to loadModel().`,
      { url: where, status },
    );
  }
  const retryable = status === 429 || status >= 500;
  return new DownloadError(
    `${where} returned ${label} for ${file}.${retryable ? " The server is busy or failing; try again later." : ""}`,
    { url: where, status, retryable },
  );
}

/** Converts a fetch or read failure into a DownloadError; timeouts and drops are retryable. */
function networkError(ctx: HubContext, error: unknown, where: string, guard: StallGuard, when: string): DownloadError {
  if (error instanceof DownloadError) return error;
  if (guard.timedOut) {
    return new DownloadError(
      `Download from ${where} timed out: no data for ${ctx.timeoutMs} ms ${when}. A partial file is kept and ` +
        `the next attempt resumes from it. Raise timeoutMs for a slow connection.`,
      { url: where, retryable: true, cause: error },
    );
  }
  return new DownloadError(
    `Download from ${where} failed ${when}: ${(error as Error)?.message ?? String(error)}. A partial file is ` +
      `kept and the next attempt resumes from it. Check the network connection and baseUrl.`,
    { url: where, retryable: true, cause: error },
  );
}

function sha256FromHeader(value: string | null): string | undefined {
  if (value === null) return undefined;
  const bare = value.trim().replace(/^W\//, "").replace(/^"|"$/g, "").toLowerCase();
  return SHA256_PATTERN.test(bare) ? bare : undefined;
}

function parseLength(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  const n = Number(value.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Parses `bytes <start>-<end>/<total>`; the total may be `*` (unknown). */
function parseContentRange(value: string | null): { start: number; total: number | undefined } | undefined {
  const match = value === null ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim());
  if (match === null) return undefined;
  return { start: Number(match[1]), total: match[3] === "*" ? undefined : Number(match[3]) };
}

async function hashFilePrefix(hash: Hash, path: string, length: number): Promise<void> {
  if (length === 0) return;
  const stream = createReadStream(path, { start: 0, end: length - 1 });
  for await (const chunk of stream) hash.update(chunk as Uint8Array);
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return undefined;
    throw error;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return false;
    throw error;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
