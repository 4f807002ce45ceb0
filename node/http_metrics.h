//  node/http_metrics.h — the node's status document (node_status_json)
//  rendered as Prometheus text exposition format 0.0.4 (DESIGN.md §3).
//  A pure function of the document: the HTTP thread calls it on the last
//  snapshot, the unit tests on hand-written documents.
#ifndef HTTP_METRICS_H_INCLUDED
#define HTTP_METRICS_H_INCLUDED

#include "fedq.h"

//  Content-Type of what http_metrics_render returns.
#define HTTP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

//  Render the status JSON as Prometheus text; NULL when the document is
//  not a JSON object. Fields missing from the document (or null) give no
//  sample. The caller frees the result; *size_p (when not NULL) gets its
//  length without the terminating NUL.
char *
    http_metrics_render (const char *status_json, size_t *size_p);

//  Append value to buf as a label value of the exposition format: the
//  bytes as they are, with backslash, double quote and line feed written
//  as \\, \" and \n. No NUL is appended.
void
    http_metrics_escape_label (fedq_buf_t *buf, const char *value);

#endif
