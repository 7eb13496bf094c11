/* Open MPI's own allreduce (float, MPI_SUM), the reference for adjoint-dist's numbers: for
 * 8 B to 64 MiB, the median time of
 *   - blocking MPI_Allreduce, and
 *   - MPI_Iallreduce completed by polling MPI_Test, the call and the completion adjoint-dist
 *     uses (its Dist::wait spins on MPI_Test, then yields);
 * each repetition after a barrier (MPI_Ibarrier polled with MPI_Test, as adjoint-dist-worker
 * bench-allreduce synchronises; a blocking MPI_Barrier lets one rank leave it a scheduler tick
 * late on a busy machine).
 *   mpicc -O2 -o allreduce benches/dist/allreduce.c && mpirun -np 2 ./allreduce [max_bytes] */
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void poll(MPI_Request *r) {
    int flag = 0, spins = 0;
    while (!flag) {
        MPI_Test(r, &flag, MPI_STATUS_IGNORE);
        if (++spins > 200) sched_yield();
    }
}

static void barrier(void) {
    MPI_Request r;
    MPI_Ibarrier(MPI_COMM_WORLD, &r);
    poll(&r);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long max = argc > 1 ? atol(argv[1]) : 64L << 20;
    if (rank == 0) printf("# bytes allreduce_us iallreduce_test_us (ranks %d)\n", size);
    for (long bytes = 8; bytes <= max; bytes *= 2) {
        int n = (int)(bytes / 4);
        long reps = bytes <= (1 << 16) ? 300 : (100L << 20) / bytes;
        if (reps < 5) reps = 5;
        if (reps > 300) reps = 300;
        float *send = malloc(bytes), *recv = malloc(bytes);
        for (int i = 0; i < n; i++) send[i] = 1.0f;
        double *t = malloc(reps * sizeof(double)), med[2];
        for (int v = 0; v < 2; v++) {
            MPI_Allreduce(send, recv, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            for (long r = 0; r < reps; r++) {
                barrier();
                double t0 = MPI_Wtime();
                if (v == 0) {
                    MPI_Allreduce(send, recv, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                } else {
                    MPI_Request q;
                    MPI_Iallreduce(send, recv, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &q);
                    poll(&q);
                }
                t[r] = MPI_Wtime() - t0;
            }
            qsort(t, reps, sizeof(double), cmp);
            med[v] = t[reps / 2];
        }
        if (rank == 0) printf("%ld %.2f %.2f\n", bytes, med[0] * 1e6, med[1] * 1e6);
        free(send); free(recv); free(t);
    }
    MPI_Finalize();
    return 0;
}
