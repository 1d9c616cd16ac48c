#!/usr/bin/env bash
# Compares this build's fixed-record engine benchmarks with another build's, as ratios: runs
# the `cache` bench of each in alternation (this, other, this, other, ...) with the same
# criterion filter, and reports per benchmark the fastest and the median of each build's runs
# (the bench's own summary: the mean of criterion's samples) and their ratios (this ÷ other).
#
#   git worktree add ../base <revision>
#   scripts/bench-vs.sh ../base [RUNS] [FILTER]
#
# RUNS defaults to 5 per build; FILTER to get hits and updates of 64 B at 10^3 and 10^5
# entries and of 1 KiB at 10^5. Both builds are made with `nice cargo bench --no-run` (`jq`
# reads the bench executable's path from cargo's messages).
set -euo pipefail

other=$(cd "$1" && pwd)
runs=${2:-5}
filter=${3:-'^shm_lru/(get_hit|set_update)/(1e3x64B|1e5x64B|1e5x1KiB)$'}
here=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

bench_exe() {
  (cd "$1" && nice cargo bench -p shm-lru --bench cache --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.executable != null and .target.name == "cache") | .executable' | tail -n1)
}

this_exe=$(bench_exe "$here")
other_exe=$(bench_exe "$other")
echo "this:  $this_exe ($(git -C "$here" rev-parse --short HEAD))"
echo "other: $other_exe ($(git -C "$other" rev-parse --short HEAD))"

for i in $(seq 1 "$runs"); do
  for side in this other; do
    exe=${side}_exe
    SHM_LRU_BENCH_MAX_N=100000 nice "${!exe}" --bench "$filter" >"$out/$side.$i" 2>/dev/null
    echo "run $i: $side done"
  done
done

# The summary's lines: name, ns/op, Mops/s.
for side in this other; do
  cat "$out/$side".* | awk '/==== summary/{s=1; next} s && $1 ~ /^(get_hit|set_update)\// {print $1, $2}' |
    sort -k1,1 -k2,2n >"$out/$side.all"
done

echo
echo "| benchmark | this: fastest | other: fastest | ratio | this: median | other: median | ratio |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
join <(awk '{a[$1]=a[$1] " " $2} END {for (k in a) print k a[k]}' "$out/this.all" | sort) \
  <(awk '{a[$1]=a[$1] " " $2} END {for (k in a) print k a[k]}' "$out/other.all" | sort) |
  awk -v runs="$runs" '{
    n = runs
    for (i = 0; i < n; i++) { t[i] = $(2 + i); o[i] = $(2 + n + i) }
    mid = int(n / 2)
    printf "| %s | %.1f ns | %.1f ns | %.3f | %.1f ns | %.1f ns | %.3f |\n", $1, t[0], o[0], t[0] / o[0], t[mid], o[mid], t[mid] / o[mid]
  }'
