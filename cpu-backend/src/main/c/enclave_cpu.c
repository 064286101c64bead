// Enclave's native CPU kernels: int8 dot products that Java's Vector API cannot emit (x86 VNNI vpdpbusd, AVX2
// vpmaddubsw, Arm sdot), called through java.lang.foreign. Weights stay in ggml's block layout inside the
// memory-mapped model file; activations are quantized once per product to int8 blocks of 32 (ggml's Q8_0 scheme).
//
// Activation buffer, per token (stride enclave_act_stride(cols)):
//   int8  q[cols]      the quantized values, block b at q[32 b]
//   float d[nb]        the block's scale (x ~ d * q)
//   float s[nb]        d * sum(q) of the block (for weights stored with an offset: Q4_0's nibbles are q + 8)
// The instruction set is picked once at run time (enclave_isa); every path computes the same integer sums.
#include <stdint.h>
#include <string.h>
#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

#define QK 32

enum { ISA_BASELINE = 0, ISA_AVX2 = 1, ISA_AVX512_VNNI = 2, ISA_NEON = 3, ISA_NEON_DOTPROD = 4 };

static int isa = -1;

int enclave_isa(void) {
    if (isa >= 0) return isa;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx512vnni")) isa = ISA_AVX512_VNNI;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) isa = ISA_AVX2;
    else isa = ISA_BASELINE;
#elif defined(__aarch64__)
    isa = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) ? ISA_NEON_DOTPROD : ISA_NEON;
#else
    isa = ISA_BASELINE;
#endif
    return isa;
}

/** Forces a slower instruction set (tests run every path the CPU has); returns the one in effect. */
int enclave_set_isa(int wanted) {
    isa = -1;
    int best = enclave_isa();
    if (wanted >= 0 && wanted <= best) isa = wanted; // on Arm, the x86 values below NEON run the baseline
    return isa;
}

int64_t enclave_act_stride(int64_t cols) {
    int64_t nb = cols / QK;
    int64_t bytes = cols + 8 * nb;
    return (bytes + 63) & ~(int64_t) 63;
}

static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t) (h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) bits = sign;
        else { // subnormal
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) { mant <<= 1; exp--; }
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000 | (mant << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

// ---- activation quantization: ggml's Q8_0 rounding (round half away from zero of x / d, d = max|x| / 127) ----

void enclave_quantize(const float *x, int64_t cols, int64_t xStride, int64_t tokens, uint8_t *dst) {
    int64_t nb = cols / QK, stride = enclave_act_stride(cols);
    for (int64_t t = 0; t < tokens; t++) {
        const float *in = x + t * xStride;
        uint8_t *row = dst + t * stride;
        int8_t *q = (int8_t *) row;
        float *d = (float *) (row + cols);
        float *s = d + nb;
        for (int64_t b = 0; b < nb; b++) {
            float amax = 0;
            for (int i = 0; i < QK; i++) amax = fmaxf(amax, fabsf(in[b * QK + i]));
            float scale = amax / 127.0f, inv = scale != 0 ? 1.0f / scale : 0;
            // the scale as ggml stores it (float16), so products match its rounding
            float dq = (float) (_Float16) scale;
            int sum = 0;
            for (int i = 0; i < QK; i++) {
                int v = (int) roundf(in[b * QK + i] * inv);
                q[b * QK + i] = (int8_t) v;
                sum += v;
            }
            d[b] = dq;
            s[b] = dq * (float) sum;
        }
    }
}

// ---- baseline (any CPU) ----

/** One block's integer dot product, as stored in the file: Q4_0 nibbles are value + 8, Q8_0 bytes are the value. */
static inline int block_dot(int q4, const uint8_t *blk, const int8_t *q) {
    int sum = 0;
    if (q4) {
        for (int i = 0; i < 16; i++) sum += ((blk[2 + i] & 0xf) - 8) * q[i] + ((blk[2 + i] >> 4) - 8) * q[16 + i];
    } else {
        for (int i = 0; i < QK; i++) sum += (int8_t) blk[2 + i] * q[i];
    }
    return sum;
}

static void baseline(int q4, const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nb = cols / QK, stride = enclave_act_stride(cols), blockBytes = q4 ? 18 : 34, rowBytes = nb * blockBytes;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + r * rowBytes;
        for (int64_t t = 0; t < tokens; t++) {
            const int8_t *q = (const int8_t *) (xq + t * stride);
            const float *d = (const float *) (xq + t * stride + cols);
            float acc = 0;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = wr + b * blockBytes;
                acc += half_to_float(load_u16(blk)) * d[b] * (float) block_dot(q4, blk, q + b * QK);
            }
            out[t * outStride + r] = acc;
        }
    }
}

