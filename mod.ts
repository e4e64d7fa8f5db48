/**
 * underhood: open up a GPT-2 and run or inspect every stage on its own.
 *
 * The pipeline, stage by stage:
 *
 * ```ts
 * import { generate, loadModel } from "./mod.ts";
 *
 * const model = await loadModel();                       // the default model, on wasm
 * const tokens = model.tokenizer.tokenize("To be, or not to be");
 * const e = model.embed("To be, or not to be");          // token part, position part, sum
 * const attn = model.attentionBlock(0, e.residual);      // q, k, v, scores, pattern, z, result
 * const mlp = model.mlpBlock(0, attn.residOut);          // neurons before/after the nonlinearity
 * const { logits, cache } = model.runWithCache("To be, or not to be");
 * const top = model.unembed(cache.get("blocks.3.hook_resid_post")).topK(10);
 * const out = await generate(model, "To be, or not", { maxNewTokens: 20, seed: 1 });
 * ```
 *
 * @module
 */
export { type BackendName, type BackendOptions, ensureBackend, getBackend, setBackend, wasmThreadCount } from "./src/backend.ts";
export { defaultModelDir, loadModel, type LoadModelOptions, type ModelLoadProgress } from "./src/load_model.ts";
export {
  DEFAULT_BASE_URL,
  defaultCacheDir,
  DownloadError,
  type DownloadProgress,
  downloadModel,
  HUGGINGFACE_DOWNLOAD_HOSTS,
  type HubOptions,
  type HubReference,
  parseHubUrl,
  repoCacheDir,
  validateRepoName,
} from "./src/hub.ts";
export {
  type BlockTensors,
  type Hook,
  type HookFn,
  KVCache,
  type LayerNormTensors,
  Model,
  type ModelOptions,
  type ResidualInput,
  type TokenInput,
  type TokenOptions,
} from "./src/model.ts";
export { ActivationCache, type HookName, hookNames, type NamesFilter } from "./src/hooks.ts";
export { AttentionResult, EmbedResult, LayerNormResult, MlpResult, type TopToken, UnembedResult } from "./src/results.ts";
export { ENDOFTEXT, ENDOFTEXT_ID, gpt2Tokenizer, type Token, Tokenizer } from "./src/tokenizer.ts";
export { CheckpointError, loadCheckpoint, parseConfig } from "./src/loader.ts";
export { SafetensorsError } from "./src/safetensors.ts";
export { generate, type GenerateOptions, type Generation, type GenerationStep } from "./src/generate.ts";
export { type Dump, type DumpOptions, dumpParity } from "./src/dump.ts";
export { createRng, filterProbs, type Rng, sampleFromLogits, type SamplingOptions, softmax } from "./src/sampling.ts";
export type { Activation, CheckpointInfo, LoadedCheckpoint, ModelConfig, ModelWeights } from "./src/types.ts";

// Interpretability tools, built on the stages, hooks and cache above.
export { logitLens, LogitLensResult, type LogitLensOptions } from "./src/analysis/logit_lens.ts";
export {
  type AttributedComponent,
  type ComponentKind,
  decomposeResidual,
  type DecomposeOptions,
  directLogitAttribution,
  type LogitAttribution,
  type LogitAttributionOptions,
  type ResidualComponent,
  ResidualDecomposition,
} from "./src/analysis/attribution.ts";
export { computeMetric, type Metric } from "./src/analysis/metrics.ts";
export {
  type AblationHookOptions,
  ablationHooks,
  type AblationMethod,
  type AblationSweep,
  ablationSweep,
  type AblationSweepOptions,
  type AblationTarget,
  type MlpAblationHook,
} from "./src/analysis/ablation.ts";
export { patchHeads, type PatchingOptions, type PatchingResult, patchResidual } from "./src/analysis/patching.ts";
export {
  generateSteered,
  type SteeredGenerateOptions,
  steeringHook,
  type SteeringOptions,
  steeringVector,
  type SteeringVectorOptions,
} from "./src/analysis/steering.ts";
export {
  analogy,
  type AnalogyOptions,
  type EmbeddingSpace,
  type NearestToken,
  nearestTokens,
  type NearestTokensOptions,
  symmetricEigen,
  type TokenPca,
  tokenPca,
  type TokenPcaOptions,
  tokenVector,
} from "./src/analysis/embeddings.ts";
export {
  type InspectedGeneration,
  inspectGeneration,
  type InspectGenerationOptions,
  type InspectStep,
  type InspectSummary,
} from "./src/analysis/inspect_generate.ts";
export { detectHeads, type HeadDetectorOptions, type HeadScores, previousTokenScores } from "./src/analysis/head_detectors.ts";
export type { TokenRef } from "./src/analysis/_common.ts";

// Display: rich output in notebooks (plotly figures with an SVG fallback) and text in terminals.
export * from "./src/display/mod.ts";
