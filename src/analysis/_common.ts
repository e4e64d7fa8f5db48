/**
 * Helpers shared by the analysis tools: argument checks, token references and reading
 * tensors back to the host. Private to `src/analysis/`.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { HookName } from "../hooks.ts";
import type { Model } from "../model.ts";

/** A token given by its id, or as text that encodes to exactly one token (such as `" dog"`). */
export type TokenRef = number | string;

/**
 * Returns the id of a token reference.
 *
 * @throws {TypeError} When `token` is neither a number nor a string.
 * @throws {RangeError} For an id outside [0, dVocab), or text that does not encode to one token.
 */
export function resolveToken(model: Model, token: TokenRef, label: string): number {
  if (typeof token === "number") {
    const dVocab = model.config.dVocab;
    if (!Number.isInteger(token) || token < 0 || token >= dVocab) {
      throw new RangeError(`Invalid ${label} ${token}: token ids must be integers in [0, ${dVocab}).`);
    }
    return token;
  }
  if (typeof token !== "string") {
    throw new TypeError(`Invalid ${label}: expected a token id or a single-token string, got ${typeof token}.`);
  }
  const ids = token.length > 0 ? model.tokenizer.encode(token, { allowSpecial: true }) : [];
  if (ids.length !== 1) {
    throw new RangeError(
      `Invalid ${label} ${JSON.stringify(token)}: it encodes to ${ids.length} tokens [${ids.join(", ")}], ` +
        `expected exactly one. Pass a token id, or text such as " dog" with its leading space.`,
    );
  }
  return resolveToken(model, ids[0]!, label);
}

/** @throws {RangeError} Unless `layer` is an integer in [0, nLayers). */
export function checkLayer(model: Model, layer: number, label: string): void {
  const n = model.config.nLayers;
  if (!Number.isInteger(layer) || layer < 0 || layer >= n) {
    throw new RangeError(`Invalid ${label} ${layer}: layer must be an integer in [0, ${n}) (nLayers = ${n}).`);
  }
}

/** @throws {RangeError} Unless `head` is an integer in [0, nHeads). */
export function checkHead(model: Model, head: number, label: string): void {
  const n = model.config.nHeads;
  if (!Number.isInteger(head) || head < 0 || head >= n) {
    throw new RangeError(`Invalid ${label} ${head}: head must be an integer in [0, ${n}) (nHeads = ${n}).`);
  }
}

/**
 * Resolves a position that may count from the end (-1 is the last) to an index in [0, nPos).
 *
 * @throws {RangeError} Outside [-nPos, nPos).
 */
export function resolvePosition(position: number, nPos: number, label: string): number {
  const index = position < 0 ? nPos + position : position;
  if (!Number.isInteger(position) || index < 0 || index >= nPos) {
    throw new RangeError(
      `Invalid ${label} ${position}: expected an integer in [${-nPos}, ${nPos}) for a ${nPos}-token input ` +
        `(negative positions count from the end).`,
    );
  }
  return index;
}

/** Converts a vector given as an array or a tensor to a Float32Array of length `size`. */
export function toVector(vector: ArrayLike<number> | tf.Tensor, size: number, label: string): Float32Array {
  let values: Float32Array;
  if (vector instanceof tf.Tensor) {
    if (vector.isDisposed) throw new TypeError(`Invalid ${label}: the tensor has been disposed.`);
    if (vector.rank !== 1) {
      throw new TypeError(`Invalid ${label}: expected a 1-D tensor [${size}], got shape [${vector.shape.join(", ")}].`);
    }
    values = Float32Array.from(vector.dataSync() as ArrayLike<number>);
  } else if (vector !== null && typeof vector === "object" && typeof vector.length === "number") {
    values = Float32Array.from(vector);
  } else {
    throw new TypeError(`Invalid ${label}: expected a number[], a Float32Array or a 1-D tensor, got ${typeof vector}.`);
  }
  if (values.length !== size) {
    throw new TypeError(`Invalid ${label}: expected ${size} values, got ${values.length}.`);
  }
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) {
      throw new RangeError(`Invalid ${label}: value ${values[i]} at index ${i} is not finite.`);
    }
  }
  return values;
}

/** The hook name of the residual entering block `layer`; `layer = nLayers` names the final residual. */
export function residualName(model: Model, layer: number): HookName {
  const n = model.config.nLayers;
  return layer === n ? `blocks.${n - 1}.hook_resid_post` : `blocks.${layer}.hook_resid_pre`;
}

/** Splits a row-major buffer `[rows, cols]` into nested arrays of plain numbers. */
export function toRows(values: ArrayLike<number>, rows: number, cols: number): number[][] {
  return Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => values[r * cols + c]!));
}

/** Returns the index of the largest of `length` values starting at `offset`; ties go to the lowest index. */
export function argmaxOf(values: ArrayLike<number>, offset: number, length: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < length; i++) {
    const value = values[offset + i]!;
    if (value > bestValue) {
      best = i;
      bestValue = value;
    }
  }
  return best;
}
