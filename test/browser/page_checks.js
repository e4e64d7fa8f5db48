// Checks that run inside the example page (examples/browser/), injected by test/browser/chromium.ts.
// They use the page's own library and model (window.underhoodExample) and return plain data, so
// the Node side compares them with the cpu and wasm backends. This file is a classic script, not
// a module, and is never bundled.
"use strict";

window.underhoodChecks = (() => {
  const example = () => window.underhoodExample;
  const tf = () => example().underhood.tf;

  /** Encodes a Float32Array as base64, so large arrays leave the page as one string. */
  function floatsToBase64(values) {
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  }

  /** Returns the backend in use, the label the page shows, and the WebGL limits. */
  function backendInfo() {
    const label = document.getElementById("backend");
    const t = tf();
    return {
      backend: t.getBackend(),
      label: label.textContent,
      labelBackend: label.dataset.backend,
      selection: example().selection,
      maxTextureSize: t.getBackend() === "webgl" ? t.env().getNumber("WEBGL_MAX_TEXTURE_SIZE") : null,
      webglVersion: t.getBackend() === "webgl" ? t.env().getNumber("WEBGL_VERSION") : null,
      float32Render: t.getBackend() === "webgl" ? t.env().getBool("WEBGL_RENDER_FLOAT32_ENABLED") : null,
    };
  }

  /** Logits `[pos, dVocab]` of the whole forward pass, as base64 float32 plus the shape. */
  async function logits(prompt) {
    const out = example().model.forward(prompt);
    try {
      return { shape: out.shape, base64: floatsToBase64(await out.data()) };
    } finally {
      out.dispose();
    }
  }

  /** The new ids that generate() returns. */
  async function generateIds(prompt, options) {
    const result = await example().underhood.generate(example().model, prompt, options);
    return result.ids;
  }

  /**
   * Returns statistics of every layer's attention pattern and scores on `prompt`. They are the
   * largest value above the diagonal (must be exactly 0) and whether every masked score is
   * -Infinity. They also include the largest deviation of a row sum from 1, and whether all
   * values are finite and in [0, 1].
   */
  async function maskedSoftmax(prompt) {
    const model = example().model;
    const { nLayers } = model.config;
    const names = [];
    for (let layer = 0; layer < nLayers; layer++) {
      names.push(`blocks.${layer}.attn.hook_pattern`, `blocks.${layer}.attn.hook_attn_scores`);
    }
    const { logits: out, cache } = model.runWithCache(prompt, { names });
    out.dispose();
    const layers = [];
    try {
      for (let layer = 0; layer < nLayers; layer++) {
        const pattern = await cache.get(`blocks.${layer}.attn.hook_pattern`).array();
        const scores = await cache.get(`blocks.${layer}.attn.hook_attn_scores`).array();
        let maxAbove = 0;
        let maskedScoresAllNegInf = true;
        let maxRowSumError = 0;
        let allInUnitRange = true;
        let cells = 0;
        pattern.forEach((rows, head) => {
          rows.forEach((row, q) => {
            let sum = 0;
            row.forEach((value, k) => {
              cells++;
              if (!(value >= 0 && value <= 1)) allInUnitRange = false;
              sum += value;
              if (k > q) {
                maxAbove = Math.max(maxAbove, Math.abs(value));
                if (scores[head][q][k] !== -Infinity) maskedScoresAllNegInf = false;
              }
            });
            maxRowSumError = Math.max(maxRowSumError, Math.abs(sum - 1));
          });
        });
        layers.push({ layer, cells, maxAbove, maskedScoresAllNegInf, maxRowSumError, allInUnitRange });
      }
    } finally {
      cache.dispose();
    }

    // The same softmax on hand-made rows: one masked with -Infinity (as underhood masks) and one
    // with -1e9 (as some GPT-2 ports mask), for which an older tfjs WebGL returned 3.4e38.
    const t = tf();
    const rows = t.tensor2d([[0.5, -Infinity, -Infinity, -Infinity], [2, 1, -Infinity, -Infinity], [2, -1e9, -1e9, 1]]);
    const softmax = t.softmax(rows, -1);
    const handMade = Array.from(await softmax.data());
    rows.dispose();
    softmax.dispose();
    return { layers, handMade };
  }

  /** Runs `fn` and returns the class name and message of the error it throws, or null. */
  async function errorOf(fn) {
    try {
      await fn();
      return null;
    } catch (error) {
      return { name: error.constructor.name, isRangeError: error instanceof RangeError, message: error.message };
    }
  }

  /** Requests a position past nCtx in every way, and returns the error each raises. */
  async function positionErrors() {
    const { underhood } = example();
    const model = example().model;
    const nCtx = model.config.nCtx;
    const full = new Int32Array(nCtx).fill(11);
    const cases = {
      forwardTooLong: await errorOf(() => model.forward(Array.from({ length: nCtx + 1 }, () => 11)).dispose()),
      embedOffset: await errorOf(() => model.embed([11], { offset: nCtx }).dispose()),
      generateTooLong: await errorOf(() => underhood.generate(model, [11, 12], { maxNewTokens: nCtx - 1 })),
      incrementalPastEnd: null,
    };
    const first = model.forwardIncremental(full, undefined);
    first.logits.dispose();
    cases.incrementalPastEnd = await errorOf(() => model.forwardIncremental(Int32Array.of(11), first.cache));
    first.cache.dispose();

    // What the check guards against: tfjs's WebGL gather reads rows past the end as zeros.
    const t = tf();
    const index = t.tensor1d([nCtx], "int32");
    let rawGather;
    try {
      const row = t.gather(model.W_pos, index);
      const values = Array.from(await row.data());
      row.dispose();
      rawGather = { threw: false, allZero: values.every((v) => v === 0) };
    } catch (error) {
      rawGather = { threw: true, message: error.message };
    } finally {
      index.dispose();
    }
    return { cases, rawGather };
  }

  /**
   * Vocabulary-sized products in the shape of GPT-2 small (dModel 768, dVocab 50257), in both
   * orientations that src/stages/unembed.ts uses, compared with float64 dot products for a few
   * columns. The weights come from a formula, so the reference needs no second copy.
   */
  async function vocabularyProducts({ dModel = 768, dVocab = 50257, nPos = 5 } = {}) {
    const t = tf();
    const weight = (i, j) => (((i * 31 + j * 17) % 97) - 48) / 480;
    const input = (p, i) => (((p * 13 + i * 7) % 23) - 11) / 11;
    const W = new Float32Array(dModel * dVocab);
    for (let i = 0; i < dModel; i++) for (let j = 0; j < dVocab; j++) W[i * dVocab + j] = weight(i, j);
    const WT = new Float32Array(dVocab * dModel);
    for (let j = 0; j < dVocab; j++) for (let i = 0; i < dModel; i++) WT[j * dModel + i] = weight(i, j);
    const X = new Float32Array(nPos * dModel);
    for (let p = 0; p < nPos; p++) for (let i = 0; i < dModel; i++) X[p * dModel + i] = input(p, i);
    const columns = [0, 1, 2047, 2048, 4095, 4096, 8191, 8192, 25000, dVocab - 1];

    const reference = (p, j) => {
      let sum = 0;
      for (let i = 0; i < dModel; i++) sum += Math.fround(input(p, i)) * Math.fround(weight(i, j));
      return sum;
    };
    const compare = (values) => {
      let maxDiff = 0;
      for (let p = 0; p < nPos; p++) {
        for (const j of columns) maxDiff = Math.max(maxDiff, Math.abs(values[p * dVocab + j] - reference(p, j)));
      }
      return maxDiff;
    };

    const results = {};
    const x = t.tensor2d(X, [nPos, dModel]);
    const w = t.tensor2d(W, [dModel, dVocab]);
    const wt = t.tensor2d(WT, [dVocab, dModel]);
    try {
      results.xTimesWU = await tryProduct(() => t.matMul(x, w), compare); // [pos, dModel] @ [dModel, dVocab]
      results.rowsOfWUT = await tryProduct(() => t.transpose(t.matMul(wt, t.transpose(x))), compare); // [dVocab, dModel] @ [dModel, pos]
      results.gatherRows = await tryProduct(() => t.gather(wt, t.tensor1d([0, dVocab - 1], "int32")), () => 0);
    } finally {
      x.dispose();
      w.dispose();
      wt.dispose();
    }
    return results;
  }

  async function tryProduct(make, compare) {
    const t = tf();
    try {
      const out = t.tidy(make);
      const values = await out.data();
      out.dispose();
      return { ok: true, maxDiff: compare(values) };
    } catch (error) {
      return { ok: false, message: error.message };
    }
  }

  /** Returns whether gathering from a [rows, cols] matrix works on this backend now. */
  async function gatherWorks(rows, cols) {
    const t = tf();
    const matrix = t.zeros([rows, cols]);
    const index = t.tensor1d([rows - 1], "int32");
    try {
      const row = t.gather(matrix, index);
      await row.data();
      row.dispose();
      return { ok: true };
    } catch (error) {
      return { ok: false, message: error.message };
    } finally {
      matrix.dispose();
      index.dispose();
    }
  }

  /** Returns what webglTextureProblem returns for a model of these dimensions and this texture limit. */
  function textureProblem(dVocab, dModel, maxTextureSize) {
    return example().underhood.webglTextureProblem({ dVocab, dModel }, maxTextureSize);
  }

  /** Loads the default model again with `options` and returns the error it raises, or null. */
  async function loadModelError(options) {
    return await errorOf(async () => {
      const model = await example().underhood.loadModel("../../models/default/", options);
      model.dispose();
    });
  }

  return {
    backendInfo,
    loadModelError,
    logits,
    generateIds,
    maskedSoftmax,
    positionErrors,
    vocabularyProducts,
    gatherWorks,
    textureProblem,
  };
})();
