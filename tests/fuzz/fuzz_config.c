//  tests/fuzz/fuzz_config.c — libFuzzer target for the configuration
//  loader (config/config.h). Each input is loaded as a YAML file without
//  the checks that look at the machine. Whatever loads must dump to YAML
//  that loads back to an equal config and dumps to the same text again;
//  whatever does not load must have printed at least one FILE:LINE:COL
//  error. Any other outcome aborts.
#define _GNU_SOURCE
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
    LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define S_CHECK(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf (stderr, "fuzz_config: %s:%d: check failed: %s\n",         \
                     __FILE__, __LINE__, #cond);                               \
            abort ();                                                          \
        }                                                                      \
    } while (0)

static char *
s_dump (const cfg_t *cfg, size_t *size)
{
    char *text = NULL;
    FILE *out = open_memstream (&text, size);
    S_CHECK (out);
    cfg_dump (cfg, out, true);
    fclose (out);
    return text;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static const cfg_load_opts_t opts = {false, false};
    char *errors = NULL;
    size_t errors_size = 0;
    FILE *errs = open_memstream (&errors, &errors_size);
    S_CHECK (errs);
    cfg_t *cfg = NULL;
    fedq_rc_t rc = cfg_load_string ((const char *) data, size, "fuzz.yaml",
                                    &opts, errs, &cfg);
    fclose (errs);
    if (rc != FEDQ_OK) {
        S_CHECK (rc == FEDQ_ECONFIG);
        S_CHECK (cfg == NULL);
        S_CHECK (strncmp (errors, "fuzz.yaml:", 10) == 0);
        free (errors);
        return 0;
    }
    S_CHECK (cfg && errors_size == 0);
    free (errors);

    size_t dump_size;
    char *dump = s_dump (cfg, &dump_size);
    cfg_t *again = NULL;
    errs = open_memstream (&errors, &errors_size);
    S_CHECK (errs);
    rc = cfg_load_string (dump, dump_size, "dump.yaml", &opts, errs, &again);
    fclose (errs);
    if (rc != FEDQ_OK)
        fprintf (stderr, "fuzz_config: the dump does not load:\n%s\n%s",
                 errors, dump);
    S_CHECK (rc == FEDQ_OK);
    S_CHECK (cfg_equal (cfg, again));
    size_t dump2_size;
    char *dump2 = s_dump (again, &dump2_size);
    S_CHECK (dump2_size == dump_size && memcmp (dump, dump2, dump_size) == 0);
    free (dump2);
    free (dump);
    free (errors);
    cfg_destroy (&again);
    cfg_destroy (&cfg);
    return 0;
}
