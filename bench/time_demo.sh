#!/usr/bin/env bash
# Time `make demo` as a new user runs it: a fresh clone of the checked-out commit, `time make demo`
# in it, then bench/demo_report.py writes bench/results/make-demo.md (wall-clock time, exit status,
# each stage's time, the demo's Reuters and AAPD tables, the commit).
#
# Usage: bash bench/time_demo.sh [CLONE]   (from the project root). The clone goes beside the
# checkout by default, so that the Makefile finds ../shared/datasets there as it does here; run it
# on a quiet machine: anything else on the two CPUs slows the demo and makes the figure wrong.
set -uo pipefail
root=$(pwd)
clone=${1:-$(dirname "$root")/lcr-demo-timing}
rm -rf "$clone"
git clone -q "$root" "$clone"
cd "$clone"
start=$(date +%s.%N)
make demo > demo.log 2>&1
rc=$?
end=$(date +%s.%N)
cd "$root"
python -m bench.demo_report "$clone" --seconds "$(python -c "print($end - $start)")" --rc "$rc"
tail -3 "$clone/demo.log"
exit $rc