#if defined(__x86_64__)

// ---- AVX2: vpmaddubsw (u8 x s8 -> s16 pairs), vpmaddwd to s32; 4 tokens share each decoded weight block ----

__attribute__((target("avx2,fma,f16c")))
static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma,f16c")))
static void q4_0_avx2(const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nb = cols / QK, stride = enclave_act_stride(cols), rowBytes = nb * 18;
    const __m256i low = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + r * rowBytes;
        for (int64_t t0 = 0; t0 < tokens; t0 += 4) {
            int n = tokens - t0 < 4 ? (int) (tokens - t0) : 4;
            __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            float off[4] = {0, 0, 0, 0};
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = wr + b * 18;
                __m128i raw = _mm_loadu_si128((const __m128i *) (blk + 2));
                __m256i wq = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), low); // 0..15, value + 8
                float dw = _cvtsh_ss(load_u16(blk));
                for (int k = 0; k < n; k++) {
                    const uint8_t *xr = xq + (t0 + k) * stride;
                    __m256i xv = _mm256_loadu_si256((const __m256i *) (xr + b * QK));
                    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(wq, xv), ones);
                    const float *d = (const float *) (xr + cols);
                    acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * d[b]), acc[k]);
                    off[k] += dw * d[nb + b];
                }
            }
            for (int k = 0; k < n; k++) out[(t0 + k) * outStride + r] = hsum256(acc[k]) - 8.0f * off[k];
        }
    }
}

__attribute__((target("avx2,fma,f16c")))
static void q8_0_avx2(const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nb = cols / QK, stride = enclave_act_stride(cols), rowBytes = nb * 34;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + r * rowBytes;
        for (int64_t t0 = 0; t0 < tokens; t0 += 4) {
            int n = tokens - t0 < 4 ? (int) (tokens - t0) : 4;
            __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = wr + b * 34;
                __m256i wq = _mm256_loadu_si256((const __m256i *) (blk + 2));
                __m256i aw = _mm256_sign_epi8(wq, wq); // |w|
                float dw = _cvtsh_ss(load_u16(blk));
                for (int k = 0; k < n; k++) {
                    const uint8_t *xr = xq + (t0 + k) * stride;
                    __m256i xv = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *) (xr + b * QK)), wq); // x * sign(w)
                    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, xv), ones);
                    const float *d = (const float *) (xr + cols);
                    acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * d[b]), acc[k]);
                }
            }
            for (int k = 0; k < n; k++) out[(t0 + k) * outStride + r] = hsum256(acc[k]);
        }
    }
}

// ---- AVX-512 VNNI: only on the repacked layout (below); the file's layout runs the AVX2 kernels there ----

#define VNNI_TARGET "avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,fma,f16c"

#endif

#if defined(__aarch64__)

// ---- Arm: sdot (s8 x s8, four products summed into s32 per lane) ----

__attribute__((target("arch=armv8.2-a+dotprod")))
static void q4_0_dotprod(const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nb = cols / QK, stride = enclave_act_stride(cols), rowBytes = nb * 18;
    const uint8x16_t low = vdupq_n_u8(0x0f);
    const int8x16_t eight = vdupq_n_s8(8);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + r * rowBytes;
        for (int64_t t = 0; t < tokens; t++) {
            const uint8_t *xr = xq + t * stride;
            const int8_t *q = (const int8_t *) xr;
            const float *d = (const float *) (xr + cols);
            float32x4_t acc = vdupq_n_f32(0);
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = wr + b * 18;
                uint8x16_t raw = vld1q_u8(blk + 2);
                int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, low)), eight);
                int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), eight);
                int32x4_t p = vdotq_s32(vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(q + b * QK)), hi, vld1q_s8(q + b * QK + 16));
                __fp16 h;
                memcpy(&h, blk, 2);
                acc = vmlaq_n_f32(acc, vcvtq_f32_s32(p), (float) h * d[b]);
            }
            out[t * outStride + r] = vaddvq_f32(acc);
        }
    }
}

