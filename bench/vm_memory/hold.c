/* What bench/vm_memory runs in a container: allocates MIB mebibytes of
 * anonymous memory, writes to every page so the guest really backs it, says
 * "held MIB MiB" on stdout, keeps it for SECONDS and exits (which frees it).
 * Static, so it runs on the base image's busybox /bin alone.
 *
 *   vm-memory-hold MIB SECONDS */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: vm-memory-hold MIB SECONDS\n");
    return 2;
  }
  const size_t mib = strtoul(argv[1], NULL, 10);
  const unsigned seconds = (unsigned)strtoul(argv[2], NULL, 10);
  const size_t size = mib << 20;
  unsigned char* p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  /* A non-zero byte per 4 KiB page: every page is faulted in and dirty. */
  const long page = sysconf(_SC_PAGESIZE);
  for (size_t off = 0; off < size; off += (size_t)page) p[off] = (unsigned char)(off >> 12 | 1);
  printf("held %zu MiB\n", mib);
  fflush(stdout);
  sleep(seconds);
  /* Read it back so the writes cannot be optimized away. */
  unsigned sum = 0;
  for (size_t off = 0; off < size; off += (size_t)page) sum += p[off];
  printf("done (%u)\n", sum);
  return 0;
}
