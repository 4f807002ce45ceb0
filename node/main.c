//  node/main.c — fedq-node: the broker every site runs (DESIGN.md §6).
//
//  fedq-node -c FILE               run the node
//  fedq-node -c FILE --check       validate FILE; exit 0 or print every
//                                  error as FILE:LINE:COL: message, exit 2
//  fedq-node -c FILE --dump-config print the effective config (defaults
//                                  filled in, secrets redacted)
#define _GNU_SOURCE
#include "node.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: fedq-node -c FILE [--check | --dump-config "
             "[--show-secrets]]\n"
             "  -c, --config FILE   site configuration (YAML)\n"
             "      --check         validate the configuration and exit\n"
             "      --no-port-check with --check: do not try the listen "
             "addresses\n"
             "                      (to check a file for a running node)\n"
             "      --dump-config   print the effective configuration\n"
             "      --show-secrets  with --dump-config: do not redact key "
             "paths\n"
             "  -V, --version       print the version\n"
             "  -h, --help          this help\n");
}

int
main (int argc, char **argv)
{
    const char *path = NULL;
    bool check = false, dump = false, show_secrets = false;
    bool port_check = true;
    static const struct option options[] = {
      {"config", required_argument, NULL, 'c'},
      {"check", no_argument, NULL, 'k'},
      {"dump-config", no_argument, NULL, 'd'},
      {"show-secrets", no_argument, NULL, 's'},
      {"no-port-check", no_argument, NULL, 'p'},
      {"version", no_argument, NULL, 'V'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long (argc, argv, "c:Vh", options, NULL)) != -1) {
        switch (opt) {
            case 'c': path = optarg; break;
            case 'k': check = true; break;
            case 'd': dump = true; break;
            case 's': show_secrets = true; break;
            case 'p': port_check = false; break;
            case 'V': printf ("fedq-node %s\n", FEDQ_VERSION); return 0;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
    }
    if (!path || optind < argc) {
        fprintf (stderr, "fedq-node: %s\n",
                 path ? "unexpected argument" : "-c FILE is required");
        s_usage (stderr);
        return 2;
    }
    //  --check also tries the listen addresses and key files: everything
    //  that would stop the node from starting.
    cfg_load_opts_t lopts = {.check_listen = !dump && port_check,
                             .check_key_files = true};
    cfg_t *cfg = NULL;
    if (cfg_load (path, &lopts, stderr, &cfg))
        return 2;
    if (check) {
        printf ("%s: ok\n", path);
        cfg_destroy (&cfg);
        return 0;
    }
    if (dump) {
        cfg_dump (cfg, stdout, show_secrets);
        cfg_destroy (&cfg);
        return 0;
    }
    node_t *node = node_new (&cfg);
    if (!node)
        return 1;
    int rc = node_run (node);
    node_destroy (&node);
    return rc;
}
