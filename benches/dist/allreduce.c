/* Open MPI's own MPI_Allreduce (float, MPI_SUM), the reference for adjoint-dist's numbers:
 * for 8 B to 64 MiB, the median time of blocking MPI_Allreduce after a barrier, as
 * adjoint-dist-worker bench-allreduce measures its non-blocking one.
 *   mpicc -O2 -o allreduce benches/dist/allreduce.c && mpirun -np 2 ./allreduce */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long max = argc > 1 ? atol(argv[1]) : 64L << 20;
    if (rank == 0) printf("# bytes mpi_us (ranks %d)\n", size);
    for (long bytes = 8; bytes <= max; bytes *= 2) {
        int n = (int)(bytes / 4);
        long reps = bytes <= (1 << 16) ? 1000 : (200L << 20) / bytes;
        if (reps < 5) reps = 5;
        if (reps > 1000) reps = 1000;
        float *send = malloc(bytes), *recv = malloc(bytes);
        for (int i = 0; i < n; i++) send[i] = 1.0f;
        double *t = malloc(reps * sizeof(double));
        MPI_Allreduce(send, recv, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        for (long r = 0; r < reps; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(send, recv, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            t[r] = MPI_Wtime() - t0;
        }
        qsort(t, reps, sizeof(double), cmp);
        if (rank == 0) printf("%ld %.2f\n", bytes, t[reps / 2] * 1e6);
        free(send); free(recv); free(t);
    }
    MPI_Finalize();
    return 0;
}
