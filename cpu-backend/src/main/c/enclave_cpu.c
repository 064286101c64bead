// Enclave's native CPU kernels: int8 dot products that Java's Vector API cannot emit (x86 VNNI vpdpbusd, AVX2
// vpmaddubsw, Arm sdot), called through java.lang.foreign. Weights stay in ggml's block layout inside the
// memory-mapped model file; activations are quantized once per product to int8 blocks of 32 (ggml's Q8_0 scheme).
//
// Activation buffer, per token (stride enclave_act_stride(cols)):
//   int8  q[cols]      the quantized values, block b at q[32 b]
//   float d[nb]        the block's scale (x ~ d * q)
//   float s[nb]        d * sum(q) of the block (for weights stored with an offset: Q4_0's nibbles are q + 8)
//   int16 h[2 nb]      sum(q) of each half block (Q6_K's scales are per 16 values, its values stored + 32)
// The instruction set is picked once at run time (enclave_isa); every path computes the same integer sums.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif
#endif

#define QK 32
/**
 * How far ahead (bytes) a one-token product asks for its weights with software prefetches; 0: the hardware prefetcher
 * alone. Decoding streams the weights once per token: on Intel's server cores two threads' loads alone kept too few
 * misses in flight to reach the memory's bandwidth, and prefetching 1 KB ahead measured faster; on AMD's Zen 4 a
 * software prefetch measured slower, so it stays off there and elsewhere. Set by enclave_isa().
 */
static int64_t prefetch_ahead;

/** Whether one-token products read several prefetched streams per thread (where the prefetch is on: Intel). */
static inline int decode_streams(void) {
    return prefetch_ahead > 0;
}

enum { ISA_BASELINE = 0, ISA_AVX2 = 1, ISA_AVX512_VNNI = 2, ISA_NEON = 3, ISA_NEON_DOTPROD = 4, ISA_NEON_I8MM = 5 };

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
    isa = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) ? ((getauxval(AT_HWCAP2) & HWCAP2_I8MM) ? ISA_NEON_I8MM : ISA_NEON_DOTPROD) : ISA_NEON;
#else
    isa = ISA_BASELINE;
#endif
#if defined(__x86_64__)
    prefetch_ahead = __builtin_cpu_is("intel") ? 1024 : 0;
#endif
    // ENCLAVE_CPU_PREFETCH sets the distance (0 turns it off): to measure it on another machine
    const char *ahead = getenv("ENCLAVE_CPU_PREFETCH");
    if (ahead != NULL) prefetch_ahead = strtoll(ahead, NULL, 10) < 0 ? 0 : strtoll(ahead, NULL, 10);
    // ENCLAVE_CPU_ISA lowers the choice (as MKL_ENABLE_INSTRUCTIONS does): to measure or rule out a path on a machine
    // that has a better one; a name this CPU cannot run, or an unknown one, is ignored
    const char *cap = getenv("ENCLAVE_CPU_ISA");
    if (cap != NULL) {
        static const char *const names[] = {"baseline", "avx2", "avx512-vnni", "neon", "neon-dotprod", "neon-i8mm"};
        for (int i = 0; i < 6; i++) {
            int sameFamily = i == ISA_BASELINE || (i >= ISA_NEON) == (isa >= ISA_NEON);
            if (strcmp(cap, names[i]) == 0 && i <= isa && sameFamily) isa = i;
        }
    }
    return isa;
}

/** Sets the prefetch distance (bytes; 0: off, and with it the one-token kernels' single stream); returns the one before. */
int64_t enclave_set_prefetch(int64_t bytes) {
    enclave_isa();
    int64_t before = prefetch_ahead;
    prefetch_ahead = bytes < 0 ? 0 : bytes;
    return before;
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
    int64_t bytes = cols + 12 * nb;
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

/** IEEE binary16 of f, rounded to nearest even (as F16C's vcvtps2ph and Java's Float.floatToFloat16): ggml's rounding. */
static inline uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, abs = x & 0x7fffffff;
    if (abs >= 0x7f800000) return (uint16_t) (sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 | ((abs >> 13) & 0x3ff) : 0)); // inf, NaN
    if (abs >= 0x477ff000) return (uint16_t) (sign | 0x7c00); // rounds past the largest half: infinity
    if (abs < 0x38800000) { // a half subnormal (or zero): the value in units of 2^-24, rounded to nearest even
        if (abs < 0x33000000) return (uint16_t) sign; // below half the smallest subnormal
        uint32_t mant = (abs & 0x7fffff) | 0x800000, shift = 126 - (abs >> 23); // 14..24
        uint32_t v = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (v & 1))) v++;
        return (uint16_t) (sign | v);
    }
    uint32_t v = ((abs >> 13) - (112u << 10)), rem = abs & 0x1fff; // rebias the exponent, keep 10 mantissa bits
    if (rem > 0x1000 || (rem == 0x1000 && (v & 1))) v++; // a carry into the exponent is the right result
    return (uint16_t) (sign | v);
}

static inline uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

// ---- activation quantization: ggml's Q8_0 rounding (round half away from zero of x / d, d = max|x| / 127) ----

static void quantize_baseline(const float *x, int64_t cols, int64_t xStride, int64_t tokens, uint8_t *dst) {
    int64_t nb = cols / QK, stride = enclave_act_stride(cols);
    for (int64_t t = 0; t < tokens; t++) {
        const float *in = x + t * xStride;
        uint8_t *row = dst + t * stride;
        int8_t *q = (int8_t *) row;
        float *d = (float *) (row + cols);
        float *s = d + nb;
        int16_t *h = (int16_t *) (s + nb);
        for (int64_t b = 0; b < nb; b++) {
            float amax = 0;
            for (int i = 0; i < QK; i++) amax = fmaxf(amax, fabsf(in[b * QK + i]));
            float scale = amax / 127.0f, inv = scale != 0 ? 1.0f / scale : 0;
            // the scale as ggml stores it (float16), so products match its rounding
            float dq = (float) (_Float16) scale;
            int half[2] = {0, 0};
            for (int i = 0; i < QK; i++) {
                int v = (int) roundf(in[b * QK + i] * inv);
                q[b * QK + i] = (int8_t) v;
                half[i >> 4] += v;
            }
            d[b] = dq;
            s[b] = dq * (float) (half[0] + half[1]);
            h[2 * b] = (int16_t) half[0];
            h[2 * b + 1] = (int16_t) half[1];
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

// ---- Q6_K (ggml's block_q6_K: ql[128] low nibbles, qh[64] high bit pairs, int8 scales[16] per 16 values, f16 d;
// 256 values, each stored + 32) ----

#define QK_K 256
#define Q6K_BYTES 210

/** Value i (0..255) of a Q6_K block as stored, 0..63 (the value + 32). */
static inline int q6k_value(const uint8_t *blk, int i) {
    int half = i / 128, l = i % 128, quarter = l / 32, ll = l % 32;
    const uint8_t *ql = blk + 64 * half, *qh = blk + 128 + 32 * half;
    int lo = (quarter & 1) ? ql[ll + 32] : ql[ll];
    lo = quarter >= 2 ? lo >> 4 : lo & 0xf;
    return lo | (((qh[ll] >> (2 * quarter)) & 3) << 4);
}

static void q6k_baseline(const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nsb = cols / QK_K, stride = enclave_act_stride(cols);
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t t = 0; t < tokens; t++) {
            const int8_t *q = (const int8_t *) (xq + t * stride);
            const float *d = (const float *) (xq + t * stride + cols);
            float acc = 0;
            for (int64_t sb = 0; sb < nsb; sb++) {
                const uint8_t *blk = w + (r * nsb + sb) * Q6K_BYTES;
                const int8_t *sc = (const int8_t *) (blk + 192);
                float dw = half_to_float(load_u16(blk + 208));
                for (int b = 0; b < 8; b++) {
                    int s0 = 0, s1 = 0;
                    const int8_t *x = q + sb * QK_K + 32 * b;
                    for (int i = 0; i < 16; i++) s0 += (q6k_value(blk, 32 * b + i) - 32) * x[i];
                    for (int i = 16; i < 32; i++) s1 += (q6k_value(blk, 32 * b + i) - 32) * x[i];
                    acc += dw * d[sb * 8 + b] * (float) (sc[2 * b] * s0 + sc[2 * b + 1] * s1);
                }
            }
            out[t * outStride + r] = acc;
        }
    }
}

// ---- Q4_K (ggml's block_q4_K: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins for 8 sub-blocks of 32, 128
// bytes of nibbles; value = d * scale * q - dmin * min) ----

#define Q4K_BYTES 144

/** Sub-block j's (0..7) scale and min, as ggml's get_scale_min_k4 unpacks them. */
static inline void q4k_scale_min(const uint8_t *q, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/** Value i (0..255) of a Q4_K block, 0..15. */
static inline int q4k_value(const uint8_t *blk, int i) {
    int j = i / 32, l = i % 32;
    uint8_t b = blk[16 + 32 * (j / 2) + l];
    return j % 2 == 0 ? b & 0xf : b >> 4;
}

static void q4k_baseline(const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nsb = cols / QK_K, stride = enclave_act_stride(cols), nb = cols / QK;
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t t = 0; t < tokens; t++) {
            const int8_t *q = (const int8_t *) (xq + t * stride);
            const float *d = (const float *) (xq + t * stride + cols);
            const float *s = d + nb;
            float acc = 0;
            for (int64_t sb = 0; sb < nsb; sb++) {
                const uint8_t *blk = w + (r * nsb + sb) * Q4K_BYTES;
                float dw = half_to_float(load_u16(blk)), dmin = half_to_float(load_u16(blk + 2));
                for (int j = 0; j < 8; j++) {
                    int sc, m, sum = 0;
                    q4k_scale_min(blk + 4, j, &sc, &m);
                    for (int i = 0; i < 32; i++) sum += q4k_value(blk, 32 * j + i) * q[sb * QK_K + 32 * j + i];
                    acc += dw * (float) sc * d[sb * 8 + j] * (float) sum - dmin * (float) m * s[sb * 8 + j];
                }
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

/** A Q4_K super-block's eight sub-block scales and mins as floats: d * scale and dmin * min, as ggml decodes them. */
__attribute__((target("avx2,fma,f16c")))
static inline void q4k_float_scales(const uint8_t *blk, float *ws, float *wm) {
    float dw = _cvtsh_ss(load_u16(blk)), dmin = _cvtsh_ss(load_u16(blk + 2));
    for (int j = 0; j < 8; j++) {
        int sc, m;
        q4k_scale_min(blk + 4, j, &sc, &m);
        ws[j] = dw * (float) sc;
        wm[j] = dmin * (float) m;
    }
}

/**
 * Q4_K on the file's layout: per 64 values 32 bytes, low nibbles one sub-block and high nibbles the next; each
 * sub-block's 6-bit scale and min applied in float with the activation block's scale (both are per 32 values). One
 * row and nt tokens (a constant where inlined, so the accumulators stay in registers).
 */
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void q4k_avx2_row(const uint8_t *wr, int64_t nsb, int64_t nb, int64_t cols, int64_t stride, const uint8_t *xq,
                                int64_t t0, float *out, int64_t outStride, int64_t r, const int nt) {
    const __m256i low = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    float off[4] = {0, 0, 0, 0};
    for (int64_t sb = 0; sb < nsb; sb++) {
        const uint8_t *blk = wr + sb * Q4K_BYTES;
        float ws[8], wm[8];
        q4k_float_scales(blk, ws, wm);
        for (int j = 0; j < 4; j++) {
            __m256i raw = _mm256_loadu_si256((const __m256i *) (blk + 16 + 32 * j));
            __m256i w0 = _mm256_and_si256(raw, low), w1 = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low);
            int64_t b0 = sb * 8 + 2 * j;
            for (int k = 0; k < nt; k++) {
                const uint8_t *xr = xq + (t0 + k) * stride;
                const float *d = (const float *) (xr + cols), *s = d + nb;
                __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(w0, _mm256_loadu_si256((const __m256i *) (xr + b0 * QK))), ones);
                __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(w1, _mm256_loadu_si256((const __m256i *) (xr + (b0 + 1) * QK))), ones);
                acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(ws[2 * j] * d[b0]), acc[k]);
                acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(ws[2 * j + 1] * d[b0 + 1]), acc[k]);
                off[k] += wm[2 * j] * s[b0] + wm[2 * j + 1] * s[b0 + 1];
            }
        }
    }
    for (int k = 0; k < nt; k++) out[(t0 + k) * outStride + r] = hsum256(acc[k]) - off[k];
}

