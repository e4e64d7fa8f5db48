"""PyTorch reference for bench/run.ts: the same GPT-2-small-shaped model, with the same weights.

Reads the raw f32 weights and manifest that bench/gpt2_small.ts writes, runs the same
measurements as bench/measure.ts (forward on 64 and 512 tokens, greedy generation with a KV
cache) and prints one line `BENCH_RESULT {json}` on stdout.

Usage: python3 torch_ref.py MANIFEST IDS_JSON [--reps N] [--long-reps N] [--threads N]
"""
import argparse
import json
import math
import resource
import time

import numpy as np
import torch
import torch.nn.functional as F


def peak_rss() -> int:
    """Peak resident set size in bytes (VmHWM on Linux, else ru_maxrss)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Gpt2:
    """GPT-2 forward pass with a KV cache, written with the operations transformers uses."""

    def __init__(self, manifest: dict):
        cfg = manifest["config"]
        self.n_layers = cfg["nLayers"]
        self.n_heads = cfg["nHeads"]
        self.d_model = cfg["dModel"]
        self.eps = cfg["layerNormEps"]
        raw = np.fromfile(manifest["data"], dtype="<f4")
        self.w = {}
        for entry in manifest["tensors"]:
            n = int(np.prod(entry["shape"]))
            array = raw[entry["offset"]:entry["offset"] + n].reshape(entry["shape"])
            self.w[entry["name"]] = torch.from_numpy(array.copy())
        del raw
        # Fuse Q, K and V as transformers' c_attn does: [dModel, 3 * dModel].
        for layer in range(self.n_layers):
            p = f"blocks.{layer}."
            self.w[p + "W_QKV"] = torch.cat([self.w.pop(p + k) for k in ("W_Q", "W_K", "W_V")], dim=1).contiguous()
            self.w[p + "b_QKV"] = torch.cat([self.w.pop(p + k) for k in ("b_Q", "b_K", "b_V")])

    def weight_bytes(self) -> int:
        return sum(t.numel() * 4 for t in self.w.values())

    def forward(self, ids: torch.Tensor, past=None):
        """Run ids [pos] after the positions in `past`: logits [pos, dVocab] and the new KV cache, a list of (k, v) per layer."""
        w = self.w
        D, H = self.d_model, self.n_heads
        dh = D // H
        offset = 0 if past is None else past[0][0].shape[1]
        T = ids.shape[0]
        x = w["W_E"][ids] + w["W_pos"][offset:offset + T]
        new_past = []
        for layer in range(self.n_layers):
            p = f"blocks.{layer}."
            h = F.layer_norm(x, (D,), w[p + "ln1.w"], w[p + "ln1.b"], self.eps)
            qkv = torch.addmm(w[p + "b_QKV"], h, w[p + "W_QKV"])
            q, k, v = qkv.split(D, dim=1)
            q = q.view(T, H, dh).transpose(0, 1)
            k = k.view(T, H, dh).transpose(0, 1)
            v = v.view(T, H, dh).transpose(0, 1)
            if past is not None:
                k = torch.cat([past[layer][0], k], dim=1)
                v = torch.cat([past[layer][1], v], dim=1)
            new_past.append((k, v))
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(dh)
            if T > 1:
                key_pos = k.shape[1]
                mask = torch.ones(T, key_pos, dtype=torch.bool).tril(diagonal=key_pos - T)
                scores = scores.masked_fill(~mask, float("-inf"))
            z = torch.matmul(torch.softmax(scores, dim=-1), v)
            z = z.transpose(0, 1).reshape(T, D)
            x = x + torch.addmm(w[p + "b_O"], z, w[p + "W_O"])
            h = F.layer_norm(x, (D,), w[p + "ln2.w"], w[p + "ln2.b"], self.eps)
            pre = torch.addmm(w[p + "b_in"], h, w[p + "W_in"])
            x = x + torch.addmm(w[p + "b_out"], F.gelu(pre, approximate="tanh"), w[p + "W_out"])
        h = F.layer_norm(x, (D,), w["ln_final.w"], w["ln_final.b"], self.eps)
        return F.linear(h, w["W_E"]), new_past


def time_each(n, fn):
    """Run fn once untimed, then n times, and return each duration in ms."""
    fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("manifest")
    parser.add_argument("ids", help="JSON file with ids64, ids512 and ids16")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--long-reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 keeps the default")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    result = {"runtime": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads()}

    with open(args.manifest) as f:
        manifest = json.load(f)
    with open(args.ids) as f:
        ids = {k: torch.tensor(v, dtype=torch.long) for k, v in json.load(f).items()}

    t0 = time.perf_counter()
    model = Gpt2(manifest)
    result["loadMs"] = (time.perf_counter() - t0) * 1000
    result["weightBytes"] = model.weight_bytes()

    with torch.inference_mode():
        t0 = time.perf_counter()
        logits, _ = model.forward(ids["ids64"])
        result["firstForward64Ms"] = (time.perf_counter() - t0) * 1000
        result["lastLogits"] = logits[-1, :8].tolist()

        result["forward64Ms"] = time_each(args.reps, lambda: model.forward(ids["ids64"]))
        result["forward512Ms"] = time_each(args.long_reps, lambda: model.forward(ids["ids512"]))

        new_tokens = 128
        generation_ms = []
        decode = []
        for _ in range(max(1, args.long_reps - 1)):
            t0 = time.perf_counter()
            logits, past = model.forward(ids["ids16"])
            token = int(torch.argmax(logits[-1]))
            first_at = time.perf_counter()
            for _step in range(new_tokens - 1):
                logits, past = model.forward(torch.tensor([token]), past)
                token = int(torch.argmax(logits[-1]))
            last_at = time.perf_counter()
            generation_ms.append((last_at - t0) * 1000)
            decode.append((new_tokens - 1) / (last_at - first_at))
        result["generationMs"] = generation_ms
        result["generationTokPerS"] = [new_tokens * 1000 / ms for ms in generation_ms]
        result["decodeTokPerS"] = decode

    result["peakRss"] = peak_rss()
    print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
