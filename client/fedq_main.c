//  client/fedq_main.c — the `fedq` command (docs/client.md).
#include "cli.h"

int
main (int argc, char **argv)
{
    return cli_main (argc, argv);
}
