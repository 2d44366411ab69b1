#!/usr/bin/env python3
"""Compares Dia's audio across weight storages on the real checkpoint (Python standard library).

Low-bit weights (int8, w8a8, bf16, later q4) change the logits a little, so greedy and sampled
outputs diverge from f32 after a few frames: the same script and seed give different audio, and
bitwise equality is no measure. This script measures what should stay: for every storage x
script x seed it runs `dia-infer --text-file F --weights W --seed S`, reads the WAV for its length,
RMS, peak and share of near-silent 10 ms frames, and whether the generation ended by EOS or at
the length cap (dia-infer's own warning). With faster-whisper or openai-whisper installed it also
transcribes every WAV and scores the word error rate against the script. `DIR/report.json` holds
every run; `DIR/report.md` the per-storage statistics against the first storage (the reference).

    cargo build --release -p dia-infer
    scripts/quality_compare.py --weights f32,int8,w8a8,bf16 --seeds 3 --out /tmp/qc \
        -- --backend cuda --dtype f32
    # smoke test on the tiny fixtures (noise-like audio, but every path runs):
    scripts/quality_compare.py --weights f32,int8,w8a8 --seeds 1 --quick --out /tmp/qc \
        -- --model-dir assets/fixtures/dia-tiny \
           --dac-path assets/fixtures/dac-tiny/weights.safetensors --backend flex

Arguments after `--` go to every dia-infer run (`--model-dir`, `--dac-path`, `--backend`,
`--dtype`, `--temperature`, `--max-tokens`, ...); the script sets the text, `--weights`, `--seed`,
`--output`, `--codes-out` and `--quiet` itself. On CUDA the compute dtype defaults to bf16, so
pass `--dtype f32` for an f32 reference there.
"""

from __future__ import annotations

import argparse
import array
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Varied dialogue, short to about 20 s of speech; `--quick` keeps the first two.
BUILTIN_SCRIPTS = [
    "[S1] Good morning. [S2] Morning! Coffee?",
    "[S1] Did you hear the rain last night? "
    "[S2] I did. (laughs) It sounded like the roof was coming down.",
    "[S1] The train leaves at seven, so we should be at the station by half past six. "
    "[S2] Then I will set two alarms, just in case.",
    "[S1] Why is the sky blue? "
    "[S2] Sunlight scatters off the air, and blue light scatters the most, "
    "so the whole sky glows with it. "
    "[S1] And sunsets? "
    "[S2] The light crosses more air, and the blue is scattered away before it reaches us.",
    "[S1] (clears throat) Ladies and gentlemen, thank you for coming tonight. "
    "[S2] (applause) "
    "[S1] We have a wonderful program for you, so please find your seats.",
    "[S1] I cannot believe you ate the last slice. "
    "[S2] (sighs) In my defence, it was calling my name. "
    "[S1] Pizza does not talk. "
    "[S2] This one did. (laughs)",
    "[S1] Let me tell you how the old lighthouse keeper spent his winters. Every evening he "
    "climbed the hundred steps, trimmed the wick, and wrote one line in his logbook. "
    "[S2] What did he write? "
    "[S1] The weather, the ships he saw, and whether the gulls were quiet. "
    "[S2] That sounds lonely. "
    "[S1] He said it was the best company he ever had.",
    "[S1] Okay, quick summary before the meeting ends. The design is done, the tests are green, "
    "and the release goes out on Thursday. "
    "[S2] What about the documentation? "
    "[S1] Half written. I will finish it tomorrow morning. "
    "[S2] Great. Then we are all set. "
    "[S1] Thanks everyone, see you next week.",
]

# Flags this script sets on every run; the pass-through arguments may not repeat them.
RESERVED_FLAGS = {
    "-o", "--output", "--weights", "--int8", "--seed", "-q", "--quiet", "--codes-out",
    "--wav-format", "--text-file", "--batch",
}

# dia-infer warns (on stderr, also with --quiet) when a pass stops at the length cap.
LENGTH_CAP_WARNING = "reached the length cap"

EXPECTATION = (
    "Low-bit weight storages round the model's weights, so their logits differ slightly from "
    "the reference and their greedy or sampled outputs are expected to diverge from it after a "
    "few frames: the same script and seed give different audio. Bitwise equality is therefore "
    "no measure; these statistics (length, loudness, silence, ending by EOS, and the ASR word "
    "error rate where available) are the comparison. A healthy storage stays close to the "
    "reference on all of them; a broken one shows up as runs hitting the length cap, long "
    "silences or babble, or a much higher word error rate."
)


