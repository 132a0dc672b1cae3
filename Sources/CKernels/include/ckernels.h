// mqan leaf kernels and the thread pool.
//
// Legend: B = batch, T = time, D = model width, H = LSTM hidden, V = generative vocab,
// X = extended vocab (V + n_oov), L = a memory length (context Lc or question Lq).
//
// Conventions (llm.c style):
// - Every kernel works on a row range [r0, r1) of its natural rows, so the runtime can split
//   one kernel over threads without the kernel spawning anything. A call with r0 = 0 and
//   r1 = rows does the whole tensor.
// - Every optimized kernel `mq_x` has a naive twin `mq_x_ref` with the same signature; the
//   tests compare the two on random and odd shapes. References are the oracle, not a fallback.
// - Kernels never fail: shapes and ids are validated in Swift before a kernel runs.
// - Hot kernels pick AVX-512 / AVX2 / baseline code at run time (target_clones), never -march=native.
#ifndef MQAN_CKERNELS_H
#define MQAN_CKERNELS_H

#include <stdint.h>
#include <stddef.h>

#include "mq_gemm.h"
#include "mq_roofline.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---------------------------------------------------------------------------------------------
// Thread pool: n threads in all (the caller is thread 0). mq_pool_run runs fn(ctx, i, n) on
// every thread and returns when all have returned. Idle workers spin briefly, then sleep.
// nthreads < 1 counts as 1; NULL only when memory runs out; if a worker thread cannot be started
// the pool is smaller (mq_pool_size says how big). One mq_pool_run at a time per pool.
typedef struct mq_pool mq_pool;
typedef void (*mq_task_fn)(void *ctx, int ith, int nth);
mq_pool *mq_pool_create(int nthreads);
void mq_pool_destroy(mq_pool *pool);
int mq_pool_size(const mq_pool *pool);
void mq_pool_run(mq_pool *pool, mq_task_fn fn, void *ctx);

// A reusable barrier for a team of n threads inside one mq_pool_run task (sense-reversing: the
// last arrival bumps `generation`; the others spin on it, then yield). count and generation are
// touched only through atomic builtins. Explicit padding keeps them on separate cache lines:
// Swift cannot import a struct with over-aligned (_Alignas) fields, so none are used here; the
// size is 192 (three lines), so an array of them from a 64-aligned base keeps every line apart.
typedef struct {
  int count;
  char pad0_[60];
  int generation;
  char pad1_[60];
  int n;
  char pad2_[60];
} mq_barrier;
void mq_barrier_init(mq_barrier *b, int n);
void mq_barrier_wait(mq_barrier *b);

// Pins OpenBLAS to one thread: our pool is the only threading system.
void mq_blas_single_thread(void);
// 1 when the CPU has AVX-512F, 2 when only AVX2, 0 otherwise (what target_clones will pick).
int mq_cpu_level(void);

// ---------------------------------------------------------------------------------------------
// Elementwise, on a flat range [r0, r1) of n elements. out may be an input (in place), never a
// partial overlap of one; the same holds for the softmax, layer norm and LSTM c_in/c_out below.
// out[i] = a[i] op b[i % bn]   (bn divides n: b is equal-shaped or a broadcast suffix)
void mq_add(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1);
void mq_add_ref(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1);
void mq_sub(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1);
void mq_sub_ref(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1);
void mq_mul(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1);
void mq_mul_ref(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1);
// out[i] = alpha * x[i] + beta
void mq_affine(float *out, const float *x, float alpha, float beta, int64_t r0, int64_t r1);
void mq_affine_ref(float *out, const float *x, float alpha, float beta, int64_t r0, int64_t r1);
void mq_tanh(float *out, const float *x, int64_t r0, int64_t r1);
void mq_tanh_ref(float *out, const float *x, int64_t r0, int64_t r1);
void mq_sigmoid(float *out, const float *x, int64_t r0, int64_t r1);
void mq_sigmoid_ref(float *out, const float *x, int64_t r0, int64_t r1);
void mq_relu(float *out, const float *x, int64_t r0, int64_t r1);
void mq_relu_ref(float *out, const float *x, int64_t r0, int64_t r1);

