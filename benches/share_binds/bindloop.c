/* benches/share_binds.sh: the cost of one intercepted bind() or shutdown().
 *
 *   bindloop bind PORT N OUT      N × { socket(TCP); bind(127.0.0.1:PORT); close() }
 *   bindloop bind0 N OUT          the same with port 0 (a bind corral lets go ahead)
 *   bindloop shutdown N OUT       N × { socketpair(AF_UNIX); shutdown(a, SHUT_WR); close both }
 *
 * Only the bind() or shutdown() call is timed (clock_gettime(CLOCK_MONOTONIC) around it), after
 * WARMUP untimed rounds (under corral the first bind of PORT makes the group's socket). Writes one
 * line to OUT ("-" = stdout):
 *   WHAT n=N mean_ns=… median_ns=… p99_ns=… min_ns=… loop_ns=…
 * loop_ns is the whole round (socket + call + close) per iteration. Exits 1 on any failure. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 100

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

/* One round; returns the ns the timed call took, or -1. */
static long long one_bind(int port) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) { perror("socket"); return -1; }
  long long t0 = now_ns();
  int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
  long long t1 = now_ns();
  if (rc != 0) { perror("bind"); close(fd); return -1; }
  close(fd);
  return t1 - t0;
}

static long long one_shutdown(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) { perror("socketpair"); return -1; }
  long long t0 = now_ns();
  int rc = shutdown(sv[0], SHUT_WR);
  long long t1 = now_ns();
  if (rc != 0) { perror("shutdown"); close(sv[0]); close(sv[1]); return -1; }
  close(sv[0]);
  close(sv[1]);
  return t1 - t0;
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  int port = 0;
  long n;
  const char *out;
  if (strcmp(what, "bind") == 0 && argc == 5) {
    port = atoi(argv[2]);
    n = atol(argv[3]);
    out = argv[4];
    if (port <= 0 || port > 65535) { fprintf(stderr, "bindloop: bad port\n"); return 2; }
  } else if ((strcmp(what, "bind0") == 0 || strcmp(what, "shutdown") == 0) && argc == 4) {
    n = atol(argv[2]);
    out = argv[3];
  } else {
    fprintf(stderr, "usage: bindloop bind PORT N OUT | bind0 N OUT | shutdown N OUT\n");
    return 2;
  }
  if (n <= 0) { fprintf(stderr, "bindloop: bad N\n"); return 2; }
  int is_shutdown = strcmp(what, "shutdown") == 0;
  long long *ns = malloc(sizeof *ns * (size_t)n);
  if (!ns) return 1;
  for (int i = 0; i < WARMUP; i++)
    if ((is_shutdown ? one_shutdown() : one_bind(port)) < 0) return 1;
  long long loop0 = now_ns();
  for (long i = 0; i < n; i++) {
    ns[i] = is_shutdown ? one_shutdown() : one_bind(port);
    if (ns[i] < 0) return 1;
  }
  long long loop = now_ns() - loop0;
  long double sum = 0;
  for (long i = 0; i < n; i++) sum += ns[i];
  qsort(ns, (size_t)n, sizeof *ns, cmp);
  FILE *f = strcmp(out, "-") == 0 ? stdout : fopen(out, "w");
  if (!f) { perror(out); return 1; }
  fprintf(f, "%s n=%ld mean_ns=%.0Lf median_ns=%lld p99_ns=%lld min_ns=%lld loop_ns=%lld\n", what, n,
          sum / n, ns[n / 2], ns[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], ns[0], loop / n);
  if (f != stdout && fclose(f) != 0) { perror(out); return 1; }
  return 0;
}
