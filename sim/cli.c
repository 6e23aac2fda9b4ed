/* SPDX-License-Identifier: MIT */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

int fm_cli_option(int argc, char **argv, const char *shortopts, const struct option *options,
                  void (*usage)(FILE *out))
{
        int c = getopt_long(argc, argv, shortopts, options, NULL);
        if (c == -1)
                return FM_CLI_END;
        if (c == 'h') {
                usage(stdout);
                return FM_CLI_HELP;
        }
        return c == '?' || c == ':' ? FM_CLI_BAD : c;
}

int fm_cli_exit(int c)
{
        return c == FM_CLI_HELP ? FM_EXIT_OK : FM_EXIT_USAGE;
}

int fm_cli_number(const char *s, double *ret)
{
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || *end || !isfinite(v))
                return -EINVAL;
        *ret = v;
        return 0;
}

bool fm_cli_prefix_ok(const char *cmd, const char *prefix)
{
        size_t n = strlen(prefix);
        if (n > 0 && n <= FM_PREFIX_MAX && prefix[n - 1] != '/' && !strpbrk(prefix, "+#"))
                return true;
        fprintf(stderr,
                "fleetmedic %s: --topic-prefix %s: must be 1..%d bytes, without + or # or a "
                "trailing /\n",
                cmd, prefix, FM_PREFIX_MAX);
        return false;
}

FILE *fm_cli_open_output(const char *path, const char *mode)
{
        return strcmp(path, "-") == 0 ? stdout : fopen(path, mode);
}

int fm_cli_close_output(FILE *f, int r)
{
        if (f == stdout)
                return fflush(f) == EOF && r == 0 ? -EIO : r;
        return fclose(f) == EOF && r == 0 ? -EIO : r;
}

int fm_cli_load_scenario(const char *path, struct fm_scenario *sc)
{
        json_object *root = NULL, *lines = NULL;
        int r = fm_yaml_load(path, &root, &lines, stderr);
        if (r < 0)
                return r;
        struct fm_scn_errors *errs = calloc(1, sizeof(*errs));
        if (!errs) {
                json_object_put(root);
                json_object_put(lines);
                return -ENOMEM;
        }
        r = fm_scenario_from_json(root, lines, path, sc, errs);
        for (uint32_t k = 0; k < errs->n; k++)
                fprintf(stderr, "%s\n", errs->line[k]);
        if (errs->dropped)
                fprintf(stderr, "%s: %u more errors\n", path, errs->dropped);
        free(errs);
        json_object_put(root);
        json_object_put(lines);
        return r;
}

int fm_cli_scenario_config(const char *scenario, const char *config, char *out, size_t size)
{
        const char *slash = strrchr(scenario, '/');
        int n;
        if (config[0] == '/' || !slash)
                n = snprintf(out, size, "%s", config);
        else
                n = snprintf(out, size, "%.*s/%s", (int)(slash - scenario), scenario, config);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

void fm_cli_sim_core(const struct fm_config *cfg, bool explicit_dry_run, uint64_t seed,
                     struct fm_core_config *ret)
{
        fm_config_core(cfg, ret);
        ret->governor.dry_run = explicit_dry_run ? cfg->dry_run : false;
        ret->fleet.hash_key[0] = ret->governor.hash_key[0] = seed ^ UINT64_C(0x6a09e667f3bcc908);
        ret->fleet.hash_key[1] = ret->governor.hash_key[1] = seed ^ UINT64_C(0xbb67ae8584caa73b);
}
