#!/usr/bin/env bash
# The README's "Your own corpus" walkthrough, run for real and timed: a JSONL corpus -> the store
# -> label artifacts -> a trained LabelCoRank model -> calibrated label sets -> the registry ->
# `mlflow models serve` answering with label sets. Each command's wall-clock time and the server's
# answer go into bench/results/own-corpus-walkthrough.md (with the commit).
#
# The example corpus is Reuters-21578 written out as JSON lines by `lcr export` (7,770 + 3,019
# documents, 90 labels): any corpus in that shape goes the same way.
#
# Usage: bash bench/own_corpus_walkthrough.sh [WORKDIR]   (from the project root; needs
# data/reuters21578 fetched, e.g. by `make demo` or `lcr fetch reuters21578`)
set -euo pipefail
root=$(pwd)
work=${1:-/tmp/lcr-walkthrough}
out="$root/bench/results/own-corpus-walkthrough.md"
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- lcr || echo "+dirty")
rm -rf "$work" && mkdir -p "$work/corpus"
cp params.yaml "$work/"
cd "$work"
export MLFLOW_TRACKING_URI="sqlite:///$work/mlflow.db"
log="$work/walkthrough.log"
: > "$log"
rows=()

step() {  # step "what" command...: run, time, keep the last lines of its output
  local what=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@" >> "$log" 2>&1
  end=$(date +%s.%N)
  rows+=("| $what | \`$*\` | $(python -c "print(f'{$end - $start:.0f} s')") |")
}

# ModApte's 7,770 training documents (the store's train + dev) and its 3,019 test documents. The
# dev hold-out is a hash of the document id, so holding out 10% again gives the same dev split.
step "write the corpus (here: Reuters as JSONL)" lcr export reuters21578 train -o corpus/part-train.jsonl --data-dir "$root/data"
step "" lcr export reuters21578 dev -o corpus/part-dev.jsonl --data-dir "$root/data"
cat corpus/part-train.jsonl corpus/part-dev.jsonl > corpus/train.jsonl && rm corpus/part-*.jsonl
step "" lcr export reuters21578 test -o corpus/test.jsonl --data-dir "$root/data"
step "the store (10% of train held out as dev)" lcr fetch custom --from corpus --name mycorpus --dev-fraction 0.1
step "label artifacts" lcr prepare mycorpus
step "train LabelCoRank (CPU budget: 64 tokens, 2 epochs)" lcr train --dataset mycorpus --set max_length=64 --set epochs=2
step "choose label sets on dev" lcr calibrate --dataset mycorpus
step "register (alias champion)" lcr register --dataset mycorpus

port=$(python -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
start=$(date +%s.%N)
mlflow models serve -m models:/lcr-mycorpus@champion --env-manager local -h 127.0.0.1 -p "$port" >> "$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$port/ping" > /dev/null; do
  kill -0 $server 2>/dev/null || { echo "the server stopped; see $log" >&2; exit 1; }
  sleep 1
done
end=$(date +%s.%N)
rows+=("| serve | \`mlflow models serve -m models:/lcr-mycorpus@champion --env-manager local -h 127.0.0.1 -p $port\` | $(python -c "print(f'{$end - $start:.0f} s')") until /ping answers |")
request='{"inputs": ["Crude oil prices fell as OPEC output rose.", "Wheat exports grew after a record harvest."], "params": {"mode": "set"}}'
answer=$(curl -s "http://127.0.0.1:$port/invocations" -H 'Content-Type: application/json' -d "$request")

summary=$(python - "$work" <<'EOF'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
run = work / "runs" / "mycorpus" / "labelcorank-s0"
metrics = json.loads((run / "metrics.json").read_text())
calibration = json.loads((run / "best_model" / "calibration.json").read_text())
stats = json.loads((work / "data" / "mycorpus" / "stats.json").read_text())
sizes = ", ".join(f"{split} {s['documents']:,}" for split, s in stats["splits"].items())
full = metrics["eval"]["full"]
print(f"- Store: {sizes} documents")
print(f"- Test ranking: P@1 {full['P@1']:.4f}, P@5 {full['P@5']:.4f}, nDCG@5 {full['nDCG@5']:.4f} (best epoch {metrics['best_epoch']})")
print(f"- Calibration: threshold {calibration['threshold']}, at most {calibration['max_labels']} labels; "
      f"micro-F1 dev {calibration['dev_micro_f1']:.3f}, test {calibration['test_micro_f1']:.3f}")
EOF
)
{
  echo "# The \"Your own corpus\" walkthrough, measured"
  echo
  echo "Written by \`bash bench/own_corpus_walkthrough.sh\` at commit \`$commit\` on $(date -u +%F)"
  echo "($(nproc) CPUs, no GPU; each time is the command's wall clock, start-up included)."
  echo
  echo "| step | command | time |"
  echo "|---|---|---:|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "$summary"
  echo
  echo "Request: \`$request\`"
  echo
  echo "Answer: \`$answer\`"
} > "$out"
echo "wrote $out"
