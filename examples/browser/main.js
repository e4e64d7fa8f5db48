// The browser example: tokens, one attention head's pattern, the top-k next tokens and a sampled
// continuation of a prompt, computed on WebGL (wasm, then cpu, when WebGL cannot start).
//
// Query parameters, for trying the fallbacks:
//   ?backend=webgl|wasm|cpu   compute on this backend (default: the first that works)
//   ?webgl=off                act as if the browser had no WebGL
//   ?maxTexture=N             act as if WebGL textures were limited to N texels a side
//   ?model=URL                load another checkpoint directory
//
// window.underhoodExample exposes the library, the model and the page's functions, for the
// Chromium test in test/browser/ and for the developer console.
import * as underhood from "../../dist/browser/underhood.js";

const { tf } = underhood;
const params = new URLSearchParams(location.search);
const element = (id) => document.getElementById(id);

const example = {
  underhood,
  model: null,
  selection: null,
  lastGeneration: null,
  inspect,
  generateContinuation,
  ready: null,
};
window.underhoodExample = example;
example.ready = start();

async function start() {
  try {
    if (params.get("webgl") === "off") tf.env().set("HAS_WEBGL", false);
    if (params.has("maxTexture")) tf.env().set("WEBGL_MAX_TEXTURE_SIZE", Number(params.get("maxTexture")));

    const backend = params.get("backend") ?? undefined;
    setStatus("Loading the model…");
    example.model = await underhood.loadModel(params.get("model") ?? "../../models/default/", {
      ...(backend ? { backend } : {}),
      onProgress: ({ file, loaded, total }) =>
        setStatus(`Loading ${file}: ${(loaded / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`),
      onBackend: (selection) => (example.selection = selection),
    });
    showBackend(example.selection);
    fillLayerAndHead(example.model.config);

    element("run").addEventListener("click", () => run(inspect));
    element("generate").addEventListener("click", () => run(generateContinuation));
    element("layer").addEventListener("change", () => run(inspect));
    element("head").addEventListener("change", () => run(inspect));
    await inspect();
    setBusy(false);
    const { nLayers, nHeads, dModel, nCtx } = example.model.config;
    setStatus(`Ready: ${nLayers} layers, ${nHeads} heads, dModel ${dModel}, ${nCtx} positions.`);
  } catch (error) {
    setStatus(`Error: ${error.message}`, true);
    throw error;
  }
}

/** Runs one action with the buttons disabled, and shows its error in the status line. */
async function run(action) {
  setBusy(true);
  try {
    await action();
  } catch (error) {
    setStatus(`Error: ${error.message}`, true);
  } finally {
    setBusy(false);
  }
}

/** Shows the tokens, the chosen head's attention pattern and the top-k next tokens. */
async function inspect() {
  const model = example.model;
  const prompt = element("prompt").value;
  const layer = Number(element("layer").value);
  const head = Number(element("head").value);
  const k = Math.max(1, Math.min(50, Number(element("k").value) || 10));

  const tokens = model.tokenizer.tokenize(prompt, { allowSpecial: true });
  showTokens(tokens);

  const name = `blocks.${layer}.attn.hook_pattern`;
  const { logits, cache } = model.runWithCache(prompt, { names: [name] });
  try {
    const pattern = await cache.get(name).array(); // [head, queryPos, keyPos]
    const [nPos, dVocab] = logits.shape;
    const last = (await logits.data()).slice((nPos - 1) * dVocab, nPos * dVocab);
    showPattern(pattern[head], tokens, layer, head);
    showTopK(topTokens(last, k, model));
  } finally {
    logits.dispose();
    cache.dispose();
  }
  setStatus(`Computed ${tokens.length} positions on ${tf.getBackend()}.`);
}

/** Samples a continuation with the chosen options, showing each token as it arrives. */
async function generateContinuation() {
  const model = example.model;
  const prompt = element("prompt").value;
  const output = element("continuation");
  output.replaceChildren(span(prompt, "prompt-part"));
  const generated = document.createTextNode("");
  output.append(generated);

  const started = performance.now();
  const topK = Number(element("sample-k").value);
  const result = await underhood.generate(model, prompt, {
    maxNewTokens: Number(element("max-new").value),
    temperature: Number(element("temperature").value),
    ...(topK > 0 ? { topK } : {}),
    seed: Number(element("seed").value),
    onToken: (step) => (generated.textContent += step.text),
  });
  generated.textContent = result.text;
  example.lastGeneration = result;
  const seconds = (performance.now() - started) / 1000;
  setStatus(`Generated ${result.ids.length} tokens in ${seconds.toFixed(1)} s on ${tf.getBackend()} (seed ${result.seed}).`);
  return result;
}

