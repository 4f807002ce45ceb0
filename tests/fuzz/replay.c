//  tests/fuzz/replay.c — runs a fuzz target's LLVMFuzzerTestOneInput once
//  on each file named (or found in each directory named) on the command
//  line, so builds without libFuzzer still replay the corpus and every
//  input that once found a bug stays a regression test.
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int
    LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  Run the target on one file; -1 when it cannot be read.
static int
s_replay_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        perror (path);
        return -1;
    }
    uint8_t *data = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *grown = realloc (data, cap);
            if (!grown) {
                free (data);
                fclose (file);
                return -1;
            }
            data = grown;
        }
        size_t got = fread (data + size, 1, cap - size, file);
        size += got;
        if (got == 0)
            break;
    }
    int failed = ferror (file);
    fclose (file);
    if (failed) {
        perror (path);
        free (data);
        return -1;
    }
    //  An exact-size copy, so a sanitizer sees any read past the end.
    uint8_t *exact = malloc (size ? size : 1);
    if (!exact) {
        free (data);
        return -1;
    }
    if (size)
        memcpy (exact, data, size);
    free (data);
    LLVMFuzzerTestOneInput (exact, size);
    free (exact);
    return 0;
}

int
main (int argc, char *argv[])
{
    int files = 0, errors = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat (argv[i], &st) != 0) {
            perror (argv[i]);
            errors++;
            continue;
        }
        if (!S_ISDIR (st.st_mode)) {
            errors += s_replay_file (argv[i]) != 0;
            files++;
            continue;
        }
        DIR *dir = opendir (argv[i]);
        if (!dir) {
            perror (argv[i]);
            errors++;
            continue;
        }
        struct dirent *entry;
        while ((entry = readdir (dir)) != NULL) {
            if (entry->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf (path, sizeof path, "%s/%s", argv[i], entry->d_name);
            if (stat (path, &st) != 0 || !S_ISREG (st.st_mode))
                continue;
            errors += s_replay_file (path) != 0;
            files++;
        }
        closedir (dir);
    }
    printf ("replayed %d inputs, %d unreadable\n", files, errors);
    return errors || files == 0 ? 1 : 0;
}
