// The conformance driver for the native library on another architecture (run under qemu-user in the tests): reads
// cases the Java test wrote, multiplies them with every instruction set the (emulated) CPU has, writes the results.
// File format, little-endian: int32 count; per case: int32 type, rows, cols, tokens; weight bytes (rows * cols / 32
// blocks); float x[tokens * cols]. Output: per case int32 runs, then per instruction set int32 isa and float
// out[tokens * rows].
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int enclave_isa(void);
int enclave_set_isa(int wanted);
int64_t enclave_act_stride(int64_t cols);
void enclave_quantize(const float *x, int64_t cols, int64_t xStride, int64_t tokens, uint8_t *dst);
void enclave_to_half(const float *x, int64_t cols, int64_t xStride, int64_t tokens, uint16_t *dst);
int64_t enclave_half_bytes(int64_t cols, int64_t tokens);
void enclave_matmul(int type, const uint8_t *w, int64_t cols, int64_t r0, int64_t r1, const uint8_t *xq, int64_t tokens, float *out, int64_t outStride);

static void must(int ok, const char *what) {
    if (!ok) { fprintf(stderr, "conformance: %s\n", what); exit(2); }
}

int main(int argc, char **argv) {
    must(argc == 3, "usage: conformance CASES OUT");
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    must(in && out, "cannot open files");
    int32_t count;
    must(fread(&count, 4, 1, in) == 1, "truncated");
    int best = enclave_isa();
    for (int c = 0; c < count; c++) {
        int32_t h[4];
        must(fread(h, 4, 4, in) == 4, "truncated case");
        int type = h[0], rows = h[1], cols = h[2], tokens = h[3];
        size_t wBytes = type == 1 ? (size_t) rows * cols * 2 : type == 14 ? (size_t) rows * (cols / 256) * 210 : type == 12 ? (size_t) rows * (cols / 256) * 144 : (size_t) rows * (cols / 32) * (type == 2 ? 18 : 34);
        uint8_t *w = malloc(wBytes);
        float *x = malloc(sizeof(float) * tokens * cols), *o = malloc(sizeof(float) * tokens * rows);
        size_t qBytes = type == 1 ? (size_t) enclave_half_bytes(cols, tokens) : (size_t) enclave_act_stride(cols) * tokens;
        uint8_t *xq = aligned_alloc(64, (qBytes + 63) & ~(size_t) 63);
        must(w && x && o && xq, "out of memory");
        must(fread(w, 1, wBytes, in) == wBytes && fread(x, sizeof(float), (size_t) tokens * cols, in) == (size_t) tokens * cols, "truncated data");
        if (type == 1) enclave_to_half(x, cols, cols, tokens, (uint16_t *) xq);
        else enclave_quantize(x, cols, cols, tokens, xq);
        // every set this CPU has: the baseline, then each Arm set up to the best (x86's codes 1 and 2 run the baseline here)
        int32_t isas[8], runs = 0;
        isas[runs++] = 0;
        for (int i = 3; i <= best; i++) isas[runs++] = i;
        fwrite(&runs, 4, 1, out);
        for (int i = 0; i < runs; i++) {
            int32_t got = enclave_set_isa(isas[i]);
            enclave_matmul(type, w, cols, 0, rows, xq, tokens, o, rows);
            fwrite(&got, 4, 1, out);
            fwrite(o, sizeof(float), (size_t) tokens * rows, out);
        }
        free(w); free(x); free(o); free(xq);
    }
    enclave_set_isa(best);
    fclose(out);
    return 0;
}