@dataclass
class Run:
    """One dia-infer run and what was measured on its output."""

    storage: str
    script: int
    seed: int
    text: str
    wav: str
    wall_s: float
    frames: int
    duration_s: float
    rms: float
    peak: float
    silence_fraction: float | None
    ended_by: str
    capped_passes: int
    transcript: str | None = None
    wer: float | None = None
    duration_ratio: float | None = None
    rms_ratio: float | None = None


def parse_args(argv):
    """Splits `argv` at the first `--`: this script's options, then dia-infer's."""
    split = argv.index("--") if "--" in argv else len(argv)
    own, passthrough = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(
        description="Compare Dia's audio across weight storages (f32, int8, w8a8, bf16, ...).",
        usage="%(prog)s [options] [-- DIA_INFER_ARGS ...]",
    )
    parser.add_argument("--dia-infer", type=Path, metavar="PATH",
                        help="dia-infer binary [default: dia-infer on PATH, else "
                             "target/release/dia-infer]")
    parser.add_argument("--weights", default="f32,int8,w8a8,bf16", metavar="LIST",
                        help="comma-separated storages for --weights; the first is the "
                             "reference [default: %(default)s]")
    parser.add_argument("--scripts", type=Path, metavar="FILE",
                        help="file of texts, one per line with [S1]/[S2] tags (blank lines and "
                             "# comments skipped) [default: a built-in list of 8]")
    parser.add_argument("--quick", action="store_true",
                        help="only the first two built-in scripts (a smoke test)")
    parser.add_argument("--seeds", type=int, default=3, metavar="N",
                        help="seeds 0..N-1 per script and storage [default: %(default)s]")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="directory for the WAVs, report.json and report.md")
    parser.add_argument("--silence-db", type=float, default=-50.0, metavar="DB",
                        help="a 10 ms frame below this RMS (dBFS) counts as silent "
                             "[default: %(default)s]")
    parser.add_argument("--asr-model", default="base.en", metavar="NAME",
                        help="Whisper model for the ASR round trip [default: %(default)s]")
    parser.add_argument("--no-asr", action="store_true", help="skip the ASR round trip")
    args = parser.parse_args(own)
    args.storages = [w.strip() for w in args.weights.split(",") if w.strip()]
    if not args.storages:
        parser.error("--weights names no storage")
    if len(set(args.storages)) != len(args.storages):
        parser.error("--weights names a storage twice")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.quick and args.scripts:
        parser.error("--quick shortens the built-in scripts; it does not go with --scripts")
    reserved = [a for a in passthrough if a.split("=", 1)[0] in RESERVED_FLAGS]
    if reserved:
        parser.error(f"the script sets {', '.join(reserved)} itself; drop it after --")
    return args, passthrough


def find_dia_infer(given):
    """The dia-infer binary: `given`, else on PATH, else the release build; exits if none."""
    if given is not None:
        candidates = [given]
    else:
        target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
        on_path = shutil.which("dia-infer")
        candidates = ([Path(on_path)] if on_path else []) + [target / "release" / "dia-infer"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    sys.exit(f"error: no dia-infer binary at {', '.join(map(str, candidates))}: build it with "
             "`cargo build --release -p dia-infer` or pass --dia-infer PATH")


def load_scripts(args):
    """The texts to speak: from --scripts, else the built-in list (two with --quick)."""
    if args.scripts is None:
        return BUILTIN_SCRIPTS[:2] if args.quick else list(BUILTIN_SCRIPTS)
    lines = args.scripts.read_text(encoding="utf-8").splitlines()
    texts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not texts:
        sys.exit(f"error: {args.scripts} holds no script")
    return texts


def run_dia_infer(binary, text_file, storage, seed, wav, codes, passthrough):
    """Runs one generation; returns (wall seconds, stderr). Exits with its stderr on failure."""
    command = [str(binary), "--text-file", str(text_file), "--weights", storage,
               "--seed", str(seed), "--output", str(wav), "--codes-out", str(codes), "--quiet",
               *passthrough]
    # The length-cap warning must not be filtered out by the caller's RUST_LOG.
    env = dict(os.environ, RUST_LOG="warn,symphonia=off")
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, env=env, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"error: dia-infer failed (exit {done.returncode}):\n  "
                 f"{' '.join(command)}\n{done.stderr.rstrip()}")
    return wall, done.stderr


