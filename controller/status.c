/* SPDX-License-Identifier: MIT */
#include "status.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "buf.h"

/* /status is read whole; a fleet of 65,536 instances stays well below this. */
#define STATUS_MAX_BYTES (64u << 20)
#define STATUS_TIMEOUT_S 10L

static size_t collect(char *data, size_t size, size_t n, void *userdata)
{
        struct fm_buf *b = userdata;
        if (b->len + size * n > STATUS_MAX_BYTES)
                return 0;
        return fm_buf_append(b, data, size * n) < 0 ? 0 : size * n;
}

static const char *str(json_object *o, const char *key)
{
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !v)
                return "-";
        return json_object_get_string(v);
}

static double num(json_object *o, const char *key)
{
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !v)
                return 0.0;
        return json_object_get_double(v);
}

static bool flag(json_object *o, const char *key)
{
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static json_object *array(json_object *o, const char *key)
{
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_array))
                return NULL;
        return v;
}

static void print_quantile(FILE *out, json_object *o, const char *key)
{
        json_object *v;
        if (json_object_object_get_ex(o, key, &v) && v)
                fprintf(out, " %9.1f", json_object_get_double(v));
        else
                fprintf(out, " %9s", "-");
}

static void print_status(json_object *root, FILE *out)
{
        json_object *mqtt = NULL;
        json_object_object_get_ex(root, "mqtt", &mqtt);
        double up = num(root, "uptime_s");

        fprintf(out, "fleetmedic %s, up %dh%02dm%02ds, %s, %s\n", str(root, "version"),
                (int)(up / 3600), (int)(up / 60) % 60, (int)up % 60,
                flag(root, "ready") ? "ready" : "NOT READY",
                flag(root, "dry_run") ? "dry-run" : "acting");
        fprintf(out, "mqtt: %s%s, %.0f reconnects\n\n",
                flag(mqtt, "connected") ? "connected" : "DISCONNECTED",
                flag(mqtt, "subscribed") ? ", subscribed" : "", num(mqtt, "reconnects"));

        json_object *deps = array(root, "deployments");
        size_t nd = deps ? json_object_array_length(deps) : 0;
        fprintf(out, "%-24s %-12s %9s %12s %10s %9s %9s %9s\n", "DEPLOYMENT", "VERSION",
                "INSTANCES", "REQUESTS", "ERRORS", "P50_MS", "P95_MS", "P99_MS");
        for (size_t k = 0; k < nd; k++) {
                json_object *d = json_object_array_get_idx(deps, k), *vers = array(d, "versions");
                for (size_t j = 0; vers && j < json_object_array_length(vers); j++) {
                        json_object *v = json_object_array_get_idx(vers, j);
                        const char *name = str(v, "name");
                        fprintf(out, "%-24s %-12s %9.0f %12.0f %10.0f", str(d, "name"),
                                *name ? name : "(none)", num(v, "instances"),
                                num(v, "requests_total"), num(v, "errors_total"));
                        print_quantile(out, v, "p50_ms");
                        print_quantile(out, v, "p95_ms");
                        print_quantile(out, v, "p99_ms");
                        fputc('\n', out);
                }
        }

        fprintf(out, "\n%-24s %-28s %-12s %-11s %-9s %-5s %9s %8s %7s\n", "DEPLOYMENT", "INSTANCE",
                "VERSION", "BREAKER", "HEALTH", "READY", "SEEN_AGO", "REQ_WIN", "ERR_WIN");
        for (size_t k = 0; k < nd; k++) {
                json_object *d = json_object_array_get_idx(deps, k), *insts = array(d, "instances");
                for (size_t j = 0; insts && j < json_object_array_length(insts); j++) {
                        json_object *i = json_object_array_get_idx(insts, j);
                        const char *ver = str(i, "version");
                        fprintf(out, "%-24s %-28s %-12s %-11s %-9s %-5s %8.1fs %8.0f %7.0f\n",
                                str(d, "name"), str(i, "name"), *ver ? ver : "(none)",
                                str(i, "breaker"), str(i, "health"),
                                flag(i, "ready") ? "yes" : "no", num(i, "last_seen_s_ago"),
                                num(i, "window_requests"), num(i, "window_errors"));
                }
        }

        json_object *recent = array(root, "recent_decisions");
        size_t nr = recent ? json_object_array_length(recent) : 0;
        fprintf(out, "\nrecent decisions (%zu):\n", nr);
        for (size_t k = 0; k < nr; k++) {
                json_object *r = json_object_array_get_idx(recent, k);
                const char *type = str(r, "type");
                if (strcmp(type, "transition") == 0)
                        fprintf(out, "  %.3f breaker %s/%s %s -> %s (%s)\n", num(r, "ts"),
                                str(r, "deployment"), str(r, "instance"), str(r, "from"),
                                str(r, "to"), str(r, "cause"));
                else
                        fprintf(out, "  %.3f %s %s/%s policy=%s reason=%s outcome=%s\n",
                                num(r, "ts"), str(r, "action"), str(r, "deployment"),
                                str(r, "instance"), str(r, "policy"), str(r, "reason"),
                                str(r, "outcome"));
        }
}

int fm_status_print(const char *listen, FILE *out, FILE *err)
{
        struct fm_buf body = {0};
        char url[256];
        long code = 0;
        int r;

        if (!listen || !*listen || strlen(listen) > 200 || strpbrk(listen, "/?#@ ")) {
                fprintf(err, "fleetmedic: --listen expects ADDR:PORT\n");
                return -EINVAL;
        }
        snprintf(url, sizeof(url), "http://%s/status", listen);

        CURL *c = curl_easy_init();
        if (!c)
                return -ENOMEM;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(c, CURLOPT_TIMEOUT, STATUS_TIMEOUT_S);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        CURLcode cr = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(c);

        if (cr != CURLE_OK) {
                fprintf(err, "fleetmedic: cannot reach %s: %s\n", url, curl_easy_strerror(cr));
                r = cr == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EIO;
                goto done;
        }
        if (code != 200) {
                fprintf(err, "fleetmedic: %s answered HTTP %ld\n", url, code);
                r = -EIO;
                goto done;
        }
        json_object *root = json_tokener_parse(body.data ? body.data : "");
        if (!root || !json_object_is_type(root, json_type_object)) {
                fprintf(err, "fleetmedic: %s did not answer with a JSON object\n", url);
                json_object_put(root);
                r = -EIO;
                goto done;
        }
        print_status(root, out);
        json_object_put(root);
        r = 0;
done:
        fm_buf_done(&body);
        return r;
}
