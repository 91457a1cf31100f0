/* The worker of benches/scale.sh: at the top of main it sends "PID MONO_NS REAL_NS" to the
 * unix datagram socket named by $STAMP_SOCK (how long its exec took is what is measured),
 * then sleeps until killed. Without STAMP_SOCK it only sleeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long ns(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(void) {
    long long mono = ns(CLOCK_MONOTONIC), real = ns(CLOCK_REALTIME);
    const char *path = getenv("STAMP_SOCK");
    if (path) {
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        strncpy(a.sun_path, path, sizeof a.sun_path - 1);
        char msg[96];
        int n = snprintf(msg, sizeof msg, "%d %lld %lld", (int)getpid(), mono, real);
        sendto(s, msg, (size_t)n, 0, (struct sockaddr *)&a, sizeof a);
        close(s);
    }
    for (;;) pause();
}
