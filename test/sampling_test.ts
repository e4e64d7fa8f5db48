import { assert, assertClose, assertEquals, assertThrows, test } from "./_harness.ts";
import {
  argmax,
  type Candidate,
  createRng,
  filterProbs,
  type Rng,
  sampleFromLogits,
  softmax,
  validateSamplingOptions,
} from "../src/sampling.ts";

function ids(candidates: Candidate[]): number[] {
  return candidates.map((c) => c.id);
}

function draws(rng: Rng, count: number): number[] {
  return Array.from({ length: count }, () => rng());
}

/** An rng that fails the test if sampling calls it. */
const forbiddenRng: Rng = () => {
  throw new Error("rng must not be called");
};

// --- createRng ---

test("createRng matches C reference", () => {
  // First five 32-bit outputs of xoshiro128** 1.1 seeded with two splitmix64 outputs, printed
  // by a C transcription of both reference generators (https://prng.di.unimi.it/) built with gcc.
  const expected: [number, number[]][] = [
    [0, [3737715805, 2584255861, 2876756834, 3286328325, 1553311962]],
    [42, [1776835114, 4165204688, 17111135, 2317295270, 2792088233]],
    [-1, [477689756, 2493998634, 555695776, 607808419, 61340979]],
    [Number.MAX_SAFE_INTEGER, [1233166643, 1287031142, 661813442, 2960669951, 2601079046]],
  ];
  for (const [seed, words] of expected) {
    assertEquals(draws(createRng(seed), 5), words.map((w) => w / 2 ** 32), `seed ${seed}`);
  }
});

test("createRng same seed repeats", () => {
  assertEquals(draws(createRng(7), 100), draws(createRng(7), 100));
});

test("createRng different seeds differ", () => {
  const seeds = [0, 1, 2, -1, 2 ** 32, 2 ** 32 + 1, Number.MIN_SAFE_INTEGER];
  const firsts = seeds.map((seed) => JSON.stringify(draws(createRng(seed), 4)));
  assertEquals(new Set(firsts).size, seeds.length, "distinct streams");
});

test("createRng output in [0, 1)", () => {
  const values = draws(createRng(123), 20_000);
  for (const value of values) assert(value >= 0 && value < 1, `value ${value} outside [0, 1)`);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  assertClose(mean, 0.5, { atol: 0.01, label: "mean of 20000 draws" });
});

test("createRng rejects bad seeds", async () => {
  for (const seed of [1.5, NaN, Infinity, 2 ** 53, -(2 ** 53)]) {
    await assertThrows(() => createRng(seed), RangeError, ["Invalid seed", String(seed), "safe integer"]);
  }
  await assertThrows(() => createRng("1" as unknown as number), TypeError, "expected a number");
});

// --- validateSamplingOptions ---

test("validateSamplingOptions fills defaults", () => {
  assertEquals(validateSamplingOptions({}), { temperature: 1, topK: undefined, topP: 1 });
  assertEquals(validateSamplingOptions({ temperature: 0, topK: 5, topP: 0.9 }), {
    temperature: 0,
    topK: 5,
    topP: 0.9,
  });
});

test("validateSamplingOptions rejects bad values", async () => {
  const cases: [Record<string, number>, string, string][] = [
    [{ temperature: -0.5 }, "temperature", "-0.5"],
    [{ temperature: NaN }, "temperature", "NaN"],
    [{ temperature: Infinity }, "temperature", "Infinity"],
    [{ topK: 0 }, "topK", "0"],
    [{ topK: -3 }, "topK", "-3"],
    [{ topK: 2.5 }, "topK", "2.5"],
    [{ topK: NaN }, "topK", "NaN"],
    [{ topK: Infinity }, "topK", "Infinity"],
    [{ topP: 0 }, "topP", "0"],
    [{ topP: -0.1 }, "topP", "-0.1"],
    [{ topP: 1.5 }, "topP", "1.5"],
    [{ topP: NaN }, "topP", "NaN"],
  ];
  for (const [options, name, value] of cases) {
    await assertThrows(() => validateSamplingOptions(options), RangeError, [`Invalid ${name} ${value}`, "expected"]);
    await assertThrows(() => sampleFromLogits([0, 1], options, createRng(0)), RangeError, `Invalid ${name} ${value}`);
  }
  await assertThrows(
    () => validateSamplingOptions({ topP: "0.9" as unknown as number }),
    TypeError,
    "Invalid topP",
  );
});

