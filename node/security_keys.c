//  node/security_keys.c — the authorized-keys directory: one NAME.pub per
//  client or peer node that may connect (docs/config.md "Authorized
//  keys"). Each file is a czmq public certificate as `fedq keygen NAME
//  --role ROLE` writes it; the operator may add to its metadata:
//
//      metadata
//          role = "peer"                     # client | peer (required)
//          links = "outbox-to-melbourne"     # peer: shovel links it may
//                                            # open here; absent or "*" =
//                                            # any, "" = none
//          queues = "audit"                  # peer: federated queues it
//                                            # may stream; same rules
//          node = "sydney"                   # peer: the node id it speaks
//                                            # for; default NAME
//      curve
//          public-key = "..."
//
//  NAME (the file name less ".pub") is the identity: the ZAP handler
//  names each connection by it, logs and status show it.
#define _GNU_SOURCE
#include "security.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

//  A list of names from a metadata value, or "any".
typedef struct {
    bool any;                   //  absent or "*": every name
    char **names;
    size_t count;
} s_names_t;

typedef struct {
    char name[SECURITY_MAX_NAME + 1];   //  file name less .pub
    uint8_t key[32];                    //  public key
    char z85[SECURITY_KEY_Z85 + 1];
    security_role_t role;
    char node[PROTO_MAX_NAME + 1];      //  node id a peer speaks for
    s_names_t links;
    s_names_t queues;
    uint64_t fingerprint;
} s_key_t;

struct _security_keys_t {
    zhashx_t *by_name;          //  NAME -> s_key_t * (owns them)
    zhashx_t *by_key;           //  Z85 public key -> s_key_t * (borrowed)
};

//  --------------------------------------------------------------------
//  Helpers

static void
s_names_free (s_names_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        free (list->names[i]);
    free (list->names);
    list->names = NULL;
    list->count = 0;
}

//  Parse "a, b c" into names; NULL or "*" means any.
static void
s_names_parse (const char *text, s_names_t *list)
{
    memset (list, 0, sizeof *list);
    if (!text || strcmp (text, "*") == 0) {
        list->any = true;
        return;
    }
    char *copy = strdup (text);
    if (!copy)
        abort ();
    char *save = NULL;
    for (char *tok = strtok_r (copy, ", \t", &save); tok;
         tok = strtok_r (NULL, ", \t", &save)) {
        if (strcmp (tok, "*") == 0) {
            list->any = true;
            continue;
        }
        list->names = realloc (list->names,
                               (list->count + 1) * sizeof *list->names);
        if (!list->names)
            abort ();
        list->names[list->count++] = strdup (tok);
    }
    free (copy);
}

static bool
s_names_has (const s_names_t *list, fedq_str_t name)
{
    if (list->any)
        return true;
    for (size_t i = 0; i < list->count; i++)
        if (fedq_str_eq (name, list->names[i]))
            return true;
    return false;
}

//  "a, b" for messages; "(none)" when empty.
static void
s_names_text (const s_names_t *list, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    if (list->any) {
        snprintf (buf, size, "*");
        return;
    }
    for (size_t i = 0; i < list->count && used < size; i++)
        used += (size_t) snprintf (buf + used, size - used, "%s%s",
                                   i ? ", " : "", list->names[i]);
    if (!list->count)
        snprintf (buf, size, "(none)");
}

//  FNV-1a, over the fields that decide what a key may do.
static uint64_t
s_fnv (uint64_t h, const void *data, size_t size)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < size; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t
s_names_fnv (uint64_t h, const s_names_t *list)
{
    h = s_fnv (h, &list->any, sizeof list->any);
    for (size_t i = 0; i < list->count; i++)
        h = s_fnv (h, list->names[i], strlen (list->names[i]) + 1);
    return s_fnv (h, "|", 1);
}

static void
s_key_destroy (void **item)
{
    s_key_t *k = *item;
    if (!k)
        return;
    s_names_free (&k->links);
    s_names_free (&k->queues);
    free (k);
    *item = NULL;
}