/** Q4_K as above for two rows and four tokens (prompts): the activation loads serve both rows. */
__attribute__((target("avx2,fma,f16c")))
static void q4k_avx2_rows2(const uint8_t *wr, int64_t nsb, int64_t nb, int64_t cols, int64_t stride, const uint8_t *xq,
                           int64_t t0, float *out, int64_t outStride, int64_t r) {
    const __m256i low = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    __m256 a0[4], a1[4];
    for (int k = 0; k < 4; k++) a0[k] = a1[k] = _mm256_setzero_ps();
    float off0[4] = {0, 0, 0, 0}, off1[4] = {0, 0, 0, 0};
    const uint8_t *wr1 = wr + nsb * Q4K_BYTES;
    for (int64_t sb = 0; sb < nsb; sb++) {
        const uint8_t *blk0 = wr + sb * Q4K_BYTES, *blk1 = wr1 + sb * Q4K_BYTES;
        float ws0[8], wm0[8], ws1[8], wm1[8];
        q4k_float_scales(blk0, ws0, wm0);
        q4k_float_scales(blk1, ws1, wm1);
        for (int j = 0; j < 4; j++) {
            __m256i raw0 = _mm256_loadu_si256((const __m256i *) (blk0 + 16 + 32 * j));
            __m256i raw1 = _mm256_loadu_si256((const __m256i *) (blk1 + 16 + 32 * j));
            __m256i w00 = _mm256_and_si256(raw0, low), w01 = _mm256_and_si256(_mm256_srli_epi16(raw0, 4), low);
            __m256i w10 = _mm256_and_si256(raw1, low), w11 = _mm256_and_si256(_mm256_srli_epi16(raw1, 4), low);
            int64_t b0 = sb * 8 + 2 * j;
            for (int k = 0; k < 4; k++) {
                const uint8_t *xr = xq + (t0 + k) * stride;
                const float *d = (const float *) (xr + cols), *s = d + nb;
                __m256i x0 = _mm256_loadu_si256((const __m256i *) (xr + b0 * QK));
                __m256i x1 = _mm256_loadu_si256((const __m256i *) (xr + (b0 + 1) * QK));
                float d0 = d[b0], d1 = d[b0 + 1];
                a0[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(w00, x0), ones)), _mm256_set1_ps(ws0[2 * j] * d0), a0[k]);
                a0[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(w01, x1), ones)), _mm256_set1_ps(ws0[2 * j + 1] * d1), a0[k]);
                a1[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(w10, x0), ones)), _mm256_set1_ps(ws1[2 * j] * d0), a1[k]);
                a1[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(w11, x1), ones)), _mm256_set1_ps(ws1[2 * j + 1] * d1), a1[k]);
                off0[k] += wm0[2 * j] * s[b0] + wm0[2 * j + 1] * s[b0 + 1];
                off1[k] += wm1[2 * j] * s[b0] + wm1[2 * j + 1] * s[b0 + 1];
            }
        }
    }
    for (int k = 0; k < 4; k++) {
        out[(t0 + k) * outStride + r] = hsum256(a0[k]) - off0[k];
        out[(t0 + k) * outStride + r + 1] = hsum256(a1[k]) - off1[k];
    }
}

/**
 * Q6_K on the file's layout: a 128-value half's 64 low-nibble bytes and 32 high-pair bytes make four quarters of 32
 * values (0..63, the value + 32); vpmaddwd applies the two 16-value scales of a quarter, the activations' half-block
 * sums take the 32 off. One row and nt tokens, as above.
 */
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void q6k_avx2_row(const uint8_t *wr, int64_t nsb, int64_t nb, int64_t cols, int64_t stride, const uint8_t *xq,
                                int64_t t0, float *out, int64_t outStride, int64_t r, const int nt) {
    const __m256i low = _mm256_set1_epi8(0x0f), three = _mm256_set1_epi8(3);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    float off[4] = {0, 0, 0, 0};
    for (int64_t sb = 0; sb < nsb; sb++) {
        const uint8_t *blk = wr + sb * Q6K_BYTES;
        const int8_t *sc = (const int8_t *) (blk + 192);
        float dw = _cvtsh_ss(load_u16(blk + 208));
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = blk + 64 * half, *qh = blk + 128 + 32 * half;
            __m256i l0 = _mm256_loadu_si256((const __m256i *) ql), l1 = _mm256_loadu_si256((const __m256i *) (ql + 32));
            __m256i h = _mm256_loadu_si256((const __m256i *) qh);
            __m256i v[4];
            v[0] = _mm256_or_si256(_mm256_and_si256(l0, low), _mm256_slli_epi16(_mm256_and_si256(h, three), 4));
            v[1] = _mm256_or_si256(_mm256_and_si256(l1, low), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), three), 4));
            v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), three), 4));
            v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), three), 4));
            for (int quarter = 0; quarter < 4; quarter++) {
                int sc0 = sc[half * 8 + quarter * 2], sc1 = sc[half * 8 + quarter * 2 + 1];
                __m256i scales = _mm256_set_m128i(_mm_set1_epi16((short) sc1), _mm_set1_epi16((short) sc0));
                int64_t b = sb * 8 + half * 4 + quarter;
                for (int k = 0; k < nt; k++) {
                    const uint8_t *xr = xq + (t0 + k) * stride;
                    const float *d = (const float *) (xr + cols);
                    const int16_t *hs = (const int16_t *) (d + 2 * nb);
                    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(v[quarter], _mm256_loadu_si256((const __m256i *) (xr + b * QK))), scales);
                    float db = dw * d[b];
                    acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(db), acc[k]);
                    off[k] += db * (float) (32 * (sc0 * hs[2 * b] + sc1 * hs[2 * b + 1]));
                }
            }
        }
    }
    for (int k = 0; k < nt; k++) out[(t0 + k) * outStride + r] = hsum256(acc[k]) - off[k];
}

/** Rows [r0, r1) x every token of a K-quant matrix, four tokens sharing each decoded block. */
#define KQ_AVX2_DRIVER(NAME, ROW, BYTES)                                                                          \
__attribute__((target("avx2,fma,f16c")))                                                                         \
static void NAME(const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *xq, int64_t tokens, float *out, \
                 int64_t outStride) {                                                                            \
    int64_t nsb = cols / QK_K, nb = cols / QK, stride = enclave_act_stride(cols);                                \
    for (int64_t r = r0; r < r1; r++) {                                                                          \
        const uint8_t *wr = w + r * nsb * BYTES;                                                                 \
        int64_t t0 = 0;                                                                                          \
        for (; t0 + 4 <= tokens; t0 += 4) ROW(wr, nsb, nb, cols, stride, xq, t0, out, outStride, r, 4);         \
        if (tokens - t0 == 1) ROW(wr, nsb, nb, cols, stride, xq, t0, out, outStride, r, 1);                     \
        else if (tokens - t0 == 2) ROW(wr, nsb, nb, cols, stride, xq, t0, out, outStride, r, 2);                \
        else if (tokens - t0 == 3) ROW(wr, nsb, nb, cols, stride, xq, t0, out, outStride, r, 3);                \
    }                                                                                                            \
}

KQ_AVX2_DRIVER(q4k_avx2_rows1, q4k_avx2_row, Q4K_BYTES)
KQ_AVX2_DRIVER(q6k_avx2, q6k_avx2_row, Q6K_BYTES)

/** Q4_K: pairs of rows over each four tokens of a prompt, single rows for the rest. */
__attribute__((target("avx2,fma,f16c")))
static void q4k_avx2(const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nsb = cols / QK_K, nb = cols / QK, stride = enclave_act_stride(cols), quads = tokens / 4 * 4, r = r0;
    if (quads > 0) {
        for (; r + 2 <= r1; r += 2) {
            for (int64_t t0 = 0; t0 < quads; t0 += 4) q4k_avx2_rows2(w + r * nsb * Q4K_BYTES, nsb, nb, cols, stride, xq, t0, out, outStride, r);
            if (quads < tokens) {
                for (int64_t i = r; i < r + 2; i++) {
                    const uint8_t *wi = w + i * nsb * Q4K_BYTES;
                    int64_t t0 = quads;
                    if (tokens - t0 == 1) q4k_avx2_row(wi, nsb, nb, cols, stride, xq, t0, out, outStride, i, 1);
                    else if (tokens - t0 == 2) q4k_avx2_row(wi, nsb, nb, cols, stride, xq, t0, out, outStride, i, 2);
                    else q4k_avx2_row(wi, nsb, nb, cols, stride, xq, t0, out, outStride, i, 3);
                }
            }
        }
    }
    if (r < r1) q4k_avx2_rows1(w, cols, r, r1, xq, tokens, out, outStride);
}

// ---- AVX-512 VNNI: only on the repacked layout (below); the file's layout runs the AVX2 kernels there ----

#define VNNI_TARGET "avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,fma,f16c"

/**
 * The activations' quantization, 32 values in two registers: the same scale (max |x| / 127, stored as float16) and
 * 1 / scale as the baseline; values rounded to nearest even, as ggml's own x86 quantize_row_q8_0 rounds them.
 */
__attribute__((target(VNNI_TARGET)))
static void quantize_avx512(const float *x, int64_t cols, int64_t xStride, int64_t tokens, uint8_t *dst) {
    int64_t nb = cols / QK, stride = enclave_act_stride(cols);
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t t = 0; t < tokens; t++) {
        const float *in = x + t * xStride;
        uint8_t *row = dst + t * stride;
        float *d = (float *) (row + cols);
        float *s = d + nb;
        int16_t *h = (int16_t *) (s + nb);
        for (int64_t b = 0; b < nb; b++) {
            __m512 v0 = _mm512_loadu_ps(in + b * QK), v1 = _mm512_loadu_ps(in + b * QK + 16);
            float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
            float scale = amax / 127.0f, inv = scale != 0 ? 1.0f / scale : 0;
            __m512 iv = _mm512_set1_ps(inv);
            __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, iv)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, iv));
            _mm_storeu_si128((__m128i *) (row + b * QK), _mm512_cvtsepi32_epi8(q0));
            _mm_storeu_si128((__m128i *) (row + b * QK + 16), _mm512_cvtsepi32_epi8(q1));
            int h0 = _mm512_reduce_add_epi32(q0), h1 = _mm512_reduce_add_epi32(q1);
            float dq = (float) (_Float16) scale;
            d[b] = dq;
            s[b] = dq * (float) (h0 + h1);
            h[2 * b] = (int16_t) h0;
            h[2 * b + 1] = (int16_t) h1;
        }
    }
}

#endif

#if defined(__aarch64__)

// ---- Arm: sdot (s8 x s8, four products summed into s32 per lane) ----

/** One Q4_0 (nibbles, stored + 8) or Q8_0 block's integer products with 32 activations, four lanes to sum. */
__attribute__((target("arch=armv8.2-a+dotprod")))
static inline int32x4_t block_dotprod(int q4, const uint8_t *blk, const int8_t *q) {
    int8x16_t a, b;
    if (q4) {
        uint8x16_t raw = vld1q_u8(blk + 2);
        a = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0f))), vdupq_n_s8(8));
        b = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), vdupq_n_s8(8));
    } else {
        a = vld1q_s8((const int8_t *) (blk + 2));
        b = vld1q_s8((const int8_t *) (blk + 18));
    }
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), a, vld1q_s8(q)), b, vld1q_s8(q + 16));
}

/** Q4_0 and Q8_0 on the file's layout: a row at a time, one block's float16 scale per 32 products. */
__attribute__((target("arch=armv8.2-a+dotprod")))
static void q8blocks_dotprod(int q4, const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nb = cols / QK, stride = enclave_act_stride(cols), blockBytes = q4 ? 18 : 34, rowBytes = nb * blockBytes;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + r * rowBytes;
        for (int64_t t = 0; t < tokens; t++) {
            const uint8_t *xr = xq + t * stride;
            const int8_t *q = (const int8_t *) xr;
            const float *d = (const float *) (xr + cols);
            float32x4_t acc = vdupq_n_f32(0);
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = wr + b * blockBytes;
                __fp16 h;
                memcpy(&h, blk, 2);
                acc = vmlaq_n_f32(acc, vcvtq_f32_s32(block_dotprod(q4, blk, q + b * QK)), (float) h * d[b]);
            }
            out[t * outStride + r] = vaddvq_f32(acc);
        }
    }
}

/** One Q4_0 or Q8_0 block's 32 values as int8 (Q4_0's nibbles less their + 8), in two registers of 16. */
__attribute__((target("arch=armv8.2-a+dotprod+i8mm")))
static inline void block_values(int q4, const uint8_t *blk, int8x16_t *lo, int8x16_t *hi) {
    if (q4) {
        uint8x16_t raw = vld1q_u8(blk + 2);
        *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0f))), vdupq_n_s8(8));
        *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), vdupq_n_s8(8));
    } else {
        *lo = vld1q_s8((const int8_t *) (blk + 2));
        *hi = vld1q_s8((const int8_t *) (blk + 18));
    }
}

/**
 * Q4_0 and Q8_0 for prompts with the Armv8.6 int8 matrix multiply (i8mm): smmla takes 8 values of two rows and of
 * two tokens and adds their four dot products, so a 2 x 2 tile reads each weight block once for two tokens and each
 * activation block once for two rows. Odd rows and tokens go to the dotprod kernel.
 */
__attribute__((target("arch=armv8.2-a+dotprod+i8mm")))
static void q8blocks_i8mm(int q4, const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nb = cols / QK, stride = enclave_act_stride(cols), blockBytes = q4 ? 18 : 34, rowBytes = nb * blockBytes;
    int64_t pairs = tokens / 2 * 2, r = r0;
    for (; r + 2 <= r1; r += 2) {
        const uint8_t *w0 = w + r * rowBytes, *w1 = w0 + rowBytes;
        for (int64_t t = 0; t < pairs; t += 2) {
            const int8_t *x0 = (const int8_t *) (xq + t * stride), *x1 = (const int8_t *) (xq + (t + 1) * stride);
            const float *d0 = (const float *) (xq + t * stride + cols), *d1 = (const float *) (xq + (t + 1) * stride + cols);
            float32x4_t acc = vdupq_n_f32(0);
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *b0 = w0 + b * blockBytes, *b1 = w1 + b * blockBytes;
                int8x16_t a0lo, a0hi, a1lo, a1hi;
                block_values(q4, b0, &a0lo, &a0hi);
                block_values(q4, b1, &a1lo, &a1hi);
                int8x16_t xalo = vld1q_s8(x0 + b * QK), xahi = vld1q_s8(x0 + b * QK + 16);
                int8x16_t xblo = vld1q_s8(x1 + b * QK), xbhi = vld1q_s8(x1 + b * QK + 16);
                // rows in the first operand's halves, tokens in the second's: [r0.t0, r0.t1, r1.t0, r1.t1]
                int32x4_t s = vdupq_n_s32(0);
                s = vmmlaq_s32(s, vcombine_s8(vget_low_s8(a0lo), vget_low_s8(a1lo)), vcombine_s8(vget_low_s8(xalo), vget_low_s8(xblo)));
                s = vmmlaq_s32(s, vcombine_s8(vget_high_s8(a0lo), vget_high_s8(a1lo)), vcombine_s8(vget_high_s8(xalo), vget_high_s8(xblo)));
                s = vmmlaq_s32(s, vcombine_s8(vget_low_s8(a0hi), vget_low_s8(a1hi)), vcombine_s8(vget_low_s8(xahi), vget_low_s8(xbhi)));
                s = vmmlaq_s32(s, vcombine_s8(vget_high_s8(a0hi), vget_high_s8(a1hi)), vcombine_s8(vget_high_s8(xahi), vget_high_s8(xbhi)));
                __fp16 h0, h1;
                memcpy(&h0, b0, 2);
                memcpy(&h1, b1, 2);
                float dw0 = (float) h0, dw1 = (float) h1;
                float scale[4] = {dw0 * d0[b], dw0 * d1[b], dw1 * d0[b], dw1 * d1[b]};
                acc = vmlaq_f32(acc, vcvtq_f32_s32(s), vld1q_f32(scale));
            }
            out[t * outStride + r] = vgetq_lane_f32(acc, 0);
            out[(t + 1) * outStride + r] = vgetq_lane_f32(acc, 1);
            out[t * outStride + r + 1] = vgetq_lane_f32(acc, 2);
            out[(t + 1) * outStride + r + 1] = vgetq_lane_f32(acc, 3);
        }
        if (pairs < tokens) q8blocks_dotprod(q4, w, cols, r, r + 2, xq + pairs * stride, tokens - pairs, out + pairs * outStride, outStride);
    }
    if (r < r1) q8blocks_dotprod(q4, w, cols, r, r1, xq, tokens, out, outStride);
}