// --- softmax ---

test("softmax rows sum to 1", () => {
  const rng = createRng(5);
  for (const temperature of [1, 0.7, 2, 1e-3]) {
    for (let row = 0; row < 20; row++) {
      const logits = draws(rng, 1000).map((u) => (u - 0.5) * 40);
      const sum = softmax(logits, temperature).reduce((a, b) => a + b, 0);
      assertClose(sum, 1, { atol: 1e-12, label: `row ${row} at temperature ${temperature}` });
    }
  }
});

test("softmax matches direct formula", () => {
  const logits = [1, 2, 3];
  const z = Math.exp(0.5) + Math.exp(1) + Math.exp(1.5);
  assertClose(softmax(logits, 2), [Math.exp(0.5) / z, Math.exp(1) / z, Math.exp(1.5) / z], { atol: 1e-15 });
});

test("softmax -Infinity gets 0", () => {
  const probs = softmax([0, -Infinity, 0]);
  assertEquals(probs[1], 0);
  assertClose(probs, [0.5, 0, 0.5], { atol: 1e-15 });
});

test("softmax large logits stay finite", () => {
  assertClose(softmax([1000, 1000 + Math.log(3)]), [0.25, 0.75], { atol: 1e-12 });
  assertClose(softmax([1, 2], 1e-300), [0, 1], { atol: 0 });
});

test("softmax temperature 0 is one-hot", () => {
  assertEquals(Array.from(softmax([1, 5, 5, 2], 0)), [0, 1, 0, 0]);
});

test("softmax rejects bad logits", async () => {
  await assertThrows(() => softmax([0, 1, NaN]), RangeError, ["NaN", "id 2"]);
  await assertThrows(() => softmax([0, Infinity]), RangeError, ["+Infinity", "id 1"]);
  await assertThrows(() => softmax([-Infinity, -Infinity]), RangeError, "all 2 logits are -Infinity");
  await assertThrows(() => softmax([]), RangeError, "empty");
  await assertThrows(() => softmax([1, 2], -1), RangeError, "Invalid temperature -1");
});

// --- argmax ---

test("argmax ties go to lowest index", () => {
  assertEquals(argmax([1, 3, 2, 3]), 1);
  assertEquals(argmax([-Infinity, -Infinity]), 0);
  assertEquals(argmax(new Float32Array([0, -1, 4])), 2);
});

test("argmax rejects NaN and empty", async () => {
  await assertThrows(() => argmax([1, NaN, 2]), RangeError, ["NaN", "index 1"]);
  await assertThrows(() => argmax([]), RangeError, "empty");
});

// --- filterProbs ---

test("filterProbs topP 0.8 keeps ids 0 and 3", () => {
  const kept = filterProbs([0.3, 0.1, 0.1, 0.5], { topP: 0.8 });
  assertEquals(ids(kept), [3, 0]);
  assertClose(kept.map((c) => c.prob), [0.625, 0.375], { atol: 1e-15 });
});

test("filterProbs topP 0.6 keeps ids 0 and 1", () => {
  assertEquals(ids(filterProbs([0.5, 0.3, 0.2], { topP: 0.6 })), [0, 1]);
});

test("filterProbs topP sums with rounding", () => {
  // 0.83 + 0.1 is 0.9299999999999999 in float64 and the total is exactly 1, so without the
  // tolerance top-p 0.93 would also keep id 0.
  assertEquals(ids(filterProbs([0.07, 0.1, 0.83], { topP: 0.93 })), [2, 1]);
});

