/* attncheck-fuzz: `fuzz` and `replay` as a program of their own, built with
 * any C compiler (the GPU host has no clang): the same functions that
 * `attncheck fuzz` and `attncheck replay` call, and the command ctest's
 * corpus label runs. */
#include <stdio.h>
#include <string.h>

#include "ac_fuzzcli.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "fuzz")) return ac_fuzz_main(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "replay")) return ac_replay_main(argc - 1, argv + 1);
    fprintf(stderr, "usage: attncheck-fuzz fuzz TARGET [options]   (attncheck-fuzz fuzz --list)\n"
                    "       attncheck-fuzz replay [options] FILE|DIR...\n");
    return 2;
}
