#!/usr/bin/env bash
# Which BLAS should LibTorch use on this machine? Runs `neurobolt bench` (the model at batch 16
# and batch 1, optionally a training step, plus the matmul figures bench prints) once per BLAS
# candidate, the candidates interleaved in every round so that a noisy host treats them alike.
#
#   tools/bench-blas.sh [ROUNDS] [--training]      (build/tools/neurobolt; NEUROBOLT=... to change)
#
# Candidates (each only when installed; nothing is switched system-wide, the library is chosen
# for the one process through the loader):
#   openblas-pthread  Debian's default libblas.so.3 (libopenblas0-pthread)
#   openblas-openmp   libopenblas0-openmp: OpenBLAS on LibTorch's own OpenMP pool
#   blis-pthread      libblis4-pthread (BLIS 0.9, AMD's and others' reference for AVX2/AVX-512)
#   blis-openmp       libblis4-openmp
#   mkl               Intel oneMKL from PyPI (`pip download mkl intel-openmp tbb`, unpacked where
#                     MKL_LIB points; libmkl_rt preloaded, GNU OpenMP threading layer)
# CANDIDATES="openblas-pthread blis-openmp" limits the run to those.
# Every candidate gets the same thread count (--threads, default all cores) through its own
# variable (OpenBLAS through the CLI, BLIS_NUM_THREADS, MKL_NUM_THREADS).
set -euo pipefail
rounds=${1:-2}
training=0
[[ ${2:-} == --training || ${1:-} == --training ]] && training=1
[[ $rounds == --training ]] && rounds=2
here=$(cd "$(dirname "$0")/.." && pwd)
nb=${NEUROBOLT:-$here/build/tools/neurobolt}
threads=${THREADS:-$(nproc)}
libdir=/usr/lib/x86_64-linux-gnu
[[ -x $nb ]] || { echo "bench-blas: $nb not built" >&2; exit 2; }

declare -a names envs
add() {
  [[ -z ${CANDIDATES:-} || " $CANDIDATES " == *" $1 "* ]] || return 0
  names+=("$1")
  envs+=("$2")
}
[[ -e $libdir/openblas-pthread/libblas.so.3 ]] && add openblas-pthread "LD_LIBRARY_PATH=$libdir/openblas-pthread"
[[ -e $libdir/openblas-openmp/libblas.so.3 ]] && add openblas-openmp "LD_LIBRARY_PATH=$libdir/openblas-openmp"
[[ -e $libdir/blis-pthread/libblas.so.3 ]] && add blis-pthread "LD_LIBRARY_PATH=$libdir/blis-pthread BLIS_NUM_THREADS=$threads"
[[ -e $libdir/blis-openmp/libblas.so.3 ]] && add blis-openmp "LD_LIBRARY_PATH=$libdir/blis-openmp BLIS_NUM_THREADS=$threads"
if [[ -n ${MKL_LIB:-} && -e $MKL_LIB/libmkl_rt.so.3 ]]; then
  add mkl "LD_PRELOAD=$MKL_LIB/libmkl_rt.so.3 LD_LIBRARY_PATH=$MKL_LIB:${IOMP_LIB:-$MKL_LIB} MKL_THREADING_LAYER=GNU MKL_INTERFACE_LAYER=GNU,LP64 MKL_NUM_THREADS=$threads"
fi
echo "bench-blas: ${#names[@]} candidates (${names[*]}), $rounds round(s), $threads threads, $(nproc) cores"

declare -A b16 b1 train mm1024 mmshape mmsmall
run() {  # name env batch phase -> the bench output
  local env=$2
  env $env "$nb" bench --batch "$3" --phase "$4" --iterations "$5" --warmup 2 --threads "$threads" -q 2>&1
}
for ((r = 1; r <= rounds; ++r)); do
  for i in "${!names[@]}"; do
    n=${names[$i]}
    out=$(run "$n" "${envs[$i]}" 16 inference 3)
    b16[$n]+=" $(awk '/^inference/{print $2}' <<<"$out")"
    mm1024[$n]+=" $(awk '/^matmul/ && /1024x1024/{print $2}' <<<"$out")"
    mmshape[$n]+=" $(awk '/^matmul/ && !/1024x1024/{print $2}' <<<"$out")"
    out=$(run "$n" "${envs[$i]}" 1 inference 15)
    b1[$n]+=" $(awk '/^inference/{gsub(/[(]/, "", $4); print $4 * 1000}' <<<"$out")"
    mmsmall[$n]+=" $(awk '/^matmul/ && !/1024x1024/{print $2}' <<<"$out")"
    if ((training)); then
      out=$(run "$n" "${envs[$i]}" 16 training 2)
      train[$n]+=" $(awk '/^training/{print $2}' <<<"$out")"
    fi
    echo "round $r $n: b16 ${b16[$n]##* } windows/s, b1 ${b1[$n]##* } ms${train[$n]:+, training ${train[$n]##* } s/step}"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR+1)/2]; else printf "%.4g\n", (a[NR/2]+a[NR/2+1])/2}'; }
echo
printf '%-18s %14s %8s %13s %14s %20s %19s\n' BLAS "b16 windows/s" "b1 ms" "train s/step" "matmul 1024^3" "matmul 6672x200x800" "matmul 417x200x800"
for n in "${names[@]}"; do
  printf '%-18s %14s %8s %13s %14s %20s %19s\n' "$n" "$(median <<<"${b16[$n]}")" "$(median <<<"${b1[$n]}")" \
    "$(median <<<"${train[$n]:-}")" "$(median <<<"${mm1024[$n]}")" "$(median <<<"${mmshape[$n]}")" \
    "$(median <<<"${mmsmall[$n]}")"
done
echo "(medians over rounds; matmul in GFLOP/s as bench measures it in the same process)"
