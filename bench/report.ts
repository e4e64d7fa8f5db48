/**
 * Turns the raw results of bench/run.ts into tables: per runtime, each measure with its median
 * over the rounds, the min and max, the ratio to PyTorch from the same round, and the target.
 */

/** Raw results of one round: per runtime the measure and cold-start processes, and PyTorch. */
export interface RoundResult {
  round: number;
  runtimes: Record<string, { measure: Record<string, unknown>; cold: Record<string, unknown> }>;
  torch?: Record<string, unknown>;
}

type Raw = Record<string, unknown>;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const list = (raw: Raw | undefined, key: string): number[] => (raw?.[key] as number[] | undefined) ?? [];
const num = (raw: Raw | undefined, key: string): number => raw?.[key] as number;

/** One row: how to read a value for underhood and for PyTorch in a round, and the target. */
interface Metric {
  label: string;
  unit: string;
  ours: (measure: Raw, cold: Raw) => number;
  torch?: (torch: Raw) => number;
  /** "lower" when a smaller ratio to PyTorch is better. */
  better: "lower" | "higher";
  /** Target check on the underhood value and the ratio (undefined when there is none). */
  target?: { text: string; met: (value: number, ratio: number | undefined) => boolean };
}

const METRICS: Metric[] = [
  {
    label: "forward, 64 tokens",
    unit: "ms",
    ours: (m) => median(list(m, "forward64Ms")),
    torch: (t) => median(list(t, "forward64Ms")),
    better: "lower",
    target: { text: "≤ 2.5× PyTorch (wasm)", met: (_v, r) => r !== undefined && r <= 2.5 },
  },
  {
    label: "forward, 512 tokens",
    unit: "ms",
    ours: (m) => median(list(m, "forward512Ms")),
    torch: (t) => median(list(t, "forward512Ms")),
    better: "lower",
    target: { text: "≤ 2.5× PyTorch (wasm)", met: (_v, r) => r !== undefined && r <= 2.5 },
  },
  {
    label: "decode with KV cache",
    unit: "tok/s",
    ours: (m) => median(list(m, "decodeTokPerS")),
    torch: (t) => median(list(t, "decodeTokPerS")),
    better: "higher",
    target: { text: "≥ 1.5× PyTorch and ≥ 50 tok/s", met: (v, r) => v >= 50 && r !== undefined && r >= 1.5 },
  },
  {
    label: "generate 16 + 128 tokens",
    unit: "tok/s",
    ours: (m) => median(list(m, "generationTokPerS")),
    torch: (t) => median(list(t, "generationTokPerS")),
    better: "higher",
  },
  {
    label: "runWithCache / forward, 64 tokens",
    unit: "×",
    ours: (m) => median(list(m, "runWithCache64Ms")) / median([...list(m, "forward64Ms"), ...list(m, "forward64AfterCacheMs")]),
    better: "lower",
    target: { text: "≤ 1.15", met: (v) => v <= 1.15 },
  },
  {
    label: "first forward / warm forward",
    unit: "×",
    ours: (m) => num(m, "firstForward64Ms") / median(list(m, "forward64Ms")),
    torch: (t) => num(t, "firstForward64Ms") / median(list(t, "forward64Ms")),
    better: "lower",
    target: { text: "≤ 1.5", met: (v) => v <= 1.5 },
  },
  {
    label: "peak RSS / f32 weight bytes",
    unit: "×",
    ours: (m) => num(m, "peakRssModel") / num(m, "weightBytes"),
    torch: (t) => num(t, "peakRss") / num(t, "weightBytes"),
    better: "lower",
    target: { text: "≤ 2.0", met: (v) => v <= 2.0 },
  },
  {
    label: "peak RSS",
    unit: "MB",
    ours: (m) => num(m, "peakRssModel") / 1e6,
    torch: (t) => num(t, "peakRss") / 1e6,
    better: "lower",
  },
  {
    label: "cold start: import → first token",
    unit: "ms",
    ours: (_m, c) => num(c, "totalMs"),
    better: "lower",
    target: { text: "< 1000 ms", met: (v) => v < 1000 },
  },
  {
    label: "cold start: process start → first token",
    unit: "ms",
    ours: (_m, c) => num(c, "sinceProcessStartMs"),
    better: "lower",
  },
  {
    label: "slowest stage call, default model",
    unit: "ms",
    ours: (m) => Math.max(...Object.entries((m.stagesMs as Record<string, number>) ?? {}).filter(([k]) => k !== "forward").map(([, v]) => v)),
    better: "lower",
    target: { text: "< 20 ms", met: (v) => v < 20 },
  },
];