static bool
s_name_valid (const char *name, size_t len)
{
    if (len == 0 || len > SECURITY_MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

//  --------------------------------------------------------------------
//  Loading

//  Load one NAME.pub; NULL (with a warning naming path) when unusable.
static s_key_t *
s_key_load (const char *path, const char *name, size_t name_len)
{
    zconfig_t *root = zconfig_load (path);
    if (!root) {
        fedq_warn ("authorized key %s skipped: cannot read it as a key "
                   "file; replace it with the NAME.pub from `fedq keygen`",
                   path);
        return NULL;
    }
    s_key_t *k = NULL;
    const char *pub = zconfig_get (root, "/curve/public-key", NULL);
    const char *sec = zconfig_get (root, "/curve/secret-key", NULL);
    const char *role = zconfig_get (root, "/metadata/role", NULL);
    if (!pub || strlen (pub) != SECURITY_KEY_Z85) {
        fedq_warn ("authorized key %s skipped: no curve public-key of 40 "
                   "characters; replace it with the NAME.pub from `fedq "
                   "keygen`",
                   path);
        goto done;
    }
    if (sec && *sec) {
        fedq_warn ("authorized key %s skipped: it holds a secret key; copy "
                   "only NAME.pub into authorized_keys and keep NAME.key "
                   "private",
                   path);
        goto done;
    }
    if (!role
        || (strcmp (role, "client") != 0 && strcmp (role, "peer") != 0)) {
        fedq_warn ("authorized key %s skipped: metadata role is %s%s%s; "
                   "set role = \"client\" or role = \"peer\" (or make it "
                   "with `fedq keygen NAME --role ROLE`)",
                   path, role ? "\"" : "missing", role ? role : "",
                   role ? "\"" : "");
        goto done;
    }
    k = calloc (1, sizeof *k);
    if (!k)
        abort ();
    memcpy (k->name, name, name_len);
    k->name[name_len] = 0;
    memcpy (k->z85, pub, SECURITY_KEY_Z85);
    if (!zmq_z85_decode (k->key, k->z85)) {
        fedq_warn ("authorized key %s skipped: its public-key is not Z85 "
                   "text",
                   path);
        free (k);
        k = NULL;
        goto done;
    }
    k->role = strcmp (role, "peer") == 0 ? SECURITY_ROLE_PEER
                                         : SECURITY_ROLE_CLIENT;
    const char *node = zconfig_get (root, "/metadata/node", NULL);
    snprintf (k->node, sizeof k->node, "%s", node && *node ? node : k->name);
    if (k->role == SECURITY_ROLE_PEER) {
        s_names_parse (zconfig_get (root, "/metadata/links", NULL),
                       &k->links);
        s_names_parse (zconfig_get (root, "/metadata/queues", NULL),
                       &k->queues);
    }
    uint64_t h = 1469598103934665603ull;
    h = s_fnv (h, k->key, sizeof k->key);
    h = s_fnv (h, &k->role, sizeof k->role);
    h = s_fnv (h, k->node, strlen (k->node) + 1);
    h = s_names_fnv (h, &k->links);
    h = s_names_fnv (h, &k->queues);
    k->fingerprint = h ? h : 1;
done:
    zconfig_destroy (&root);
    return k;
}

static int
s_compare_names (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

security_keys_t *
security_keys_load (const char *dir)
{
    DIR *d = opendir (dir);
    if (!d) {
        fedq_error ("cannot read the authorized keys directory %s: %s; "
                    "node.security.authorized_keys must be a directory of "
                    "NAME.pub files",
                    dir, strerror (errno));
        return NULL;
    }
    //  Sorted, so that which of two files with one key wins is stable.
    char **files = NULL;
    size_t nfiles = 0;
    struct dirent *entry;
    while ((entry = readdir (d))) {
        size_t len = strlen (entry->d_name);
        if (len <= 4 || strcmp (entry->d_name + len - 4, ".pub") != 0
            || entry->d_name[0] == '.')
            continue;
        files = realloc (files, (nfiles + 1) * sizeof *files);
        if (!files)
            abort ();
        files[nfiles++] = strdup (entry->d_name);
    }
    closedir (d);
    if (nfiles)
        qsort (files, nfiles, sizeof *files, s_compare_names);

    security_keys_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->by_name = zhashx_new ();
    self->by_key = zhashx_new ();
    zhashx_set_destructor (self->by_name, s_key_destroy);
    for (size_t i = 0; i < nfiles; i++) {
        char path[4096];
        size_t name_len = strlen (files[i]) - 4;
        snprintf (path, sizeof path, "%s/%s", dir, files[i]);
        struct stat st;
        if (!s_name_valid (files[i], name_len)) {
            fedq_warn ("authorized key %s skipped: a key NAME has 1 to 255 "
                       "characters from A-Z a-z 0-9 . _ -; rename the file",
                       path);
            continue;
        }
        if (stat (path, &st) != 0 || !S_ISREG (st.st_mode)) {
            fedq_warn ("authorized key %s skipped: not a regular file", path);
            continue;
        }
        s_key_t *k = s_key_load (path, files[i], name_len);
        if (!k)
            continue;
        s_key_t *same = zhashx_lookup (self->by_key, k->z85);
        if (same) {
            fedq_warn ("authorized key %s skipped: the same public key as "
                       "%s.pub; keep one file per key",
                       path, same->name);
            void *item = k;
            s_key_destroy (&item);
            continue;
        }
        zhashx_insert (self->by_name, k->name, k);
        zhashx_insert (self->by_key, k->z85, k);
    }
    for (size_t i = 0; i < nfiles; i++)
        free (files[i]);
    free (files);
    if (zhashx_size (self->by_name) == 0)
        fedq_warn ("no usable key in %s: every connection will be refused; "
                   "copy the NAME.pub of each client and peer there and "
                   "reload (SIGHUP)",
                   dir);
    return self;
}

static void
s_names_copy (s_names_t *to, const s_names_t *from)
{
    to->any = from->any;
    to->count = from->count;
    to->names = from->count ? calloc (from->count, sizeof *to->names) : NULL;
    if (from->count && !to->names)
        abort ();
    for (size_t i = 0; i < from->count; i++)
        to->names[i] = strdup (from->names[i]);
}

security_keys_t *
security_keys_copy (security_keys_t *self)
{
    security_keys_t *copy = calloc (1, sizeof *copy);
    if (!copy)
        abort ();
    copy->by_name = zhashx_new ();
    copy->by_key = zhashx_new ();
    zhashx_set_destructor (copy->by_name, s_key_destroy);
    for (s_key_t *k = zhashx_first (self->by_name); k;
         k = zhashx_next (self->by_name)) {
        s_key_t *c = malloc (sizeof *c);
        if (!c)
            abort ();
        *c = *k;
        s_names_copy (&c->links, &k->links);
        s_names_copy (&c->queues, &k->queues);
        zhashx_insert (copy->by_name, c->name, c);
        zhashx_insert (copy->by_key, c->z85, c);
    }
    return copy;
}

void
security_keys_destroy (security_keys_t **self_p)
{
    security_keys_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->by_key);
    zhashx_destroy (&self->by_name);
    free (self);
    *self_p = NULL;
}

size_t
security_keys_size (security_keys_t *self)
{
    return self ? zhashx_size (self->by_name) : 0;
}

const char *
security_keys_name_of (security_keys_t *self, const uint8_t *public_key)
{
    char z85[SECURITY_KEY_Z85 + 1];
    if (!self || !zmq_z85_encode (z85, public_key, 32))
        return NULL;
    s_key_t *k = zhashx_lookup (self->by_key, z85);
    return k ? k->name : NULL;
}

uint64_t
security_keys_fingerprint (security_keys_t *self, const char *name)
{
    s_key_t *k = self && name ? zhashx_lookup (self->by_name, name) : NULL;
    return k ? k->fingerprint : 0;
}

//  --------------------------------------------------------------------
//  Decisions

static bool
s_is_peer_command (uint32_t cmd)
{
    return (cmd >= PROTO_LINK_HELLO && cmd <= PROTO_LINK_SKIP)
           || (cmd >= PROTO_FED_HELLO && cmd <= PROTO_FED_DIRECT);
}

fedq_rc_t
security_keys_authorize (security_keys_t *self, const char *name,
                         const proto_frame_t *frame, char *why,
                         size_t why_size)
{
    s_key_t *k = self && name ? zhashx_lookup (self->by_name, name) : NULL;
    char list[512];
    if (!k) {
        snprintf (why, why_size,
                  "key \"%s\" is not authorized on this node (revoked or "
                  "unknown)",
                  name ? name : "");
        return FEDQ_EDENIED;
    }
    if (!s_is_peer_command (frame->cmd))
        return FEDQ_OK;
    if (k->role != SECURITY_ROLE_PEER) {
        snprintf (why, why_size,
                  "key \"%s\" has role client; %s is for peer nodes (role "
                  "peer)",
                  k->name, proto_cmd_name ((int) frame->cmd));
        return FEDQ_EDENIED;
    }
    bool hello = frame->cmd == PROTO_LINK_HELLO
                 || frame->cmd == PROTO_FED_HELLO;
    if (hello && (frame->present & PF_NODE)
        && !fedq_str_eq (frame->node, k->node)) {
        snprintf (why, why_size,
                  "key \"%s\" speaks for node \"%s\", not \"%.*s\"", k->name,
                  k->node, (int) frame->node.len,
                  frame->node.ptr ? frame->node.ptr : "");
        return FEDQ_EDENIED;
    }
    if (frame->cmd == PROTO_LINK_HELLO
        && !s_names_has (&k->links, frame->link)) {
        s_names_text (&k->links, list, sizeof list);
        snprintf (why, why_size,
                  "key \"%s\" may not open link \"%.*s\" (its links: %s)",
                  k->name, (int) frame->link.len,
                  frame->link.ptr ? frame->link.ptr : "", list);
        return FEDQ_EDENIED;
    }
    if (frame->cmd == PROTO_FED_HELLO
        && !s_names_has (&k->queues, frame->queue)) {
        s_names_text (&k->queues, list, sizeof list);
        snprintf (why, why_size,
                  "key \"%s\" may not federate queue \"%.*s\" (its queues: "
                  "%s)",
                  k->name, (int) frame->queue.len,
                  frame->queue.ptr ? frame->queue.ptr : "", list);
        return FEDQ_EDENIED;
    }
    return FEDQ_OK;
}