test("filterProbs topK 1 then topP", () => {
  const kept = filterProbs(new Array(100).fill(0.01), { topK: 1, topP: 0.8 });
  assertEquals(kept, [{ id: 0, prob: 1 }]);
});

test("filterProbs tiny topP keeps one", () => {
  assertEquals(ids(filterProbs([0.2, 0.5, 0.3], { topP: 1e-9 })), [1]);
  assertEquals(ids(filterProbs(new Array(100).fill(0.01), { topP: 1e-9 })), [0]);
});

test("filterProbs topK beyond vocab keeps all", () => {
  const kept = filterProbs([0.2, 0.5, 0.3], { topK: 10 });
  assertEquals(ids(kept), [1, 2, 0]);
  assertClose(kept.map((c) => c.prob), [0.5, 0.3, 0.2], { atol: 1e-15 });
});

test("filterProbs topP 1 keeps tiny tail", () => {
  // The tail mass 1e-15 is below the top-p tolerance, so only skipping top-p at 1 keeps id 1.
  assertEquals(ids(filterProbs([1, 1e-15], { topP: 1 })), [0, 1]);
});

test("filterProbs topK ties keep lower ids", () => {
  assertEquals(ids(filterProbs([0.1, 0.3, 0.3, 0.3], { topK: 2 })), [1, 2]);
  assertEquals(ids(filterProbs([0.25, 0.25, 0.25, 0.25], { topK: 3 })), [0, 1, 2]);
});

test("filterProbs topP on renormalised top-k", () => {
  // The top 2 are 0.4 and 0.2, which renormalise to 2/3 and 1/3. topP 0.6 stops after the first.
  assertEquals(ids(filterProbs([0.4, 0.2, 0.2, 0.2], { topK: 2, topP: 0.6 })), [0]);
  assertEquals(ids(filterProbs([0.4, 0.2, 0.2, 0.2], { topP: 0.6 })), [0, 1]);
});

test("filterProbs drops zero probabilities", () => {
  assertEquals(ids(filterProbs([0, 0.5, 0, 0.5], {})), [1, 3]);
  assertEquals(ids(filterProbs([0, 0.5, 0, 0.5], { topK: 3 })), [1, 3]);
});

test("filterProbs heap matches full sort", () => {
  // Quantised probabilities give many ties, so the heap's tie order is exercised.
  const rng = createRng(11);
  const probs = draws(rng, 50_257).map((u) => Math.floor(u * 1000) / 1000);
  const full = filterProbs(probs, {});
  for (const topK of [1, 2, 50, 1000]) {
    const top = filterProbs(probs, { topK });
    assertEquals(ids(top), ids(full).slice(0, topK), `topK ${topK}`);
  }
});

test("filterProbs rejects bad probabilities", async () => {
  await assertThrows(() => filterProbs([0.5, NaN], {}), RangeError, ["NaN", "id 1"]);
  await assertThrows(() => filterProbs([0.5, -0.1], {}), RangeError, ["-0.1", "id 1"]);
  await assertThrows(() => filterProbs([0, 0], {}), RangeError, "all 2 are 0");
  await assertThrows(() => filterProbs([1], { topK: 0 }), RangeError, "Invalid topK 0");
});

// --- sampleFromLogits ---

test("sampleFromLogits temperature 0 is argmax", () => {
  assertEquals(sampleFromLogits([0.1, 2, -1, 2], { temperature: 0 }, forbiddenRng), {
    id: 1,
    prob: 1,
    filteredProb: 1,
  });
  for (const seed of [0, 1, 2, 3]) {
    const result = sampleFromLogits([3, 1, 7, 7, 2], { temperature: 0, topK: 3, topP: 0.5 }, createRng(seed));
    assertEquals(result.id, 2, `seed ${seed}`);
  }
});