function format(value: number): string {
  if (!Number.isFinite(value)) return "–";
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function spread(values: number[]): string {
  if (values.length === 0) return "–";
  const m = format(median(values));
  if (values.length === 1) return m;
  return `${m} [${format(Math.min(...values))}–${format(Math.max(...values))}]`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

/** Formats the tables for the runtimes in `runtimes` as Markdown. */
export function formatReport(rounds: RoundResult[], runtimes: string[]): string {
  const out: string[] = [];
  const withTorch = rounds.every((r) => r.torch !== undefined);
  if (withTorch) {
    const threads = rounds[0]!.torch!.threads;
    out.push(`PyTorch ${rounds[0]!.torch!.torch} with ${threads} thread(s). Values: median [min–max] over ${rounds.length} round(s); ` +
      `each ratio is underhood / PyTorch within one round (for tok/s: underhood / PyTorch, higher is better).`);
    // Both sides print the first 8 logits of the last position of the 64-token forward pass.
    const reference = list(rounds[0]!.torch, "lastLogits");
    const differences = runtimes.map((runtime) => {
      const ours = list(rounds[0]!.runtimes[runtime]?.measure, "lastLogits");
      const diff = Math.max(...ours.map((v, i) => Math.abs(v - reference[i]!)));
      return `${runtime} ${diff.toExponential(1)}`;
    });
    out.push(`Same model check, max |logit difference| against PyTorch: ${differences.join(", ")}.`);
  }
  for (const runtime of runtimes) {
    const rows: string[][] = [];
    for (const metric of METRICS) {
      const ours: number[] = [];
      const theirs: number[] = [];
      const ratios: number[] = [];
      for (const round of rounds) {
        const r = round.runtimes[runtime];
        if (!r) continue;
        const v = metric.ours(r.measure, r.cold);
        ours.push(v);
        if (metric.torch && round.torch) {
          const t = metric.torch(round.torch);
          theirs.push(t);
          if (metric.unit !== "×" && metric.unit !== "MB") ratios.push(v / t);
        }
      }
      const ratio = ratios.length ? median(ratios) : undefined;
      // A target on the ratio cannot be judged without PyTorch.
      let met = "";
      if (metric.target) {
        const needsRatio = metric.torch !== undefined && metric.unit !== "×";
        if (needsRatio && ratio === undefined) met = "–";
        else met = metric.target.met(median(ours), ratio) ? "yes" : "no";
      }
      rows.push([
        `${metric.label} (${metric.unit})`,
        spread(ours),
        spread(theirs),
        ratios.length ? spread(ratios) : "",
        metric.target?.text ?? "",
        met,
      ]);
    }
    out.push("", `### ${runtime}`, "", table(["measure", "underhood", "PyTorch", "ratio", "target", "met"], rows));
  }

  // Stage calls on the default model.
  const stageNames = Object.keys((rounds[0]?.runtimes[runtimes[0]!]?.measure.stagesMs as Record<string, number>) ?? {});
  if (stageNames.length) {
    const rows = stageNames.map((stage) => [
      stage,
      ...runtimes.map((runtime) =>
        spread(rounds.flatMap((round) => {
          const stages = round.runtimes[runtime]?.measure.stagesMs as Record<string, number> | undefined;
          return stages?.[stage] !== undefined ? [stages[stage]!] : [];
        }))
      ),
    ]);
    out.push("", "### Stage calls on the default model, 32 tokens (ms, median of each process)", "", table(["stage", ...runtimes], rows));
  }
  return out.join("\n");
}