def measure_wav(path, silence_db):
    """Duration, RMS, peak (full scale 1.0) and silent-frame share of a 16-bit mono WAV."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            sys.exit(f"error: {path} is not 16-bit mono PCM")
        rate = w.getframerate()
        samples = array.array("h", w.readframes(w.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    scaled = [s / 32768.0 for s in samples]
    window = rate // 100
    frames = [scaled[i:i + window] for i in range(0, len(scaled) - window + 1, window)]
    threshold = 10 ** (silence_db / 20)
    silent = sum(1 for f in frames if rms(f) < threshold)
    return {
        "duration_s": len(scaled) / rate,
        "rms": rms(scaled),
        "peak": max((abs(s) for s in scaled), default=0.0),
        "silence_fraction": silent / len(frames) if frames else None,
    }


def rms(values):
    """Root mean square of `values` (0 when empty)."""
    return math.sqrt(sum(v * v for v in values) / len(values)) if values else 0.0


def load_transcriber(model_name):
    """A function WAV path -> text from faster-whisper or openai-whisper; None if neither."""
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        pass
    else:
        model = WhisperModel(model_name)

        def transcribe(path):
            segments, _ = model.transcribe(str(path), language="en")
            return " ".join(s.text.strip() for s in segments)

        return transcribe, "faster-whisper"
    try:
        import whisper
    except ImportError:
        return None, None
    if not hasattr(whisper, "load_model"):  # an unrelated package also named `whisper`
        return None, None
    model = whisper.load_model(model_name)
    return (lambda path: model.transcribe(str(path), language="en")["text"]), "openai-whisper"


def words(text):
    """Lower-case words of `text` without speaker tags, (non-verbal) tags and punctuation."""
    text = re.sub(r"\[S\d+\]|\([^)]*\)", " ", text)
    return re.findall(r"[a-z0-9]+(?:'[a-z0-9]+)*", text.lower())


def word_error_rate(reference, hypothesis):
    """Word-level Levenshtein distance over the reference's word count (None if it has none)."""
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return None
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1] / len(ref)


def generate_all(args, binary, texts, passthrough):
    """Runs every script x seed x storage (storages innermost, so a bad one fails early)."""
    text_dir = args.out / "texts"
    text_dir.mkdir(parents=True, exist_ok=True)
    total = len(texts) * args.seeds * len(args.storages)
    runs = []
    for index, text in enumerate(texts, 1):
        text_file = text_dir / f"s{index:02d}.txt"
        text_file.write_text(text + "\n", encoding="utf-8")
        for seed in range(args.seeds):
            for storage in args.storages:
                run = generate_one(args, binary, (index, text, text_file), seed, storage,
                                   passthrough)
                runs.append(run)
                print(f"[{len(runs)}/{total}] {storage} s{index:02d} seed {seed}: "
                      f"{run.duration_s:.2f} s, {run.ended_by}, {run.wall_s:.1f} s wall",
                      file=sys.stderr, flush=True)
    return runs


def generate_one(args, binary, script, seed, storage, passthrough):
    """Runs dia-infer for `script` (index, text, text file), `seed` and `storage`; measures it."""
    index, text, text_file = script
    run_dir = args.out / "runs" / storage
    run_dir.mkdir(parents=True, exist_ok=True)
    stem = run_dir / f"s{index:02d}_seed{seed}"
    wav, codes = stem.with_suffix(".wav"), stem.with_suffix(".codes.json")
    wall, stderr = run_dia_infer(binary, text_file, storage, seed, wav, codes, passthrough)
    capped = stderr.count(LENGTH_CAP_WARNING)
    return Run(storage=storage, script=index, seed=seed, text=text, wav=str(wav), wall_s=wall,
               frames=len(json.loads(codes.read_text())),
               ended_by="length_cap" if capped else "eos", capped_passes=capped,
               **measure_wav(wav, args.silence_db))


def transcribe_all(runs, model_name):
    """Fills each run's transcript and WER; returns the ASR package used, or None."""
    transcribe, package = load_transcriber(model_name)
    if transcribe is None:
        print("note: no ASR round trip: neither faster_whisper nor whisper is importable "
              "(`pip install faster-whisper` adds the word error rate)", file=sys.stderr)
        return None
    for run in runs:
        run.transcript = transcribe(run.wav) if run.duration_s > 0 else ""
        run.wer = word_error_rate(run.text, run.transcript)
    return package


def add_ratios(runs, reference):
    """Each run's duration and RMS over the reference storage's on the same script and seed."""
    base = {(r.script, r.seed): r for r in runs if r.storage == reference}
    for run in runs:
        ref = base[(run.script, run.seed)]
        run.duration_ratio = run.duration_s / ref.duration_s if ref.duration_s else None
        run.rms_ratio = run.rms / ref.rms if ref.rms else None


