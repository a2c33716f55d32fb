/* `attncheck verify` (docs/DUMP.md, docs/DIAGNOSIS.md): judge dumped attention
 * calls (.safetensors files written by a library's wrapper) against the oracle.
 *
 *   attncheck verify [--json FILE] [--junit FILE] [--png DIR] [--quiet] [--diagnose]
 *                    [--rows N] [--max-size BYTES] FILE|DIR...
 *
 * argv[0] is "verify"; attncheck dispatches with ac_verify_main(argc - 1, argv + 1).
 * Exit: 0 every call passed, 1 a call failed, 2 a file could not be read or
 * judged (a named error), or a usage error. */
#ifndef AC_VERIFY_H
#define AC_VERIFY_H

#ifdef __cplusplus
extern "C" {
#endif

int ac_verify_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
