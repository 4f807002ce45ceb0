//  tests/tools/fedq_resume.c — a libfedq consumer driven line by line on
//  stdin, for the tests of a consumer whose node restarts under it
//  (tests/integration/test_client_session.py).
//
//      fedq_resume ENDPOINT QUEUE PREFETCH
//
//  Prints "ready" once consuming, then reads commands:
//
//      recv N    receive N deliveries and hold them; one line each:
//                "got ID dtag=D redelivered=0|1", or "error NAME text"
//      ack       ack every held delivery, one by one: "ack D NAME"
//      stats     "stats reopens=N stale=N"
//      quit      close the session and exit 0
//
//  Exit 1 when the session cannot be opened, 2 on a usage error.
#define _GNU_SOURCE
#include "fedq_client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_HELD_MAX 4096
#define S_RECV_TIMEOUT_MS 30000

static void
s_recv (fedq_client_t *c, long n, uint64_t *held, size_t *nheld)
{
    fedq_delivery_t d;
    memset (&d, 0, sizeof d);
    for (long i = 0; i < n; i++) {
        fedq_rc_t rc = fedq_client_recv (c, &d, S_RECV_TIMEOUT_MS);
        if (rc != FEDQ_OK) {
            printf ("error %s %s\n", fedq_rc_name (rc),
                    fedq_client_last_error (c));
            break;
        }
        printf ("got %.*s:%" PRIu64 " dtag=%" PRIu64 " redelivered=%d\n",
                (int) d.msg.origin.len, d.msg.origin.ptr, d.msg.seq, d.dtag,
                d.msg.redelivered ? 1 : 0);
        if (*nheld < S_HELD_MAX)
            held[(*nheld)++] = d.dtag;
    }
    fedq_delivery_release (&d);
}

int
main (int argc, char **argv)
{
    if (argc != 4) {
        fprintf (stderr, "usage: fedq_resume ENDPOINT QUEUE PREFETCH\n");
        return 2;
    }
    fedq_client_t *c = fedq_client_new (argv[1], NULL);
    if (!c) {
        fprintf (stderr, "fedq_resume: %s\n", fedq_client_last_error (NULL));
        return 1;
    }
    if (fedq_client_consume (c, argv[2], "resume",
                             (uint32_t) strtoul (argv[3], NULL, 10), false)
        != FEDQ_OK) {
        fprintf (stderr, "fedq_resume: %s\n", fedq_client_last_error (c));
        fedq_client_destroy (&c);
        return 1;
    }
    setvbuf (stdout, NULL, _IOLBF, 0);
    printf ("ready\n");
    static uint64_t held[S_HELD_MAX];
    size_t nheld = 0;
    char line[256];
    while (fgets (line, sizeof line, stdin)) {
        long n;
        if (sscanf (line, "recv %ld", &n) == 1)
            s_recv (c, n, held, &nheld);
        else if (strncmp (line, "ack", 3) == 0) {
            for (size_t i = 0; i < nheld; i++)
                printf ("ack %" PRIu64 " %s\n", held[i],
                        fedq_rc_name (fedq_client_ack (c, held[i], false)));
            nheld = 0;
            //  Let the acks go out and any answer come back.
            fedq_client_poll (c, 100);
        }
        else if (strncmp (line, "stats", 5) == 0) {
            fedq_session_stats_t st;
            fedq_client_session_stats (c, &st);
            printf ("stats reopens=%" PRIu64 " stale=%" PRIu64 "\n",
                    st.reopens, st.stale_settles);
        }
        else if (strncmp (line, "quit", 4) == 0)
            break;
        else
            printf ("error EINVAL unknown command\n");
    }
    fedq_client_destroy (&c);
    return 0;
}