/** Q6_K on the file's layout: each 128-value half is four quarters of 32 (one activation block each), 16 lanes at a time. */
__attribute__((target("arch=armv8.2-a+dotprod")))
static void q6k_dotprod(const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nsb = cols / QK_K, stride = enclave_act_stride(cols);
    const uint8x16_t low = vdupq_n_u8(0x0f), three = vdupq_n_u8(3);
    const int8x16_t off = vdupq_n_s8(32);
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t t = 0; t < tokens; t++) {
            const int8_t *q = (const int8_t *) (xq + t * stride);
            const float *d = (const float *) (xq + t * stride + cols);
            float32x4_t acc = vdupq_n_f32(0);
            for (int64_t sb = 0; sb < nsb; sb++) {
                const uint8_t *blk = w + (r * nsb + sb) * Q6K_BYTES;
                const int8_t *sc = (const int8_t *) (blk + 192);
                __fp16 hd;
                memcpy(&hd, blk + 208, 2);
                float dw = (float) hd;
                for (int half = 0; half < 2; half++) {
                    const uint8_t *ql = blk + 64 * half, *qh = blk + 128 + 32 * half;
                    int32_t sums[4];
                    for (int quarter = 0; quarter < 4; quarter++) {
                        int32_t s = 0;
                        for (int c = 0; c < 32; c += 16) {
                            uint8x16_t l = vld1q_u8(ql + c + (quarter & 1) * 32);
                            l = quarter >= 2 ? vshrq_n_u8(l, 4) : vandq_u8(l, low);
                            uint8x16_t h = vld1q_u8(qh + c);
                            h = vandq_u8(quarter == 0 ? h : quarter == 1 ? vshrq_n_u8(h, 2) : quarter == 2 ? vshrq_n_u8(h, 4) : vshrq_n_u8(h, 6), three);
                            int8x16_t v = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(l, vshlq_n_u8(h, 4))), off);
                            int8x16_t x = vld1q_s8(q + sb * QK_K + half * 128 + quarter * 32 + c);
                            s += sc[half * 8 + quarter * 2 + c / 16] * vaddvq_s32(vdotq_s32(vdupq_n_s32(0), v, x));
                        }
                        sums[quarter] = s;
                    }
                    const float *db = d + sb * 8 + half * 4;
                    float32x4_t scale = vmulq_n_f32(vld1q_f32(db), dw);
                    acc = vmlaq_f32(acc, vcvtq_f32_s32(vld1q_s32(sums)), scale);
                }
            }
            out[t * outStride + r] = vaddvq_f32(acc);
        }
    }
}

#endif

// ---- F16 weights: the activations in half precision too (ggml's F16 product: its vec_dot_type is F16) ----

// The F16 products' input: tokens x cols halves, cols apart, then (64-byte aligned) the same values widened back to
// floats for the tiles (a prompt's products are bound by arithmetic, where a float load is cheaper than a conversion),
// then (64-byte aligned, where cols is a multiple of 32) room for the AMX tiles' split input, 16 tokens to a tile.

static inline int64_t halves_part(int64_t cols, int64_t tokens) {
    return (2 * cols * tokens + 63) & ~(int64_t) 63;
}

static inline int64_t half_tiles_offset(int64_t cols, int64_t tokens) {
    return halves_part(cols, tokens) + ((4 * cols * tokens + 63) & ~(int64_t) 63);
}

int64_t enclave_half_bytes(int64_t cols, int64_t tokens) {
    return half_tiles_offset(cols, tokens) + (cols % 32 == 0 ? 4 * cols * ((tokens + 15) / 16 * 16) : 0);
}

static inline const float *half_input_floats(const uint16_t *x, int64_t cols, int64_t tokens) {
    return (const float *) ((const uint8_t *) x + halves_part(cols, tokens));
}

static void to_half_baseline(const float *x, int64_t cols, int64_t xStride, int64_t tokens, uint16_t *dst) {
    float *wide = (float *) half_input_floats(dst, cols, tokens);
    for (int64_t t = 0; t < tokens; t++) {
        for (int64_t c = 0; c < cols; c++) {
            dst[t * cols + c] = float_to_half(x[t * xStride + c]);
            wide[t * cols + c] = half_to_float(dst[t * cols + c]);
        }
    }
}

static void f16_baseline(const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint16_t *x, int64_t tokens, float *out, int64_t outStride) {
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + r * cols * 2;
        for (int64_t t = 0; t < tokens; t++) {
            const float *xt = half_input_floats(x, cols, tokens) + t * cols;
            float acc = 0;
            for (int64_t c = 0; c < cols; c++) acc += half_to_float(load_u16(wr + 2 * c)) * xt[c];
            out[t * outStride + r] = acc;
        }
    }
}

#if defined(__x86_64__)

__attribute__((target("avx2,fma,f16c")))
static void to_half_f16c(const float *x, int64_t cols, int64_t xStride, int64_t tokens, uint16_t *dst) {
    for (int64_t t = 0; t < tokens; t++) {
        const float *xt = x + t * xStride;
        uint16_t *d = dst + t * cols;
        float *wide = (float *) half_input_floats(dst, cols, tokens) + t * cols;
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8) {
            __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(xt + c), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm_storeu_si128((__m128i *) (d + c), h);
            _mm256_storeu_ps(wide + c, _mm256_cvtph_ps(h));
        }
        for (; c < cols; c++) {
            d[c] = float_to_half(xt[c]);
            wide[c] = _cvtsh_ss(d[c]);
        }
    }
}

/** A tile of nr (up to MAXR) rows x nt tokens (constants where inlined): each converted weight vector serves nt tokens. */
#define F16_TILE(NAME, TARGET, VEC, LANES, ZERO, CVT, LOADX, FMA, SUM, MAXR)                                         \
__attribute__((target(TARGET), always_inline))                                                                     \
static inline void NAME(const uint16_t *w, int64_t cols, int64_t r, const float *x, int64_t t0, float *out,        \
                        int64_t outStride, const int nr, const int nt, int64_t ahead) {                            \
    VEC acc[MAXR][4];                                                                                              \
    for (int i = 0; i < nr; i++) for (int k = 0; k < nt; k++) acc[i][k] = ZERO;                                    \
    int64_t c = 0;                                                                                                 \
    for (; c + LANES <= cols; c += LANES) {                                                                        \
        VEC wv[MAXR];                                                                                              \
        if (ahead && (c * 2) % 64 == 0) { /* each cache line of the next tile's rows, at this column */            \
            for (int i = 0; i < nr; i++) _mm_prefetch((const char *) (w + (r + i) * cols + c) + ahead, _MM_HINT_T1); \
        }                                                                                                          \
        for (int i = 0; i < nr; i++) wv[i] = CVT(w + (r + i) * cols + c);                                          \
        for (int k = 0; k < nt; k++) {                                                                             \
            VEC xv = LOADX(x + (t0 + k) * cols + c);                                                               \
            for (int i = 0; i < nr; i++) acc[i][k] = FMA(wv[i], xv, acc[i][k]);                                    \
        }                                                                                                          \
    }                                                                                                              \
    for (int i = 0; i < nr; i++) {                                                                                 \
        for (int k = 0; k < nt; k++) {                                                                             \
            float tail = 0;                                                                                        \
            for (int64_t j = c; j < cols; j++) tail += _cvtsh_ss(w[(r + i) * cols + j]) * x[(t0 + k) * cols + j];  \
            out[(t0 + k) * outStride + r + i] = SUM(acc[i][k]) + tail;                                             \
        }                                                                                                          \
    }                                                                                                              \
}

#define CVT512(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (p)))
#define CVT256(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (p)))
// AVX-512's 32 registers hold a 6-row tile (24 accumulators, 6 converted weight vectors, one token's input); AVX2's 16 four
F16_TILE(f16_tile512, VNNI_TARGET, __m512, 16, _mm512_setzero_ps(), CVT512, _mm512_loadu_ps, _mm512_fmadd_ps, _mm512_reduce_add_ps, 6)
F16_TILE(f16_tile256, "avx2,fma,f16c", __m256, 8, _mm256_setzero_ps(), CVT256, _mm256_loadu_ps, _mm256_fmadd_ps, hsum256, 4)

#define F16_DRIVER(NAME, TILE, TARGET, R)                                                                          \
__attribute__((target(TARGET)))                                                                                    \
static void NAME(const uint8_t *wb, int64_t cols, int64_t r0, int64_t r1, const uint16_t *xh, int64_t tokens, float *out, \
                 int64_t outStride) {                                                                              \
    const uint16_t *w = (const uint16_t *) wb;                                                                     \
    const float *x = half_input_floats(xh, cols, tokens);                                                          \
    for (int64_t r = r0; r < r1; r += R) {                                                                         \
        int nr = r1 - r < R ? (int) (r1 - r) : R;                                                                  \
        /* decoding on Intel: a tile's rows are one page or a few each, too short for the streams to be asked */   \
        /* for ahead within them (their first kilobytes missed every time); the next tile's instead, a tile ahead */ \
        int64_t ahead = tokens == 1 && decode_streams() && r + 2 * R <= r1 ? R * cols * 2 : 0;                     \
        for (int64_t t0 = 0; t0 < tokens; t0 += 4) {                                                               \
            int nt = tokens - t0 < 4 ? (int) (tokens - t0) : 4;                                                    \
            if (nr == R && nt == 4) TILE(w, cols, r, x, t0, out, outStride, R, 4, 0);                              \
            else if (nr == R && nt == 1) TILE(w, cols, r, x, t0, out, outStride, R, 1, ahead);                     \
            else if (nr == R && nt == 2) TILE(w, cols, r, x, t0, out, outStride, R, 2, 0);                         \
            else if (nr == R && nt == 3) TILE(w, cols, r, x, t0, out, outStride, R, 3, 0);                         \
            else for (int i = 0; i < nr; i++) TILE(w, cols, r + i, x, t0, out, outStride, 1, nt, 0);               \
        }                                                                                                          \
    }                                                                                                              \
}

F16_DRIVER(f16_avx512_tiles, f16_tile512, VNNI_TARGET, 6)

/**
 * One token (decoding): a row at a time, four accumulators along it; more tokens go to the tiles. Reading one row's
 * stream per thread measured faster than four rows' interleaved on Zen 4 (memory-bound: the product waits on its
 * loads; INTERLEAVE: where the tiles' several streams measured faster instead); so did a
 * half-precision input over a float one (a float input of 8,192 columns does not stay in L1 beside the weights' stream).
 */
#define F16_ROWS(NAME, TILES, TARGET, INTERLEAVE, VEC, LANES, ZERO, CVT, FMA, ADD, SUM)                              \
__attribute__((target(TARGET)))                                                                                    \
static void NAME(const uint8_t *wb, int64_t cols, int64_t r0, int64_t r1, const uint16_t *x, int64_t tokens, float *out, \
                 int64_t outStride) {                                                                              \
    if (tokens > 1 || cols % (4 * LANES) != 0 || (INTERLEAVE)) {                                                   \
        TILES(wb, cols, r0, r1, x, tokens, out, outStride);                                                        \
        return;                                                                                                    \
    }                                                                                                              \
    const uint16_t *w = (const uint16_t *) wb;                                                                     \
    int64_t pf = prefetch_ahead;                                                                              \
    for (int64_t r = r0; r < r1; r++) {                                                                            \
        const uint16_t *wr = w + r * cols;                                                                         \
        VEC a0 = ZERO, a1 = a0, a2 = a0, a3 = a0;                                                                  \
        for (int64_t c = 0; c < cols; c += 4 * LANES) {                                                            \
            if (pf) for (int o = 0; o < 8 * LANES; o += 64) _mm_prefetch((const char *) (wr + c) + pf + o, _MM_HINT_T0); \
            a0 = FMA(CVT(wr + c), CVT(x + c), a0);                                                                 \
            a1 = FMA(CVT(wr + c + LANES), CVT(x + c + LANES), a1);                                                 \
            a2 = FMA(CVT(wr + c + 2 * LANES), CVT(x + c + 2 * LANES), a2);                                         \
            a3 = FMA(CVT(wr + c + 3 * LANES), CVT(x + c + 3 * LANES), a3);                                         \
        }                                                                                                          \
        out[r] = SUM(ADD(ADD(a0, a1), ADD(a2, a3)));                                                               \
    }                                                                                                              \
}

