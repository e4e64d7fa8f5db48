// Deno's REPL evaluates --eval-file files as REPL input, so relative imports resolve from the
// working folder: start it from the repository root. repl.ts then defines the globals.
await import("./scripts/notebooks/repl.ts");
