/* Three small HPC kernels for the value benchmark (tests/benchmarks/value_bench.py)
 * and the index build test (tests/test_index_build.py). Compiled once per
 * archspec target with archspec's flags:
 *
 *     gcc -O3 $IMAGEFIT_CFLAGS -static -DBUILD_TARGET='"zen2"' \
 *         -DBUILD_CFLAGS='"-march=znver2 -mtune=znver2"' -o kernels kernels.c
 *
 * Usage: kernels target             prints BUILD_TARGET and BUILD_CFLAGS
 *        kernels NAME [REPS]        NAME: triad, dgemm, stencil
 * prints "NAME TARGET MS CHECKSUM": MS the wall time of the timed
 * repetitions (CLOCK_MONOTONIC), after one untimed warm-up repetition.
 *
 * triad:   a[i] = b[i] + s * c[i], STREAM's triad on 3 x 2^16 doubles (1.5 MiB,
 *          cache-resident: the core's vector width, not DRAM, sets the pace);
 * dgemm:   C += A * B, 256 x 256 doubles, i-k-j loop order (unit stride inside);
 * stencil: 5-point Jacobi sweep on a 512 x 512 grid of doubles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef BUILD_TARGET
#define BUILD_TARGET "unknown"
#endif
#ifndef BUILD_CFLAGS
#define BUILD_CFLAGS ""
#endif

#define TRIAD_N (1 << 16)
#define DGEMM_N 256
#define GRID 512

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double *alloc(size_t n)
{
    double *p = aligned_alloc(64, n * sizeof(double));
    if (!p) {
        fprintf(stderr, "kernels: out of memory\n");
        exit(2);
    }
    return p;
}

static void triad(double *restrict a, const double *restrict b, const double *restrict c, double s)
{
    for (int i = 0; i < TRIAD_N; i++)
        a[i] = b[i] + s * c[i];
}

static double run_triad(int reps, double *ms)
{
    double *a = alloc(TRIAD_N), *b = alloc(TRIAD_N), *c = alloc(TRIAD_N);
    for (int i = 0; i < TRIAD_N; i++) {
        a[i] = 0.0;
        b[i] = i * 0.5;
        c[i] = (TRIAD_N - i) * 0.25;
    }
    double sum = 0.0;
    triad(a, b, c, 3.0);
    double t0 = now_ms();
    for (int r = 0; r < reps; r++) {
        triad(a, b, c, 3.0 + r * 1e-9);
        sum += a[r % TRIAD_N];
    }
    *ms = now_ms() - t0;
    for (int i = 0; i < TRIAD_N; i++)
        sum += a[i];
    free(a), free(b), free(c);
    return sum;
}

static void dgemm(double *restrict C, const double *restrict A, const double *restrict B)
{
    for (int i = 0; i < DGEMM_N; i++)
        for (int k = 0; k < DGEMM_N; k++) {
            double aik = A[i * DGEMM_N + k];
            for (int j = 0; j < DGEMM_N; j++)
                C[i * DGEMM_N + j] += aik * B[k * DGEMM_N + j];
        }
}

static double run_dgemm(int reps, double *ms)
{
    size_t n2 = (size_t)DGEMM_N * DGEMM_N;
    double *A = alloc(n2), *B = alloc(n2), *C = alloc(n2);
    for (size_t i = 0; i < n2; i++) {
        A[i] = (double)(i % 7) * 0.125;
        B[i] = (double)(i % 5) * 0.25;
        C[i] = 0.0;
    }
    dgemm(C, A, B);
    double t0 = now_ms();
    for (int r = 0; r < reps; r++)
        dgemm(C, A, B);
    *ms = now_ms() - t0;
    double sum = 0.0;
    for (size_t i = 0; i < n2; i++)
        sum += C[i];
    free(A), free(B), free(C);
    return sum;
}

static void sweep(double *restrict out, const double *restrict in)
{
    for (int i = 1; i < GRID - 1; i++)
        for (int j = 1; j < GRID - 1; j++)
            out[i * GRID + j] = 0.25 * (in[(i - 1) * GRID + j] + in[(i + 1) * GRID + j] +
                                        in[i * GRID + j - 1] + in[i * GRID + j + 1]);
}

static double run_stencil(int reps, double *ms)
{
    size_t n2 = (size_t)GRID * GRID;
    double *u = alloc(n2), *v = alloc(n2);
    for (size_t i = 0; i < n2; i++)
        u[i] = v[i] = (i % GRID == 0) ? 1.0 : 0.0;
    sweep(v, u);
    double t0 = now_ms();
    for (int r = 0; r < reps; r++) {
        sweep(v, u);
        double *t = u;
        u = v;
        v = t;
    }
    *ms = now_ms() - t0;
    double sum = 0.0;
    for (size_t i = 0; i < n2; i++)
        sum += u[i];
    free(u), free(v);
    return sum;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: kernels target | kernels triad|dgemm|stencil [REPS]\n");
        return 2;
    }
    if (strcmp(argv[1], "target") == 0) {
        printf("%s %s\n", BUILD_TARGET, BUILD_CFLAGS);
        return 0;
    }
    int reps = argc > 2 ? atoi(argv[2]) : 0;
    double ms = 0.0, sum;
    if (strcmp(argv[1], "triad") == 0)
        sum = run_triad(reps > 0 ? reps : 4000, &ms);
    else if (strcmp(argv[1], "dgemm") == 0)
        sum = run_dgemm(reps > 0 ? reps : 20, &ms);
    else if (strcmp(argv[1], "stencil") == 0)
        sum = run_stencil(reps > 0 ? reps : 400, &ms);
    else {
        fprintf(stderr, "kernels: unknown kernel %s\n", argv[1]);
        return 2;
    }
    printf("%s %s %.3f %.6g\n", argv[1], BUILD_TARGET, ms, sum);
    return 0;
}
