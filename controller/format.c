/* SPDX-License-Identifier: MIT */
#include "format.h"

#include <inttypes.h>
#include <math.h>

static void print_time(FILE *out, fm_ms t, fm_ms origin)
{
        if (origin >= 0)
                fprintf(out, "t=+%" PRId64 ".%03" PRId64 "s", (t - origin) / FM_MS_PER_S,
                        (t - origin) % FM_MS_PER_S);
        else
                fprintf(out, "t=%" PRId64 ".%03" PRId64, t / FM_MS_PER_S, t % FM_MS_PER_S);
}

void fm_print_evidence(FILE *out, const struct fm_evidence *e)
{
        for (uint32_t k = 0; k < e->n; k++) {
                double v = e->item[k].value;
                fputs(k ? " " : "", out);
                if (v == floor(v) && fabs(v) < 1e15)
                        fprintf(out, "%s=%.0f", e->item[k].key, v);
                else
                        fprintf(out, "%s=%.3f", e->item[k].key, v);
        }
}

void fm_print_transition(FILE *out, const struct fm_transition *t, fm_ms origin)
{
        print_time(out, t->t.at, origin);
        fprintf(out,
                " breaker %s/%s (version %s): %s -> %s cause=%s\n    evidence: ", t->deployment,
                t->instance, t->version[0] ? t->version : "-", fm_breaker_state_name(t->t.from),
                fm_breaker_state_name(t->t.to), fm_breaker_cause_name(t->t.cause));
        fm_print_evidence(out, &t->t.evidence);
        fputc('\n', out);
}

void fm_print_intent(FILE *out, const struct fm_intent *it, fm_ms origin)
{
        print_time(out, it->at, origin);
        fprintf(out, " intent %s %s%s%s policy=%s reason=%s verdict=%s key=%s\n",
                fm_action_name(it->action), it->deployment, it->instance[0] ? "/" : "",
                it->instance, it->policy, it->reason ? it->reason : "-",
                fm_verdict_name(it->verdict), it->key);
        if (it->action == FM_ACTION_ALERT)
                fprintf(out, "    alert (%s): %s\n", fm_severity_name(it->arg.alert.severity),
                        it->arg.alert.summary);
}
