/* The floor of benches/scale.sh: the least a supervisor can do. It starts N copies of a
 * command, each in its own session with its stdout and stderr on pipes it drains, restarts
 * one the moment it dies, and on SIGTERM or SIGINT kills them all and exits.
 *
 *   floor N COMMAND [ARGS...]
 *
 * Spawning uses vfork(), so the parent resumes once the child has exec'd (or failed): as
 * correct as a supervisor needs to be, and the cheapest way Linux offers. One poll loop
 * drains every pipe; output is thrown away (the output figures are measured separately). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int n;
static pid_t *pids;
static int *outs;
static char **cmd;
static volatile sig_atomic_t stop;
static sigset_t unblocked;

static void on_stop(int sig) { (void)sig; stop = 1; }
static void on_chld(int sig) { (void)sig; }

static void spawn(int slot) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) { perror("pipe2"); exit(1); }
    pid_t pid = vfork();
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &unblocked, NULL);
        setsid();
        dup2(p[1], 1);
        dup2(p[1], 2);
        execvp(cmd[0], cmd);
        _exit(127);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    pids[slot] = pid;
    outs[slot] = p[0];
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: floor N COMMAND [ARGS...]\n"); return 2; }
    n = atoi(argv[1]);
    cmd = argv + 2;
    pids = calloc((size_t)n, sizeof *pids);
    outs = calloc((size_t)n, sizeof *outs);
    struct pollfd *fds = calloc((size_t)n, sizeof *fds);
    /* The signals are blocked but while waiting in ppoll, so none is missed between the
     * check of `stop` and the wait. */
    struct sigaction term = {.sa_handler = on_stop};
    sigaction(SIGTERM, &term, NULL);
    sigaction(SIGINT, &term, NULL);
    struct sigaction chld = {.sa_handler = on_chld, .sa_flags = SA_NOCLDSTOP};
    sigaction(SIGCHLD, &chld, NULL);
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGCHLD);
    sigprocmask(SIG_BLOCK, &blocked, &unblocked);
    for (int i = 0; i < n; i++) spawn(i);
    char buf[65536];
    while (!stop) {
        int status;
        pid_t dead;
        while ((dead = waitpid(-1, &status, WNOHANG)) > 0)
            for (int i = 0; i < n; i++)
                if (pids[i] == dead) { if (outs[i] >= 0) close(outs[i]); spawn(i); break; }
        for (int i = 0; i < n; i++) fds[i] = (struct pollfd){.fd = outs[i], .events = POLLIN};
        if (ppoll(fds, (nfds_t)n, NULL, &unblocked) < 0 && errno != EINTR) break;
        for (int i = 0; i < n; i++) {
            if (!fds[i].revents) continue;
            ssize_t got;
            while ((got = read(outs[i], buf, sizeof buf)) > 0) {}
            /* EOF: the child is exiting. Stop polling its pipe (a hung-up pipe polls ready
             * forever, and spinning on it would slow the very exit being waited for). */
            if (got == 0) { close(outs[i]); outs[i] = -1; }
        }
    }
    for (int i = 0; i < n; i++) kill(-pids[i], SIGKILL);
    while (wait(NULL) > 0) {}
    return 0;
}
