#!/usr/bin/env python3
"""PyTorch anchor for the GPU report: transformers' DiaForConditionalGeneration, random weights.

Decodes the bench text through `generate()` (CFG scale 3, the reference's sampling settings, no
EOS before the length, so every run times the same steps) and prints one JSON line: the median decode step
(one frame for one utterance, batch 2 inside for CFG) as ms and steps/s, eager or with
`torch.compile` (a static cache and a compiled forward, transformers' own compile path). Each
step is timed from a stopping criterion after a device sync, as dia-bench times its steps.

Needs torch and transformers>=5 (the GPU machine has both). `scripts/gpu-check.sh` runs it.
Usage: torch_gpu_anchor.py [--device cuda] [--dtype bfloat16|float16|float32] [--compile]
       [--steps 200] [--warmup 40] [--config full|tiny]
"""

import argparse
import json
import statistics
import time

import torch
from transformers import CompileConfig, DiaConfig, DiaForConditionalGeneration, StoppingCriteria, StoppingCriteriaList

TEXT = "[S1] Dia is an open weights text to dialogue model. [S2] You get full control over scripts and voices. [S1] Wow. Amazing. (laughs)"


def text_ids(text):
    """Dia's byte tokenizer: UTF-8 bytes, with the speaker tags as bytes 1 and 2."""
    return list(text.replace("[S1]", "\x01").replace("[S2]", "\x02").encode())


class StepClock(StoppingCriteria):
    """Records the time at the end of each step, after a device sync; never stops a run
    (Dia's generate() replaces user logits processors, stopping criteria it keeps)."""

    def __init__(self, device):
        self.device = device
        self.times = []

    def __call__(self, input_ids, scores, **kwargs):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.times.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def config(name):
    if name == "full":
        return DiaConfig()
    # A small model for a dry run on a CPU.
    return DiaConfig(
        encoder_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                            num_attention_heads=2, num_key_value_heads=2, head_dim=32),
        decoder_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                            cross_hidden_size=64, cross_num_attention_heads=2,
                            cross_num_key_value_heads=2, cross_head_dim=32),
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--config", default="full")
    a = ap.parse_args()
    device = torch.device(a.device)
    dtype = getattr(torch, a.dtype)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = DiaForConditionalGeneration(config(a.config)).to(device=device, dtype=dtype).eval()
    load_s = time.perf_counter() - t0
    ids = torch.tensor([text_ids(TEXT)], device=device)
    kwargs = dict(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=a.warmup + a.steps + 1,
        # No end of sequence before the length: every run times the same steps.
        min_new_tokens=a.warmup + a.steps + 1,
        do_sample=True,
        temperature=1.2,
        top_p=0.95,
        top_k=45,
        guidance_scale=3.0,
    )
    if a.compile:
        # transformers compiles the decoder's forward itself once the cache is static (on CUDA;
        # `_compile_all_devices` lets a CPU dry run take the same path).
        kwargs["cache_implementation"] = "static"
        compile_config = CompileConfig()
        compile_config._compile_all_devices = a.device == "cpu"
        kwargs["compile_config"] = compile_config
    runs = []
    # The first run compiles (or warms the allocator); the second is timed.
    for _ in range(2):
        clock = StepClock(device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            model.generate(stopping_criteria=StoppingCriteriaList([clock]), **kwargs)
        runs.append((time.perf_counter() - t0, clock.times))
    total_s, times = runs[-1]
    steps = [b - a for a, b in zip(times, times[1:])][a.warmup:]
    median_ms = statistics.median(steps) * 1000
    print(json.dumps({
        "impl": "transformers DiaForConditionalGeneration",
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else a.device,
        "dtype": a.dtype,
        "compiled": a.compile,
        "config": a.config,
        # Graphs dynamo compiled: 0 means the compiled run fell back to eager.
        "graphs_compiled": torch._dynamo.utils.counters["stats"]["unique_graphs"],
        "steps_timed": len(steps),
        "step_ms_median": round(median_ms, 3),
        "steps_per_s": round(1000 / median_ms, 2),
        "first_run_s": round(runs[0][0], 2),
        "timed_run_s": round(total_s, 2),
        "load_s": round(load_s, 2),
    }))


if __name__ == "__main__":
    main()
