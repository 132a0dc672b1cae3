// Open MPI for mqan's data-parallel training and sharded prediction, behind plain C functions
// (Swift cannot import MPI_COMM_WORLD, MPI_FLOAT and the other handle macros).
//
// pkg-config `ompi-c` gives the include path and `-lmpi`. Without Open MPI's headers (no
// libopenmpi-dev) `__has_include` is false and every function below is a stub: mq_mpi_available()
// is 0, the others return -1, and mqan builds and runs as one process.
#ifndef MQ_MPI_SHIM_H
#define MQ_MPI_SHIM_H
#include <stddef.h>
#include <stdint.h>

#if __has_include(<mpi.h>)
#include <mpi.h>

static inline int mq_mpi_available(void) { return 1; }

/// The library's version string (MPI_Get_library_version), into buf.
static inline int mq_mpi_library_version(char *buf, int cap) {
  char s[MPI_MAX_LIBRARY_VERSION_STRING];
  int n = 0;
  if (MPI_Get_library_version(s, &n) != MPI_SUCCESS) return -1;
  int i = 0;
  for (; i + 1 < cap && i < n && s[i] && s[i] != '\n'; i++) buf[i] = s[i];
  if (cap > 0) buf[i] = 0;
  return 0;
}

/// MPI_Init_thread, errors returned rather than fatal. SERIALIZED: one thread at a time calls
/// MPI, not always the main one (the gradient sum runs on its own thread while the backward
/// pass goes on); *serialized says whether the library granted it.
static inline int mq_mpi_init(int *rank, int *size, int *serialized) {
  int provided = 0;
  int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
  if (rc != MPI_SUCCESS) return rc;
  *serialized = provided >= MPI_THREAD_SERIALIZED;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  if ((rc = MPI_Comm_rank(MPI_COMM_WORLD, rank)) != MPI_SUCCESS) return rc;
  return MPI_Comm_size(MPI_COMM_WORLD, size);
}

static inline int mq_mpi_finalize(void) { return MPI_Finalize(); }
static inline void mq_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
static inline int mq_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }

/// An MPI error code in the library's words.
static inline void mq_mpi_error_string(int code, char *buf, int cap) {
  char s[MPI_MAX_ERROR_STRING];
  int n = 0;
  if (MPI_Error_string(code, s, &n) != MPI_SUCCESS) n = 0;
  int i = 0;
  for (; i + 1 < cap && i < n; i++) buf[i] = s[i];
  if (cap > 0) buf[i] = 0;
}

/// Every rank sends `piece` floats to each rank (send: size x piece, rank-major; recv the same).
static inline int mq_mpi_alltoall_floats(const float *send, float *recv, int piece) {
  return MPI_Alltoall(send, piece, MPI_FLOAT, recv, piece, MPI_FLOAT, MPI_COMM_WORLD);
}

/// Every rank contributes `piece` floats; recv gets size x piece, in rank order.
static inline int mq_mpi_allgather_floats(const float *send, float *recv, int piece) {
  return MPI_Allgather(send, piece, MPI_FLOAT, recv, piece, MPI_FLOAT, MPI_COMM_WORLD);
}

static inline int mq_mpi_allgather_doubles(const double *send, double *recv, int piece) {
  return MPI_Allgather(send, piece, MPI_DOUBLE, recv, piece, MPI_DOUBLE, MPI_COMM_WORLD);
}

static inline int mq_mpi_allgather_int64(const int64_t *send, int64_t *recv, int piece) {
  return MPI_Allgather(send, piece, MPI_INT64_T, recv, piece, MPI_INT64_T, MPI_COMM_WORLD);
}

/// Gathers `count` bytes of every rank at `root` (counts and displs there: size entries each).
static inline int mq_mpi_gatherv_bytes(const void *send, int count, void *recv, const int *counts,
                                       const int *displs, int root) {
  return MPI_Gatherv(send, count, MPI_BYTE, recv, counts, displs, MPI_BYTE, root, MPI_COMM_WORLD);
}

static inline int mq_mpi_gather_int(int value, int *recv, int root) {
  return MPI_Gather(&value, 1, MPI_INT, recv, 1, MPI_INT, root, MPI_COMM_WORLD);
}

static inline int mq_mpi_bcast_bytes(void *buf, int count, int root) {
  return MPI_Bcast(buf, count, MPI_BYTE, root, MPI_COMM_WORLD);
}

#else

static inline int mq_mpi_available(void) { return 0; }
static inline int mq_mpi_library_version(char *buf, int cap) { (void)buf; (void)cap; return -1; }
static inline int mq_mpi_init(int *rank, int *size, int *serialized) {
  *rank = 0; *size = 1; *serialized = 0; return -1;
}
static inline int mq_mpi_finalize(void) { return -1; }
static inline void mq_mpi_abort(int code) { (void)code; }
static inline int mq_mpi_barrier(void) { return -1; }
static inline void mq_mpi_error_string(int code, char *buf, int cap) {
  (void)code;
  const char *s = "built without MPI";
  int i = 0;
  for (; i + 1 < cap && s[i]; i++) buf[i] = s[i];
  if (cap > 0) buf[i] = 0;
}
static inline int mq_mpi_alltoall_floats(const float *send, float *recv, int piece) {
  (void)send; (void)recv; (void)piece; return -1;
}
static inline int mq_mpi_allgather_floats(const float *send, float *recv, int piece) {
  (void)send; (void)recv; (void)piece; return -1;
}
static inline int mq_mpi_allgather_doubles(const double *send, double *recv, int piece) {
  (void)send; (void)recv; (void)piece; return -1;
}
static inline int mq_mpi_allgather_int64(const int64_t *send, int64_t *recv, int piece) {
  (void)send; (void)recv; (void)piece; return -1;
}
static inline int mq_mpi_gatherv_bytes(const void *send, int count, void *recv, const int *counts,
                                       const int *displs, int root) {
  (void)send; (void)count; (void)recv; (void)counts; (void)displs; (void)root; return -1;
}
static inline int mq_mpi_gather_int(int value, int *recv, int root) {
  (void)value; (void)recv; (void)root; return -1;
}
static inline int mq_mpi_bcast_bytes(void *buf, int count, int root) {
  (void)buf; (void)count; (void)root; return -1;
}

#endif
#endif
