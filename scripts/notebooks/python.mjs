#!/usr/bin/env node
/**
 * Finds a Python that has jupyter_client and runs it with the given arguments, so npm scripts
 * work whether Jupyter comes from Debian's packages (/usr/bin/python3) or from pip.
 *
 * Usage: node scripts/notebooks/python.mjs SCRIPT.py [ARGS...]
 * Set PYTHON to choose the interpreter.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Returns the first of $PYTHON, /usr/bin/python3 and python3 that can import jupyter_client. */
export function findPython() {
  const candidates = [process.env.PYTHON, "/usr/bin/python3", "python3"].filter(Boolean);
  for (const python of candidates) {
    const probe = spawnSync(python, ["-c", "import jupyter_client"], { stdio: "ignore" });
    if (probe.status === 0) return python;
  }
  throw new Error(
    `No Python with jupyter_client found (tried ${candidates.join(", ")}). Install it ` +
      `(Debian: apt-get install python3-jupyter-client python3-nbclient python3-nbconvert python3-ipykernel; ` +
      `pip: pip install jupyter_client nbconvert) or set PYTHON.`,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = spawnSync(findPython(), process.argv.slice(2), { stdio: "inherit" });
  process.exit(result.status ?? 1);
}