// ---------------------------------------------------------------------------------------------
// Row bias: y[r, :] += bias[:] for rows [r0, r1) of an [rows, n] matrix.
void mq_add_bias(float *y, const float *bias, int64_t n, int64_t r0, int64_t r1);
void mq_add_bias_ref(float *y, const float *bias, int64_t n, int64_t r0, int64_t r1);
// Bias and residual: y[r, j] = (y[r, j] + bias[j]) + res[r, j] (bias may be NULL), rows [r0, r1)
// of n columns, rows ld floats apart in y and res.
void mq_add_bias_residual(float *y, const float *bias, const float *res, int64_t n, int64_t ld, int64_t r0,
                          int64_t r1);
void mq_add_bias_residual_ref(float *y, const float *bias, const float *res, int64_t n, int64_t ld, int64_t r0,
                              int64_t r1);

// Masked softmax over the last axis of x viewed as [rows, n]; rows = batch * q (q rows per batch
// item). Row r belongs to batch item r / q and query position i = r % q.
//   s_j = x[r, j]
//   if causal and j > i + causal_offset: s_j = fill
//   if mask != NULL and mask[(r / q) * n + j] != 0: s_j = fill
//   out[r, j] = softmax_j(s_j * scale) + eps
// (decaNLP fills before scaling; fill = -1e10 in the transformer and coattention, -INFINITY in the
// LSTM decoder attention, where eps = 1e-10 is added to every weight.)
void mq_masked_softmax(float *out, const float *x, const float *mask, int64_t q, int64_t n,
                       float scale, float fill, float eps, int causal, int64_t causal_offset,
                       int64_t r0, int64_t r1);
void mq_masked_softmax_ref(float *out, const float *x, const float *mask, int64_t q, int64_t n,
                           float scale, float fill, float eps, int causal, int64_t causal_offset,
                           int64_t r0, int64_t r1);

// decaNLP's LayerNorm on [rows, d]: gamma * (x - mean) / (std + eps) + beta, std unbiased (d - 1).
void mq_layernorm(float *out, const float *x, const float *gamma, const float *beta, int64_t d,
                  float eps, int64_t r0, int64_t r1);
void mq_layernorm_ref(float *out, const float *x, const float *gamma, const float *beta, int64_t d,
                      float eps, int64_t r0, int64_t r1);

// LSTM gate update (PyTorch order i, f, g, o) for rows [r0, r1) of B:
//   gates [B, 4H] (pre-activations, both biases included), c_in [B, H] -> h_out, c_out [B, H]
//   c' = sig(f) * c + sig(i) * tanh(g);  h' = sig(o) * tanh(c')
void mq_lstm_cell(float *h_out, float *c_out, const float *gates, const float *c_in, int64_t H,
                  int64_t r0, int64_t r1);
void mq_lstm_cell_ref(float *h_out, float *c_out, const float *gates, const float *c_in, int64_t H,
                      int64_t r0, int64_t r1);

// Embedding gather: out[r, :] = table[ids[r], :] for rows [r0, r1); table is [vocab, E].
void mq_embedding(float *out, const float *table, const int32_t *ids, int64_t E, int64_t r0,
                  int64_t r1);
void mq_embedding_ref(float *out, const float *table, const int32_t *ids, int64_t E, int64_t r0,
                      int64_t r1);

// Positional encoding [T, D] (decaNLP): even c: sin(p / 10000^(c/D)); odd c: cos(p / 10000^((c-1)/D)),
// the power computed in double, the division and sin/cos in float, as torch does. Rows = positions.
void mq_positional_encoding(float *out, int64_t D, int64_t r0, int64_t r1);
void mq_positional_encoding_ref(float *out, int64_t D, int64_t r0, int64_t r1);

// out[i] = (ids[i] == pad) ? 1 : 0 for [r0, r1).
void mq_pad_mask(float *out, const int32_t *ids, int32_t pad, int64_t r0, int64_t r1);
void mq_pad_mask_ref(float *out, const int32_t *ids, int32_t pad, int64_t r0, int64_t r1);

