/**
 * The compact output vocabulary used in training: one row per token id seen in the training
 * split, plus one shared row for all other ids.
 *
 * Why this is exact: let S be the seen ids, U the N_U unseen ids and u the shared row. Training
 * uses the logits h·e_s for s in S and h·u + log(N_U) for the shared row, so the softmax
 * denominator is sum_S exp(h·e_s) + N_U exp(h·u). Export writes u into the embedding row of every
 * unseen id. The full softmax over all ids of the exported model then has exactly that
 * denominator, so every seen id gets the same probability as in training. Each unseen id gets
 * exp(h·u) / denominator, which is also what the training loss of an unseen target uses.
 */

/** The mapping between full token ids and rows of the compact table. */
export interface CompactVocab {
  /** Full vocabulary size. */
  dVocab: number;
  /** Seen ids in increasing order; row i of the compact table belongs to seenIds[i]. */
  seenIds: Int32Array;
  /** Row of every full id: its seen row, or `unseenRow` for unseen ids. */
  rowOf: Int32Array;
  /** Index of the shared row for unseen ids (= seenIds.length). */
  unseenRow: number;
  /** Number of unseen ids (dVocab - seenIds.length). */
  unseenCount: number;
}

/** Builds the compact vocabulary from the training tokens. */
export function buildCompactVocab(trainTokens: ArrayLike<number>, dVocab: number): CompactVocab {
  const seen = new Uint8Array(dVocab);
  for (let i = 0; i < trainTokens.length; i++) {
    const id = trainTokens[i]!;
    if (!(id >= 0 && id < dVocab)) {
      throw new RangeError(`Cannot build the vocabulary: token id ${id} at position ${i} is outside [0, ${dVocab})`);
    }
    seen[id] = 1;
  }
  const seenList: number[] = [];
  for (let id = 0; id < dVocab; id++) if (seen[id]) seenList.push(id);
  const seenIds = Int32Array.from(seenList);
  const unseenRow = seenIds.length;
  const rowOf = new Int32Array(dVocab).fill(unseenRow);
  seenIds.forEach((id, row) => (rowOf[id] = row));
  return { dVocab, seenIds, rowOf, unseenRow, unseenCount: dVocab - seenIds.length };
}

/** Returns the logit offset per compact row: 0 for seen rows, log(unseenCount) for the shared row. */
export function compactLogitOffset(vocab: CompactVocab): Float32Array {
  const offset = new Float32Array(vocab.unseenRow + 1);
  // With no unseen ids the shared row must get no probability at all.
  offset[vocab.unseenRow] = vocab.unseenCount > 0 ? Math.log(vocab.unseenCount) : -Infinity;
  return offset;
}

/**
 * Expands a compact table `[seen + 1, dModel]` to the full `[dVocab, dModel]` table, copying the
 * shared row into every unseen id.
 */
export function expandEmbedding(vocab: CompactVocab, compact: Float32Array, dModel: number): Float32Array {
  if (compact.length !== (vocab.unseenRow + 1) * dModel) {
    throw new TypeError(
      `Cannot expand the embedding: expected ${(vocab.unseenRow + 1) * dModel} values, got ${compact.length}`,
    );
  }
  const full = new Float32Array(vocab.dVocab * dModel);
  for (let id = 0; id < vocab.dVocab; id++) {
    const row = vocab.rowOf[id]!;
    full.set(compact.subarray(row * dModel, (row + 1) * dModel), id * dModel);
  }
  return full;
}

/** Maps full token ids to compact rows. */
export function toRows(vocab: CompactVocab, ids: ArrayLike<number>): Int32Array {
  const rows = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) rows[i] = vocab.rowOf[ids[i]!]!;
  return rows;
}
