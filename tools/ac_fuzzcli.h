/* `attncheck fuzz` and `attncheck replay` (docs/FUZZING.md).
 * argv[0] is the subcommand's name ("fuzz" / "replay"), argv[1..] its
 * arguments: attncheck dispatches with ac_fuzz_main(argc - 1, argv + 1).
 * Both return the process exit code: 0 fine, 1 a finding or a failed
 * replay, 2 usage or input error (a bad flag is reported before any work),
 * AC_EXIT_SKIP (77) a GPU was asked for and there is none. Both answer --help. */
#ifndef AC_FUZZCLI_H
#define AC_FUZZCLI_H

#ifdef __cplusplus
extern "C" {
#endif

/* attncheck fuzz TARGET [--seconds N] [--jobs N] [--walk] [--backend auto|cpu|gpu]
 *                       [--gpus N] [--out DIR] [--seeds DIR] [--seed N] [--rows N] [-- LIBFUZZER-FLAGS...]
 * A campaign: libFuzzer fork mode over the cores when the target's libFuzzer
 * binary is built (build-fuzz/, fuzz/build.sh), else (or with --walk, or
 * with a GPU backend) the random-walk driver with one worker per core and
 * the workers spread over the GPUs. Progress line every 5 s, summary at the
 * end, findings saved under DIR/findings as case files named by target and
 * case line. */
int ac_fuzz_main(int argc, char **argv);

/* attncheck replay [--backend auto|cpu|gpu] [--target T] [--rows N] [--quiet] [--png DIR]
 *                  [--filter REGEX] FILE|DIR...
 * Reproduces bug reports (case files) and libFuzzer artifacts: prints the
 * case line, runs the kernel against the oracle, prints the verdict, the
 * worst elements with coordinates and an error map; a case file's
 * `expect` line is checked. Non-zero exit on any failure. --filter keeps
 * the inputs whose line (the case line, or the target's one-line
 * description) matches the POSIX extended regex. */
int ac_replay_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