def mean(values):
    """Mean of the values that are not None (None if there are none)."""
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def median(values):
    """Median of the values that are not None (None if there are none)."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(runs, storages):
    """Per-storage statistics, in the order of `storages`."""
    summary = {}
    for storage in storages:
        mine = [r for r in runs if r.storage == storage]
        summary[storage] = {
            "runs": len(mine),
            "duration_ratio_mean": mean(r.duration_ratio for r in mine),
            "duration_ratio_median": median(r.duration_ratio for r in mine),
            "eos_share": sum(r.ended_by == "eos" for r in mine) / len(mine),
            "rms_ratio_mean": mean(r.rms_ratio for r in mine),
            "silence_fraction_mean": mean(r.silence_fraction for r in mine),
            "wer_mean": mean(r.wer for r in mine),
            "wall_s_mean": mean(r.wall_s for r in mine),
            "duration_s_mean": mean(r.duration_s for r in mine),
        }
    return summary


def fmt(value, spec=".3f"):
    """`value` formatted by `spec`, or an en dash for None."""
    return "–" if value is None else format(value, spec)


def markdown(meta, summary, runs):
    """The report as Markdown: what was run, the expectation, the statistics, every run."""
    reference = meta["storages"][0]
    lines = [
        "# Dia weight-storage comparison",
        "",
        f"- dia-infer: `{meta['dia_infer']}`; pass-through arguments: "
        f"`{' '.join(meta['passthrough']) or '(none)'}`",
        f"- storages: {', '.join(meta['storages'])} (reference: **{reference}**); "
        f"scripts: {meta['scripts']}; seeds per script: {meta['seeds']}",
        f"- ASR: {meta['asr'] or 'none (install faster-whisper for the word error rate)'}",
        "",
        EXPECTATION,
        "",
        "## Per storage",
        "",
        f"Ratios are to **{reference}** on the same script and seed. \"Ended by EOS\" is the "
        "share of runs in which no pass stopped at the length cap (dia-infer warns for each pass "
        "that does). Wall time is per run and includes loading the model.",
        "",
        "| storage | runs | mean duration (s) | duration ratio mean | duration ratio median "
        "| ended by EOS | RMS ratio mean | silent 10 ms frames | WER mean | wall mean (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for storage, s in summary.items():
        lines.append(
            f"| {storage} | {s['runs']} | {fmt(s['duration_s_mean'], '.2f')} "
            f"| {fmt(s['duration_ratio_mean'])} | {fmt(s['duration_ratio_median'])} "
            f"| {s['eos_share']:.0%} | {fmt(s['rms_ratio_mean'])} "
            f"| {fmt(s['silence_fraction_mean'], '.1%')} | {fmt(s['wer_mean'], '.1%')} "
            f"| {fmt(s['wall_s_mean'], '.1f')} |")
    lines += [
        "",
        "## Runs",
        "",
        "| storage | script | seed | frames | duration (s) | ended by | RMS | peak | silent "
        "| WER | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r.storage} | {r.script} | {r.seed} | {r.frames} | {r.duration_s:.2f} "
            f"| {r.ended_by} | {r.rms:.4f} | {r.peak:.3f} | {fmt(r.silence_fraction, '.1%')} "
            f"| {fmt(r.wer, '.1%')} | {r.wall_s:.1f} |")
    return "\n".join(lines) + "\n"


def main():
    """Generates, measures, optionally transcribes, and writes the reports."""
    args, passthrough = parse_args(sys.argv[1:])
    binary = find_dia_infer(args.dia_infer)
    texts = load_scripts(args)
    runs = generate_all(args, binary, texts, passthrough)
    asr = None if args.no_asr else transcribe_all(runs, args.asr_model)
    add_ratios(runs, args.storages[0])
    summary = summarize(runs, args.storages)
    meta = {
        "dia_infer": str(binary),
        "passthrough": passthrough,
        "storages": args.storages,
        "scripts": len(texts),
        "seeds": args.seeds,
        "silence_db": args.silence_db,
        "asr": f"{asr} {args.asr_model}" if asr else None,
    }
    report = {"meta": meta, "summary": summary, "runs": [asdict(r) for r in runs]}
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    report_md = markdown(meta, summary, runs)
    (args.out / "report.md").write_text(report_md, encoding="utf-8")
    print(report_md)


if __name__ == "__main__":
    main()
