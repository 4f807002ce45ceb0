//  node/http.c — the HTTP endpoint: libmicrohttpd in its own thread,
//  answering from the last status snapshot the event loop published.
//
//  | path       | answer                                                |
//  | /metrics   | Prometheus text (http_metrics_render of the snapshot) |
//  | /status    | the snapshot itself, application/json                 |
//  | /healthz   | 200 "ok" if the snapshot is younger than 5 s, else 503 |
//  | /          | the dashboard page (node/dashboard.html, built in)    |
//  | other      | 404; methods other than GET and HEAD: 405             |
//
//  The loop stalling (a long fsync, a deadlock) shows as a stale
//  snapshot: /healthz turns 503 while /status still shows the last one.
#define _GNU_SOURCE
#include "http.h"
#include "http_metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

//  The dashboard page, generated at build time from node/dashboard.html
//  (node/embed.cmake).
extern const char http_dashboard_html[];
extern const size_t http_dashboard_html_size;

#define HTTP_CONNECTION_LIMIT 64
#define HTTP_PER_IP_LIMIT 32
#define HTTP_CONNECTION_TIMEOUT_S 10

struct _http_t {
    struct MHD_Daemon *daemon;  //  serving thread, NULL once stopped
    char *address;              //  as configured, for log lines
    char *node_id;
    uint16_t port;              //  bound port
    pthread_mutex_t lock;       //  guards the three fields below, only
    char *snapshot;             //  last status JSON, NULL before the first
    size_t snapshot_size;
    int64_t snapshot_at;        //  mono ms of http_update
    char *tls_cert;             //  PEM text (node.http_tls), NULL = HTTP
    char *tls_key;              //  PEM text of the private key
};

//  --------------------------------------------------------------------
//  Address

//  Parse "HOST:PORT", "[V6]:PORT" or "*:PORT" into addr; false (cause
//  written to why) when it is not one.
static bool
s_parse_address (const char *text, struct sockaddr_storage *addr,
                 socklen_t *addr_len, char *why, size_t why_size)
{
    char host[256];
    const char *port;
    if (text[0] == '[') {
        const char *end = strchr (text, ']');
        if (!end || end[1] != ':') {
            snprintf (why, why_size, "expected [IPV6]:PORT");
            return false;
        }
        if ((size_t) (end - text - 1) >= sizeof host) {
            snprintf (why, why_size, "host too long");
            return false;
        }
        memcpy (host, text + 1, (size_t) (end - text - 1));
        host[end - text - 1] = 0;
        port = end + 2;
    }
    else {
        const char *colon = strrchr (text, ':');
        if (!colon || colon == text || strchr (text, ':') != colon) {
            snprintf (why, why_size, "expected HOST:PORT");
            return false;
        }
        if ((size_t) (colon - text) >= sizeof host) {
            snprintf (why, why_size, "host too long");
            return false;
        }
        memcpy (host, text, (size_t) (colon - text));
        host[colon - text] = 0;
        port = colon + 1;
    }
    char *end = NULL;
    long number = *port ? strtol (port, &end, 10) : -1;
    if (number < 0 || number > 65535 || (end && *end)) {
        snprintf (why, why_size, "port \"%s\" is not a number 0..65535",
                  port);
        return false;
    }
    if (strcmp (host, "*") == 0)
        snprintf (host, sizeof host, "0.0.0.0");
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo (host, port, &hints, &found);
    if (rc != 0 || !found) {
        snprintf (why, why_size, "cannot resolve \"%s\": %s", host,
                  gai_strerror (rc));
        return false;
    }
    memcpy (addr, found->ai_addr, found->ai_addrlen);
    *addr_len = found->ai_addrlen;
    freeaddrinfo (found);
    return true;
}

static bool
s_is_loopback (const struct sockaddr_storage *addr)
{
    if (addr->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) addr;
        return (ntohl (in->sin_addr.s_addr) >> 24) == 127;
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) addr;
    if (IN6_IS_ADDR_V4MAPPED (&in6->sin6_addr))
        return in6->sin6_addr.s6_addr[12] == 127;
    return IN6_IS_ADDR_LOOPBACK (&in6->sin6_addr);
}

//  --------------------------------------------------------------------
//  Answers

static void
    s_mhd_log (void *cls, const char *fmt, va_list args)
      __attribute__ ((format (printf, 2, 0)));

static void
s_mhd_log (void *cls, const char *fmt, va_list args)
{
    http_t *self = cls;
    char text[512];
    vsnprintf (text, sizeof text, fmt, args);
    fedq_warn ("http %s: %s", self->address, text);
}