F16_DRIVER(f16_avx2_tiles, f16_tile256, "avx2,fma,f16c", 4)
// Decoding on Intel (decode_streams()), AVX-512 reads six rows' streams at a time through the tiles, each prefetched:
// more misses in flight per core than one row's stream (measured faster there; one row measured faster on Zen 4)
F16_ROWS(f16_avx512, f16_avx512_tiles, VNNI_TARGET, decode_streams(), __m512, 16, _mm512_setzero_ps(), CVT512, _mm512_fmadd_ps, _mm512_add_ps, _mm512_reduce_add_ps)
F16_ROWS(f16_avx2, f16_avx2_tiles, "avx2,fma,f16c", 0, __m256, 8, _mm256_setzero_ps(), CVT256, _mm256_fmadd_ps, _mm256_add_ps, hsum256)

#endif

#if defined(__aarch64__)
/** F16 on Arm: a row at a time, the weights' and the input's half-precision values widened to float in registers. */
static void f16_neon(const uint8_t *wb, int64_t cols, int64_t r0, int64_t r1, const uint16_t *x, int64_t tokens, float *out, int64_t outStride) {
    const __fp16 *w = (const __fp16 *) wb;
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t t = 0; t < tokens; t++) {
            const __fp16 *xt = (const __fp16 *) x + t * cols;
            float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0);
            int64_t c = 0;
            for (; c + 8 <= cols; c += 8) {
                float16x8_t h = vld1q_f16(w + r * cols + c), xh = vld1q_f16(xt + c);
                a0 = vfmaq_f32(a0, vcvt_f32_f16(vget_low_f16(h)), vcvt_f32_f16(vget_low_f16(xh)));
                a1 = vfmaq_f32(a1, vcvt_high_f32_f16(h), vcvt_high_f32_f16(xh));
            }
            float acc = vaddvq_f32(vaddq_f32(a0, a1));
            for (; c < cols; c++) acc += (float) w[r * cols + c] * (float) xt[c];
            out[t * outStride + r] = acc;
        }
    }
}

static void to_half_neon(const float *x, int64_t cols, int64_t xStride, int64_t tokens, uint16_t *dst) {
    for (int64_t t = 0; t < tokens; t++) {
        const float *xt = x + t * xStride;
        __fp16 *d = (__fp16 *) dst + t * cols;
        float *wide = (float *) half_input_floats(dst, cols, tokens) + t * cols;
        int64_t c = 0;
        for (; c + 4 <= cols; c += 4) {
            float16x4_t h = vcvt_f16_f32(vld1q_f32(xt + c));
            vst1_f16(d + c, h);
            vst1q_f32(wide + c, vcvt_f32_f16(h));
        }
        for (; c < cols; c++) {
            dst[t * cols + c] = float_to_half(xt[c]);
            wide[c] = half_to_float(dst[t * cols + c]);
        }
    }
}
/** Q4_K on the file's layout: per 64 values, 32 bytes whose low nibbles are one sub-block and high nibbles the next. */
__attribute__((target("arch=armv8.2-a+dotprod")))
static void q4k_dotprod(const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nsb = cols / QK_K, nb = cols / QK, stride = enclave_act_stride(cols);
    const uint8x16_t low = vdupq_n_u8(0x0f);
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t t = 0; t < tokens; t++) {
            const int8_t *q = (const int8_t *) (xq + t * stride);
            const float *d = (const float *) (xq + t * stride + cols);
            const float *s = d + nb;
            float acc = 0;
            for (int64_t sb = 0; sb < nsb; sb++) {
                const uint8_t *blk = w + (r * nsb + sb) * Q4K_BYTES;
                __fp16 hd, hm;
                memcpy(&hd, blk, 2);
                memcpy(&hm, blk + 2, 2);
                float dw = (float) hd, dmin = (float) hm;
                for (int j = 0; j < 4; j++) {
                    uint8x16_t a = vld1q_u8(blk + 16 + 32 * j), b = vld1q_u8(blk + 16 + 32 * j + 16);
                    const int8_t *x0 = q + sb * QK_K + 64 * j, *x1 = x0 + 32;
                    int32x4_t lo = vdotq_s32(vdotq_s32(vdupq_n_s32(0), vreinterpretq_s8_u8(vandq_u8(a, low)), vld1q_s8(x0)),
                                             vreinterpretq_s8_u8(vandq_u8(b, low)), vld1q_s8(x0 + 16));
                    int32x4_t hi = vdotq_s32(vdotq_s32(vdupq_n_s32(0), vreinterpretq_s8_u8(vshrq_n_u8(a, 4)), vld1q_s8(x1)),
                                             vreinterpretq_s8_u8(vshrq_n_u8(b, 4)), vld1q_s8(x1 + 16));
                    int sc0, m0, sc1, m1;
                    q4k_scale_min(blk + 4, 2 * j, &sc0, &m0);
                    q4k_scale_min(blk + 4, 2 * j + 1, &sc1, &m1);
                    int64_t b0 = sb * 8 + 2 * j;
                    acc += dw * (float) sc0 * d[b0] * (float) vaddvq_s32(lo) - dmin * (float) m0 * s[b0];
                    acc += dw * (float) sc1 * d[b0 + 1] * (float) vaddvq_s32(hi) - dmin * (float) m1 * s[b0 + 1];
                }
            }
            out[t * outStride + r] = acc;
        }
    }
}

#endif

// ---- entry points ----

#if defined(__x86_64__)
static int f16_amx_on(int64_t cols, int64_t tokens);
static void f16_amx_prepare(const uint16_t *xh, int64_t cols, int64_t tokens, uint8_t *tiles);
static void f16_amx(const uint16_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *tiles, int64_t tokens, float *out, int64_t outStride);
#endif

/** Quantizes tokens of cols floats (xStride apart) into the activation layout above, at dst. */
void enclave_quantize(const float *x, int64_t cols, int64_t xStride, int64_t tokens, uint8_t *dst) {
#if defined(__x86_64__)
    if (enclave_isa() == ISA_AVX512_VNNI) {
        quantize_avx512(x, cols, xStride, tokens, dst);
        return;
    }
#endif
    quantize_baseline(x, cols, xStride, tokens, dst);
}

/**
 * Tokens of cols floats (xStride apart) as F16 products' input at dst (enclave_half_bytes: halves, then as floats,
 * then, where a prompt's products run on AMX, the tiles' split input).
 */
void enclave_to_half(const float *x, int64_t cols, int64_t xStride, int64_t tokens, uint16_t *dst) {
#if defined(__x86_64__)
    if (enclave_isa() != ISA_BASELINE) {
        to_half_f16c(x, cols, xStride, tokens, dst);
        if (f16_amx_on(cols, tokens)) { // AMX implies the AVX-512 VNNI set
            f16_amx_prepare(dst, cols, tokens, (uint8_t *) dst + half_tiles_offset(cols, tokens));
        }
        return;
    }
#elif defined(__aarch64__)
    if (enclave_isa() >= ISA_NEON) {
        to_half_neon(x, cols, xStride, tokens, dst);
        return;
    }
#endif
    to_half_baseline(x, cols, xStride, tokens, dst);
}

/**
 * Values [from, from + n) of a matrix in ggml's layout, as floats (an embedding row: one per token, so plain C; the
 * same float operations as ggml's dequantize_row_*, in the same order, no contraction into fused multiply-adds).
 */
void enclave_dequantize(int type, const uint8_t *w, int64_t from, int64_t n, float *out);

enum { TYPE_F16 = 1, TYPE_Q4_0 = 2, TYPE_Q8_0 = 8, TYPE_Q4_K = 12, TYPE_Q6_K = 14 }; // ggml's type ids

/**
 * Whether this library should multiply weights of ggml type {@code type} on this CPU: Q4_0 and Q8_0 everywhere;
 * Q6_K and Q4_K where an int8 dot product serves them (AVX-512 VNNI on the repacked layout, AVX2's vpmaddubsw, Arm
 * dotprod), F16 with any vector unit; elsewhere the Java kernels are faster than this file's baseline (which still
 * computes every type enclave_matmul takes).
 */
int enclave_supports(int type) {
    int i = enclave_isa();
    return type == TYPE_Q4_0 || type == TYPE_Q8_0
            || ((type == TYPE_Q6_K || type == TYPE_Q4_K) && (i == ISA_AVX2 || i == ISA_AVX512_VNNI || i >= ISA_NEON_DOTPROD))
            || (type == TYPE_F16 && i != ISA_BASELINE);
}

/**
 * out[t * outStride + r] = dot(weight row r, token t) for rows [r0, r1) and tokens [0, tokens): w is the whole
 * matrix in ggml's layout, xq the activations as enclave_quantize wrote them (F16: as enclave_to_half wrote them).
 */