// Strided block copy: for o in [r0, r1): copy `width` floats from src + o*src_stride + src_off to
// dst + o*dst_stride + dst_off. Concat, slice and time-step gather/scatter are all this.
void mq_copy_blocks(float *dst, int64_t dst_stride, int64_t dst_off, const float *src,
                    int64_t src_stride, int64_t src_off, int64_t width, int64_t r0, int64_t r1);
void mq_copy_blocks_ref(float *dst, int64_t dst_stride, int64_t dst_off, const float *src,
                        int64_t src_stride, int64_t src_off, int64_t width, int64_t r0, int64_t r1);
// Transpose of the last two axes: x [batch, m, n] -> out [batch, n, m]; rows = batch items.
void mq_transpose(float *out, const float *x, int64_t m, int64_t n, int64_t r0, int64_t r1);
void mq_transpose_ref(float *out, const float *x, int64_t m, int64_t n, int64_t r0, int64_t r1);

// Pointer-generator mixture for rows [r0, r1) of B*T (row r: batch b = r / T):
//   out[r, :V]  = gamma[r] * pvocab[r, :];  out[r, V:X] = 1e-10 (EPSILON-filled OOV slots)
//   out[r, cids[b, i]] += lambda[r] * (1 - gamma[r]) * ac[r, i]       for i < Lc (repeats add up)
//   out[r, qids[b, j]] += (1 - lambda[r]) * (1 - gamma[r]) * aq[r, j] for j < Lq
void mq_pointer_mixture(float *out, const float *pvocab, const float *gamma, const float *lambda,
                        const float *ac, const int32_t *cids, const float *aq, const int32_t *qids,
                        int64_t T, int64_t V, int64_t X, int64_t Lc, int64_t Lq, int64_t r0,
                        int64_t r1);
void mq_pointer_mixture_ref(float *out, const float *pvocab, const float *gamma,
                            const float *lambda, const float *ac, const int32_t *cids,
                            const float *aq, const int32_t *qids, int64_t T, int64_t V, int64_t X,
                            int64_t Lc, int64_t Lq, int64_t r0, int64_t r1);

// Negative log-likelihood over rows [r0, r1) of P [rows, X] with targets [rows]: adds
// -log(P[r, t_r]) for every row whose target != ignore into *sum (double) and counts it.
// The log is taken in float (torch's probs.log()), the sum in double.
void mq_nll(double *sum, int64_t *count, const float *P, const int32_t *targets, int64_t X,
            int32_t ignore, int64_t r0, int64_t r1);
void mq_nll_ref(double *sum, int64_t *count, const float *P, const int32_t *targets, int64_t X,
                int32_t ignore, int64_t r0, int64_t r1);

// Multi-head attention as decaNLP's MultiHead (no output projection), for (batch, head) pairs
// [r0, r1) of B * heads. q [B, Tq, D], k/v [B, Tk, D] are already projected; head h owns columns
// [h*w, min((h+1)*w, D)) with w = ceil(D / heads) (torch.chunk). Per head:
//   S = q_h k_hᵀ; causal: S[i, j] = fill for j > i; keypad (may be NULL) [B, Tk]: S[:, j] = fill
//   where keypad[b, j] != 0; P = softmax(S * scale); out_h = P v_h.
// Rows are (batch, chunk) pairs: r = b * mq_attention_chunks(D, heads) + chunk.
// scratch: at least Tq * Tk floats per call (the caller gives each thread its own).
// torch.chunk(heads) along D: chunks are ceil(D / heads) wide, the last takes what remains, so
// there may be fewer than `heads` of them (D = 9, heads = 4 gives 3 chunks of 3).
int64_t mq_attention_chunks(int64_t D, int64_t heads);
void mq_attention(float *out, const float *q, const float *k, const float *v, const float *keypad,
                  int64_t Tq, int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                  int causal, float *scratch, int64_t r0, int64_t r1);
