/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The regression main shared by the fuzz targets: built with -DFM_FUZZ_MAIN
 * (and without libFuzzer), a target replays every file named on the command
 * line, or found in the directories named, through LLVMFuzzerTestOneInput.
 * Include it once, at the end of a target, after defining FUZZ_INPUT_MAX
 * (the largest input read, in bytes). It exits 0 when every input ran and
 * there was at least one, 1 otherwise, 2 on a usage error.
 */

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_INPUT_MAX
#error "define FUZZ_INPUT_MAX before including fuzz_main.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs one file through the target; returns 0 or a negative errno. */
static int run_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        if (!f)
                return -errno;
        uint8_t *buf = malloc(FUZZ_INPUT_MAX);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        size_t n = fread(buf, 1, FUZZ_INPUT_MAX, f);
        int r = ferror(f) ? -EIO : 0;
        if (r == 0 && !feof(f))
                r = -EFBIG;
        fclose(f);
        if (r == 0)
                LLVMFuzzerTestOneInput(buf, n);
        free(buf);
        return r;
}

static int run_path(const char *path, unsigned *count)
{
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode)) {
                int r = run_file(path);
                if (r == 0)
                        (*count)++;
                return r;
        }

        DIR *dir = opendir(path);
        if (!dir)
                return -errno;
        int ret = 0;
        struct dirent *de;
        while ((de = readdir(dir))) {
                if (de->d_name[0] == '.')
                        continue;
                char sub[4096];
                int n = snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
                if (n < 0 || (size_t)n >= sizeof(sub)) {
                        ret = -ENAMETOOLONG;
                        continue;
                }
                int r = run_path(sub, count);
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", sub, strerror(-r));
                        ret = r;
                }
        }
        closedir(dir);
        return ret;
}

int main(int argc, char **argv)
{
        unsigned count = 0;
        int ret = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                int r = run_path(argv[i], &count);
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(-r));
                        ret = 1;
                }
        }
        if (count == 0) {
                fprintf(stderr, "no inputs\n");
                ret = 1;
        }
        printf("%u inputs ok\n", count);
        return ret;
}