void enclave_matmul(int type, const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *xq, int64_t tokens,
                    float *out, int64_t outStride) {
    int i = enclave_isa();
    if (type == TYPE_F16) {
        const uint16_t *x = (const uint16_t *) xq;
#if defined(__x86_64__)
        if (f16_amx_on(cols, tokens)) {
            f16_amx((const uint16_t *) w, cols, r0, r1, xq + half_tiles_offset(cols, tokens), tokens, out, outStride);
            return;
        }
        if (i == ISA_AVX512_VNNI) { f16_avx512(w, cols, r0, r1, x, tokens, out, outStride); return; }
        if (i == ISA_AVX2) { f16_avx2(w, cols, r0, r1, x, tokens, out, outStride); return; }
#elif defined(__aarch64__)
        if (i >= ISA_NEON) { f16_neon(w, cols, r0, r1, x, tokens, out, outStride); return; }
#endif
        f16_baseline(w, cols, r0, r1, x, tokens, out, outStride);
        return;
    }
    if (type == TYPE_Q6_K || type == TYPE_Q4_K) { // with VNNI their fast product is the repacked layout's
        int q6 = type == TYPE_Q6_K;
#if defined(__x86_64__)
        if (i == ISA_AVX2 || i == ISA_AVX512_VNNI) {
            (q6 ? q6k_avx2 : q4k_avx2)(w, cols, r0, r1, xq, tokens, out, outStride);
            return;
        }
#elif defined(__aarch64__)
        if (i >= ISA_NEON_DOTPROD) {
            (q6 ? q6k_dotprod : q4k_dotprod)(w, cols, r0, r1, xq, tokens, out, outStride);
            return;
        }
#endif
        (q6 ? q6k_baseline : q4k_baseline)(w, cols, r0, r1, xq, tokens, out, outStride);
        return;
    }
#if defined(__x86_64__)
    if (i == ISA_AVX2 || i == ISA_AVX512_VNNI) { // VNNI's own product needs the repacked layout
        if (type == TYPE_Q4_0) q4_0_avx2(w, cols, r0, r1, xq, tokens, out, outStride);
        else q8_0_avx2(w, cols, r0, r1, xq, tokens, out, outStride);
        return;
    }
#elif defined(__aarch64__)
    if (i == ISA_NEON_I8MM && tokens >= 2) {
        q8blocks_i8mm(type == TYPE_Q4_0, w, cols, r0, r1, xq, tokens, out, outStride);
        return;
    }
    if (i >= ISA_NEON_DOTPROD) {
        q8blocks_dotprod(type == TYPE_Q4_0, w, cols, r0, r1, xq, tokens, out, outStride);
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

// Q6_K keeps its 6.5625 bits per value: per group and 256-value super-block, the 16 rows' float16 d (32 bytes), then
// per 32 columns (416 bytes): the 16 rows' int8 scales of the first 16 columns, of the second 16, the low nibbles as
// Q4_0's 4 registers, and the high bit pairs in 2 registers (register j: quad 4j+m in bits 2m, 2m+1 of each byte).

#define Q6R_BLOCK (32 + 256 + 128)
#define Q6R_SUPER (32 + 8 * Q6R_BLOCK)

// Q4_K: per group and super-block, the 16 rows' f16 d and dmin (64 bytes), then per 32 columns (288 bytes) the rows'
// 6-bit scales and mins unpacked to a byte each (32 bytes) and the nibbles as Q4_0's 4 registers.

#define Q4KR_BLOCK (32 + 256)
#define Q4KR_SUPER (64 + 8 * Q4KR_BLOCK)

int64_t enclave_repacked_bytes(int type, int64_t rows, int64_t cols) {
    int64_t nb = cols / QK, groups = rows / R16;
    if (type == TYPE_Q6_K) return groups * (cols / QK_K) * Q6R_SUPER;
    if (type == TYPE_Q4_K) return groups * (cols / QK_K) * Q4KR_SUPER;
    return groups * nb * (32 + (type == TYPE_Q4_0 ? 256 : 512));
}

static void repack_q6k(const uint8_t *w, int64_t cols, int64_t g0, int64_t g1, uint8_t *dst) {
    int64_t nsb = cols / QK_K;
    for (int64_t g = g0; g < g1; g++) {
        for (int64_t sb = 0; sb < nsb; sb++) {
            uint8_t *out = dst + (g * nsb + sb) * Q6R_SUPER;
            memset(out, 0, Q6R_SUPER);
            for (int r = 0; r < R16; r++) {
                const uint8_t *blk = w + ((g * R16 + r) * nsb + sb) * Q6K_BYTES;
                memcpy(out + 2 * r, blk + 208, 2);
                for (int b = 0; b < 8; b++) {
                    uint8_t *o = out + 32 + b * Q6R_BLOCK;
                    o[r] = blk[192 + 2 * b];
                    o[16 + r] = blk[192 + 2 * b + 1];
                    for (int c = 0; c < QK; c++) {
                        int v = q6k_value(blk, 32 * b + c), quad = c / 4, i = c % 4;
                        o[32 + (quad / 2) * 64 + 4 * r + i] |= (uint8_t) (quad % 2 == 0 ? (v & 0xf) : (v & 0xf) << 4);
                        o[32 + 256 + (quad / 4) * 64 + 4 * r + i] |= (uint8_t) ((v >> 4) << (2 * (quad % 4)));
                    }
                }
            }
        }
    }
}

static void repack_q4k(const uint8_t *w, int64_t cols, int64_t g0, int64_t g1, uint8_t *dst) {
    int64_t nsb = cols / QK_K;
    for (int64_t g = g0; g < g1; g++) {
        for (int64_t sb = 0; sb < nsb; sb++) {
            uint8_t *out = dst + (g * nsb + sb) * Q4KR_SUPER;
            memset(out, 0, Q4KR_SUPER);
            for (int r = 0; r < R16; r++) {
                const uint8_t *blk = w + ((g * R16 + r) * nsb + sb) * Q4K_BYTES;
                memcpy(out + 2 * r, blk, 2);
                memcpy(out + 32 + 2 * r, blk + 2, 2);
                for (int b = 0; b < 8; b++) {
                    uint8_t *o = out + 64 + b * Q4KR_BLOCK;
                    int sc, m;
                    q4k_scale_min(blk + 4, b, &sc, &m);
                    o[r] = (uint8_t) sc;
                    o[16 + r] = (uint8_t) m;
                    for (int c = 0; c < QK; c++) {
                        int v = q4k_value(blk, 32 * b + c), quad = c / 4, i = c % 4;
                        o[32 + (quad / 2) * 64 + 4 * r + i] |= (uint8_t) (quad % 2 == 0 ? v : v << 4);
                    }
                }
            }
        }
    }
}

/** Repacks row groups [g0, g1) of w (rows / 16 groups in all) into dst, the whole repacked matrix. */
void enclave_repack(int type, const uint8_t *w, int64_t cols, int64_t g0, int64_t g1, uint8_t *dst) {
    if (type == TYPE_Q6_K) {
        repack_q6k(w, cols, g0, g1, dst);
        return;
    }
    if (type == TYPE_Q4_K) {
        repack_q4k(w, cols, g0, g1, dst);
        return;
    }
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
/** The 32 values of a repacked 4-bit block body (four 64-byte registers of nibbles) as vpdpbusd's eight quads. */
__attribute__((target(VNNI_TARGET), always_inline))
static inline void r16_nibbles(const uint8_t *body, __m512i v[8]) {
    const __m512i low = _mm512_set1_epi8(0x0f);
    for (int k = 0; k < 4; k++) {
        __m512i raw = _mm512_loadu_si512((const void *) (body + 64 * k));
        v[2 * k] = _mm512_and_si512(raw, low);
        v[2 * k + 1] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low);
    }
}

/** A repacked Q6_K block's 32 values (stored + 32): its nibbles, then the high bit pairs to bits 4 and 5. */
__attribute__((target(VNNI_TARGET), always_inline))
static inline void q6r_values(const uint8_t *blk, __m512i v[8]) {
    const __m512i top = _mm512_set1_epi8(0x30);
    r16_nibbles(blk + 32, v);
    for (int j = 0; j < 2; j++) {
        __m512i hb = _mm512_loadu_si512((const void *) (blk + 288 + 64 * j));
        // v | (shifted & 0x30): bit pair m of each byte to bits 4, 5
        v[4 * j] = _mm512_ternarylogic_epi32(v[4 * j], _mm512_slli_epi16(hb, 4), top, 0xF8);
        v[4 * j + 1] = _mm512_ternarylogic_epi32(v[4 * j + 1], _mm512_slli_epi16(hb, 2), top, 0xF8);
        v[4 * j + 2] = _mm512_ternarylogic_epi32(v[4 * j + 2], hb, top, 0xF8);
        v[4 * j + 3] = _mm512_ternarylogic_epi32(v[4 * j + 3], _mm512_srli_epi16(hb, 2), top, 0xF8);
    }
}

/** Q6_K's integer sum of one block for one token: each half block's sum less 32 x its activation sum, times its scale. */
__attribute__((target(VNNI_TARGET), always_inline))
static inline __m512i q6r_sum(const __m512i v[8], const int32_t *x4, int16_t h0, int16_t h1, __m512i sc0, __m512i sc1) {
    __m512i s0 = _mm512_set1_epi32(-32 * h0), s1 = _mm512_set1_epi32(-32 * h1);
    for (int q = 0; q < 4; q++) s0 = _mm512_dpbusd_epi32(s0, v[q], _mm512_set1_epi32(x4[q]));
    for (int q = 4; q < 8; q++) s1 = _mm512_dpbusd_epi32(s1, v[q], _mm512_set1_epi32(x4[q]));
    return _mm512_add_epi32(_mm512_mullo_epi32(s0, sc0), _mm512_mullo_epi32(s1, sc1));
}

/** Q4_K's integer sum of one block for one token (two chains of four quads). */
__attribute__((target(VNNI_TARGET), always_inline))
static inline __m512i q4r_sum(const __m512i v[8], const int32_t *x4) {
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    for (int q = 0; q < 4; q++) s0 = _mm512_dpbusd_epi32(s0, v[q], _mm512_set1_epi32(x4[q]));
    for (int q = 4; q < 8; q++) s1 = _mm512_dpbusd_epi32(s1, v[q], _mm512_set1_epi32(x4[q]));
    return _mm512_add_epi32(s0, s1);
}

/** A repacked Q4_0 or Q8_0 block's 32 values of its 16 rows as vpdpbusd's eight quads. */
__attribute__((target(VNNI_TARGET), always_inline))
static inline void r16_values(int type, const uint8_t *blk, __m512i v[8]) {
    if (type == TYPE_Q4_0) r16_nibbles(blk + 32, v);
    else for (int k = 0; k < 8; k++) v[k] = _mm512_loadu_si512((const void *) (blk + 32 + 64 * k));
}

#define R16_STREAMS 8

/**
 * Prefetches bytes [ahead, ahead + n) of stream i of the set of row groups starting at gs (each group groupBytes
 * long, contiguous): near a group's end the address goes on into the same stream of the next set of groups, not
 * into the neighbouring group that another stream is already reading; past the range's last group, nothing.
 */
static inline void prefetch_stream(const uint8_t *p, int64_t groupBytes, int64_t gs, int i, int64_t g1, int64_t ahead, int64_t n) {
    const uint8_t *pf = ahead < groupBytes ? p + (gs + i) * groupBytes + ahead
            : gs + R16_STREAMS + i < g1 ? p + (gs + R16_STREAMS + i) * groupBytes + (ahead - groupBytes) : NULL;
    if (pf) for (int64_t o = 0; o < n; o += 64) _mm_prefetch((const char *) pf + o, _MM_HINT_T0);
}

/**
 * One token (decoding on Intel: decode_streams()) over R16_STREAMS row groups at a time, each group's weights a stream
 * of its own, prefetched: more misses in flight per core than one group's stream. The same floats as r16_vnni.
 */
__attribute__((target(VNNI_TARGET)))
static void r16_vnni_streams(int type, const uint8_t *p, int64_t cols, int64_t g0, int64_t g1, const uint8_t *xq, float *out) {
    const int S = R16_STREAMS;
    int64_t nb = cols / QK, body = type == TYPE_Q4_0 ? 256 : 512, blockBytes = 32 + body;
    const float offset = type == TYPE_Q4_0 ? -8.0f : -128.0f;
    const float *d = (const float *) (xq + cols);
    const int32_t *x4all = (const int32_t *) xq;
    int64_t groupBytes = nb * blockBytes;
    for (int64_t gs = g0; gs < g1; gs += S) {
        int ns = g1 - gs < S ? (int) (g1 - gs) : S;
        __m512 acc[R16_STREAMS];
        for (int i = 0; i < ns; i++) acc[i] = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const int32_t *x4 = x4all + b * 8;
            __m512 db = _mm512_set1_ps(d[b]), ob = _mm512_set1_ps(offset * d[nb + b]);
            int64_t ahead = b * blockBytes + prefetch_ahead;
            for (int i = 0; i < ns; i++) {
                const uint8_t *blk = p + ((gs + i) * nb + b) * blockBytes;
                prefetch_stream(p, groupBytes, gs, i, g1, ahead, blockBytes);
                __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) blk));
                __m512i v[8], sum = _mm512_setzero_si512();
                r16_values(type, blk, v);
                for (int q = 0; q < 8; q++) sum = _mm512_dpbusd_epi32(sum, v[q], _mm512_set1_epi32(x4[q]));
                acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(ws, db), acc[i]);
                acc[i] = _mm512_fmadd_ps(ws, ob, acc[i]);
            }
        }
        for (int i = 0; i < ns; i++) _mm512_storeu_ps(out + (gs + i) * R16, acc[i]);
    }
}

__attribute__((target(VNNI_TARGET)))
static void r16_vnni(int type, const uint8_t *p, int64_t cols, int64_t g0, int64_t g1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nb = cols / QK, stride = enclave_act_stride(cols), body = type == TYPE_Q4_0 ? 256 : 512;
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
                r16_values(type, blk, v);
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

/*
 * AMX (Intel's tile multiply, Sapphire Rapids on): a prompt's products on the repacked layout, 16 tokens x 16 rows x
 * 32 columns (one block) per tile instruction. The repacked block's body is already the tile's B layout (four
 * consecutive columns of a row in each 32-bit lane); the integer sums then take the same float steps as r16_vnni, in the
 * same order, so both paths give the same floats. Used where the CPU has AMX-INT8 and Linux grants the tile state.
 */
static int amx = -1;

static int amx_present(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25))) return 0; // AMX-TILE, AMX-INT8
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0; // OSXSAVE
    // the kernel hands out the tile data state (XFEATURE 18) only when asked for it (ARCH_REQ_XCOMP_PERM)
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

/** Whether the prompts' repacked products run on AMX tiles (ENCLAVE_CPU_AMX=0 turns them off). */
int enclave_amx(void) {
    if (amx < 0) {
        const char *off = getenv("ENCLAVE_CPU_AMX");
        amx = enclave_isa() == ISA_AVX512_VNNI && !(off != NULL && strcmp(off, "0") == 0) && amx_present();
    }
    return amx && isa == ISA_AVX512_VNNI;
}

/** Turns the AMX path on or off (tests run both); returns whether it is in use. */
int enclave_set_amx(int on) {
    amx = -1;
    if (enclave_amx() && !on) amx = 0;
    return enclave_amx();
}

struct tile_config {
    uint8_t palette, start;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

#define AMX_TARGET VNNI_TARGET ",amx-tile,amx-int8"

/** Q4_0's nibbles of a repacked block as B's bytes: each 64-byte register's low nibbles, then its high ones. */
__attribute__((target(VNNI_TARGET)))
static inline void r16_unpack_q4(const uint8_t *body, uint8_t *dst) {
    __m512i v[8];
    r16_nibbles(body, v);
    for (int q = 0; q < 8; q++) _mm512_store_si512((void *) (dst + 64 * q), v[q]);
}

/**
 * One block's float steps for 16 tokens: acc[t] (16 rows) += the tile's sums x scale x d[b], then the offset term
 * (Q4_0/Q8_0: + scale x offset x s[b]; Q4_K: - mins x s[b]), as the VNNI kernels' registers take them.
 */
__attribute__((target(VNNI_TARGET)))
static inline void r16_amx_scale(int type, const int32_t *sums, __m512 scale, __m512 mins, float offset, const uint8_t *xt,
                                 int64_t stride, int64_t cols, int64_t nb, int64_t b, float *acc) {
    for (int k = 0; k < 16; k++) {
        const float *d = (const float *) (xt + k * stride + cols);
        __m512 a = _mm512_load_ps(acc + 16 * k);
        a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512((const void *) (sums + 16 * k))), _mm512_mul_ps(scale, _mm512_set1_ps(d[b])), a);
        if (type == TYPE_Q4_K) a = _mm512_fnmadd_ps(mins, _mm512_set1_ps(d[nb + b]), a);
        else a = _mm512_fmadd_ps(scale, _mm512_set1_ps(offset * d[nb + b]), a);
        _mm512_store_ps(acc + 16 * k, a);
    }
}

/** Where block b (32 columns) of row group g starts in a repacked matrix: Q4_0/Q8_0's scales, Q4_K's scales and mins. */
static inline const uint8_t *r16_block(int type, const uint8_t *p, int64_t nb, int64_t g, int64_t b) {
    if (type == TYPE_Q4_K) return p + (g * (nb / 8) + b / 8) * Q4KR_SUPER + 64 + (b % 8) * Q4KR_BLOCK;
    return p + (g * nb + b) * (32 + (type == TYPE_Q4_0 ? 256 : 512));
}

static void r16_q4k_vnni(const uint8_t *p, int64_t cols, int64_t g0, int64_t g1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride);

/** Groups of 16 rows that share each pair of A tiles (the activations of a block, loaded once for all of them). */
#define AMX_GROUPS 4
/** Units ahead whose weights are prefetched (the tile loads stalled on them: 4 measured faster than 2 or 8). */
#define AMX_AHEAD 4

