//  federation/fed_status.c — status JSON of a federated queue and its
//  links (fed_status, fed.h). Shares the state of fed.c (fed_internal.h).
#define _GNU_SOURCE
#include "fed_internal.h"

#include <czmq.h>
#include <jansson.h>
#include <string.h>

//  --------------------------------------------------------------------
//  Status

static json_t *
s_stream_status (fed_t *self, const char *peer, fed_stream_t *s,
                 const char *state, const char *error, uint64_t reconnects)
{
    uint64_t end = s_history_end (self);
    s_member_t *m = s ? s->member : NULL;
    for (size_t i = 0; i < self->nmembers && !m; i++)
        if (strcmp (self->members[i]->id, peer) == 0)
            m = self->members[i];
    //  What the peer has not acknowledged yet (while connected: what this
    //  stream has not had confirmed; otherwise where it stood last).
    uint64_t acked = s ? fed_stream_acked (s) : m ? m->acked : 0;
    if (!s && m && m->sender && m->sender->skipped_from < acked)
        acked = m->sender->skipped_from;    //  not held: its claim is old
    if (acked < self->h->compacted)
        acked = self->h->compacted;
    uint64_t backlog = end > acked ? end - acked : 0;
    uint64_t bytes = 0;
    int64_t oldest = 0;
    const qentry_t *first = s_history_at (self, acked);
    if (first)
        oldest = first->enqueued_at;
    //  Sizes are in memory: sum the unacknowledged part (it used to be
    //  0 unless the whole history was unacknowledged).
    if (backlog == self->h->ready_count)
        bytes = self->h->ready_bytes;
    else
        for (uint64_t i = acked; i < end; i++) {
            const qentry_t *e = s_history_at (self, i);
            bytes += e ? e->size : 0;
        }
    double lag = 0;
    if (backlog && oldest) {
        int64_t age = fedq_wall_ms () - oldest;
        lag = age > 0 ? (double) age / 1000.0 : 0;
    }
    char name[2 * PROTO_MAX_NAME + 2];
    snprintf (name, sizeof name, "%s/%s", self->name, peer);
    bool lag_alert = self->cfg.lag_alert_ms
                     && lag * 1000.0 > (double) self->cfg.lag_alert_ms;
    bool backlog_alert = self->cfg.backlog_alert
                         && backlog > self->cfg.backlog_alert;
    json_t *j = json_pack (
      "{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, "
      "s:b, s:b, s:s, s:f, s:I, s:I}",
      "name", name, "kind", "federation", "peer", peer, "queue", self->name,
      "state", state, "backlog_messages", (json_int_t) backlog,
      "backlog_bytes", (json_int_t) bytes, "lag_seconds", lag,
      "forwarded_total", (json_int_t) (s ? s->sent_total : 0),
      "confirmed_total",
      (json_int_t) (s ? s->sent_total - s->sent_count : 0),
      "applied_total", (json_int_t) (s ? s->applied_total : 0),
      "duplicates_dropped_total", (json_int_t) (s ? s->duplicates_total : 0),
      "reconnects_total", (json_int_t) reconnects, "lag_alert", lag_alert,
      "backlog_alert", backlog_alert, "last_error", error ? error : "",
      "lag_alert_seconds", (double) self->cfg.lag_alert_ms / 1000.0,
      "history_events", (json_int_t) (end - self->h->compacted),
      "history_compacted", (json_int_t) self->h->compacted);
    json_object_set_new (j, "forward_rate", json_real (s ? s->rate : 0.0));
    //  Bounded history and full resyncs (fed_resync.c).
    json_t *extra = json_pack (
      "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "history_bytes",
      (json_int_t) self->h->ready_bytes, "history_max_messages",
      (json_int_t) self->cfg.history_max_messages, "history_max_bytes",
      (json_int_t) self->cfg.history_max_bytes, "history_dropped_total",
      (json_int_t) self->history_dropped_total, "resync_total",
      (json_int_t) (m ? m->resync_total : 0), "resync_sent_total",
      (json_int_t) (m ? m->resync_sent_total : 0), "resync_skipped_total",
      (json_int_t) (m ? m->resync_skipped_total : 0),
      "resync_removed_total", (json_int_t) (m ? m->resync_removed_total : 0),
      "incarnation_resets_total",
      (json_int_t) (m ? m->incarnation_resets_total : 0), "resyncing",
      s && s->resync);
    json_object_update (j, extra);
    json_decref (extra);
    json_object_set_new (j, "relays_skipped_total",
                         json_integer ((json_int_t) (m ? m->relays_skipped_total
                                                       : 0)));
    json_object_set_new (j, "errors_total",
                         json_integer ((json_int_t) (s ? s->errors_total
                                                       : 0)));
    return j;
}

void
fed_status (fed_t *self, void *json_links)
{
    json_t *links = json_links;
    bool lag_any = false, backlog_any = false;
    for (size_t i = 0; i < self->nlinks; i++) {
        s_link_t *link = &self->links[i];
        const char *state = link->state == LINK_RUNNING        ? "running"
                            : link->state == LINK_RECONNECTING ? "reconnecting"
                                                               : "starting";
        json_t *j = s_stream_status (self, link->peer_id, link->stream, state,
                                     link->last_error, link->reconnects_total);
        lag_any |= json_is_true (json_object_get (j, "lag_alert"));
        backlog_any |= json_is_true (json_object_get (j, "backlog_alert"));
        json_array_append_new (links, j);
    }
    //  Members that link to us (without us linking to them).
    for (size_t i = 0; i < self->nstreams; i++) {
        fed_stream_t *s = self->streams[i];
        if (s->from_link)
            continue;
        bool listed = false;
        for (size_t k = 0; k < self->nlinks; k++)
            if (strcmp (self->links[k].peer_id, s->member->id) == 0)
                listed = true;
        if (!listed)
            json_array_append_new (links, s_stream_status (self, s->member->id,
                                                           s, "running", NULL,
                                                           0));
    }
    if (lag_any != self->lag_alert)
        fedq_log_at (lag_any ? FEDQ_LOG_WARN : FEDQ_LOG_INFO, __FILE__,
                     __LINE__, "federation=%s alert=lag %s", self->name,
                     lag_any ? "firing" : "cleared");
    if (backlog_any != self->backlog_alert)
        fedq_log_at (backlog_any ? FEDQ_LOG_WARN : FEDQ_LOG_INFO, __FILE__,
                     __LINE__, "federation=%s alert=backlog %s", self->name,
                     backlog_any ? "firing" : "cleared");
    self->lag_alert = lag_any;
    self->backlog_alert = backlog_any;
}
