/**
 * Shape checks with named axes, so a mistake names the axis that is wrong.
 */
import type * as tf from "@tensorflow/tfjs-core";

/**
 * Checks that `shape` has one entry per axis name and that each named size matches.
 * Axes missing from `sizes` may have any size. Returns the sizes of all axes.
 *
 * @example
 * ```ts
 * assertShape([5, 32], ["pos", "dModel"], { dModel: 32 }, "residual"); // { pos: 5, dModel: 32 }
 * ```
 */
export function assertShape(
  shape: readonly number[],
  axes: readonly string[],
  sizes: Record<string, number>,
  what: string,
): Record<string, number> {
  const expected = `[${axes.map((a) => (a in sizes ? `${a}=${sizes[a]}` : a)).join(", ")}]`;
  if (shape.length !== axes.length) {
    throw new TypeError(
      `Invalid ${what}: expected shape ${expected}, got [${shape.join(", ")}] (rank ${shape.length}, not ${axes.length})`,
    );
  }
  const bound: Record<string, number> = {};
  axes.forEach((axis, i) => {
    const size = shape[i]!;
    const want = sizes[axis] ?? bound[axis];
    if (want !== undefined && size !== want) {
      throw new TypeError(
        `Invalid ${what}: axis ${axis} has size ${size}, expected ${want} (shape [${shape.join(", ")}], ` +
          `expected ${expected})`,
      );
    }
    bound[axis] = size;
  });
  return bound;
}

/** Returns a tensor's shape as a readable string, such as `[5, 32]`. */
export function formatShape(t: tf.Tensor | readonly number[]): string {
  const shape = Array.isArray(t) ? t : (t as tf.Tensor).shape;
  return `[${shape.join(", ")}]`;
}
