/**
 * Tools for the token embedding W_E and the unembedding W_U: nearest tokens by cosine
 * similarity, analogies and a PCA of a list of tokens.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Model } from "../model.ts";
import { resolveToken, toVector, type TokenRef } from "./_common.ts";

/** The source of token vectors: the rows of W_E `[dVocab, dModel]` or the columns of W_U `[dModel, dVocab]`. */
export type EmbeddingSpace = "W_E" | "W_U";

/** A token and its cosine similarity to a query vector. */
export interface NearestToken {
  id: number;
  token: string;
  similarity: number;
}

/** Options for `nearestTokens`. */
export interface NearestTokensOptions {
  /** Default `W_E`. */
  space?: EmbeddingSpace;
  /** How many tokens to return. Default 10. */
  k?: number;
  /** Tokens left out of the result. */
  exclude?: readonly TokenRef[];
}

/**
 * Returns the vector of one token: its row of W_E or its column of W_U.
 *
 * @returns `[dModel]` values.
 */
export function tokenVector(model: Model, token: TokenRef, space: EmbeddingSpace = "W_E"): Float32Array {
  const id = resolveToken(model, token, "token");
  const matrix = spaceMatrix(model, space);
  const column = tf.tidy(() => (space === "W_E" ? tf.gather(matrix, [id], 0) : tf.gather(matrix, [id], 1)));
  const values = Float32Array.from(column.dataSync() as Float32Array);
  column.dispose();
  return values;
}

/**
 * Finds the tokens whose vectors have the highest cosine similarity to `vector`.
 *
 * A token whose vector is all zeros has similarity 0. Equal similarities go to the lower id.
 *
 * @param vector `[dModel]`.
 * @returns Up to `k` tokens, most similar first.
 * @throws {RangeError} For a zero vector or an invalid k.
 * @example
 * ```ts
 * nearestTokens(model, tokenVector(model, " king"), { k: 5 }); // " king" first, similarity 1
 * ```
 */
export function nearestTokens(
  model: Model,
  vector: ArrayLike<number> | tf.Tensor1D,
  options: NearestTokensOptions = {},
): NearestToken[] {
  const space = checkSpace(options.space ?? "W_E");
  const k = options.k ?? 10;
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`Invalid k ${k}: expected an integer >= 1.`);
  const query = toVector(vector, model.config.dModel, "query vector");
  let norm = 0;
  for (const v of query) norm += v * v;
  if (norm === 0) throw new RangeError("Cannot rank tokens by cosine similarity to a zero vector.");
  const excluded = new Set((options.exclude ?? []).map((t, i) => resolveToken(model, t, `exclude[${i}]`)));

  const similarities = cosineSimilarities(model, query, space);
  return topIndices(similarities, k, excluded).map((id) => ({
    id,
    token: model.tokenText(id),
    similarity: similarities[id]!,
  }));
}

/** Options for `analogy`. */
export interface AnalogyOptions {
  a: TokenRef;
  b: TokenRef;
  c: TokenRef;
  /** Default `W_E`. */
  space?: EmbeddingSpace;
  /** Default 10. */
  k?: number;
}

/**
 * Solves "b is to a as c is to ?" with the vector a - b + c, returning its nearest tokens other
 * than a, b and c.
 *
 * @example
 * ```ts
 * analogy(model, { a: " king", b: " man", c: " woman" }); // " queen" near the top in large models
 * ```
 */
export function analogy(model: Model, options: AnalogyOptions): NearestToken[] {
  const space = checkSpace(options.space ?? "W_E");
  const [a, b, c] = (["a", "b", "c"] as const).map((key) => resolveToken(model, options[key], key)) as [
    number,
    number,
    number,
  ];
  const va = tokenVector(model, a, space);
  const vb = tokenVector(model, b, space);
  const vc = tokenVector(model, c, space);
  const query = va.map((v, i) => v - vb[i]! + vc[i]!);
  const nearest: NearestTokensOptions = { space, exclude: [a, b, c] };
  if (options.k !== undefined) nearest.k = options.k;
  return nearestTokens(model, query, nearest);
}

/** Options for `tokenPca`. */
export interface TokenPcaOptions {
  /** Default `W_E`. */
  space?: EmbeddingSpace;
  /** How many principal components. Default 2. */
  components?: number;
}

