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

// False when GEMMs called from several threads at once would each start a BLAS thread pool that
// nothing here can hold at one thread: Debian's BLIS pthread build (its libblas.so.3 exports no
// thread call; BLIS_NUM_THREADS is read once). Batch parts are then not worth running (on 2
// cores: 5.5 windows/s in parts against 8-9 whole).
bool blas_allows_parts();

}  // namespace neurobolt::detail
