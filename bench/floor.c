/*
 * The floor a sampler cannot beat: the reads one agent tick makes, done the tightest way C
 * allows, timed in CPU nanoseconds per scan.
 *
 * One scan: list PROC_ROOT through a directory descriptor opened once (getdents64 after a
 * rewind), then for each pid openat(<dir>, "<pid>/stat") and one read, parsing what the agent
 * needs (state, ppid, num_threads, rss); then for each pid of --smaps openat(<dir>,
 * "<pid>/smaps_rollup") and one read, parsing Pss and Private_Clean + Private_Dirty; then
 * each --file (the cgroup, loadavg and limits files a tick reads) with one open and one read.
 * With --smaps-every N the smaps_rollup files are read on every Nth scan only (the first, then
 * every Nth), as the agent reads them every Nth tick.
 * Prints the CPU nanoseconds (CLOCK_PROCESS_CPUTIME_ID, user + system) of each scan, one per
 * line (--clock wall: monotonic wall time instead), and sleeps --interval seconds between
 * scans, as the agent does between ticks.
 *
 * Usage: floor PROC_ROOT SCANS [--interval S] [--clock cpu|wall] [--smaps PID,PID,...]
 *              [--smaps-every N] [--file PATH]...
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Offsets after the last ')' of proc(5)'s stat line: field 3 is index 0. */
#define STATE_INDEX 0        /* (3) state */
#define PPID_INDEX 1         /* (4) ppid */
#define NUM_THREADS_INDEX 17 /* (20) num_threads */
#define RSS_INDEX 21         /* (24) rss */

#define MAX_SMAPS 4096
#define MAX_FILES 64

struct totals {
    long processes, threads, zombies, rss_pages, ppid_sum, pss_kb, uss_kb, file_bytes;
};

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
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

/* The kB value of the line starting with `key` (e.g. "\nPss:"), or 0. */
static long smaps_value(const char *buf, const char *key) {
    const char *p = strstr(buf, key);
    return p == NULL ? 0 : strtol(p + strlen(key), NULL, 10);
}

static void parse_smaps(char *buf, ssize_t len, struct totals *t) {
    buf[len] = '\0';
    t->pss_kb += smaps_value(buf, "\nPss:");
    t->uss_kb += smaps_value(buf, "\nPrivate_Clean:") + smaps_value(buf, "\nPrivate_Dirty:");
}

static int is_pid(const char *name) {
    if (*name == '\0') {
        return 0;
    }
    for (; *name != '\0'; name++) {
        if (!isdigit((unsigned char)*name)) {
            return 0;
        }
    }
    return 1;
}

static void scan(int dir_fd, struct totals *t) {
    static char entries[65536];
    char path[64];
    char buf[4096];
    lseek(dir_fd, 0, SEEK_SET);
    for (;;) {
        long got = syscall(SYS_getdents64, dir_fd, entries, sizeof entries);
        if (got <= 0) {
            break;
        }
        for (long offset = 0; offset < got;) {
            struct linux_dirent64 *entry = (struct linux_dirent64 *)(entries + offset);
            offset += entry->d_reclen;
            if (!is_pid(entry->d_name)) {
                continue;
            }
            snprintf(path, sizeof path, "%s/stat", entry->d_name);
            int fd = openat(dir_fd, path, O_RDONLY);
            if (fd < 0) {
                continue; /* the process exited since it was listed */
            }
            ssize_t len = read(fd, buf, sizeof buf);
            close(fd);
            if (len > 0) {
                parse_stat(buf, len, t);
            }
        }
    }
}

static void read_smaps(int dir_fd, const long *pids, int count, struct totals *t) {
    char path[64];
    char buf[4097];
    for (int i = 0; i < count; i++) {
        snprintf(path, sizeof path, "%ld/smaps_rollup", pids[i]);
        int fd = openat(dir_fd, path, O_RDONLY);
        if (fd < 0) {
            continue;
        }
        ssize_t len = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (len > 0) {
            parse_smaps(buf, len, t);
        }
    }
}

static void read_files(char **files, int count, struct totals *t) {
    char buf[8192];
    for (int i = 0; i < count; i++) {
        int fd = open(files[i], O_RDONLY);
        if (fd < 0) {
            continue;
        }
        ssize_t len = read(fd, buf, sizeof buf);
        close(fd);
        if (len > 0) {
            t->file_bytes += len;
        }
    }
}

static clockid_t clock_id = CLOCK_PROCESS_CPUTIME_ID;

static long long now_ns(void) {
    struct timespec now;
    clock_gettime(clock_id, &now);
    return now.tv_sec * 1000000000LL + now.tv_nsec;
}

static int parse_pids(char *text, long *pids) {
    int count = 0;
    for (char *token = strtok(text, ","); token != NULL && count < MAX_SMAPS;
         token = strtok(NULL, ",")) {
        pids[count++] = strtol(token, NULL, 10);
    }
    return count;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr,
                "usage: %s PROC_ROOT SCANS [--interval S] [--clock cpu|wall] [--smaps PID,...] "
                "[--smaps-every N] [--file PATH]...\n",
                argv[0]);
        return 2;
    }
    int scans = atoi(argv[2]);
    int smaps_every = 1;
    double interval = 0;
    static long smaps_pids[MAX_SMAPS];
    int smaps_count = 0;
    char *files[MAX_FILES];
    int file_count = 0;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--interval") == 0) {
            interval = atof(argv[i + 1]);
        } else if (strcmp(argv[i], "--clock") == 0) {
            clock_id = strcmp(argv[i + 1], "wall") == 0 ? CLOCK_MONOTONIC : CLOCK_PROCESS_CPUTIME_ID;
        } else if (strcmp(argv[i], "--smaps-every") == 0) {
            smaps_every = atoi(argv[i + 1]) > 0 ? atoi(argv[i + 1]) : 1;
        } else if (strcmp(argv[i], "--smaps") == 0) {
            smaps_count = parse_pids(argv[i + 1], smaps_pids);
        } else if (strcmp(argv[i], "--file") == 0 && file_count < MAX_FILES) {
            files[file_count++] = argv[i + 1];
        } else {
            fprintf(stderr, "%s: unknown option %s\n", argv[0], argv[i]);
            return 2;
        }
    }
    int dir_fd = open(argv[1], O_RDONLY | O_DIRECTORY);
    if (dir_fd < 0) {
        perror(argv[1]);
        return 1;
    }
    struct totals t = {0};
    struct timespec pause = {(time_t)interval, (long)((interval - (time_t)interval) * 1e9)};
    for (int i = 0; i < scans; i++) {
        if (i > 0 && interval > 0) {
            nanosleep(&pause, NULL);
        }
        long long start = now_ns();
        scan(dir_fd, &t);
        if (i % smaps_every == 0) {
            read_smaps(dir_fd, smaps_pids, smaps_count, &t);
        }
        read_files(files, file_count, &t);
        printf("%lld\n", now_ns() - start);
    }
    /* Printing the totals keeps the compiler from dropping the parse. */
    fprintf(stderr, "processes=%ld threads=%ld zombies=%ld pss_kb=%ld uss_kb=%ld bytes=%ld\n",
            t.processes / scans, t.threads / scans, t.zombies / scans, t.pss_kb / scans,
            t.uss_kb / scans, t.file_bytes / scans);
    return 0;
}