//  Queue a response of body (taken when must_free, borrowed otherwise).
static enum MHD_Result
s_reply (struct MHD_Connection *conn, unsigned int code,
         const char *content_type, const char *body, size_t size,
         bool must_free)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer (
      size, (void *) body,
      must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        if (must_free)
            free ((void *) body);
        return MHD_NO;
    }
    MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                             content_type);
    MHD_add_response_header (resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header (resp, "X-Content-Type-Options", "nosniff");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header (resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (strncmp (content_type, "text/html", 9) == 0)
        //  The page is self-contained: nothing may load from elsewhere.
        MHD_add_response_header (
          resp, "Content-Security-Policy",
          "default-src 'none'; script-src 'unsafe-inline'; "
          "style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "
          "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    enum MHD_Result rc = MHD_queue_response (conn, code, resp);
    MHD_destroy_response (resp);
    return rc;
}

//  A text answer made with printf.
static enum MHD_Result
    s_reply_text (struct MHD_Connection *conn, unsigned int code,
                  const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static enum MHD_Result
s_reply_text (struct MHD_Connection *conn, unsigned int code,
              const char *fmt, ...)
{
    char *text = NULL;
    va_list args;
    va_start (args, fmt);
    int n = vasprintf (&text, fmt, args);
    va_end (args);
    if (n < 0)
        return MHD_NO;
    return s_reply (conn, code, "text/plain; charset=utf-8", text, (size_t) n,
                    true);
}

//  A copy of the snapshot (caller frees) and its age in ms; NULL when
//  none was published yet.
static char *
s_snapshot (http_t *self, size_t *size_p, int64_t *age_ms)
{
    char *copy = NULL;
    pthread_mutex_lock (&self->lock);
    if (self->snapshot) {
        copy = malloc (self->snapshot_size + 1);
        if (copy) {
            memcpy (copy, self->snapshot, self->snapshot_size + 1);
            *size_p = self->snapshot_size;
            *age_ms = fedq_mono_ms () - self->snapshot_at;
        }
    }
    pthread_mutex_unlock (&self->lock);
    return copy;
}

static enum MHD_Result
s_handle (void *cls, struct MHD_Connection *conn, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **req_cls)
{
    http_t *self = cls;
    //  Refused at once: the connection closes after the answer.
    if (strcmp (method, MHD_HTTP_METHOD_GET) != 0
        && strcmp (method, MHD_HTTP_METHOD_HEAD) != 0)
        return s_reply_text (conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                             "%s is not allowed: this endpoint is read-only "
                             "(GET, HEAD)\n",
                             method);
    //  Answered on the second call, once the request is complete: an
    //  answer queued on the first call closes the connection, and
    //  scrapers and the dashboard keep theirs open.
    static int s_started;
    if (*req_cls == NULL) {
        *req_cls = &s_started;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;      //  a GET body means nothing: dropped
        return MHD_YES;
    }
    if (strcmp (url, "/") == 0 || strcmp (url, "/index.html") == 0)
        return s_reply (conn, MHD_HTTP_OK, "text/html; charset=utf-8",
                        http_dashboard_html, http_dashboard_html_size, false);

    bool metrics = strcmp (url, "/metrics") == 0;
    bool status = strcmp (url, "/status") == 0;
    bool healthz = strcmp (url, "/healthz") == 0;
    if (!metrics && !status && !healthz)
        return s_reply_text (conn, MHD_HTTP_NOT_FOUND,
                             "not found: %s\nendpoints: / (dashboard), "
                             "/status, /metrics, /healthz\n",
                             url);
    size_t size = 0;
    int64_t age = 0;
    char *json = s_snapshot (self, &size, &age);
    if (!json)
        return s_reply_text (conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                             "node %s has not published its status yet\n",
                             self->node_id);
    if (healthz) {
        free (json);
        if (age > HTTP_HEALTHZ_MAX_AGE_MS)
            return s_reply_text (
              conn, MHD_HTTP_SERVICE_UNAVAILABLE,
              "stale: node %s last published its status %.1f s ago; its "
              "event loop is stalled\n",
              self->node_id, (double) age / 1000.0);
        return s_reply_text (conn, MHD_HTTP_OK, "ok\n");
    }
    if (status)
        return s_reply (conn, MHD_HTTP_OK, "application/json", json, size,
                        true);
    size_t text_size = 0;
    char *text = http_metrics_render (json, &text_size);
    free (json);
    if (!text)
        return s_reply_text (conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             "the status of node %s is not valid JSON\n",
                             self->node_id);
    return s_reply (conn, MHD_HTTP_OK, HTTP_METRICS_CONTENT_TYPE, text,
                    text_size, true);
}

//  --------------------------------------------------------------------
//  Life cycle

//  The whole of a (small) file as a string; NULL (logged) on failure.
static char *
s_read_pem (const char *path, const char *what)
{
    FILE *file = fopen (path, "rb");
    char *text = NULL;
    size_t size = 0;
    FILE *mem = file ? open_memstream (&text, &size) : NULL;
    if (mem) {
        char buf[4096];
        size_t got;
        while ((got = fread (buf, 1, sizeof buf, file)) > 0
               && size + got < 1024 * 1024)
            fwrite (buf, 1, got, mem);
        fclose (mem);
    }
    if (file)
        fclose (file);
    if (!text || !size) {
        fedq_error ("node.http_tls.%s: cannot read %s; give a PEM file",
                    what, path);
        free (text);
        return NULL;
    }
    return text;
}

http_t *
http_new (const char *address, const char *node_id)
{
    return http_new_tls (address, node_id, NULL, NULL);
}

http_t *
http_new_tls (const char *address, const char *node_id,
              const char *cert_file, const char *key_file)
{
    if (!address || !node_id)
        return NULL;
    struct sockaddr_storage addr;
    socklen_t addr_len = 0;
    char why[300];
    if (!s_parse_address (address, &addr, &addr_len, why, sizeof why)) {
        fedq_error ("node.http \"%s\": %s", address, why);
        return NULL;
    }
    http_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->address = strdup (address);
    self->node_id = strdup (node_id);
    pthread_mutex_init (&self->lock, NULL);
    unsigned int flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD
                         | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (cert_file && key_file) {
        self->tls_cert = s_read_pem (cert_file, "cert");
        self->tls_key = self->tls_cert ? s_read_pem (key_file, "key") : NULL;
        if (!self->tls_key) {
            http_destroy (&self);
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    //  TLS options when configured; otherwise the array ends at once.
    struct MHD_OptionItem tls[] = {
      {self->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0,
       self->tls_cert},
      {MHD_OPTION_HTTPS_MEM_KEY, 0, self->tls_key},
      {MHD_OPTION_END, 0, NULL}};
    self->daemon = MHD_start_daemon (
      flags, 0, NULL, NULL, s_handle, self, MHD_OPTION_EXTERNAL_LOGGER,
      s_mhd_log, self, MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned int) HTTP_CONNECTION_LIMIT,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) HTTP_PER_IP_LIMIT,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) HTTP_CONNECTION_TIMEOUT_S,
      MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!self->daemon && self->tls_cert) {
        fedq_error ("cannot serve HTTPS on %s (node.http, node.http_tls): "
                    "the address is in use, or the certificate and key are "
                    "not PEM or do not match",
                    address);
        http_destroy (&self);
        return NULL;
    }
    if (!self->daemon) {
        fedq_error ("cannot serve HTTP on %s (node.http): the address is in "
                    "use or not local; pick another, or omit node.http",
                    address);
        http_destroy (&self);
        return NULL;
    }
    const union MHD_DaemonInfo *info
      = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : 0;
    if (!s_is_loopback (&addr))
        fedq_warn ("node.http %s is reachable beyond loopback and has no "
                   "authentication: /status and /metrics show every queue "
                   "and link to whoever connects; firewall it or bind "
                   "127.0.0.1",
                   address);
    fedq_info ("http%s: dashboard, /status and /metrics on %s (port %u)",
               self->tls_cert ? "s" : "", address, (unsigned) self->port);
    return self;
}

void
http_destroy (http_t **self_p)
{
    http_t *self = *self_p;
    if (!self)
        return;
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    pthread_mutex_destroy (&self->lock);
    free (self->snapshot);
    free (self->address);
    free (self->node_id);
    free (self->tls_cert);
    if (self->tls_key)
        memset (self->tls_key, 0, strlen (self->tls_key));
    free (self->tls_key);
    free (self);
    *self_p = NULL;
}

void
http_update (http_t *self, const char *status_json)
{
    if (!self || !status_json)
        return;
    size_t size = strlen (status_json);
    char *copy = malloc (size + 1);
    if (!copy)
        return;
    memcpy (copy, status_json, size + 1);
    pthread_mutex_lock (&self->lock);
    char *old = self->snapshot;
    self->snapshot = copy;
    self->snapshot_size = size;
    self->snapshot_at = fedq_mono_ms ();
    pthread_mutex_unlock (&self->lock);
    free (old);
}

uint16_t
http_port (http_t *self)
{
    return self ? self->port : 0;
}