// With decaNLP's dropout on the attention weights (p > 0): after the softmax, weight (r, i, j) is
// kept (times 1/(1-p)) iff the hash of (seed, salt, r * Tq * Tk + i * Tk + j) is >= p.
void mq_attention_dropout(float *out, const float *q, const float *k, const float *v, const float *keypad,
                          int64_t Tq, int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                          int causal, float p, uint64_t seed, uint64_t salt, float *scratch, int64_t r0,
                          int64_t r1);
void mq_attention_dropout_ref(float *out, const float *q, const float *k, const float *v,
                              const float *keypad, int64_t Tq, int64_t Tk, int64_t D, int64_t heads,
                              float scale, float fill, int causal, float p, uint64_t seed, uint64_t salt,
                              float *scratch, int64_t r0, int64_t r1);
void mq_attention_ref(float *out, const float *q, const float *k, const float *v,
                      const float *keypad, int64_t Tq, int64_t Tk, int64_t D, int64_t heads,
                      float scale, float fill, int causal, float *scratch, int64_t r0, int64_t r1);

// ---------------------------------------------------------------------------------------------
// Optimizer
// Sum of squares of g[r0, r1) in double, in 16 fixed lanes folded in a fixed order: the same bits
// for every ISA variant and the reference (the global gradient norm for clipping).
double mq_sumsq(const float *g, int64_t r0, int64_t r1);
double mq_sumsq_ref(const float *g, int64_t r0, int64_t r1);
// Adam (PyTorch's order, float32) on [r0, r1), the clip coefficient applied to g on the fly:
//   g' = g * grad_scale;  m = beta1 * m + one_minus_beta1 * g';  v = v * beta2 + one_minus_beta2 * g' * g'
//   p = p + (-step_size) * m / (sqrt(v) / bc2_sqrt + eps)
// with step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t), computed by the caller.
void mq_adam_update(float *p, const float *g, float *m, float *v, float grad_scale,
                    float step_size, float beta1, float one_minus_beta1, float beta2,
                    float one_minus_beta2, float eps, float bc2_sqrt, int64_t r0, int64_t r1);
void mq_adam_update_ref(float *p, const float *g, float *m, float *v, float grad_scale,
                        float step_size, float beta1, float one_minus_beta1, float beta2,
                        float one_minus_beta2, float eps, float bc2_sqrt, int64_t r0, int64_t r1);

// ---------------------------------------------------------------------------------------------
// Backward kernels (backward_*.c). g = upstream gradient, y = forward output; each quotes the
// forward line it inverts. They write (=) their outputs; autodiff sums gradients with `add`.

// Activations on a flat range [r0, r1): dx = g (1 - y²) / g y (1 - y) / (y <= 0 ? 0 : g).
// dx may be g or y.
void mq_tanh_backward(float *dx, const float *g, const float *y, int64_t r0, int64_t r1);
void mq_tanh_backward_ref(float *dx, const float *g, const float *y, int64_t r0, int64_t r1);
void mq_sigmoid_backward(float *dx, const float *g, const float *y, int64_t r0, int64_t r1);
void mq_sigmoid_backward_ref(float *dx, const float *g, const float *y, int64_t r0, int64_t r1);
void mq_relu_backward(float *dx, const float *g, const float *y, int64_t r0, int64_t r1);
void mq_relu_backward_ref(float *dx, const float *g, const float *y, int64_t r0, int64_t r1);

// sum_to: g viewed as [rows, width] -> out[j] = sum_r g[r, j] for columns [c0, c1) (rows in
// order, in double: the column split does not change the bits).
void mq_sum_rows(float *out, const float *g, int64_t rows, int64_t width, int64_t c0, int64_t c1);
void mq_sum_rows_ref(float *out, const float *g, int64_t rows, int64_t width, int64_t c0,
                     int64_t c1);

// out [B, T]: 1 where t < lengths[b], else 0, for batch rows [r0, r1).
void mq_length_mask(float *out, const int32_t *lengths, int64_t T, int64_t r0, int64_t r1);
void mq_length_mask_ref(float *out, const int32_t *lengths, int64_t T, int64_t r0, int64_t r1);

