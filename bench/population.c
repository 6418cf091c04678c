/*
 * A population of N sleeping processes for bench_scan.py: forks N children that pause(),
 * prints "ready" once they all exist, and on stdin EOF (or SIGTERM) kills and reaps them all.
 * C children cost a few pages each, so 5000 of them fit on a small machine.
 *
 * With NAMES given (any second argument), each child names itself pop<index> (its comm), so
 * no two of them look like workers of one server.
 *
 * Usage: population N [NAMES]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s N [NAMES]\n", argv[0]);
        return 2;
    }
    int wanted = atoi(argv[1]);
    int distinct_names = argc == 3;
    pid_t *children = calloc((size_t)wanted, sizeof *children);
    int started = 0;
    /* Block SIGTERM so it is only handled below, after every child is reaped. */
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);
    for (; started < wanted; started++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            break;
        }
        if (pid == 0) {
            /* A child dies with the population even if it is SIGKILLed. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (distinct_names) {
                char name[16];
                snprintf(name, sizeof name, "pop%d", started);
                prctl(PR_SET_NAME, name);
            }
            sigprocmask(SIG_UNBLOCK, &term, NULL);
            for (;;) {
                pause();
            }
        }
        children[started] = pid;
    }
    printf("ready %d\n", started);
    fflush(stdout);
    char buf[64];
    while (fread(buf, 1, sizeof buf, stdin) > 0) {
    }
    for (int i = 0; i < started; i++) {
        kill(children[i], SIGKILL);
    }
    for (int i = 0; i < started; i++) {
        waitpid(children[i], NULL, 0);
    }
    return started == wanted ? 0 : 1;
}
