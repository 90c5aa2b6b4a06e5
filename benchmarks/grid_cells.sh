#!/usr/bin/env bash
# The timing cells that benchmarks/grid_hours.py extrapolates the paper grid from (issue 6):
# one instant/reliability cell per editing method (its first MAX_APIS APIs) and one
# sequential/all cell with ROME, on a 7B architecture with random weights (no download) and the
# full HumanEval+MBPP benchmark, n=5. Run it on the GPU the grid will use:
#
#   bash benchmarks/grid_cells.sh OUT_DIR [DATA_DIR] [BENCH_CACHE] [METHODS...]
#   python benchmarks/grid_hours.py --cells OUT_DIR/h200 --benchmark BENCH_CACHE/<key>
#
# SANDBOX=no_jail runs the programs without firejail (GPU machines without it; it says so).
set -euo pipefail
out=${1:?usage: grid_cells.sh OUT_DIR [DATA_DIR] [BENCH_CACHE] [METHODS...]}
data=${2:-../shared/data}
cache=${3:-.cache/editsweep/benchmark}
shift $(( $# < 3 ? $# : 3 ))
methods=${*:-rome memit pmet grace ft}
model=${MODEL:-codellama_7b}
common=(model="$model" +model.random_weights=true data=humaneval_mbpp data.path="$data" data.cache_dir="$cache"
        sandbox="${SANDBOX:-default}" tracking=disabled sweep.root="$out" sweep.name="${SWEEP_NAME:-h200}")
for method in $methods; do
  echo "== $method instant/reliability, ${MAX_APIS:-6} APIs"
  python3 launch.py "${common[@]}" method="$method" regime=instant subset=reliability regime.max_apis="${MAX_APIS:-6}"
done
if [[ "${SEQUENTIAL:-1}" == 1 ]]; then
  echo "== rome sequential/all, 5 APIs (one large evaluation)"
  python3 launch.py "${common[@]}" method=rome regime=sequential subset=all regime.max_apis=5
fi
