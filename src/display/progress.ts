/**
 * A text progress bar for downloads and loading, drawn on one terminal line.
 */

/** Progress of one file: how many of its bytes are done. */
export interface ByteProgress {
  phase?: string;
  file: string;
  loaded: number;
  total?: number | undefined;
}

/** The stream the bar is drawn on, such as process.stderr. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

const WIDTH = 30;

/** Formats one progress line, such as `read model.safetensors [#####.....] 45% 6.5/14.5 MB`. */
export function formatProgress(progress: ByteProgress, width = WIDTH): string {
  const label = `${progress.phase ?? "load"} ${progress.file}`;
  const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
  if (!progress.total || progress.total <= 0) return `${label} ${mb(progress.loaded)} MB`;
  const fraction = Math.min(1, Math.max(0, progress.loaded / progress.total));
  const filled = Math.round(fraction * width);
  const bar = "#".repeat(filled) + ".".repeat(width - filled);
  return `${label} [${bar}] ${String(Math.round(fraction * 100)).padStart(3)}% ${mb(progress.loaded)}/${mb(progress.total)} MB`;
}

/**
 * Returns an onProgress callback that redraws a bar on `stream` (a terminal only: on a
 * pipe or file it writes nothing), and a `done()` that ends the line.
 *
 * @example
 * ```ts
 * const bar = progressBar(process.stderr);
 * const model = await loadModel("gpt2", { onProgress: bar.onProgress });
 * bar.done();
 * ```
 */
export function progressBar(stream: ProgressStream): { onProgress: (p: ByteProgress) => void; done: () => void } {
  let drawn = false;
  let lastDraw = 0;
  return {
    onProgress(progress) {
      if (!stream.isTTY) return;
      const now = Date.now();
      const finished = progress.total !== undefined && progress.loaded >= progress.total;
      if (!finished && now - lastDraw < 100) return;
      lastDraw = now;
      stream.write(`\r\x1b[2K${formatProgress(progress)}`);
      drawn = true;
    },
    done() {
      if (drawn) stream.write("\r\x1b[2K");
      drawn = false;
    },
  };
}
