/* `attncheck selftest`: proof that the checks have power. Every injectable
 * bug (kernels/ac_backend.h) is run on the CPU models against every property
 * and against the oracle verdict; a table says which checks caught it and
 * after how many cases. The same checks must all pass with no bug injected. */
#ifndef AC_SELFTEST_H
#define AC_SELFTEST_H

#ifdef __cplusplus
extern "C" {
#endif

/* argv[0] is "selftest". Options: --cases N (grid points per check and bug,
   default 6), --seed S (default ATTNCHECK_SEED or fresh), --bug NAME (one
   bug only), --quiet, --verbose (a line per case run), --help. Returns 0
   when every bug is caught and nothing fails without a bug; 1 otherwise; 2
   on a usage error (reported before any work). */
int ac_selftest_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