test("sampleFromLogits frequencies match probs", () => {
  const target = [0.2, 0.3, 0.5];
  const logits = target.map(Math.log);
  const rng = createRng(2024);
  const count = 20_000;
  const counts = [0, 0, 0];
  for (let i = 0; i < count; i++) counts[sampleFromLogits(logits, {}, rng).id]!++;

  let chiSquare = 0;
  for (let id = 0; id < target.length; id++) {
    const expected = target[id]! * count;
    chiSquare += (counts[id]! - expected) ** 2 / expected;
    assertClose(counts[id]! / count, target[id]!, { atol: 0.02, label: `frequency of id ${id}` });
  }
  // 13.8 is the 99.9th percentile of chi-square with 2 degrees of freedom.
  assert(chiSquare < 13.8, `chi-square ${chiSquare.toFixed(2)} >= 13.8 for counts ${counts}`);
});

test("sampleFromLogits respects topK and topP", () => {
  const logits = [0, 1, 2, 3, 4].map((x) => x * 0.1);
  const rng = createRng(3);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) seen.add(sampleFromLogits(logits, { topK: 2 }, rng).id);
  assertEquals([...seen].sort(), [3, 4]);

  seen.clear();
  for (let i = 0; i < 2000; i++) seen.add(sampleFromLogits([0, Math.log(3)], { topP: 0.7 }, rng).id);
  assertEquals([...seen], [1]);
});

test("sampleFromLogits reports both probabilities", () => {
  // probs 0.1, 0.2, 0.3, 0.4. topK 2 keeps ids 3 and 2, renormalised to 4/7 and 3/7. The draw
  // walks them in id order, so id 2 owns [0, 3/7) and id 3 owns [3/7, 1).
  const logits = [0.1, 0.2, 0.3, 0.4].map(Math.log);
  const result = sampleFromLogits(logits, { topK: 2 }, () => 0.9999);
  assertEquals(result.id, 3);
  assertClose(result.prob, 0.4, { atol: 1e-15 });
  assertClose(result.filteredProb, 4 / 7, { atol: 1e-15 });
  assertEquals(sampleFromLogits(logits, { topK: 2 }, () => 0).id, 2);
  assertEquals(sampleFromLogits(logits, { topK: 2 }, () => 3 / 7 - 1e-9).id, 2);
  assertEquals(sampleFromLogits(logits, { topK: 2 }, () => 3 / 7 + 1e-9).id, 3);
});

test("sampleFromLogits draws once per token", () => {
  let calls = 0;
  const countingRng: Rng = () => {
    calls++;
    return 0.5;
  };
  sampleFromLogits([1, 2, 3], { temperature: 0.7, topK: 2, topP: 0.9 }, countingRng);
  assertEquals(calls, 1);
});

test("sampleFromLogits cumulative boundaries", () => {
  // Candidate i owns draws in [cumulative before i, cumulative through i), so 0.5 picks the second.
  assertEquals(sampleFromLogits([0, 0], {}, () => 0.4999).id, 0);
  assertEquals(sampleFromLogits([0, 0], {}, () => 0.5).id, 1);
  assertEquals(sampleFromLogits([0, 0], {}, () => 0).id, 0);
});

test("sampleFromLogits same seed same ids", () => {
  const logits = draws(createRng(9), 1000).map((u) => u * 10);
  const run = (seed: number) => {
    const rng = createRng(seed);
    return Array.from({ length: 50 }, () => sampleFromLogits(logits, { temperature: 0.9, topK: 40, topP: 0.95 }, rng).id);
  };
  assertEquals(run(1), run(1));
  assert(JSON.stringify(run(1)) !== JSON.stringify(run(2)), "seeds 1 and 2 gave the same 50 ids");
});

test("sampleFromLogits rejects bad input", async () => {
  await assertThrows(() => sampleFromLogits([0, 1, 2, NaN], {}, createRng(0)), RangeError, ["NaN", "id 3"]);
  await assertThrows(() => sampleFromLogits([0, NaN], { temperature: 0 }, forbiddenRng), RangeError, "id 1");
  await assertThrows(() => sampleFromLogits([0, 1], {}, () => 1), RangeError, "Invalid rng output 1");
  await assertThrows(() => sampleFromLogits([0, 1], {}, () => NaN), RangeError, "Invalid rng output NaN");
});