// Gradient of an embedding table: zeroes table rows [r0, r1) of out [vocab, E], then adds g[i, :]
// (g [n, E]) into row ids[i] for every i in order whose id falls in [r0, r1).
void mq_embedding_backward(float *out, const float *g, const int32_t *ids, int64_t n, int64_t E,
                           int64_t r0, int64_t r1);
void mq_embedding_backward_ref(float *out, const float *g, const int32_t *ids, int64_t n,
                               int64_t E, int64_t r0, int64_t r1);

// Masked softmax (mq_masked_softmax with scale, eps) over rows [r0, r1) of [rows, n]:
// p = y - eps, dx = scale * p * (g - sum_j g_j p_j). dx may be g or y.
void mq_softmax_backward(float *dx, const float *g, const float *y, int64_t n, float scale,
                         float eps, int64_t r0, int64_t r1);
void mq_softmax_backward_ref(float *dx, const float *g, const float *y, int64_t n, float scale,
                             float eps, int64_t r0, int64_t r1);

// decaNLP's LayerNorm, in two phases. Rows [r0, r1) of [rows, d]: dx, and (unless stats is NULL)
// stats [rows, 2] = (mean, std + eps) of each row as the forward computed them. Then, after every
// row's stats exist, columns [c0, c1) of dgamma = sum_r g (x - mean) / (std + eps) and
// dbeta = sum_r g (rows in order, in double). dx may be g.
void mq_layernorm_backward(float *dx, float *stats, const float *g, const float *x,
                           const float *gamma, int64_t d, float eps, int64_t r0, int64_t r1);
void mq_layernorm_backward_ref(float *dx, float *stats, const float *g, const float *x,
                               const float *gamma, int64_t d, float eps, int64_t r0, int64_t r1);
void mq_layernorm_backward_params(float *dgamma, float *dbeta, const float *g, const float *x,
                                  const float *stats, int64_t rows, int64_t d, int64_t c0,
                                  int64_t c1);
void mq_layernorm_backward_params_ref(float *dgamma, float *dbeta, const float *g, const float *x,
                                      const float *stats, int64_t rows, int64_t d, int64_t c0,
                                      int64_t c1);

// LSTM gate update for rows [r0, r1) of B: dh, dc [B, H] (gradients of h', c'), gates [B, 4H],
// c_prev, c_new [B, H] -> dgates [B, 4H] (pre-activation gradients, order i, f, g, o) and
// dc_prev [B, H]. dc_prev may be dc.
void mq_lstm_cell_backward(float *dgates, float *dc_prev, const float *dh, const float *dc,
                           const float *gates, const float *c_prev, const float *c_new, int64_t H,
                           int64_t r0, int64_t r1);
void mq_lstm_cell_backward_ref(float *dgates, float *dc_prev, const float *dh, const float *dc,
                               const float *gates, const float *c_prev, const float *c_new,
                               int64_t H, int64_t r0, int64_t r1);

// Pointer-generator mixture for rows [r0, r1) of B*T (shapes as mq_pointer_mixture; dP [B*T, X]):
//   dpvocab = gamma dP[:V]; dac_i = lambda (1 - gamma) dP[cid_i]; daq_j = (1 - lambda)(1 - gamma) dP[qid_j]
//   dgamma = sum dP[:V] pv - lambda sum dP[cid_i] ac_i - (1 - lambda) sum dP[qid_j] aq_j
//   dlambda = (1 - gamma) (sum dP[cid_i] ac_i - sum dP[qid_j] aq_j)
void mq_pointer_mixture_backward(float *dpvocab, float *dgamma, float *dlambda, float *dac,
                                 float *daq, const float *dP, const float *pvocab,
                                 const float *gamma, const float *lambda, const float *ac,
                                 const int32_t *cids, const float *aq, const int32_t *qids,
                                 int64_t T, int64_t V, int64_t X, int64_t Lc, int64_t Lq,
                                 int64_t r0, int64_t r1);
void mq_pointer_mixture_backward_ref(float *dpvocab, float *dgamma, float *dlambda, float *dac,
                                     float *daq, const float *dP, const float *pvocab,
                                     const float *gamma, const float *lambda, const float *ac,
                                     const int32_t *cids, const float *aq, const int32_t *qids,
                                     int64_t T, int64_t V, int64_t X, int64_t Lc, int64_t Lq,
                                     int64_t r0, int64_t r1);

