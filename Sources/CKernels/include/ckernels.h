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
#include "mq_pool.h"
#include "mq_elementwise.h"
#include "mq_softmax.h"
#include "mq_lstm.h"
#include "mq_mixture.h"
#include "mq_attention.h"
#include "mq_optimizer.h"
#include "mq_backward_elementwise.h"
#include "mq_backward_norm.h"
#include "mq_backward_output.h"
#include "mq_backward_attention.h"
#include "mq_dropout.h"
#include "mq_topk.h"
#include "mq_mixture_nll.h"
#include "mq_decoding.h"
#include "mq_roofline.h"
#include "mq_qlinear.h"

#endif