__attribute__((target("arch=armv8.2-a+dotprod")))
static void q8_0_dotprod(const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nb = cols / QK, stride = enclave_act_stride(cols), rowBytes = nb * 34;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + r * rowBytes;
        for (int64_t t = 0; t < tokens; t++) {
            const uint8_t *xr = xq + t * stride;
            const int8_t *q = (const int8_t *) xr;
            const float *d = (const float *) (xr + cols);
            float32x4_t acc = vdupq_n_f32(0);
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = wr + b * 34;
                const int8_t *wq = (const int8_t *) (blk + 2);
                int32x4_t p = vdotq_s32(vdotq_s32(vdupq_n_s32(0), vld1q_s8(wq), vld1q_s8(q + b * QK)), vld1q_s8(wq + 16), vld1q_s8(q + b * QK + 16));
                __fp16 h;
                memcpy(&h, blk, 2);
                acc = vmlaq_n_f32(acc, vcvtq_f32_s32(p), (float) h * d[b]);
            }
            out[t * outStride + r] = vaddvq_f32(acc);
        }
    }
}

#endif

// ---- entry points ----

enum { TYPE_Q4_0 = 2, TYPE_Q8_0 = 8 }; // ggml's type ids

/** Whether this library multiplies weights of ggml type {@code type} on this CPU. */
int enclave_supports(int type) {
    return type == TYPE_Q4_0 || type == TYPE_Q8_0;
}

/**
 * out[t * outStride + r] = dot(weight row r, token t) for rows [r0, r1) and tokens [0, tokens): w is the whole
 * matrix in ggml's layout, xq the activations as enclave_quantize wrote them.
 */
void enclave_matmul(int type, const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *xq, int64_t tokens,
                    float *out, int64_t outStride) {
    int i = enclave_isa();
#if defined(__x86_64__)
    if (i == ISA_AVX2 || i == ISA_AVX512_VNNI) { // VNNI's own product needs the repacked layout
        if (type == TYPE_Q4_0) q4_0_avx2(w, cols, r0, r1, xq, tokens, out, outStride);
        else q8_0_avx2(w, cols, r0, r1, xq, tokens, out, outStride);
        return;
    }
#elif defined(__aarch64__)
    if (i == ISA_NEON_DOTPROD) {
        if (type == TYPE_Q4_0) q4_0_dotprod(w, cols, r0, r1, xq, tokens, out, outStride);
        else q8_0_dotprod(w, cols, r0, r1, xq, tokens, out, outStride);
        return;
    }
#endif
    (void) i;
    baseline(type == TYPE_Q4_0, w, cols, r0, r1, xq, tokens, out, outStride);
}

// ---- AVX-512 VNNI on weights repacked 16 rows to a group, the rows across the lanes ----
// Per group and block: the 16 rows' float16 scales (32 bytes, as the file stores them), then the 32 values of the 16 rows in vpdpbusd's shape: quad q (columns
// 4q..4q+3) of row r is 32-bit lane r. Q4_0: 4 registers of 64 bytes, register k holding quad 2k in the low nibbles and
// quad 2k+1 in the high ones (values + 8, as stored); Q8_0: 8 registers, value + 128 as unsigned bytes. A product then
// broadcasts 4 activation bytes per quad and needs no horizontal sum: lane r accumulates row r.

#define R16 16

int64_t enclave_repacked_bytes(int type, int64_t rows, int64_t cols) {
    int64_t nb = cols / QK, groups = rows / R16;
    return groups * nb * (32 + (type == TYPE_Q4_0 ? 256 : 512));
}