/** Returns the k most likely next tokens, from the last position's logits. */
function topTokens(lastLogits, k, model) {
  const probs = underhood.softmax(lastLogits);
  const ids = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b).slice(0, k);
  return ids.map((id) => ({ id, text: model.tokenText(id), prob: probs[id] }));
}

function showBackend(selection) {
  const label = element("backend");
  const backend = tf.getBackend();
  const skipped = selection.failures.map((f) => `${f.backend}: ${f.message}`);
  label.textContent = `backend: ${backend}${selection.failures.length ? ` (fallback from ${selection.failures[0].backend})` : ""}`;
  label.className = `backend ${backend}`;
  label.title = skipped.length ? `Skipped ${skipped.join("; ")}` : `Computing on tfjs's ${backend} backend`;
  label.dataset.backend = backend;
}

function fillLayerAndHead({ nLayers, nHeads }) {
  const options = (count) => Array.from({ length: count }, (_, i) => new Option(String(i), String(i)));
  element("layer").replaceChildren(...options(nLayers));
  element("head").replaceChildren(...options(nHeads));
}

function showTokens(tokens) {
  element("tokens").replaceChildren(...tokens.map((token) => {
    const chip = span("", "token");
    chip.append(span(visible(token.text), "text"), span(String(token.id), "id"));
    chip.title = `id ${token.id}, characters ${token.start} to ${token.end}`;
    return chip;
  }));
}

const SVG = "http://www.w3.org/2000/svg";

/** Draws a [queryPos, keyPos] pattern as an SVG heatmap with token labels. */
function showPattern(rows, tokens, layer, head) {
  element("pattern-title").textContent = `layer ${layer}, head ${head}`;
  const n = rows.length;
  const cell = Math.max(4, Math.min(26, Math.floor(520 / n)));
  const labelSpace = cell >= 10 ? 90 : 0;
  const size = labelSpace + n * cell;
  const svg = svgElement("svg", { width: size + 4, height: size + 4, viewBox: `0 0 ${size + 4} ${size + 4}`, role: "img" });
  svg.setAttribute("aria-label", `Attention pattern of layer ${layer}, head ${head}`);

  for (let q = 0; q < n; q++) {
    for (let k = 0; k < n; k++) {
      const value = rows[q][k];
      const rect = svgElement("rect", {
        x: labelSpace + k * cell,
        y: labelSpace + q * cell,
        width: cell,
        height: cell,
        fill: k > q ? "#f1f1f1" : shade(value),
      });
      const title = svgElement("title", {});
      title.textContent = `${visible(tokens[q]?.text ?? "")} → ${visible(tokens[k]?.text ?? "")}: ${value.toFixed(3)}`;
      rect.append(title);
      svg.append(rect);
    }
  }
  if (labelSpace > 0) {
    const fontSize = Math.min(12, cell - 2);
    tokens.forEach((token, i) => {
      const text = clip(visible(token.text), 12);
      const left = svgElement("text", { x: labelSpace - 4, y: labelSpace + i * cell + cell / 2, "text-anchor": "end", "dominant-baseline": "middle", "font-size": fontSize, "font-family": "monospace" });
      left.textContent = text;
      const top = svgElement("text", { x: 0, y: 0, "text-anchor": "start", "dominant-baseline": "middle", "font-size": fontSize, "font-family": "monospace", transform: `translate(${labelSpace + i * cell + cell / 2}, ${labelSpace - 4}) rotate(-90)` });
      top.textContent = text;
      svg.append(left, top);
    });
  }
  element("pattern").replaceChildren(svg);
}

function showTopK(rows) {
  const max = rows[0]?.prob ?? 1;
  element("topk").tBodies[0].replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    const bar = document.createElement("div");
    bar.style.width = `${(100 * row.prob) / max}%`;
    tr.append(cell(visible(row.text), "text"), cell(String(row.id), "id"), cell("", "bar"), cell(`${(100 * row.prob).toFixed(1)}%`, "prob"));
    tr.children[2].append(bar);
    return tr;
  }));
}

/** White to dark blue as a value goes from 0 to 1. */
function shade(value) {
  const t = Math.max(0, Math.min(1, value));
  const mix = (from, to) => Math.round(from + (to - from) * t);
  return `rgb(${mix(255, 16)}, ${mix(255, 63)}, ${mix(255, 145)})`;
}

/** Shows spaces and newlines in token text. */
function visible(text) {
  return text.replaceAll(" ", "·").replaceAll("\n", "↵");
}

function clip(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function span(text, className) {
  const node = document.createElement("span");
  node.className = className;
  node.textContent = text;
  return node;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.className = className;
  td.textContent = text;
  return td;
}

function svgElement(name, attributes) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

function setBusy(busy) {
  element("run").disabled = busy;
  element("generate").disabled = busy;
  document.body.dataset.busy = String(busy);
}

function setStatus(text, isError = false) {
  const status = element("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}