__attribute__((target(AMX_TARGET)))
static void r16_amx(int type, const uint8_t *p, int64_t cols, int64_t g0, int64_t g1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nb = cols / QK, stride = enclave_act_stride(cols);
    int nibbles = type != TYPE_Q8_0; // Q4_0 and Q4_K: four registers of nibbles, unpacked into B's bytes
    int64_t bodyBytes = nibbles ? 256 : 512;
    int64_t pairs = tokens / 32 * 32; // 32 tokens at a time: two A tiles share each B tile
    if (pairs > 0) {
        struct tile_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.palette = 1;
        for (int c = 4; c < 8; c++) { cfg.rows[c] = 16; cfg.colsb[c] = 64; } // C: 16 tokens x 16 rows, int32 (two pairs taking turns)
        cfg.rows[0] = 16; cfg.colsb[0] = 32; // A: 16 tokens x one block of 32 int8 activations (tokens 0-15, 16-31)
        cfg.rows[1] = 16; cfg.colsb[1] = 32;
        cfg.rows[2] = 8;  cfg.colsb[2] = 64; // B: the block's 32 columns, four to a row, x 16 weight rows
        _tile_loadconfig(&cfg);
        const float offset = type == TYPE_Q4_0 ? -8.0f : -128.0f;
        _Alignas(64) uint8_t unpacked[2][512];
        _Alignas(64) int32_t sums[2][2][256]; // [unit parity][token tile]
        // the accumulators, contiguous (the output's rows lie a matrix's width apart, all in one cache set)
        _Alignas(64) float acc[AMX_GROUPS][32][16];
        for (int64_t gs = g0; gs < g1; gs += AMX_GROUPS) {
            int ng = g1 - gs < AMX_GROUPS ? (int) (g1 - gs) : AMX_GROUPS;
            int64_t units = nb * ng; // unit u: block u / ng of group gs + u % ng
            for (int64_t t0 = 0; t0 < pairs; t0 += 32) {
                const uint8_t *xt = xq + t0 * stride;
                for (int gi = 0; gi < ng; gi++) for (int k = 0; k < 32; k++) _mm512_store_ps(acc[gi][k], _mm512_setzero_ps());
                if (nibbles) r16_unpack_q4(r16_block(type, p, nb, gs, 0) + 32, unpacked[0]);
                // unit u's tile products are issued before unit u - 1's float steps, which read the sums stored the
                // round before, and the nibbles of unit u + 1 are unpacked meanwhile: the tile unit and the vector
                // units work side by side, and no tile load waits on the stores just made
                for (int64_t u = 0; u <= units; u++) {
                    int64_t b = u / ng;
                    int gi = (int) (u % ng);
                    if (u < units) {
                        if (nibbles) _tile_loadd(2, unpacked[u & 1], 64);
                        else _tile_loadd(2, r16_block(type, p, nb, gs + gi, b) + 32, 64);
                        if (gi == 0) {
                            _tile_loadd(0, xt + b * QK, stride);
                            _tile_loadd(1, xt + 16 * stride + b * QK, stride);
                        }
                        if ((u & 1) == 0) {
                            _tile_zero(4);
                            _tile_dpbsud(4, 0, 2);
                            _tile_zero(5);
                            _tile_dpbsud(5, 1, 2);
                        } else {
                            _tile_zero(6);
                            _tile_dpbsud(6, 0, 2);
                            _tile_zero(7);
                            _tile_dpbsud(7, 1, 2);
                        }
                        if (nibbles && u + 1 < units) {
                            r16_unpack_q4(r16_block(type, p, nb, gs + (u + 1) % ng, (u + 1) / ng) + 32, unpacked[(u + 1) & 1]);
                        }
                        if (u + AMX_AHEAD < units) { // the weights of a later unit, on their way to L1
                            const char *next = (const char *) r16_block(type, p, nb, gs + (u + AMX_AHEAD) % ng, (u + AMX_AHEAD) / ng);
                            for (int64_t o = 0; o < 32 + bodyBytes; o += 64) _mm_prefetch(next + o, _MM_HINT_T0);
                        }
                    }
                    if (u > 0) {
                        int64_t pb = (u - 1) / ng;
                        int pg = (int) ((u - 1) % ng);
                        const uint8_t *blk = r16_block(type, p, nb, gs + pg, pb);
                        __m512 scale, mins = _mm512_setzero_ps();
                        if (type == TYPE_Q4_K) {
                            const uint8_t *super = p + ((gs + pg) * (nb / 8) + pb / 8) * Q4KR_SUPER;
                            __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) super));
                            __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (super + 32)));
                            scale = _mm512_mul_ps(dw, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *) blk))));
                            mins = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *) (blk + 16)))));
                        } else {
                            scale = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) blk));
                        }
                        r16_amx_scale(type, sums[(u - 1) & 1][0], scale, mins, offset, xt, stride, cols, nb, pb, acc[pg][0]);
                        r16_amx_scale(type, sums[(u - 1) & 1][1], scale, mins, offset, xt + 16 * stride, stride, cols, nb, pb, acc[pg][16]);
                    }
                    if (u < units) {
                        if ((u & 1) == 0) {
                            _tile_stored(4, sums[0][0], 64);
                            _tile_stored(5, sums[0][1], 64);
                        } else {
                            _tile_stored(6, sums[1][0], 64);
                            _tile_stored(7, sums[1][1], 64);
                        }
                    }
                }
                for (int gi = 0; gi < ng; gi++) {
                    for (int k = 0; k < 32; k++) _mm512_storeu_ps(out + (t0 + k) * outStride + (gs + gi) * R16, _mm512_load_ps(acc[gi][k]));
                }
            }
        }
        _tile_release();
    }
    if (pairs < tokens) {
        const uint8_t *xr = xq + pairs * stride;
        float *o = out + pairs * outStride;
        if (type == TYPE_Q4_K) r16_q4k_vnni(p, cols, g0, g1, xr, tokens - pairs, o, outStride);
        else r16_vnni(type, p, cols, g0, g1, xr, tokens - pairs, o, outStride);
    }
}

/*
 * F16 prompts on AMX-BF16 tiles. A half has 11 significant bits, a bfloat16 8: every half is the exact sum of two
 * bfloat16 parts (hi: its widened float cut to 16 bits, lo: the 3 bits left), so weight x input is four products of
 * parts, each exact in float, and tdpbf16ps sums them in float as the vector tiles do: the same products, summed in
 * another order (the same values to float rounding, not bit for bit). The weights, 16 rows x 32 columns, are split into
 * two A tiles as they come (the file's layout is already A's); the input, split once per product call by
 * enclave_to_half, sits after its halves and floats as B tiles (16 tokens x 32 columns each). Finite halves only keep
 * the vector tiles' values: an infinite half's lo part is NaN, so a sum the vector tiles make infinite is NaN here.
 */
static int amx_bf16 = -1;

static int amx_bf16_present(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22))) return 0; // AMX-BF16
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5)); // AVX512_BF16 (vcvtne2ps2bf16)
}

/** Whether a product of tokens x cols on F16 weights runs on the tiles (a prompt's: decoding keeps the vector tiles). */
static int f16_amx_on(int64_t cols, int64_t tokens) {
    if (tokens < 32 || cols % 32 != 0 || !enclave_amx()) return 0;
    if (amx_bf16 < 0) amx_bf16 = amx_bf16_present();
    return amx_bf16;
}

#define AMX_BF16_TARGET VNNI_TARGET ",avx512bf16,amx-tile,amx-bf16"

/** 32 halves at p as 32 bfloat16 hi parts and 32 lo parts (in the halves' order). */
__attribute__((target(AMX_BF16_TARGET), always_inline))
static inline void bf16_split(const uint16_t *p, __m512i *hi, __m512i *lo) {
    const __m512i top = _mm512_set1_epi32((int) 0xFFFF0000);
    __m512 e0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) p));
    __m512 e1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (p + 16)));
    __m512 h0 = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(e0), top));
    __m512 h1 = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(e1), top));
    // both parts are bfloat16 values already: the conversion's rounding leaves them as they are
    *hi = (__m512i) _mm512_cvtne2ps_pbh(h1, h0);
    *lo = (__m512i) _mm512_cvtne2ps_pbh(_mm512_sub_ps(e1, h1), _mm512_sub_ps(e0, h0));
}

/** Where the B tiles of token tile tt and 32-column block kb lie (hi tile, then lo tile; 1 KB each). */
static inline int64_t f16_tile_offset(int64_t cols, int64_t tt, int64_t kb) {
    return (tt * (cols / 32) + kb) * 2048;
}

/**
 * The input's B tiles: token n of a tile is B's column n; B's row k holds columns 2k and 2k+1 (one 32-bit pair per
 * token). Tokens past the last in its tile are zeros.
 */
__attribute__((target(AMX_BF16_TARGET)))
static void f16_amx_prepare(const uint16_t *xh, int64_t cols, int64_t tokens, uint8_t *tiles) {
    int64_t nbk = cols / 32, padded = (tokens + 15) / 16 * 16;
    const __m512i rowsApart = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(16));
    for (int64_t t = 0; t < padded; t++) {
        for (int64_t kb = 0; kb < nbk; kb++) {
            __m512i hi = _mm512_setzero_si512(), lo = hi;
            if (t < tokens) bf16_split(xh + t * cols + kb * 32, &hi, &lo);
            int32_t *b = (int32_t *) (tiles + f16_tile_offset(cols, t / 16, kb)) + t % 16;
            _mm512_i32scatter_epi32(b, rowsApart, hi, 4);
            _mm512_i32scatter_epi32(b + 256, rowsApart, lo, 4);
        }
    }
}

/** Blocks of 32 columns in a K slice (2,048 columns): its B tiles (64 tokens' worth) stay in L2 while the row groups pass. */
#define F16_AMX_SLICE 64
/** Blocks ahead whose weights are prefetched. */
#define F16_AMX_AHEAD 4

/** Block kb (32 columns) of nr rows from r as the A tiles' hi and lo parts; prefetches the rows F16_AMX_AHEAD blocks on. */
__attribute__((target(AMX_BF16_TARGET), always_inline))
static inline void f16_amx_split(const uint16_t *w, int64_t cols, int64_t r, int nr, int64_t kb, int64_t k1, uint16_t *ah, uint16_t *al) {
    for (int i = 0; i < nr; i++) {
        const uint16_t *p = w + (r + i) * cols + kb * 32;
        if (kb + F16_AMX_AHEAD < k1) _mm_prefetch((const char *) (p + 32 * F16_AMX_AHEAD), _MM_HINT_T0);
        __m512i hi, lo;
        bf16_split(p, &hi, &lo);
        _mm512_store_si512((void *) (ah + 32 * i), hi);
        _mm512_store_si512((void *) (al + 32 * i), lo);
    }
}

/**
 * Rows [r0, r1) x every token: per slice of 2,048 columns, per group of 16 rows (a short last group padded with zero
 * rows) and 64 tokens, four C tiles (16 rows x 16 tokens each) take each block's four part products. A row's sums do
 * not depend on how the rows are split between threads.
 */
__attribute__((target(AMX_BF16_TARGET)))
static void f16_amx(const uint16_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *tiles, int64_t tokens, float *out, int64_t outStride) {
    struct tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) { cfg.rows[i] = 16; cfg.colsb[i] = 64; } // A hi, A lo, B hi, B lo, then 4 x C
    _tile_loadconfig(&cfg);
    int64_t nbk = cols / 32, ntt = (tokens + 15) / 16, apart = f16_tile_offset(cols, 1, 0); // one token tile to the next
    _Alignas(64) uint16_t a[2][2][16 * 32]; // [block parity][hi, lo]: 16 rows x 32 columns
    _Alignas(64) float c[16][16];
    for (int64_t tb = 0; tb < ntt; tb += 4) {
        int nt = ntt - tb < 4 ? (int) (ntt - tb) : 4;
        for (int64_t k0 = 0; k0 < nbk; k0 += F16_AMX_SLICE) {
            int64_t k1 = k0 + F16_AMX_SLICE < nbk ? k0 + F16_AMX_SLICE : nbk;
            for (int64_t r = r0; r < r1; r += 16) {
                int nr = r1 - r < 16 ? (int) (r1 - r) : 16;
                if (nr < 16) memset(a, 0, sizeof a);
                _tile_zero(4);
                _tile_zero(5);
                _tile_zero(6);
                _tile_zero(7);
                f16_amx_split(w, cols, r, nr, k0, k1, a[k0 & 1][0], a[k0 & 1][1]);
                for (int64_t kb = k0; kb < k1; kb++) {
                    _tile_loadd(0, a[kb & 1][0], 64);
                    _tile_loadd(1, a[kb & 1][1], 64);
                    const uint8_t *b = tiles + f16_tile_offset(cols, tb, kb);
                    // tile numbers are instruction operands: one line per C tile
#define F16_AMX_TOKENS(T, C) do {                                                                                  \
                        _tile_loadd(2, b + (T) * apart, 64);                                                       \
                        _tile_loadd(3, b + (T) * apart + 1024, 64);                                                \
                        _tile_dpbf16ps(C, 0, 2);                                                                   \
                        _tile_dpbf16ps(C, 0, 3);                                                                   \
                        _tile_dpbf16ps(C, 1, 2);                                                                   \
                        _tile_dpbf16ps(C, 1, 3);                                                                   \
                    } while (0)
                    F16_AMX_TOKENS(0, 4);
                    if (nt > 1) F16_AMX_TOKENS(1, 5);
                    if (nt > 2) F16_AMX_TOKENS(2, 6);
                    if (nt > 3) F16_AMX_TOKENS(3, 7);
                    // the next block's weights split while the tile unit works on this one's
                    if (kb + 1 < k1) f16_amx_split(w, cols, r, nr, kb + 1, k1, a[(kb + 1) & 1][0], a[(kb + 1) & 1][1]);
                }
#define F16_AMX_OUT(T, C) do {                                                                                     \
                    _tile_stored(C, c, 64);                                                                        \
                    for (int n = 0; n < 16 && (tb + (T)) * 16 + n < tokens; n++) {                                 \
                        float *o = out + ((tb + (T)) * 16 + n) * outStride + r;                                    \
                        if (k0 == 0) for (int m = 0; m < nr; m++) o[m] = c[m][n];                                  \
                        else for (int m = 0; m < nr; m++) o[m] += c[m][n];                                         \
                    }                                                                                              \
                } while (0)
                F16_AMX_OUT(0, 4);
                if (nt > 1) F16_AMX_OUT(1, 5);
                if (nt > 2) F16_AMX_OUT(2, 6);
                if (nt > 3) F16_AMX_OUT(3, 7);
            }
        }
    }
    _tile_release();
}

/**
 * Q6_K and Q4_K decoding on Intel (decode_streams()): as r16_vnni_streams, R16_STREAMS row groups side by side, each a
 * prefetched stream; per group the operations of r16_q6k_vnni / r16_q4k_vnni in the same order (the same floats).
 */
