/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * multi: run several guest test programs in one boot, one after the other.
 *
 *   multi PROG [ARG...] [-- PROG [ARG...]]...
 *
 * Each PROG is looked up in /bin. Exits 0 only if every program did (and
 * there was at least one); the programs do their own checks, all-ones
 * reads included (guest-util.h). The init passes arguments
 * comma-separated, so "multi,gpio-test,--,dma-test".
 */
#include <sys/wait.h>

#include "guest-util.h"

int main(int argc, char **argv)
{
    int i = 1, failed = 0, runs = 0;

    g_prog = "multi";
    while (i < argc) {
        int j = i, status;
        char path[PATH_MAX];
        pid_t pid;

        while (j < argc && strcmp(argv[j], "--"))
            j++;
        argv[j < argc ? j : argc] = NULL;
        snprintf(path, sizeof(path), "/bin/%s", argv[i]);
        say("running %s", argv[i]);
        pid = fork();
        if (pid == 0) {
            execv(path, argv + i);
            printf("multi: %s: %s\n", path, strerror(errno));
            _exit(127);
        }
        if (pid < 0 || waitpid(pid, &status, 0) < 0) {
            say("%s failed: %s", argv[i], strerror(errno));
            failed++;
        } else if (WIFSIGNALED(status)) {
            say("%s failed: killed by signal %d", argv[i], WTERMSIG(status));
            failed++;
        } else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
            say("%s failed (exit status %d)", argv[i],
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            failed++;
        }
        runs++;
        i = j + 1;
    }
    say("%d of %d programs passed", runs - failed, runs);
    if (!runs)
        say("no programs given: nothing was checked");
    return failed || !runs ? 1 : 0;
}