// NLL for rows [r0, r1) of P, dP [rows, X]: zeroes the rows, then dP[r, t_r] = c / P[r, t_r] with
// c = -g / count (in double, rounded once) for every row whose target != ignore. count is the
// number of kept rows in the whole tensor; count <= 0 leaves all zeros.
void mq_nll_backward(float *dP, const float *P, const int32_t *targets, int64_t X, int32_t ignore,
                     float g, int64_t count, int64_t r0, int64_t r1);
void mq_nll_backward_ref(float *dP, const float *P, const int32_t *targets, int64_t X,
                         int32_t ignore, float g, int64_t count, int64_t r0, int64_t r1);

// Attention (mq_attention's arguments and rows) -> dq [B, Tq, D], dk, dv [B, Tk, D] from the
// upstream g [B, Tq, D]; each (batch, chunk) row writes only its column window. P is recomputed:
// dv = Pᵀ g; dP = g vᵀ; dS = P ⊙ (dP - rowsum(dP ⊙ P)); dq = scale dS k; dk = scale dSᵀ q.
// scratch: at least 2 * Tq * Tk floats per call (the caller gives each thread its own).
void mq_attention_backward(float *dq, float *dk, float *dv, const float *g, const float *q,
                           const float *k, const float *v, const float *keypad, int64_t Tq,
                           int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                           int causal, float *scratch, int64_t r0, int64_t r1);
void mq_attention_backward_dropout(float *dq, float *dk, float *dv, const float *g, const float *q,
                                   const float *k, const float *v, const float *keypad, int64_t Tq,
                                   int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                                   int causal, float p, uint64_t seed, uint64_t salt, float *scratch,
                                   int64_t r0, int64_t r1);
void mq_attention_backward_dropout_ref(float *dq, float *dk, float *dv, const float *g, const float *q,
                                       const float *k, const float *v, const float *keypad, int64_t Tq,
                                       int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                                       int causal, float p, uint64_t seed, uint64_t salt, float *scratch,
                                       int64_t r0, int64_t r1);
void mq_attention_backward_ref(float *dq, float *dk, float *dv, const float *g, const float *q,
                               const float *k, const float *v, const float *keypad, int64_t Tq,
                               int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                               int causal, float *scratch, int64_t r0, int64_t r1);

// ---------------------------------------------------------------------------------------------
// Dropout: out[i] = 1/(1-p) if hash(seed, salt, i) >= p else 0, for [r0, r1) (dropout.c).
void mq_dropout_mask(float *out, float p, uint64_t seed, uint64_t salt, int64_t r0, int64_t r1);
void mq_dropout_mask_ref(float *out, float p, uint64_t seed, uint64_t salt, int64_t r0, int64_t r1);

// ---------------------------------------------------------------------------------------------
// Top-k: the k largest of x [n] into values [k] / indices [k], best first (topk.c). Ties rank by
// lower index; NaN ranks below every number. k is clamped to [0, n]. mq_topk keeps a size-k heap
// (no full sort); mq_topk_ref sorts everything. Indices must fit in int32.
void mq_topk(const float *x, int64_t n, int64_t k, float *values, int32_t *indices);
void mq_topk_ref(const float *x, int64_t n, int64_t k, float *values, int32_t *indices);

// Decoding's output layer fused (topk.c): softmax of logits [rows, V] (no mask, scale 1), the
// pointer mixture (as mq_pointer_mixture, T rows per item) and the k best of the X extended ids
// per row, best first (log of the values when take_log), without the [rows, X] mixture. Equal
// to the three kernels run one after the other. scratch: mq_mixture_topk_scratch(V, Lc, Lq)
// floats per thread (any contents); the _ref twin needs V + X.
int64_t mq_mixture_topk_scratch(int64_t V, int64_t Lc, int64_t Lq);
void mq_mixture_topk(float *values, int32_t *indices, const float *logits, const float *gamma, const float *lambda,
                     const float *ac, const int32_t *cids, const float *aq, const int32_t *qids, int64_t T, int64_t V,
                     int64_t X, int64_t Lc, int64_t Lq, int64_t k, int take_log, float *scratch, int64_t r0,
                     int64_t r1);
