//  client/cli_keygen.c — `fedq keygen NAME`: a CURVE key pair as czmq
//  certificates, NAME.key (secret, mode 0600) and NAME.pub (public).
#define _GNU_SOURCE
#include "cli.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *s_usage =
    "usage: fedq keygen NAME [--role client|peer]\n"
    "Write a CURVE key pair: NAME.key (secret, mode 0600: give it to\n"
    "node.security.secret_key or to fedq --key) and NAME.pub (public: copy\n"
    "it into the authorized_keys/ folder of the nodes that must accept\n"
    "NAME, or give it to fedq --server-key). Existing files are never\n"
    "overwritten.\n"
    "  --role ROLE       record the role (client or peer) in both files\n";

enum { OPT_ROLE = 1 };

static const cli_opt_t s_opts[] = {
    {"role", 0, true, OPT_ROLE},
    {NULL, 0, false, 0},
};

//  Create path empty with mode, failing if it exists.
static int
s_create (const char *path, mode_t mode)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0)
        return -1;
    //  Whatever the umask: the secret must not be readable by others.
    fchmod (fd, mode);
    close (fd);
    return 0;
}

int
cli_cmd_keygen (int argc, char **argv, cli_global_t *g)
{
    cli_args_t args = {"keygen", argc, argv, 1, false, s_opts, g, NULL,
                       s_usage};
    int exit_code = CLI_EXIT_OK;
    const char *name = NULL;
    const char *role = NULL;
    int id;
    while ((id = cli_args_next (&args, &exit_code)) != CLI_ARGS_END) {
        if (id == CLI_ARGS_EXIT)
            return exit_code;
        if (id == CLI_ARGS_POSITIONAL) {
            if (name)
                return cli_usage_error ("keygen", "unexpected \"%s\"",
                                        args.arg);
            name = args.arg;
        }
        if (id == OPT_ROLE) {
            role = args.arg;
            if (strcmp (role, "client") && strcmp (role, "peer"))
                return cli_usage_error ("keygen",
                                        "--role wants client or peer, got "
                                        "\"%s\"", role);
        }
    }
    if (!name || !*name) {
        fputs (s_usage, stderr);
        return cli_usage_error ("keygen", "give the NAME of the key pair");
    }
    char key_path[4096], pub_path[4096];
    snprintf (key_path, sizeof key_path, "%s.key", name);
    snprintf (pub_path, sizeof pub_path, "%s.pub", name);
    const char *exists = access (key_path, F_OK) == 0   ? key_path
                         : access (pub_path, F_OK) == 0 ? pub_path
                                                        : NULL;
    if (exists) {
        fprintf (stderr,
                 "fedq: %s already exists; not overwriting it (remove it "
                 "first, or pick another NAME)\n", exists);
        return CLI_EXIT_FAIL;
    }
    if (s_create (key_path, 0600)) {
        fprintf (stderr, "fedq: cannot create %s: %s\n", key_path,
                 strerror (errno));
        return CLI_EXIT_FAIL;
    }
    if (s_create (pub_path, 0644)) {
        fprintf (stderr, "fedq: cannot create %s: %s\n", pub_path,
                 strerror (errno));
        unlink (key_path);
        return CLI_EXIT_FAIL;
    }
    zcert_t *cert = zcert_new ();
    int rc = CLI_EXIT_OK;
    if (!cert) {
        fprintf (stderr, "fedq: cannot make a key pair (no CURVE in this "
                 "libzmq?)\n");
        rc = CLI_EXIT_FAIL;
    }
    else {
        const char *base = strrchr (name, '/');
        zcert_set_meta (cert, "name", "%s", base ? base + 1 : name);
        if (role)
            zcert_set_meta (cert, "role", "%s", role);
        zcert_set_meta (cert, "created-by", "fedq keygen " FEDQ_VERSION);
        //  The files exist with the right modes: saving keeps the modes.
        if (zcert_save_secret (cert, key_path)
            || zcert_save_public (cert, pub_path)) {
            fprintf (stderr, "fedq: cannot write %s or %s: %s\n", key_path,
                     pub_path, strerror (errno));
            rc = CLI_EXIT_FAIL;
        }
        else
            printf ("wrote %s (secret: keep it private) and %s (public key "
                    "%s)\n", key_path, pub_path, zcert_public_txt (cert));
        zcert_destroy (&cert);
    }
    if (rc != CLI_EXIT_OK) {
        unlink (key_path);
        unlink (pub_path);
    }
    return rc;
}
