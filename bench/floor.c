/*
 * The floor a /proc scanner cannot beat: list <proc>, then open, read and parse each
 * <proc>/<pid>/stat once, summing what the agent needs (state, ppid, num_threads, rss).
 * Prints the nanoseconds of each of N full scans, one per line, for bench_scan.py.
 *
 * Usage: floor PROC_ROOT SCANS
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Offsets after the last ')' of proc(5)'s stat line: field 3 is index 0. */
#define STATE_INDEX 0       /* (3) state */
#define PPID_INDEX 1        /* (4) ppid */
#define NUM_THREADS_INDEX 17 /* (20) num_threads */
#define RSS_INDEX 21        /* (24) rss */

struct totals {
    long processes, threads, zombies, rss_pages, ppid_sum;
};

static void parse_stat(const char *buf, ssize_t len, struct totals *t) {
    const char *end = buf + len;
    const char *p = memrchr(buf, ')', (size_t)len);
    if (p == NULL || p + 2 >= end) {
        return;
    }
    p += 2;
    int index = 0;
    while (p < end && index <= RSS_INDEX) {
        if (index == STATE_INDEX) {
            if (*p == 'Z') {
                t->zombies++;
            }
        } else if (index == PPID_INDEX) {
            t->ppid_sum += strtol(p, NULL, 10);
        } else if (index == NUM_THREADS_INDEX) {
            t->threads += strtol(p, NULL, 10);
        } else if (index == RSS_INDEX) {
            t->rss_pages += strtol(p, NULL, 10);
        }
        const char *space = memchr(p, ' ', (size_t)(end - p));
        if (space == NULL) {
            break;
        }
        p = space + 1;
        index++;
    }
    t->processes++;
}

static void scan(const char *root, struct totals *t) {
    char path[4096];
    char buf[4096];
    DIR *dir = opendir(root);
    if (dir == NULL) {
        perror(root);
        exit(1);
    }
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (!isdigit((unsigned char)entry->d_name[0])) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s/stat", root, entry->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            continue; /* the process exited since readdir */
        }
        ssize_t len = read(fd, buf, sizeof buf);
        close(fd);
        if (len > 0) {
            parse_stat(buf, len, t);
        }
    }
    closedir(dir);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PROC_ROOT SCANS\n", argv[0]);
        return 2;
    }
    int scans = atoi(argv[2]);
    struct totals t = {0};
    for (int i = 0; i < scans; i++) {
        struct timespec start, stop;
        clock_gettime(CLOCK_MONOTONIC, &start);
        scan(argv[1], &t);
        clock_gettime(CLOCK_MONOTONIC, &stop);
        long long ns = (stop.tv_sec - start.tv_sec) * 1000000000LL + (stop.tv_nsec - start.tv_nsec);
        printf("%lld\n", ns);
    }
    /* Printing the totals keeps the compiler from dropping the parse. */
    fprintf(stderr, "processes=%ld threads=%ld zombies=%ld\n", t.processes / scans,
            t.threads / scans, t.zombies / scans);
    return 0;
}
