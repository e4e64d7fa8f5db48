/**
 * The `underhood` command line: `demo`, `dump` (the parity interface) and `train`.
 *
 * Run it with `npx underhood ...` (Node), `deno run -A src/cli.ts ...` or `bun src/cli.ts ...`.
 */
import { parseArgs } from "node:util";
import { type BackendName, setBackend } from "./backend.ts";
import { loadModel } from "./load_model.ts";
import { dumpParity } from "./dump.ts";
import { runDemo } from "./demo.ts";
import { progressBar } from "./display/progress.ts";

const HELP = `underhood: open up a GPT-2 and look at every stage.

Commands:
  demo  [--prompt TEXT] [--model DIR] [--seed N] [--max-new-tokens N] [--backend cpu|wasm]
        Runs the default model (or DIR) on a prompt and prints the tokens, the embedding norms,
        the most-attended earlier token of each head, the top-10 next tokens and a sampled continuation.
  dump  --model DIR --ids '[...]' [--logits all|last] [--attn-layer L --attn-head H|-1] [--greedy N]
        [--backend cpu|wasm]
        Writes the model's outputs as JSON in the format of the gpt2ref reference tool to stdout.
  train [options]
        Trains a GPT-2-architecture model on a text file; run "underhood train --help" for options.
`;

/** Runs the command line with `args` (without the program name) and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case "demo":
        return await demoCommand(rest);
      case "dump":
        return await dumpCommand(rest);
      case "train": {
        const { main: trainMain } = await import("./train/cli.ts");
        return await trainMain(rest);
      }
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(HELP);
        return command === undefined ? 2 : 0;
      default:
        console.error(`Unknown command "${command}".\n\n${HELP}`);
        return 2;
    }
  } catch (error) {
    const e = error as Error;
    console.error(`underhood ${command}: ${e.name === "Error" ? "" : e.name + ": "}${e.message}`);
    if (process.env.UNDERHOOD_DEBUG) console.error(e.stack);
    return 1;
  }
}

function parseBackend(value: string | undefined): BackendName | undefined {
  if (value === undefined) return undefined;
  if (value !== "cpu" && value !== "wasm") {
    throw new RangeError(`Invalid --backend "${value}": expected cpu or wasm.`);
  }
  return value;
}

function parseInteger(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new RangeError(`Invalid ${name} "${value}": expected an integer.`);
  return n;
}

/** Joins `--name -1` into `--name=-1`, because parseArgs reads a leading dash as an option. */
function joinNegativeNumbers(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    if (arg.startsWith("--") && !arg.includes("=") && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

async function dumpCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args: joinNegativeNumbers(args),
    options: {
      model: { type: "string" },
      ids: { type: "string" },
      logits: { type: "string", default: "last" },
      "attn-layer": { type: "string" },
      "attn-head": { type: "string" },
      greedy: { type: "string" },
      backend: { type: "string" },
    },
    strict: true,
  });
  if (!values.model) throw new RangeError("Missing --model DIR: pass a checkpoint directory.");
  if (!values.ids) throw new RangeError("Missing --ids: pass token ids as a JSON list, such as --ids '[15496, 995]'.");
  let ids: unknown;
  try {
    ids = JSON.parse(values.ids);
  } catch {
    throw new TypeError(`Invalid --ids ${values.ids}: expected a JSON list of integers, such as '[15496, 995]'.`);
  }
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === "number")) {
    throw new TypeError(`Invalid --ids ${values.ids}: expected a JSON list of integers, such as '[15496, 995]'.`);
  }
  const logits = values.logits;
  if (logits !== "all" && logits !== "last" && logits !== "none") {
    throw new RangeError(`Invalid --logits "${logits}": expected all, last or none.`);
  }
  const attnLayer = parseInteger("--attn-layer", values["attn-layer"]);
  const attnHead = parseInteger("--attn-head", values["attn-head"]);
  if (attnHead !== undefined && attnLayer === undefined) {
    throw new RangeError("--attn-head needs --attn-layer: pass the layer too, such as --attn-layer 0 --attn-head -1.");
  }
  const backend = parseBackend(values.backend);
  if (backend) await setBackend(backend, { fallback: false });

  const bar = progressBar(process.stderr);
  const model = await loadModel(values.model, { onProgress: bar.onProgress });
  bar.done();
  try {
    const dump = await dumpParity(model, {
      ids: ids as number[],
      logits,
      ...(attnLayer !== undefined ? { attnLayer } : {}),
      ...(attnHead !== undefined ? { attnHead } : {}),
      greedy: parseInteger("--greedy", values.greedy) ?? 0,
    });
    // Wait for the write to finish: Bun drops piped output still buffered at exit.
    await new Promise<void>((resolve, reject) =>
      process.stdout.write(JSON.stringify(dump) + "\n", (error) => (error ? reject(error) : resolve()))
    );
  } finally {
    model.dispose();
  }
  return 0;
}

async function demoCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      prompt: { type: "string" },
      model: { type: "string" },
      seed: { type: "string" },
      "max-new-tokens": { type: "string" },
      backend: { type: "string" },
    },
    strict: true,
  });
  const backend = parseBackend(values.backend);
  if (backend) await setBackend(backend, { fallback: false });
  const options: Parameters<typeof runDemo>[0] = { write: (line) => console.log(line) };
  if (values.prompt !== undefined) options.prompt = values.prompt;
  if (values.model !== undefined) options.modelDir = values.model;
  const seed = parseInteger("--seed", values.seed);
  if (seed !== undefined) options.seed = seed;
  const maxNewTokens = parseInteger("--max-new-tokens", values["max-new-tokens"]);
  if (maxNewTokens !== undefined) options.maxNewTokens = maxNewTokens;
  await runDemo(options);
  return 0;
}

const isEntryPoint = (() => {
  const entry = (globalThis as { Deno?: { mainModule: string } }).Deno?.mainModule ??
    (process.argv[1] ? new URL(`file://${process.argv[1]}`).href : "");
  return entry === import.meta.url;
})();

if (isEntryPoint) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