/** A PCA of a list of token vectors. */
export interface TokenPca {
  ids: number[];
  tokens: string[];
  space: EmbeddingSpace;
  /** Each token's coordinates on the components `[token][component]`. */
  coords: number[][];
  /** Unit principal axes `[component][dModel]`; the entry of largest magnitude of each is positive. */
  components: number[][];
  /** The variance along each axis, with the n - 1 denominator `[component]`. */
  explainedVariance: number[];
  /** Each axis's share of the total variance `[component]`. */
  explainedVarianceRatio: number[];
  /** The mean vector subtracted before projecting `[dModel]`. */
  mean: number[];
}

/**
 * Projects token vectors onto their principal components.
 *
 * Runs in float64 in JavaScript: the eigenvectors of the smaller of the n × n Gram matrix and
 * the dModel × dModel covariance matrix, by cyclic Jacobi rotations. Each axis's sign is fixed
 * so that its entry of largest magnitude is positive, so results do not depend on the solver.
 *
 * @param tokens At least `components + 1` tokens, as ids or single-token strings.
 * @throws {RangeError} For too few tokens, or vectors that span fewer dimensions than `components`.
 * @example
 * ```ts
 * const pca = tokenPca(model, [" Monday", " Tuesday", " Wednesday", " January", " February"]);
 * pca.coords; // [token][2]
 * ```
 */
export function tokenPca(model: Model, tokens: readonly TokenRef[], options: TokenPcaOptions = {}): TokenPca {
  const space = checkSpace(options.space ?? "W_E");
  const k = options.components ?? 2;
  if (!Array.isArray(tokens)) throw new TypeError("Invalid tokens: expected an array of token ids or strings.");
  if (!Number.isInteger(k) || k < 1 || k > model.config.dModel) {
    throw new RangeError(`Invalid components ${k}: expected an integer in [1, ${model.config.dModel}] (dModel).`);
  }
  if (tokens.length < k + 1) {
    throw new RangeError(`Cannot find ${k} principal components of ${tokens.length} tokens: pass at least ${k + 1}.`);
  }
  const ids = tokens.map((t, i) => resolveToken(model, t, `tokens[${i}]`));
  const d = model.config.dModel;
  const n = ids.length;

  // Gather the vectors in float64 and center them.
  const rows = ids.map((id) => Float64Array.from(tokenVector(model, id, space)));
  const mean = new Float64Array(d);
  for (const row of rows) for (let j = 0; j < d; j++) mean[j]! += row[j]! / n;
  for (const row of rows) for (let j = 0; j < d; j++) row[j]! -= mean[j]!;

  // Principal axes from whichever of X Xᵀ [n, n] and Xᵀ X [d, d] is smaller; both share their nonzero eigenvalues.
  let total = 0;
  for (const row of rows) for (const v of row) total += v * v;
  const axes: Float64Array[] = [];
  const values: number[] = [];
  if (n <= d) {
    const gram = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) gram[i * n + j] = dot(rows[i]!, rows[j]!);
    const eigen = symmetricEigen(gram, n);
    for (let c = 0; c < k; c++) {
      const lambda = eigen.values[c]!;
      checkRank(lambda, total, c, k);
      // An axis of the covariance is Xᵀ u / sqrt(λ) for a unit eigenvector u of X Xᵀ.
      const axis = new Float64Array(d);
      for (let i = 0; i < n; i++) {
        const weight = eigen.vectors[i * n + c]! / Math.sqrt(lambda);
        for (let j = 0; j < d; j++) axis[j]! += weight * rows[i]![j]!;
      }
      axes.push(axis);
      values.push(lambda);
    }
  } else {
    const scatter = new Float64Array(d * d);
    for (const row of rows) for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) scatter[i * d + j]! += row[i]! * row[j]!;
    const eigen = symmetricEigen(scatter, d);
    for (let c = 0; c < k; c++) {
      checkRank(eigen.values[c]!, total, c, k);
      axes.push(Float64Array.from({ length: d }, (_, j) => eigen.vectors[j * d + c]!));
      values.push(eigen.values[c]!);
    }
  }

  // Fix each axis's sign, then project.
  for (const axis of axes) {
    let largest = 0;
    for (let j = 1; j < d; j++) if (Math.abs(axis[j]!) > Math.abs(axis[largest]!)) largest = j;
    if (axis[largest]! < 0) for (let j = 0; j < d; j++) axis[j] = -axis[j]!;
  }
  return {
    ids,
    tokens: ids.map((id) => model.tokenText(id)),
    space,
    coords: rows.map((row) => axes.map((axis) => dot(row, axis))),
    components: axes.map((axis) => Array.from(axis)),
    explainedVariance: values.map((v) => v / (n - 1)),
    explainedVarianceRatio: values.map((v) => v / total),
    mean: Array.from(mean),
  };
}