void mq_mixture_topk_ref(float *values, int32_t *indices, const float *logits, const float *gamma,
                         const float *lambda, const float *ac, const int32_t *cids, const float *aq,
                         const int32_t *qids, int64_t T, int64_t V, int64_t X, int64_t Lc, int64_t Lq, int64_t k,
                         int take_log, float *scratch, int64_t r0, int64_t r1);

// ---------------------------------------------------------------------------------------------
// Training's output layer fused (mixture_nll.c): softmax of logits [rows, V], the pointer mixture
// and the NLL of targets [rows] (rows = B * T, T per item); the forward adds -log P[target] of
// its rows into *loss (double) and their number into *count, and saves stats [rows, 3] (max, sum
// of exps, P[target]); the backward, from the loss gradient gl and the total count, writes
// dlogits [rows, V], dgamma, dlambda [rows], dac [rows, Lc], daq [rows, Lq]. Bit for bit the
// unfused kernels' results; the _ref twins use libm's expf and plain loops.
void mq_mixture_nll(double *loss, int64_t *count, float *stats, const float *logits, const float *gamma,
                    const float *lambda, const float *ac, const int32_t *cids, const float *aq, const int32_t *qids,
                    const int32_t *targets, int64_t T, int64_t V, int64_t Lc, int64_t Lq, int32_t ignore, int64_t r0,
                    int64_t r1);
void mq_mixture_nll_ref(double *loss, int64_t *count, float *stats, const float *logits, const float *gamma,
                        const float *lambda, const float *ac, const int32_t *cids, const float *aq, const int32_t *qids,
                        const int32_t *targets, int64_t T, int64_t V, int64_t Lc, int64_t Lq, int32_t ignore,
                        int64_t r0, int64_t r1);
void mq_mixture_nll_backward(float *dlogits, float *dgamma, float *dlambda, float *dac, float *daq, float gl,
                             int64_t count, const float *logits, const float *gamma, const float *lambda,
                             const float *ac, const int32_t *cids, const float *aq, const int32_t *qids,
                             const int32_t *targets, const float *stats, int64_t T, int64_t V, int64_t Lc, int64_t Lq,
                             int32_t ignore, int64_t r0, int64_t r1);
void mq_mixture_nll_backward_ref(float *dlogits, float *dgamma, float *dlambda, float *dac, float *daq, float gl,
                                 int64_t count, const float *logits, const float *gamma, const float *lambda,
                                 const float *ac, const int32_t *cids, const float *aq, const int32_t *qids,
                                 const int32_t *targets, const float *stats, int64_t T, int64_t V, int64_t Lc,
                                 int64_t Lq, int32_t ignore, int64_t r0, int64_t r1);

// ---------------------------------------------------------------------------------------------
// Incremental decoding (decoding.c).
// Cache update, rows [r0, r1) of out [R, S, D]: slots [0, t) = cache[reorder[r]], slot t = row[r]
// ([R, D]), slots past t = 0. out may alias cache when reorder is the identity (no copy then).
void mq_cache_update(float *out, const float *cache, const int32_t *reorder, const float *row, int64_t S,
                     int64_t D, int64_t t, int64_t r0, int64_t r1);
void mq_cache_update_ref(float *out, const float *cache, const int32_t *reorder, const float *row, int64_t S,
                         int64_t D, int64_t t, int64_t r0, int64_t r1);
// Row-wise top-k of x [rows, n] into values / indices [rows, k] for rows [r0, r1) (mq_topk's
// order); logf of the values when take_log; slots past n are -inf with index 0.
void mq_topk_rows(const float *x, int64_t n, int64_t k, int take_log, float *values, int32_t *indices, int64_t r0,
                  int64_t r1);
void mq_topk_rows_ref(const float *x, int64_t n, int64_t k, int take_log, float *values, int32_t *indices,
                      int64_t r0, int64_t r1);

#ifdef __cplusplus
}
#endif
#endif
