/**
 * Builds the browser bundle: `dist/browser/underhood.js`, an ES module made by esbuild from
 * src/browser.ts, with the tfjs-backend-wasm .wasm files copied next to it.
 *
 * The build fails when any `node:` module (or a bare Node built-in such as `fs`) would end up in
 * the bundle. Two source modules import Node built-ins for functions that only Node callers use:
 * src/safetensors.ts (`openFileSource`) and src/display/plotly_html.ts (inlining plotly.js into
 * notebook HTML). For exactly those imports the bundle gets a stub whose functions throw, and
 * every other Node import stops the build.
 *
 * Usage: npx tsx scripts/build-browser.ts [--outdir DIR] [--no-minify]
 */
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Node imports that the browser bundle replaces with throwing stubs: importer (relative to the
 * repository root) -> module -> the names it imports. Anything else from Node fails the build.
 */
const NODE_STUBS: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>> = {
  "src/safetensors.ts": { "node:fs/promises": ["open"] },
  "src/display/plotly_html.ts": {
    "node:fs": ["readFileSync"],
    "node:module": ["createRequire"],
    "node:zlib": ["gzipSync"],
  },
};

const WASM_FILES = ["tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm-threaded-simd.wasm"];

/** The result of {@link buildBrowser}. */
export interface BrowserBuild {
  /** Path of the bundle. */
  bundle: string;
  /** Size of the bundle in bytes. */
  bytes: number;
  /** Paths of the copied .wasm files. */
  wasm: string[];
  /** The Node imports that were replaced by stubs, as "importer -> module". */
  stubbed: string[];
}

/**
 * Bundles src/browser.ts for browsers and copies the wasm binaries.
 *
 * @param options.outdir Output directory (default: dist/browser).
 * @param options.minify Minify the bundle (default: true).
 * @throws {Error} When esbuild fails, or the bundle would import a Node module.
 */
export async function buildBrowser(options: { outdir?: string; minify?: boolean } = {}): Promise<BrowserBuild> {
  const outdir = resolve(options.outdir ?? join(ROOT, "dist", "browser"));
  mkdirSync(outdir, { recursive: true });
  const bundle = join(outdir, "underhood.js");
  const stubbed = new Set<string>();

  const result = await esbuild.build({
    entryPoints: [join(ROOT, "src", "browser.ts")],
    outfile: bundle,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    minify: options.minify ?? true,
    sourcemap: true,
    metafile: true,
    logLevel: "silent",
    plugins: [nodeStubPlugin(stubbed)],
  });

  const nodeImports = findNodeImports(result.metafile);
  if (nodeImports.length > 0) {
    throw new Error(
      `The browser bundle would import Node modules: ${nodeImports.join(", ")}. ` +
        `Keep Node-only code out of the modules that src/browser.ts imports.`,
    );
  }

  const wasmDir = dirname(createRequire(import.meta.url).resolve("@tensorflow/tfjs-backend-wasm/package.json"));
  const wasm = WASM_FILES.map((name) => {
    const target = join(outdir, name);
    copyFileSync(join(wasmDir, "dist", name), target);
    return target;
  });
  writeFileSync(join(outdir, "metafile.json"), JSON.stringify(result.metafile));

  const bytes = result.metafile.outputs[relative(process.cwd(), bundle)]?.bytes ??
    Object.values(result.metafile.outputs).find((o) => o.entryPoint !== undefined)?.bytes ?? 0;
  return { bundle, bytes, wasm, stubbed: [...stubbed].sort() };
}

/**
 * Resolves the allowed Node imports of {@link NODE_STUBS} to stub modules and leaves every
 * other Node import unresolved, so that esbuild reports it.
 */
function nodeStubPlugin(stubbed: Set<string>): esbuild.Plugin {
  return {
    name: "underhood-node-stubs",
    setup(build) {
      build.onResolve({ filter: /^node:/ }, (args) => {
        const importer = relative(ROOT, args.importer).split("\\").join("/");
        const names = NODE_STUBS[importer]?.[args.path];
        if (names === undefined) {
          return {
            errors: [{
              text: `${importer} imports ${args.path}, which the browser bundle cannot contain. ` +
                `Move the Node-only code to a module that src/browser.ts does not import.`,
            }],
          };
        }
        stubbed.add(`${importer} -> ${args.path}`);
        return { path: args.path, namespace: "node-stub", pluginData: { importer, names } };
      });
      build.onLoad({ filter: /.*/, namespace: "node-stub" }, (args) => {
        const { importer, names } = args.pluginData as { importer: string; names: readonly string[] };
        const lines = names.map((name) =>
          `export function ${name}() { throw new Error(${
            JSON.stringify(`${args.path} (${name}, used by ${importer}) is not available in the browser build of underhood.`)
          }); }`
        );
        return { contents: lines.join("\n"), loader: "js" };
      });
    },
  };
}

/** Lists the Node built-in imports left in the bundle's inputs, as "importer -> module". */
function findNodeImports(metafile: esbuild.Metafile): string[] {
  const builtins = new Set(["fs", "path", "os", "url", "crypto", "module", "zlib", "util", "process", "worker_threads", "perf_hooks", "child_process", "stream", "buffer", "http", "https", "net"]);
  const found: string[] = [];
  for (const [input, info] of Object.entries(metafile.inputs)) {
    if (input.startsWith("node-stub:")) continue;
    for (const imported of info.imports) {
      const isNode = imported.path.startsWith("node:") || (imported.external === true && builtins.has(imported.path));
      if (isNode && !imported.path.startsWith("node-stub:")) found.push(`${input} -> ${imported.path}`);
    }
  }
  return found;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const outIndex = args.indexOf("--outdir");
  const outdir = outIndex >= 0 ? args[outIndex + 1] : undefined;
  const build = await buildBrowser({ ...(outdir ? { outdir } : {}), minify: !args.includes("--no-minify") });
  console.log(
    `Built ${relative(process.cwd(), build.bundle)} (${(build.bytes / 1e6).toFixed(2)} MB) and ` +
      `${build.wasm.length} .wasm files. Stubbed Node imports: ${build.stubbed.join(", ") || "none"}.`,
  );
}
