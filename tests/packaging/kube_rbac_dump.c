/* SPDX-License-Identifier: MIT */

/*
 * Prints the Kubernetes backend's permission table, fm_kube_rbac[], as a
 * JSON array of {"apiGroup", "resource", "verb"} objects on standard
 * output: every API call the code can make. test_kube_manifests.sh checks
 * the Role in packaging/kubernetes/ against it, so the Role grants exactly
 * what the code calls.
 */

#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "kube_api.h"

int main(int argc, char **argv)
{
        struct json_object *rows;
        int r = EXIT_FAILURE;

        (void)argv;
        if (argc != 1) {
                fprintf(stderr, "usage: kube_rbac_dump\n");
                return 2;
        }
        rows = json_object_new_array();
        if (!rows)
                goto oom;
        for (size_t i = 0; i < fm_kube_rbac_n; i++) {
                struct json_object *row = json_object_new_object();

                if (!row || json_object_array_add(rows, row) < 0) {
                        json_object_put(row);
                        goto oom;
                }
                if (json_object_object_add(row, "apiGroup",
                                           json_object_new_string(fm_kube_rbac[i].group)) < 0 ||
                    json_object_object_add(row, "resource",
                                           json_object_new_string(fm_kube_rbac[i].resource)) < 0 ||
                    json_object_object_add(row, "verb",
                                           json_object_new_string(fm_kube_rbac[i].verb)) < 0)
                        goto oom;
        }
        if (puts(json_object_to_json_string_ext(
                    rows, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE)) < 0 ||
            fflush(stdout) != 0) {
                perror("kube_rbac_dump: stdout");
                goto out;
        }
        r = EXIT_SUCCESS;
        goto out;
oom:
        fprintf(stderr, "kube_rbac_dump: out of memory\n");
out:
        json_object_put(rows);
        return r;
}
