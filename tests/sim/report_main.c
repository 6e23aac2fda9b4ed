/* SPDX-License-Identifier: MIT */
/*
 * report_main RUN.json [OUT.html]: renders a simulator run document with
 * fm_sim_report_html(), to OUT.html or standard output. Exit status 0 on
 * success, 1 on any error (reported on standard error).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "report.h"

int main(int argc, char **argv)
{
        if (argc < 2 || argc > 3) {
                fprintf(stderr, "usage: %s RUN.json [OUT.html]\n", argv[0]);
                return 1;
        }
        struct json_object *run = json_object_from_file(argv[1]);
        if (!run) {
                const char *e = json_util_get_last_err();
                fprintf(stderr, "%s: %s", argv[1], e ? e : "cannot read\n");
                return 1;
        }
        FILE *out = argc == 3 ? fopen(argv[2], "we") : stdout;
        if (!out) {
                fprintf(stderr, "%s: %s\n", argv[2], strerror(errno));
                json_object_put(run);
                return 1;
        }
        int r = fm_sim_report_html(run, out);
        if (argc == 3 && fclose(out) != 0 && r == 0)
                r = -EIO;
        json_object_put(run);
        if (r < 0) {
                fprintf(stderr, "report: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
