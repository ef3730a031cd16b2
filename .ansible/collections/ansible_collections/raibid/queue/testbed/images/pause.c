/*
 * raibid testbed pause: the pod sandbox's init process.
 *
 * It holds the pod's namespaces open, does nothing else, exits cleanly on
 * SIGTERM/SIGINT and reaps any zombie that gets re-parented to it (when a pod
 * shares its PID namespace the sandbox is PID 1). Built with `gcc -static` so the
 * image needs no libc; written for the testbed, not copied from any project.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }

static void on_child(int sig)
{
    (void)sig;
    int saved = errno;
    /* Reap every exited child; WNOHANG so the handler never blocks. */
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static void install(int sig, void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) != 0) {
        perror("sigaction");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
        puts("raibid-pause 1.0");
        return 0;
    }
    if (getpid() != 1)
        fprintf(stderr, "raibid-pause: warning: not running as PID 1\n");

    install(SIGTERM, on_stop);
    install(SIGINT, on_stop);
    install(SIGCHLD, on_child);

    while (!stop_signal)
        pause(); /* returns after each handled signal */

    fprintf(stderr, "raibid-pause: shutting down on signal %d\n", (int)stop_signal);
    return 0;
}
