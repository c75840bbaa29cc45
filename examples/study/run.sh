#!/usr/bin/env bash
# The LEM method end to end at small scale, on the bundled SmolLM2-135M-Instruct:
#   1. baseline vs kernel A/B        (does the kernel change what the model says?)
#   2. self-distillation with the kernel, kept above a score threshold
#   3. extraction into mlx-lm training data (the kernel is not part of the examples)
#   4. a LoRA with the addendum's safe settings (LR 5e-6, batch 1, ~30% of layers)
#   5. base vs adapter A/B           (did training move the model without the kernel?)
#   6. one report with the addendum's tables
#
#   bash examples/study/run.sh [OUT]       # OUT defaults to ./study-out; rerun to resume
#
# Every step is an ordinary lemlab command, printed before it runs, so each can be rerun or
# changed by hand. Sizes come from the environment (the defaults take about 10 minutes on a
# 2-core Linux CPU, far less on Apple silicon): STUDY_TOKENS, STUDY_SAMPLES, STUDY_ITERS,
# STUDY_THRESHOLD.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-study-out}
lemlab=${LEMLAB:-lemlab}
tokens=${STUDY_TOKENS:-48}
samples=${STUDY_SAMPLES:-2}
iters=${STUDY_ITERS:-20}
threshold=${STUDY_THRESHOLD:-1.0}
mkdir -p "$out"

step() { printf '\n== %s\n$ %s\n' "$1" "${*:2}" >&2; "${@:2}"; }
resume_flag() { [ -s "$1" ] && echo --resume || true; }

model=$($lemlab import-gguf --demo)
echo "model: $model" >&2

step "1. baseline vs kernel" $lemlab ab --model "$model" --kernel "lek=$here/kernel.txt" \
  --prompts "$here/battery.toml" --max-tokens "$tokens" --output "$out/ab-kernel.jsonl" \
  $(resume_flag "$out/ab-kernel.jsonl")
step "2. self-distill with the kernel" $lemlab distill --model "$model" --kernel "$here/kernel.txt" \
  --prompts "$here/battery.toml" --samples "$samples" --threshold "$threshold" \
  --max-tokens "$tokens" --seed 7 --output "$out/distill.jsonl" $(resume_flag "$out/distill.jsonl")
if [ ! -s "$out/data/train.jsonl" ]; then
  step "3. extract training data" $lemlab extract --input "$out/distill.jsonl" --output "$out/data" \
    --dedup all --split 0.67
fi
if [ ! -s "$out/adapter/adapters.safetensors" ]; then
  # lemlab train's defaults are the addendum's safe settings; only the length is set here.
  step "4. LoRA with the safe settings" $lemlab train --model "$model" --data "$out/data" \
    --adapter-path "$out/adapter" --iters "$iters" --steps-per-report 5 --steps-per-eval "$iters" \
    --save-every "$iters" --val-batches 1
fi
step "5. base vs adapter" $lemlab ab --model "$model" --adapter "lek-lora=$out/adapter" \
  --prompts "$here/battery.toml" --max-tokens "$tokens" --output "$out/ab-adapter.jsonl" \
  $(resume_flag "$out/ab-adapter.jsonl")
{
  echo "# Worked study: SmolLM2-135M-Instruct"
  echo
  echo "## Kernel vs baseline"
  $lemlab report "$out/ab-kernel.jsonl"
  echo
  echo "## Adapter vs base"
  $lemlab report "$out/ab-adapter.jsonl"
  echo
  echo "## Training configuration"
  $lemlab report --training "$out/adapter"
} > "$out/report.md"
# The same, as pages to share with people who will not open a terminal.
$lemlab report "$out/ab-kernel.jsonl" --format html --out "$out/kernel.html" --force >/dev/null
$lemlab report "$out/ab-adapter.jsonl" --format html --out "$out/adapter.html" --force >/dev/null
$lemlab report "$out/adapter" --format html --out "$out/training.html" --force >/dev/null
echo "report: $out/report.md (and kernel.html, adapter.html, training.html beside it)" >&2