__attribute__((target(VNNI_TARGET)))
static void r16_k_streams(int type, const uint8_t *p, int64_t cols, int64_t g0, int64_t g1, const uint8_t *xq, float *out) {
    int q6 = type == TYPE_Q6_K;
    int64_t nsb = cols / QK_K, nb = cols / QK, super = q6 ? Q6R_SUPER : Q4KR_SUPER, block = q6 ? Q6R_BLOCK : Q4KR_BLOCK;
    const float *d = (const float *) (xq + cols);
    const int16_t *h = (const int16_t *) (xq + cols + 8 * nb);
    int64_t groupBytes = nsb * super;
    for (int64_t gs = g0; gs < g1; gs += R16_STREAMS) {
        int ns = g1 - gs < R16_STREAMS ? (int) (g1 - gs) : R16_STREAMS;
        __m512 acc[R16_STREAMS];
        for (int i = 0; i < ns; i++) acc[i] = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < nsb; sb++) {
            for (int b = 0; b < 8; b++) {
                int64_t xb = sb * 8 + b;
                const int32_t *x4 = (const int32_t *) (xq + xb * QK);
                int64_t ahead = sb * super + (q6 ? 32 : 64) + b * block + prefetch_ahead;
                for (int i = 0; i < ns; i++) {
                    const uint8_t *base = p + ((gs + i) * nsb + sb) * super;
                    const uint8_t *blk = base + (q6 ? 32 : 64) + b * block;
                    prefetch_stream(p, groupBytes, gs, i, g1, ahead, block);
                    __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) base));
                    __m512i v[8];
                    if (q6) {
                        __m512i sc0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *) blk));
                        __m512i sc1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *) (blk + 16)));
                        q6r_values(blk, v);
                        __m512i si = q6r_sum(v, x4, h[2 * xb], h[2 * xb + 1], sc0, sc1);
                        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_mul_ps(dw, _mm512_set1_ps(d[xb])), acc[i]);
                    } else {
                        __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (base + 32)));
                        __m512 dsc = _mm512_mul_ps(dw, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *) blk))));
                        __m512 dm = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *) (blk + 16)))));
                        r16_nibbles(blk + 32, v);
                        __m512 sf = _mm512_cvtepi32_ps(q4r_sum(v, x4));
                        acc[i] = _mm512_fmadd_ps(sf, _mm512_mul_ps(dsc, _mm512_set1_ps(d[xb])), acc[i]);
                        acc[i] = _mm512_fnmadd_ps(dm, _mm512_set1_ps(d[nb + xb]), acc[i]);
                    }
                }
            }
        }
        for (int i = 0; i < ns; i++) _mm512_storeu_ps(out + (gs + i) * R16, acc[i]);
    }
}

/**
 * Q6_K repacked: per 32 columns, two integer sums per row (one per 16-column scale), each less 32 x the activations'
 * half-block sum (the stored offset), times the row's int8 scale; then one float multiply-add by d x the block scale.
 */
__attribute__((target(VNNI_TARGET)))
static void r16_q6k_vnni(const uint8_t *p, int64_t cols, int64_t g0, int64_t g1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nsb = cols / QK_K, nb = cols / QK, stride = enclave_act_stride(cols);
    for (int64_t g = g0; g < g1; g++) {
        for (int64_t t0 = 0; t0 < tokens; t0 += 4) {
            int n = tokens - t0 < 4 ? (int) (tokens - t0) : 4;
            __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
            for (int64_t sb = 0; sb < nsb; sb++) {
                const uint8_t *base = p + (g * nsb + sb) * Q6R_SUPER;
                __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) base));
                for (int b = 0; b < 8; b++) {
                    const uint8_t *blk = base + 32 + b * Q6R_BLOCK;
                    __m512i sc0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *) blk));
                    __m512i sc1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *) (blk + 16)));
                    __m512i v[8];
                    q6r_values(blk, v);
                    int64_t xb = sb * 8 + b;
                    for (int k = 0; k < n; k++) {
                        const uint8_t *xr = xq + (t0 + k) * stride;
                        const int32_t *x4 = (const int32_t *) (xr + xb * QK);
                        const float *d = (const float *) (xr + cols);
                        const int16_t *h = (const int16_t *) (xr + cols + 8 * nb);
                        __m512i si = q6r_sum(v, x4, h[2 * xb], h[2 * xb + 1], sc0, sc1);
                        acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_mul_ps(dw, _mm512_set1_ps(d[xb])), acc[k]);
                    }
                }
            }
            for (int k = 0; k < n; k++) _mm512_storeu_ps(out + (t0 + k) * outStride + g * R16, acc[k]);
        }
    }
}

/** Q4_K repacked: per 32 columns one integer sum per row, then d x scale x the block scale, less dmin x min x its sum. */
__attribute__((target(VNNI_TARGET)))
static void r16_q4k_vnni(const uint8_t *p, int64_t cols, int64_t g0, int64_t g1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride) {
    int64_t nsb = cols / QK_K, nb = cols / QK, stride = enclave_act_stride(cols);
    for (int64_t g = g0; g < g1; g++) {
        for (int64_t t0 = 0; t0 < tokens; t0 += 4) {
            int n = tokens - t0 < 4 ? (int) (tokens - t0) : 4;
            __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
            for (int64_t sb = 0; sb < nsb; sb++) {
                const uint8_t *base = p + (g * nsb + sb) * Q4KR_SUPER;
                __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) base));
                __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (base + 32)));
                for (int b = 0; b < 8; b++) {
                    const uint8_t *blk = base + 64 + b * Q4KR_BLOCK;
                    __m512 dsc = _mm512_mul_ps(dw, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *) blk))));
                    __m512 dm = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *) (blk + 16)))));
                    __m512i v[8];
                    r16_nibbles(blk + 32, v);
                    int64_t xb = sb * 8 + b;
                    for (int k = 0; k < n; k++) {
                        const uint8_t *xr = xq + (t0 + k) * stride;
                        const int32_t *x4 = (const int32_t *) (xr + xb * QK);
                        const float *d = (const float *) (xr + cols);
                        __m512 sf = _mm512_cvtepi32_ps(q4r_sum(v, x4));
                        acc[k] = _mm512_fmadd_ps(sf, _mm512_mul_ps(dsc, _mm512_set1_ps(d[xb])), acc[k]);
                        acc[k] = _mm512_fnmadd_ps(dm, _mm512_set1_ps(d[nb + xb]), acc[k]);
                    }
                }
            }
            for (int k = 0; k < n; k++) _mm512_storeu_ps(out + (t0 + k) * outStride + g * R16, acc[k]);
        }
    }
}
#endif

void enclave_dequantize(int type, const uint8_t *w, int64_t from, int64_t n, float *out) {
    for (int64_t k = 0; k < n; k++) {
        int64_t i = from + k;
        float v;
        if (type == TYPE_F16) {
            v = half_to_float(load_u16(w + 2 * i));
        } else if (type == TYPE_Q4_0) {
            const uint8_t *blk = w + (i / QK) * 18;
            int c = (int) (i % QK);
            v = (float) ((c < 16 ? blk[2 + c] & 0xf : blk[2 + c - 16] >> 4) - 8) * half_to_float(load_u16(blk));
        } else if (type == TYPE_Q8_0) {
            const uint8_t *blk = w + (i / QK) * 34;
            v = (float) (int8_t) blk[2 + i % QK] * half_to_float(load_u16(blk));
        } else if (type == TYPE_Q6_K) {
            const uint8_t *blk = w + (i / QK_K) * Q6K_BYTES;
            int c = (int) (i % QK_K);
            v = half_to_float(load_u16(blk + 208)) * (float) ((const int8_t *) (blk + 192))[c / 16] * (float) (q6k_value(blk, c) - 32);
        } else if (type == TYPE_Q4_K) {
            const uint8_t *blk = w + (i / QK_K) * Q4K_BYTES;
            int c = (int) (i % QK_K), sc, m;
            q4k_scale_min(blk + 4, c / 32, &sc, &m);
            v = half_to_float(load_u16(blk)) * (float) sc * (float) q4k_value(blk, c) - half_to_float(load_u16(blk + 2)) * (float) m;
        } else {
            v = 0;
        }
        out[k] = v;
    }
}

#if !defined(__x86_64__)
int enclave_amx(void) {
    return 0;
}

int enclave_set_amx(int on) {
    (void) on;
    return 0;
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
        if (tokens == 1 && decode_streams()) {
            if (type == TYPE_Q6_K || type == TYPE_Q4_K) r16_k_streams(type, p, cols, g0, g1, xq, out);
            else r16_vnni_streams(type, p, cols, g0, g1, xq, out);
        } else if (type == TYPE_Q6_K) r16_q6k_vnni(p, cols, g0, g1, xq, tokens, out, outStride);
        else if (tokens >= 32 && enclave_amx()) r16_amx(type, p, cols, g0, g1, xq, tokens, out, outStride);
        else if (type == TYPE_Q4_K) r16_q4k_vnni(p, cols, g0, g1, xq, tokens, out, outStride);
        else r16_vnni(type, p, cols, g0, g1, xq, tokens, out, outStride);
        return;
    }
#endif
    (void) type; (void) p; (void) cols; (void) g0; (void) g1; (void) xq; (void) tokens; (void) out; (void) outStride;
}

// ---- Attention over a float16 KV cache: one KV head's group of query heads, rows gathered through the block table ----
// k, v: the pool's float16 arrays; rows[t]: the element offset of position t's head in them (block table applied by
// the caller); scores go to att[h * attStride + t] (scaled, soft-capped when cap > 0), the caller runs the softmax;
// values sum att-weighted rows into out[h * headDim ...]. The float16 values are widened in registers (vcvtph2ps).

static inline float capped_score(float s, float scale, float cap) {
    s *= scale;
    return cap > 0 ? tanhf(s / cap) * cap : s;
}

static inline float kv_at(const void *kv, int half, int64_t i) {
    return half ? half_to_float(((const uint16_t *) kv)[i]) : ((const float *) kv)[i];
}

static void scores_baseline(int half, const void *k, const int32_t *rows, int32_t n, const float *q, int32_t heads,
                            int32_t headDim, float scale, float cap, float *att, int32_t attStride) {
    for (int32_t t = 0; t < n; t++) {
        for (int32_t h = 0; h < heads; h++) {
            float acc = 0;
            for (int32_t i = 0; i < headDim; i++) acc += q[h * headDim + i] * kv_at(k, half, (int64_t) rows[t] + i);
            att[h * attStride + t] = capped_score(acc, scale, cap);
        }
    }
}

static void values_baseline(int half, const void *v, const int32_t *rows, int32_t n, const float *att, int32_t attStride,
                            int32_t heads, int32_t headDim, float *out) {
    for (int32_t h = 0; h < heads; h++) for (int32_t i = 0; i < headDim; i++) out[h * headDim + i] = 0;
    for (int32_t t = 0; t < n; t++) {
        for (int32_t i = 0; i < headDim; i++) {
            float x = kv_at(v, half, (int64_t) rows[t] + i);
            for (int32_t h = 0; h < heads; h++) out[h * headDim + i] += att[h * attStride + t] * x;
        }
    }
}

#if defined(__x86_64__)
// Rows come from anywhere in the pool (a block's positions are a KV row apart, blocks scattered): the loads wait on
// memory, so the rows PF positions ahead are prefetched.
#define ATTEND_PF 8
static inline void prefetch_bytes(const void *p, int32_t bytes) {
    for (int32_t b = 0; b < bytes; b += 64) _mm_prefetch((const char *) p + b, _MM_HINT_T0);
}

/**
 * Four query heads at a time. Scores: each key row is widened once and serves the four. Values: a chunk of CH vectors
 * of the head's dimensions at a time, its 4 x CH accumulators in registers, each value row read once per chunk.
 */
#define ATTEND(SUFFIX, ELEM, TARGET, VEC, LANES, CH, ZERO, CVT, LOAD, STORE, FMA, SET1, SUM)                      \
__attribute__((target(TARGET)))                                                                                    \
static void scores_##SUFFIX(const ELEM *k, const int32_t *rows, int32_t n, const float *q, int32_t heads,  \
                                int32_t headDim, float scale, float cap, float *att, int32_t attStride) {          \
    for (int32_t h = 0; h < heads; h += 4) {                                                                       \
        const float *q0 = q + h * headDim, *q1 = q0 + headDim, *q2 = q1 + headDim, *q3 = q2 + headDim;             \
        float *a0 = att + h * attStride, *a1 = a0 + attStride, *a2 = a1 + attStride, *a3 = a2 + attStride;         \
        for (int32_t t = 0; t < n; t++) {                                                                          \
            if (t + ATTEND_PF < n) prefetch_bytes(k + rows[t + ATTEND_PF], headDim * (int32_t) sizeof(ELEM));      \
            const ELEM *kr = k + rows[t];                                                                          \
            VEC c0 = ZERO, c1 = ZERO, c2 = ZERO, c3 = ZERO;                                                        \
            for (int32_t i = 0; i < headDim; i += LANES) {                                                         \
                VEC kv = CVT(kr + i);                                                                              \
                c0 = FMA(LOAD(q0 + i), kv, c0);                                                                    \
                c1 = FMA(LOAD(q1 + i), kv, c1);                                                                    \
                c2 = FMA(LOAD(q2 + i), kv, c2);                                                                    \
                c3 = FMA(LOAD(q3 + i), kv, c3);                                                                    \
            }                                                                                                      \
            a0[t] = capped_score(SUM(c0), scale, cap);                                                             \
            a1[t] = capped_score(SUM(c1), scale, cap);                                                             \
            a2[t] = capped_score(SUM(c2), scale, cap);                                                             \
            a3[t] = capped_score(SUM(c3), scale, cap);                                                             \
        }                                                                                                          \
    }                                                                                                              \
}                                                                                                                  \
__attribute__((target(TARGET)))                                                                                    \
static void values_##SUFFIX(const ELEM *v, const int32_t *rows, int32_t n, const float *att,               \
                                int32_t attStride, int32_t heads, int32_t headDim, float *out) {                   \
    for (int32_t h = 0; h < heads; h += 4) {                                                                       \
        const float *a[4] = {att + h * attStride, att + (h + 1) * attStride, att + (h + 2) * attStride,            \
                             att + (h + 3) * attStride};                                                           \
        for (int32_t i0 = 0; i0 < headDim; i0 += CH * LANES) {                                                     \
            int32_t nv = (headDim - i0) / LANES < CH ? (headDim - i0) / LANES : CH;                                \
            VEC c[4][CH];                                                                                          \
            for (int j = 0; j < 4; j++) for (int u = 0; u < CH; u++) c[j][u] = ZERO;                               \
            for (int32_t t = 0; t < n; t++) {                                                                      \
                if (t + ATTEND_PF < n) prefetch_bytes(v + rows[t + ATTEND_PF] + i0, nv * LANES * (int32_t) sizeof(ELEM)); \
                const ELEM *vr = v + rows[t] + i0;                                                                 \
                VEC w0 = SET1(a[0][t]), w1 = SET1(a[1][t]), w2 = SET1(a[2][t]), w3 = SET1(a[3][t]);                \
                for (int u = 0; u < CH; u++) {                                                                     \
                    if (u < nv) {                                                                                  \
                        VEC x = CVT(vr + u * LANES);                                                               \
                        c[0][u] = FMA(x, w0, c[0][u]);                                                             \
                        c[1][u] = FMA(x, w1, c[1][u]);                                                             \
                        c[2][u] = FMA(x, w2, c[2][u]);                                                             \
                        c[3][u] = FMA(x, w3, c[3][u]);                                                             \
                    }                                                                                              \
                }                                                                                                  \
            }                                                                                                      \
            for (int j = 0; j < 4; j++) for (int u = 0; u < nv; u++) STORE(out + (h + j) * headDim + i0 + u * LANES, c[j][u]); \
        }                                                                                                          \
    }                                                                                                              \
}

