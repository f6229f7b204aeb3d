#pragma once
// OpenBLAS's own thread pool, switched off while a region runs its own threads (one batch part
// per thread): OpenBLAS does not know about OpenMP, so each of N threads calling a GEMM would
// otherwise wake N BLAS threads of its own. Nested and concurrent guards share one count: the
// first sets one BLAS thread, the last restores what was set before. No-op without OpenBLAS or
// with its OpenMP build (which runs a GEMM inside a parallel region on one thread anyway).
namespace neurobolt::detail {

class SingleThreadedBlas {
 public:
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;
};

}  // namespace neurobolt::detail
