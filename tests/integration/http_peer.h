/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Blocking HTTP requests from integration tests to the peers they started
 * (a fake's admin endpoints, a real server's readiness probe), with
 * libcurl. Include after <cmocka.h>.
 */

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#define FM_HTTP_TIMEOUT_MS 10000L

struct fm_http_sink {
        char *p;
        size_t n;
};

static inline size_t fm_http_sink_write(char *d, size_t size, size_t nmemb, void *u)
{
        struct fm_http_sink *s = u;
        size_t n = size * nmemb;
        char *p = realloc(s->p, s->n + n + 1);
        if (!p)
                return 0;
        memcpy(p + s->n, d, n);
        s->n += n;
        p[s->n] = '\0';
        s->p = p;
        return n;
}

/*
 * method to url (method NULL: GET, or POST with a body), with body as JSON
 * when not NULL. Returns the HTTP status, 0 when no answer came; the
 * answer's body goes to *ret_body (caller frees; NULL when empty) unless
 * ret_body is NULL.
 */
static inline long fm_http(const char *method, const char *url, const char *body, char **ret_body)
{
        struct fm_http_sink s = {0};
        struct curl_slist *h = NULL;
        long status = 0;
        CURL *c = curl_easy_init();

        assert_non_null(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, FM_HTTP_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fm_http_sink_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
        if (method)
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
                h = curl_slist_append(NULL, "Content-Type: application/json");
                assert_non_null(h);
                curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        }
        if (curl_easy_perform(c) == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        curl_slist_free_all(h);
        if (ret_body)
                *ret_body = s.p;
        else
                free(s.p);
        return status;
}

/*
 * The same, the answer parsed (caller puts it; NULL when it is empty or not
 * JSON); the test fails when no answer came.
 */
static inline struct json_object *fm_http_json(const char *method, const char *url,
                                               const char *body, long *ret_status)
{
        char *text = NULL;
        long status = fm_http(method, url, body, &text);
        struct json_object *o = text ? json_tokener_parse(text) : NULL;

        free(text);
        if (status == 0)
                fail_msg("no answer from %s", url);
        if (ret_status)
                *ret_status = status;
        return o;
}