/** Repacks row groups [g0, g1) of w (rows / 16 groups in all) into dst, the whole repacked matrix. */
void enclave_repack(int type, const uint8_t *w, int64_t cols, int64_t g0, int64_t g1, uint8_t *dst) {
    int64_t nb = cols / QK, blockBytes = type == TYPE_Q4_0 ? 18 : 34, body = type == TYPE_Q4_0 ? 256 : 512;
    for (int64_t g = g0; g < g1; g++) {
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *out = dst + (g * nb + b) * (32 + body);
            uint16_t *scale = (uint16_t *) out;
            uint8_t *v = out + 32;
            memset(v, 0, body);
            for (int r = 0; r < R16; r++) {
                const uint8_t *blk = w + ((g * R16 + r) * nb + b) * blockBytes;
                scale[r] = load_u16(blk);
                for (int c = 0; c < QK; c++) {
                    int quad = c / 4, i = c % 4;
                    if (type == TYPE_Q4_0) {
                        int value = c < 16 ? (blk[2 + c] & 0xf) : (blk[2 + c - 16] >> 4);
                        int k = quad / 2;
                        v[k * 64 + 4 * r + i] |= (uint8_t) (quad % 2 == 0 ? value : value << 4);
                    } else {
                        v[quad * 64 + 4 * r + i] = (uint8_t) (blk[2 + c] ^ 0x80);
                    }
                }
            }
        }
    }
}

#if defined(__x86_64__)
__attribute__((target(VNNI_TARGET)))
static void r16_vnni(int type, const uint8_t *p, int64_t cols, int64_t g0, int64_t g1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nb = cols / QK, stride = enclave_act_stride(cols), body = type == TYPE_Q4_0 ? 256 : 512;
    const __m512i low = _mm512_set1_epi8(0x0f);
    const float offset = type == TYPE_Q4_0 ? -8.0f : -128.0f;
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *base = p + g * nb * (32 + body);
        for (int64_t t0 = 0; t0 < tokens; t0 += 4) {
            int n = tokens - t0 < 4 ? (int) (tokens - t0) : 4;
            __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = base + b * (32 + body);
                __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) blk));
                __m512i v[8];
                if (type == TYPE_Q4_0) {
                    for (int k = 0; k < 4; k++) {
                        __m512i raw = _mm512_loadu_si512((const void *) (blk + 32 + 64 * k));
                        v[2 * k] = _mm512_and_si512(raw, low);
                        v[2 * k + 1] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low);
                    }
                } else {
                    for (int k = 0; k < 8; k++) v[k] = _mm512_loadu_si512((const void *) (blk + 32 + 64 * k));
                }
                for (int k = 0; k < n; k++) {
                    const uint8_t *xr = xq + (t0 + k) * stride;
                    const int32_t *x4 = (const int32_t *) (xr + b * QK);
                    __m512i s = _mm512_setzero_si512();
                    for (int q = 0; q < 8; q++) s = _mm512_dpbusd_epi32(s, v[q], _mm512_set1_epi32(x4[q]));
                    const float *d = (const float *) (xr + cols);
                    acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(ws, _mm512_set1_ps(d[b])), acc[k]);
                    acc[k] = _mm512_fmadd_ps(ws, _mm512_set1_ps(offset * d[nb + b]), acc[k]);
                }
            }
            for (int k = 0; k < n; k++) _mm512_storeu_ps(out + (t0 + k) * outStride + g * R16, acc[k]);
        }
    }
}
#endif

/** Whether enclave_matmul_repacked runs on this CPU (the repacked layout is for AVX-512 VNNI). */
int enclave_repacked_supported(void) {
    return enclave_isa() == ISA_AVX512_VNNI;
}

/** As enclave_matmul, on a matrix enclave_repack wrote, for row groups [g0, g1) (16 rows each). */
void enclave_matmul_repacked(int type, const uint8_t *p, int64_t cols, int64_t g0, int64_t g1, const uint8_t *xq, int64_t tokens,
                             float *out, int64_t outStride) {
#if defined(__x86_64__)
    if (enclave_isa() == ISA_AVX512_VNNI) {
        r16_vnni(type, p, cols, g0, g1, xq, tokens, out, outStride);
        return;
    }
#endif
    (void) type; (void) p; (void) cols; (void) g0; (void) g1; (void) xq; (void) tokens; (void) out; (void) outStride;
}