ATTEND(f16_avx512, uint16_t, VNNI_TARGET, __m512, 16, 4, _mm512_setzero_ps(), CVT512, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_fmadd_ps, _mm512_set1_ps, _mm512_reduce_add_ps)
ATTEND(f16_avx2, uint16_t, "avx2,fma,f16c", __m256, 8, 2, _mm256_setzero_ps(), CVT256, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_fmadd_ps, _mm256_set1_ps, hsum256)
ATTEND(f32_avx512, float, VNNI_TARGET, __m512, 16, 4, _mm512_setzero_ps(), _mm512_loadu_ps, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_fmadd_ps, _mm512_set1_ps, _mm512_reduce_add_ps)
ATTEND(f32_avx2, float, "avx2,fma,f16c", __m256, 8, 2, _mm256_setzero_ps(), _mm256_loadu_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_fmadd_ps, _mm256_set1_ps, hsum256)
#endif

/** Whether attention over float16 and float32 caches has a vector path here (x86 with AVX2 or AVX-512; elsewhere Java's is faster). */
int enclave_attends(void) {
    int i = enclave_isa();
    return i == ISA_AVX2 || i == ISA_AVX512_VNNI;
}

#if defined(__x86_64__)
/** The vector path for this shape: 2 AVX-512, 1 AVX2, 0 none (four query heads at a time, whole vectors of a head). */
static int attn_path(int32_t heads, int32_t headDim) {
    int i = enclave_isa();
    if (heads % 4 != 0) return 0;
    if (i == ISA_AVX512_VNNI && headDim % 16 == 0) return 2;
    if ((i == ISA_AVX2 || i == ISA_AVX512_VNNI) && headDim % 8 == 0) return 1;
    return 0;
}
#endif

/** Scores of a KV head's group of query heads over float16 (half != 0) or float32 keys; offsets in elements. */
void enclave_attn_scores(int half, const void *k, const int32_t *rows, int32_t n, const float *q, int32_t qOff, int32_t heads,
                         int32_t headDim, float scale, float cap, float *att, int32_t attOff, int32_t attStride) {
    q += qOff;
    att += attOff;
#if defined(__x86_64__)
    switch (attn_path(heads, headDim)) {
        case 2: if (half) scores_f16_avx512(k, rows, n, q, heads, headDim, scale, cap, att, attStride);
                else scores_f32_avx512(k, rows, n, q, heads, headDim, scale, cap, att, attStride);
                return;
        case 1: if (half) scores_f16_avx2(k, rows, n, q, heads, headDim, scale, cap, att, attStride);
                else scores_f32_avx2(k, rows, n, q, heads, headDim, scale, cap, att, attStride);
                return;
    }
#endif
    scores_baseline(half, k, rows, n, q, heads, headDim, scale, cap, att, attStride);
}

/** The att-weighted sums of float16 (half != 0) or float32 value rows, one per query head. */
void enclave_attn_values(int half, const void *v, const int32_t *rows, int32_t n, const float *att, int32_t attOff, int32_t attStride,
                         int32_t heads, int32_t headDim, float *out, int32_t outOff) {
    att += attOff;
    out += outOff;
#if defined(__x86_64__)
    switch (attn_path(heads, headDim)) {
        case 2: if (half) values_f16_avx512(v, rows, n, att, attStride, heads, headDim, out);
                else values_f32_avx512(v, rows, n, att, attStride, heads, headDim, out);
                return;
        case 1: if (half) values_f16_avx2(v, rows, n, att, attStride, heads, headDim, out);
                else values_f32_avx2(v, rows, n, att, attStride, heads, headDim, out);
                return;
    }
#endif
    values_baseline(half, v, rows, n, att, attStride, heads, headDim, out);
}

// ---- Attention over 8-bit and 4-bit KV caches (ggml's Q8_0 / Q4_0 rounding, values and float16 scales stored
// apart): rows[t] is the value offset of position t's head; its scales are d[rows[t] / 32 ...], groups of 32. A
// group's values are widened to floats and scaled in registers (AVX-512); elsewhere the caller's Java tile path runs.

/** Value i of a quantized head row, as a float (scalar: the reference of the vector paths). */
static inline float q_at(int bits, const uint8_t *qv, const uint16_t *d, int64_t o, int32_t i) {
    float s = half_to_float(d[(o + i) / 32]);
    if (bits == 8) return (float) (int8_t) qv[o + i] * s;
    int64_t g = (o + i) / 32 * 32, j = (o + i) - g;
    uint8_t b = qv[g / 2 + (j & 15)];
    return (float) ((j < 16 ? (b & 15) : (b >> 4)) - 8) * s;
}

#if defined(__x86_64__)
/** The 32 values of the group at value offset o, scaled, into two vectors. */
__attribute__((target(VNNI_TARGET), always_inline))
static inline void q_group512(int bits, const uint8_t *qv, const uint16_t *d, int64_t o, __m512 *lo, __m512 *hi) {
    __m512 s = _mm512_set1_ps(_cvtsh_ss(d[o / 32]));
    __m128i a, b;
    if (bits == 8) {
        a = _mm_loadu_si128((const __m128i *) (qv + o));
        b = _mm_loadu_si128((const __m128i *) (qv + o + 16));
    } else {
        __m128i x = _mm_loadu_si128((const __m128i *) (qv + o / 2)), m = _mm_set1_epi8(15), e = _mm_set1_epi8(8);
        a = _mm_sub_epi8(_mm_and_si128(x, m), e);
        b = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(x, 4), m), e);
    }
    *lo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(a)), s);
    *hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)), s);
}

__attribute__((target(VNNI_TARGET)))
static void scores_q512(int bits, const uint8_t *qv, const uint16_t *d, const int32_t *rows, int32_t n, const float *q,
                        int32_t heads, int32_t headDim, float scale, float cap, float *att, int32_t attStride) {
    for (int32_t h = 0; h < heads; h += 4) {
        const float *q0 = q + h * headDim, *q1 = q0 + headDim, *q2 = q1 + headDim, *q3 = q2 + headDim;
        float *a0 = att + h * attStride, *a1 = a0 + attStride, *a2 = a1 + attStride, *a3 = a2 + attStride;
        for (int32_t t = 0; t < n; t++) {
            if (t + ATTEND_PF < n) prefetch_bytes(qv + (bits == 8 ? rows[t + ATTEND_PF] : rows[t + ATTEND_PF] / 2), headDim * bits / 8);
            __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
            for (int32_t i = 0; i < headDim; i += 32) {
                __m512 lo, hi;
                q_group512(bits, qv, d, (int64_t) rows[t] + i, &lo, &hi);
                c0 = _mm512_fmadd_ps(_mm512_loadu_ps(q0 + i), lo, _mm512_fmadd_ps(_mm512_loadu_ps(q0 + i + 16), hi, c0));
                c1 = _mm512_fmadd_ps(_mm512_loadu_ps(q1 + i), lo, _mm512_fmadd_ps(_mm512_loadu_ps(q1 + i + 16), hi, c1));
                c2 = _mm512_fmadd_ps(_mm512_loadu_ps(q2 + i), lo, _mm512_fmadd_ps(_mm512_loadu_ps(q2 + i + 16), hi, c2));
                c3 = _mm512_fmadd_ps(_mm512_loadu_ps(q3 + i), lo, _mm512_fmadd_ps(_mm512_loadu_ps(q3 + i + 16), hi, c3));
            }
            a0[t] = capped_score(_mm512_reduce_add_ps(c0), scale, cap);
            a1[t] = capped_score(_mm512_reduce_add_ps(c1), scale, cap);
            a2[t] = capped_score(_mm512_reduce_add_ps(c2), scale, cap);
            a3[t] = capped_score(_mm512_reduce_add_ps(c3), scale, cap);
        }
    }
}

/** Values: 64 of the head's values (two groups, 4 vectors) for four query heads at a time, 16 accumulators. */
__attribute__((target(VNNI_TARGET)))
static void values_q512(int bits, const uint8_t *qv, const uint16_t *d, const int32_t *rows, int32_t n, const float *att,
                        int32_t attStride, int32_t heads, int32_t headDim, float *out) {
    for (int32_t h = 0; h < heads; h += 4) {
        const float *a[4] = {att + h * attStride, att + (h + 1) * attStride, att + (h + 2) * attStride, att + (h + 3) * attStride};
        for (int32_t i0 = 0; i0 < headDim; i0 += 64) {
            int ng = headDim - i0 >= 64 ? 2 : 1;
            __m512 c[4][4];
            for (int j = 0; j < 4; j++) for (int u = 0; u < 4; u++) c[j][u] = _mm512_setzero_ps();
            for (int32_t t = 0; t < n; t++) {
                if (t + ATTEND_PF < n) prefetch_bytes(qv + (bits == 8 ? rows[t + ATTEND_PF] + i0 : (rows[t + ATTEND_PF] + i0) / 2), 64 * bits / 8);
                __m512 x[4];
                for (int g = 0; g < ng; g++) q_group512(bits, qv, d, (int64_t) rows[t] + i0 + 32 * g, &x[2 * g], &x[2 * g + 1]);
                for (int j = 0; j < 4; j++) {
                    __m512 w = _mm512_set1_ps(a[j][t]);
                    for (int u = 0; u < 2 * ng; u++) c[j][u] = _mm512_fmadd_ps(x[u], w, c[j][u]);
                }
            }
            for (int j = 0; j < 4; j++) for (int u = 0; u < 2 * ng; u++) _mm512_storeu_ps(out + (h + j) * headDim + i0 + 16 * u, c[j][u]);
        }
    }
}
#endif

/** Whether attention over 8- and 4-bit caches has a vector path here (AVX-512; elsewhere Java's tile path is faster). */
int enclave_attends_quantized(void) {
    return enclave_isa() == ISA_AVX512_VNNI;
}

/** As enclave_attn_scores over 8-bit (bits 8) or 4-bit (bits 4) rows; heads of whole groups of 32. */
void enclave_attn_scores_q(int bits, const uint8_t *qv, const uint16_t *d, const int32_t *rows, int32_t n, const float *q,
                           int32_t qOff, int32_t heads, int32_t headDim, float scale, float cap, float *att, int32_t attOff,
                           int32_t attStride) {
    q += qOff;
    att += attOff;
#if defined(__x86_64__)
    if (enclave_isa() == ISA_AVX512_VNNI && heads % 4 == 0 && headDim % 32 == 0) {
        scores_q512(bits, qv, d, rows, n, q, heads, headDim, scale, cap, att, attStride);
        return;
    }
#endif
    for (int32_t t = 0; t < n; t++) {
        for (int32_t h = 0; h < heads; h++) {
            float acc = 0;
            for (int32_t i = 0; i < headDim; i++) acc += q[h * headDim + i] * q_at(bits, qv, d, rows[t], i);
            att[h * attStride + t] = capped_score(acc, scale, cap);
        }
    }
}

void enclave_attn_values_q(int bits, const uint8_t *qv, const uint16_t *d, const int32_t *rows, int32_t n, const float *att,
                           int32_t attOff, int32_t attStride, int32_t heads, int32_t headDim, float *out, int32_t outOff) {
    att += attOff;
    out += outOff;
#if defined(__x86_64__)
    if (enclave_isa() == ISA_AVX512_VNNI && heads % 4 == 0 && headDim % 32 == 0) {
        values_q512(bits, qv, d, rows, n, att, attStride, heads, headDim, out);
        return;
    }
#endif
    for (int32_t h = 0; h < heads; h++) for (int32_t i = 0; i < headDim; i++) out[h * headDim + i] = 0;
    for (int32_t t = 0; t < n; t++) {
        for (int32_t i = 0; i < headDim; i++) {
            float x = q_at(bits, qv, d, rows[t], i);
            for (int32_t h = 0; h < heads; h++) out[h * headDim + i] += att[h * attStride + t] * x;
        }
    }
}