/**
 * Computes the eigenvalues and eigenvectors of a symmetric matrix by cyclic Jacobi rotations.
 *
 * @param matrix `[n, n]` row-major, symmetric; it is not modified.
 * @returns Eigenvalues in decreasing order, and the unit eigenvectors as the columns of a
 *   row-major `[n, n]` matrix in the same order.
 */
export function symmetricEigen(matrix: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;

  let scale = 0;
  for (const x of a) scale = Math.max(scale, Math.abs(x));
  for (let sweep = 0; sweep < 100; sweep++) {
    let offDiagonal = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) offDiagonal += a[p * n + q]! ** 2;
    if (offDiagonal <= (n * Number.EPSILON * scale) ** 2) break;

    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (apq === 0) continue;
        // The rotation angle that zeroes a[p][q]: t = tan(θ), the smaller root of t² + 2τt - 1 = 0.
        const tau = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(tau || 1) / (Math.abs(tau) + Math.sqrt(1 + tau * tau));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }

  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j]! - a[i * n + i]! || i - j);
  const values = Float64Array.from(order, (i) => a[i * n + i]!);
  const vectors = new Float64Array(n * n);
  order.forEach((from, to) => {
    for (let k = 0; k < n; k++) vectors[k * n + to] = v[k * n + from]!;
  });
  return { values, vectors };
}

function checkRank(lambda: number, total: number, component: number, k: number): void {
  if (!(lambda > 1e-12 * total)) {
    throw new RangeError(
      `Cannot find ${k} principal components: the token vectors span only ${component} dimension(s) ` +
        `(component ${component} has variance ${lambda}). Pass more distinct tokens or fewer components.`,
    );
  }
}

function checkSpace(space: EmbeddingSpace): EmbeddingSpace {
  if (space !== "W_E" && space !== "W_U") {
    throw new RangeError(`Invalid space ${JSON.stringify(space)}: use "W_E" (rows of W_E) or "W_U" (columns of W_U).`);
  }
  return space;
}

function spaceMatrix(model: Model, space: EmbeddingSpace): tf.Tensor2D {
  return checkSpace(space) === "W_E" ? model.W_E : model.W_U;
}

/** Cosine similarity of `query` to every token's vector `[dVocab]`. */
function cosineSimilarities(model: Model, query: Float32Array, space: EmbeddingSpace): Float32Array {
  const similarities = tf.tidy(() => {
    const vectors = space === "W_E" ? model.W_E : tf.transpose(model.W_U); // -> [dVocab, dModel]
    const q = tf.tensor2d(query, [query.length, 1]); // [dModel, 1]
    const dots = tf.reshape(tf.matMul(vectors, q), [-1]); // [dVocab, dModel] @ [dModel, 1] -> [dVocab]
    const norms = tf.norm(vectors, "euclidean", 1); // [dVocab, dModel] -> [dVocab]
    // A zero vector gets similarity 0: its dot product is 0, divided by a tiny positive norm.
    return tf.div(dots, tf.mul(tf.maximum(norms, 1e-30), tf.norm(q)));
  });
  const values = Float32Array.from(similarities.dataSync() as Float32Array);
  similarities.dispose();
  return values;
}

/** Returns the indices of the k largest values, largest first and lower index first among equals, skipping `excluded`. */
function topIndices(values: Float32Array, k: number, excluded: Set<number>): number[] {
  const best: number[] = [];
  for (let i = 0; i < values.length; i++) {
    if (excluded.has(i)) continue;
    if (best.length === k && !(values[i]! > values[best[k - 1]!]!)) continue;
    let at = best.length === k ? k - 1 : best.length;
    while (at > 0 && values[i]! > values[best[at - 1]!]!) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

function dot(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}
