//  tests/unit/test_http.c — the HTTP endpoint (node/http.c) on a loopback
//  port: what each path answers before and after a snapshot, refused
//  methods, unknown paths, bad addresses.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

//  One HTTP/1.0 request (the server closes after answering); returns the
//  status code and the whole answer (headers and body) in *answer.
static int
s_request (uint16_t port, const char *method, const char *path,
           char **answer)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons (port)};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert_int_equal (connect (fd, (struct sockaddr *) &addr, sizeof addr),
                      0);
    char req[512];
    int n = snprintf (req, sizeof req,
                      "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method,
                      path);
    assert_int_equal (write (fd, req, (size_t) n), n);
    size_t size = 0, cap = 4096;
    char *buf = malloc (cap);
    for (;;) {
        if (size + 1024 > cap)
            buf = realloc (buf, cap *= 2);
        ssize_t got = read (fd, buf + size, cap - size - 1);
        if (got <= 0)
            break;
        size += (size_t) got;
    }
    close (fd);
    buf[size] = 0;
    int code = 0;
    assert_int_equal (sscanf (buf, "HTTP/1.%*d %d", &code), 1);
    *answer = buf;
    return code;
}

static const char *
s_body (const char *answer)
{
    const char *p = strstr (answer, "\r\n\r\n");
    assert_non_null (p);
    return p + 4;
}

static void
test_endpoints (void **state)
{
    http_t *http = http_new ("127.0.0.1:0", "sydney");
    assert_non_null (http);
    uint16_t port = http_port (http);
    assert_true (port > 0);
    char *a = NULL;

    //  Before the first snapshot: not healthy, nothing to show.
    assert_int_equal (s_request (port, "GET", "/healthz", &a), 503);
    free (a);
    assert_int_equal (s_request (port, "GET", "/metrics", &a), 503);
    free (a);
    assert_int_equal (s_request (port, "GET", "/status", &a), 503);
    assert_non_null (strstr (s_body (a), "sydney"));
    free (a);

    const char *doc
      = "{\"node\":{\"id\":\"sydney\",\"version\":\"0.1.0\"},\"queues\":[],"
        "\"links\":[{\"name\":\"s1\",\"kind\":\"shovel\",\"peer\":\"m\","
        "\"state\":\"running\",\"backlog_messages\":3}]}";
    http_update (http, doc);
    assert_int_equal (s_request (port, "GET", "/healthz", &a), 200);
    assert_string_equal (s_body (a), "ok\n");
    free (a);
    assert_int_equal (s_request (port, "GET", "/status", &a), 200);
    assert_string_equal (s_body (a), doc);
    assert_non_null (strstr (a, "Content-Type: application/json"));
    free (a);
    assert_int_equal (s_request (port, "GET", "/metrics", &a), 200);
    assert_non_null (strstr (a, "text/plain; version=0.0.4"));
    assert_non_null (strstr (
      s_body (a), "\nfedq_link_backlog_messages{link=\"s1\",kind=\"shovel\","
                  "peer=\"m\"} 3\n"));
    free (a);

    //  The dashboard is built in and loads nothing from elsewhere.
    assert_int_equal (s_request (port, "GET", "/", &a), 200);
    assert_non_null (strstr (a, "Content-Type: text/html"));
    assert_non_null (strstr (a, "Content-Security-Policy: default-src 'none'"));
    assert_non_null (strstr (s_body (a), "getContext(\"2d\")"));
    assert_null (strstr (s_body (a), "http://"));
    assert_null (strstr (s_body (a), "https://"));
    assert_null (strstr (s_body (a), "<script src"));
    free (a);

    //  A new snapshot replaces the last one.
    http_update (http, "{\"node\":{\"id\":\"sydney\"},\"links\":[]}");
    assert_int_equal (s_request (port, "GET", "/status", &a), 200);
    assert_string_equal (s_body (a), "{\"node\":{\"id\":\"sydney\"},"
                                     "\"links\":[]}");
    free (a);

    assert_int_equal (s_request (port, "GET", "/nope", &a), 404);
    free (a);
    assert_int_equal (s_request (port, "GET", "/status/x", &a), 404);
    free (a);
    assert_int_equal (s_request (port, "POST", "/metrics", &a), 405);
    assert_non_null (strstr (a, "Allow: GET, HEAD"));
    free (a);
    assert_int_equal (s_request (port, "DELETE", "/", &a), 405);
    free (a);
    assert_int_equal (s_request (port, "HEAD", "/status", &a), 200);
    assert_string_equal (s_body (a), "");
    free (a);

    http_update (http, NULL);       //  ignored
    http_update (NULL, doc);        //  ignored
    http_destroy (&http);
    assert_null (http);
    http_destroy (&http);           //  safe twice
}

static void
test_bad_addresses (void **state)
{
    assert_null (http_new ("127.0.0.1", "n"));
    assert_null (http_new ("127.0.0.1:http", "n"));
    assert_null (http_new ("127.0.0.1:70000", "n"));
    assert_null (http_new ("[::1", "n"));
    assert_null (http_new ("::1:80", "n"));
    assert_null (http_new (":80", "n"));
    assert_null (http_new ("no-such-host.invalid:80", "n"));

    //  A port in use is an error, not a silent second listener.
    http_t *first = http_new ("127.0.0.1:0", "n");
    assert_non_null (first);
    char taken[64];
    snprintf (taken, sizeof taken, "127.0.0.1:%u", http_port (first));
    assert_null (http_new (taken, "n"));
    http_destroy (&first);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
      cmocka_unit_test (test_endpoints),
      cmocka_unit_test (test_bad_addresses),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
