/**
 * Preloads underhood into a REPL: every export of mod.ts and of the display layer becomes a
 * global, and `model` is the default model, loaded.
 *
 *   node --import tsx --import ./scripts/notebooks/repl.ts
 *   npx bun --preload ./scripts/notebooks/repl.ts --interactive
 *   npx deno repl -A --eval-file=scripts/notebooks/repl_deno.js   (Deno cannot preload a module)
 */
import * as underhood from "../../mod.ts";
import * as display from "../../src/display/mod.ts";

const model = await underhood.loadModel();
Object.assign(globalThis, underhood, display, { model });
console.log(`underhood: ${model.info.source} loaded as \`model\`; try await show(model.tokenizer.tokenize("To be, or not to be"))`);
