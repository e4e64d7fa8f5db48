/**
 * Walks one prompt through the model stage by stage, calling each stage function by hand,
 * and checks that the result equals the full forward pass.
 *
 * Run: npx tsx examples/stages.ts | deno run -A examples/stages.ts | bun examples/stages.ts
 */
import * as tf from "@tensorflow/tfjs-core";
import { loadModel } from "../mod.ts";

const model = await loadModel();
const prompt = "First Citizen:\nBefore we proceed any further, hear me";

// Text -> tokens, each with its id, text and character offsets.
const tokens = model.tokenizer.tokenize(prompt);
console.log(tokens.map((t) => `${t.id}:${JSON.stringify(t.text)}`).join(" "));

// Tokens -> vectors: the token part plus the position part.
const embedded = model.embed(tokens.map((t) => t.id));
let residual: tf.Tensor2D = embedded.residual.clone();
embedded.dispose();

// Attention block, then MLP block, repeated. Each call returns every intermediate.
for (let layer = 0; layer < model.config.nLayers; layer++) {
  const attn = model.attentionBlock(layer, residual);
  const mlp = model.mlpBlock(layer, attn.residOut);
  // For each head, the token the last position attends to most.
  const lastRows = tf.tidy(() => {
    const [nHeads, nPos] = attn.pattern.shape;
    return attn.pattern.slice([0, nPos - 1, 0], [nHeads, 1, nPos]).reshape([nHeads, nPos]).arraySync() as number[][];
  });
  const favourites = lastRows.map((row) => tokens[row.indexOf(Math.max(...row))]!.text);
  const mlpNorm = tf.tidy(() => tf.norm(mlp.out).dataSync()[0]!);
  console.log(`block ${layer}: last token attends most to ${JSON.stringify(favourites)}; |mlp out| ${mlpNorm.toFixed(2)}`);
  residual.dispose();
  residual = mlp.residOut.clone();
  attn.dispose();
  mlp.dispose();
}

// The last vector -> a distribution over the next token.
const unembedded = model.unembed(residual);
console.log("next:", unembedded.topK(5).map((t) => `${JSON.stringify(t.token)} ${(100 * t.prob).toFixed(1)}%`).join(", "));

// The same pass in one call gives the same logits.
const logits = model.forward(tokens.map((t) => t.id));
const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(logits, unembedded.logits))).dataSync()[0]!);
console.log(`max |stage-by-stage - forward| = ${diff.toExponential(2)}`);

unembedded.dispose();
logits.dispose();
residual.dispose();
model.dispose();
console.log(`tensors left: ${tf.memory().numTensors}`);
