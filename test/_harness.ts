/**
 * A minimal test harness that runs the same test files under Node (tsx), Deno and Bun.
 *
 * Test files call `test(name, fn)` at import time; `test/run.ts` imports them and runs
 * the registered cases in order. Float comparisons go through `assertClose`, which has
 * tests of its own in `test/harness_test.ts`.
 */

export type TestFn = () => void | Promise<void>;

export interface TestCase {
  name: string;
  file: string;
  fn: TestFn;
}

const registered: TestCase[] = [];
let currentFile = "";

/** Sets the file name recorded for the tests registered next (called by the runner). */
export function setCurrentFile(file: string): void {
  currentFile = file;
}

/** Registers a test case. */
export function test(name: string, fn: TestFn): void {
  registered.push({ name, file: currentFile, fn });
}

/** Returns every registered test case, in registration order. */
export function registeredTests(): readonly TestCase[] {
  return registered;
}

/** Error thrown by the assertion helpers. */
export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

/** Throws unless `condition` is truthy. */
export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Throws unless `actual` and `expected` are deeply equal (JSON-comparable values). */
export function assertEquals(actual: unknown, expected: unknown, message = ""): void {
  const a = stableStringify(actual);
  const e = stableStringify(expected);
  if (a !== e) {
    throw new AssertionError(
      `${message ? message + ": " : ""}values differ\n  actual:   ${truncate(a)}\n  expected: ${truncate(e)}`,
    );
  }
}

/**
 * Throws unless `fn` throws (or rejects with) an instance of `errorClass` whose message
 * contains every string in `includes`. Returns the error.
 */
export async function assertThrows(
  fn: () => unknown,
  errorClass: new (...args: never[]) => Error,
  includes: string | string[] = [],
): Promise<Error> {
  let caught: unknown;
  try {
    await fn();
  } catch (error) {
    caught = error;
  }
  if (caught === undefined) {
    throw new AssertionError(`expected ${errorClass.name} to be thrown, but nothing was thrown`);
  }
  if (!(caught instanceof errorClass)) {
    throw new AssertionError(
      `expected ${errorClass.name}, got ${(caught as Error)?.constructor?.name}: ${(caught as Error)?.message}`,
    );
  }
  for (const part of Array.isArray(includes) ? includes : [includes]) {
    if (!caught.message.includes(part)) {
      throw new AssertionError(`error message ${JSON.stringify(caught.message)} lacks ${JSON.stringify(part)}`);
    }
  }
  return caught;
}

export interface CloseOptions {
  /** Absolute tolerance. Default 1e-6. */
  atol?: number;
  /** Relative tolerance, scaled by |expected|. Default 0. */
  rtol?: number;
  /** Prefix for the failure message. */
  label?: string;
}

/** Result of comparing two arrays element by element. */
export interface CloseReport {
  maxAbsDiff: number;
  worstIndex: number;
  mismatches: number;
}

/**
 * Compares two numeric arrays (nested arrays are flattened) and returns the largest
 * absolute difference. NaN matches only NaN, and an infinity only the same infinity.
 */
export function compareClose(
  actual: ArrayLike<number> | unknown[],
  expected: ArrayLike<number> | unknown[],
  { atol = 1e-6, rtol = 0 }: CloseOptions = {},
): CloseReport {
  const a = flatten(actual);
  const e = flatten(expected);
  if (a.length !== e.length) {
    throw new AssertionError(`length differs: actual ${a.length}, expected ${e.length}`);
  }
  let maxAbsDiff = 0;
  let worstIndex = -1;
  let mismatches = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = e[i]!;
    let bad: boolean;
    let diff: number;
    if (Number.isNaN(x) || Number.isNaN(y)) {
      bad = !(Number.isNaN(x) && Number.isNaN(y));
      diff = bad ? Infinity : 0;
    } else if (!Number.isFinite(x) || !Number.isFinite(y)) {
      bad = x !== y;
      diff = bad ? Infinity : 0;
    } else {
      diff = Math.abs(x - y);
      bad = !(diff <= atol + rtol * Math.abs(y));
    }
    if (bad) mismatches++;
    if (diff > maxAbsDiff || (bad && worstIndex < 0)) {
      maxAbsDiff = diff;
      worstIndex = i;
    }
  }
  return { maxAbsDiff, worstIndex, mismatches };
}

/** Throws unless every element of `actual` is within `atol + rtol*|expected|` of `expected`. */
export function assertClose(
  actual: ArrayLike<number> | unknown[] | number,
  expected: ArrayLike<number> | unknown[] | number,
  options: CloseOptions = {},
): CloseReport {
  const a = typeof actual === "number" ? [actual] : actual;
  const e = typeof expected === "number" ? [expected] : expected;
  const report = compareClose(a, e, options);
  if (report.mismatches > 0) {
    const fa = flatten(a);
    const fe = flatten(e);
    const i = report.worstIndex;
    throw new AssertionError(
      `${options.label ? options.label + ": " : ""}${report.mismatches} of ${fa.length} values outside ` +
        `atol=${options.atol ?? 1e-6} rtol=${options.rtol ?? 0}; max |diff| ${report.maxAbsDiff} at index ${i} ` +
        `(actual ${fa[i]}, expected ${fe[i]})`,
    );
  }
  return report;
}

function flatten(values: ArrayLike<number> | unknown[]): number[] {
  const out: number[] = [];
  const visit = (v: unknown): void => {
    if (typeof v === "number") {
      out.push(v);
    } else if (Array.isArray(v) || ArrayBuffer.isView(v)) {
      for (const item of Array.from(v as ArrayLike<unknown>)) visit(item);
    } else {
      throw new AssertionError(`expected numbers, found ${typeof v}`);
    }
  };
  visit(values);
  return out;
}

function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, v) => {
    if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>);
    if (v && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    if (typeof v === "number" && !Number.isFinite(v)) return String(v);
    return v;
  });
}

function truncate(text: string, max = 400): string {
  return text.length > max ? text.slice(0, max) + "…" : text;
}

/** Returns the JavaScript runtime running the tests. */
export function currentRuntime(): "deno" | "bun" | "node" {
  if ("Deno" in globalThis) return "deno";
  if ("Bun" in globalThis) return "bun";
  return "node";
}
