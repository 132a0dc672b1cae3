// What the GEMM needs to know about the CPU: which paths it runs (cpuid feature bits and the
// OS's saved-state bits from xgetbv), its cache sizes, and the blocking derived from them.
#include "mq_gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static void mq_cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
  __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}

static uint64_t mq_xgetbv0(void) {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

// Bit 0 AVX2 + FMA with ymm state saved; bit 1 AVX-512F with zmm and opmask state saved.
static int mq_detect(void) {
  unsigned r[4];
  mq_cpuid(0, 0, r);
  unsigned max_leaf = r[0];
  if (max_leaf < 7) return 0;
  mq_cpuid(1, 0, r);
  int osxsave = (r[2] >> 27) & 1, fma = (r[2] >> 12) & 1, avx = (r[2] >> 28) & 1;
  if (!osxsave || !avx) return 0;
  uint64_t xcr0 = mq_xgetbv0();
  int ymm_saved = (xcr0 & 0x6) == 0x6;              // SSE and AVX state
  int zmm_saved = ymm_saved && (xcr0 & 0xe0) == 0xe0; // opmask, ZMM_Hi256, Hi16_ZMM
  mq_cpuid(7, 0, r);
  int avx2 = (r[1] >> 5) & 1, avx512f = (r[1] >> 16) & 1;
  int bits = 0;
  if (avx2 && fma && ymm_saved) bits |= 1;
  if (avx512f && fma && zmm_saved) bits |= 2;
  return bits;
}
#else
static int mq_detect(void) { return 0; }
#endif

static int mq_features(void) {
  static int cached = -1;
  int f = __atomic_load_n(&cached, __ATOMIC_RELAXED);
  if (f < 0) {
    f = mq_detect();
    __atomic_store_n(&cached, f, __ATOMIC_RELAXED);
  }
  return f;
}

int mq_gemm_path_supported(int path) {
  switch (path) {
  case MQ_GEMM_PORTABLE: return 1;
  case MQ_GEMM_AVX2: return (mq_features() & 1) != 0;
  case MQ_GEMM_AVX512: return (mq_features() & 2) != 0;
  default: return 0;
  }
}

int mq_gemm_best_path(void) {
  if (mq_gemm_path_supported(MQ_GEMM_AVX512)) return MQ_GEMM_AVX512;
  if (mq_gemm_path_supported(MQ_GEMM_AVX2)) return MQ_GEMM_AVX2;
  return MQ_GEMM_PORTABLE;
}

const char *mq_gemm_path_name(int path) {
  switch (path) {
  case MQ_GEMM_PORTABLE: return "mqan-portable";
  case MQ_GEMM_AVX2: return "mqan-avx2";
  case MQ_GEMM_AVX512: return "mqan-avx512";
  default: return "?";
  }
}

int mq_gemm_mr(int path) { return path == MQ_GEMM_AVX512 ? 12 : path == MQ_GEMM_AVX2 ? 6 : 4; }
int mq_gemm_nr(int path) { return path == MQ_GEMM_AVX512 ? 32 : path == MQ_GEMM_AVX2 ? 16 : 8; }

// ---------------------------------------------------------------------------------------------
// Cache sizes: cpuid's deterministic cache leaves (Intel leaf 4, AMD 0x8000001D), else sysconf.

#if defined(__x86_64__) || defined(__i386__)
static int mq_cache_leaves(unsigned leaf, mq_cache_sizes *out) {
  unsigned r[4];
  mq_cpuid(leaf & 0x80000000u, 0, r);
  if (r[0] < leaf) return 0;
  int found = 0;
  for (unsigned sub = 0; sub < 16; sub++) {
    mq_cpuid(leaf, sub, r);
    unsigned type = r[0] & 0x1f;
    if (type == 0) break;
    if (type == 2) continue; // instruction cache
    unsigned level = (r[0] >> 5) & 0x7;
    int64_t ways = ((r[1] >> 22) & 0x3ff) + 1, parts = ((r[1] >> 12) & 0x3ff) + 1;
    int64_t line = (r[1] & 0xfff) + 1, sets = (int64_t)r[2] + 1;
    int64_t bytes = ways * parts * line * sets;
    if (level == 1) out->l1d = bytes;
    if (level == 2) out->l2 = bytes;
    if (level == 3) out->l3 = bytes;
    found = 1;
  }
  return found;
}
#endif

static mq_cache_sizes mq_detect_caches(void) {
  mq_cache_sizes c = {0, 0, 0};
#if defined(__x86_64__) || defined(__i386__)
  unsigned r[4];
  mq_cpuid(0, 0, r);
  char vendor[13];
  memcpy(vendor, &r[1], 4);
  memcpy(vendor + 4, &r[3], 4);
  memcpy(vendor + 8, &r[2], 4);
  vendor[12] = 0;
  if (strcmp(vendor, "AuthenticAMD") == 0 || strcmp(vendor, "HygonGenuine") == 0)
    mq_cache_leaves(0x8000001Du, &c);
  else if (r[0] >= 4)
    mq_cache_leaves(4, &c);
#endif
#ifdef _SC_LEVEL1_DCACHE_SIZE
  if (c.l1d <= 0) c.l1d = sysconf(_SC_LEVEL1_DCACHE_SIZE);
  if (c.l2 <= 0) c.l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  if (c.l3 <= 0) c.l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
  if (c.l1d <= 0) c.l1d = 32 << 10;
  if (c.l2 <= 0) c.l2 = 1 << 20;
  if (c.l3 <= 0) c.l3 = c.l2 * 8;
  return c;
}

static mq_cache_sizes mq_cached_sizes;
static pthread_once_t mq_cached_sizes_once = PTHREAD_ONCE_INIT;
static void mq_detect_caches_once(void) { mq_cached_sizes = mq_detect_caches(); }

// Detected once; pthread_once orders the first caller's write before every read (two plans bound
// at once on different threads would otherwise both write the struct: a data race).
mq_cache_sizes mq_gemm_cache_sizes(void) {
  pthread_once(&mq_cached_sizes_once, mq_detect_caches_once);
  return mq_cached_sizes;
}

// Blocking (BLIS's analytical model, simplified):
// - kc: the A micro-panel (MR x kc floats, the broadcasts, reused across a whole B block) takes
//   3/4 of L1 while B micro-panels stream through the rest from L2 (a larger kc means fewer
//   passes over C); kc is the same for
//   every SIMD path (sized for the largest tile, AVX-512's 12 rows), so the paths sum in the same
//   order. 64 <= kc <= 512, a multiple of 8.
// - nb: the packed B block (kc x nb) takes half of L2; a multiple of NR.
// - mb: the packed A block (mb x kc) takes a quarter of L3 (shared by the cores); multiple of MR.
mq_gemm_config mq_gemm_config_for(int path) {
  mq_cache_sizes cs = mq_gemm_cache_sizes();
  mq_gemm_config cfg;
  cfg.path = path;
  cfg.mr = mq_gemm_mr(path);
  cfg.nr = mq_gemm_nr(path);
  int64_t kc = cs.l1d * 3 / 4 / (4 * 12);
  kc = kc / 8 * 8;
  if (kc < 64) kc = 64;
  if (kc > 512) kc = 512;
  cfg.kc = kc;
  int64_t nb = cs.l2 / 2 / (4 * kc);
  nb = nb / cfg.nr * cfg.nr;
  if (nb < cfg.nr * 2) nb = cfg.nr * 2;
  cfg.nb = nb;
  int64_t mb = cs.l3 / 4 / (4 * kc);
  mb = mb / cfg.mr * cfg.mr;
  if (mb < cfg.mr * 8) mb = cfg.mr * 8;
  if (mb > 4096 / cfg.mr * cfg.mr) mb = 4096 / cfg.mr * cfg.mr;
  cfg.mb = mb;
  return cfg;
}

const char *mq_openblas_core(void) { return openblas_get_corename(); }
