#!/usr/bin/env node
// Runs the underhood command line on Node through tsx, which compiles the TypeScript sources
// on the fly. Under Deno or Bun, run src/cli.ts directly instead.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli.ts");
process.exitCode = await main(process.argv.slice(2));
