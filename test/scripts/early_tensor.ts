// Makes a tensor before any backend is chosen, then loads a model: the tensor starts on cpu
// and loadModel() still switches to wasm. Prints the two backend names.
import * as tf from "@tensorflow/tfjs-core";
import { getBackend, loadModel } from "../../mod.ts";

const early = tf.zeros([32]);
const before = getBackend();
const model = await loadModel(new URL("../fixtures/gpt2-tiny-f32", import.meta.url).pathname);
const e = model.embed([1, 2]);
const sum = e.residual.add(early);
console.log(JSON.stringify({ before, after: getBackend(), shape: sum.shape }));
for (const t of [sum, early]) t.dispose();
e.dispose();
model.dispose();
