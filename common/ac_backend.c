#include "ac_backend.h"

#include <string.h>

static const char *const bug_names[AC_BUG_COUNT] = {
    "none",           "scale-one",      "gqa-mod",        "top-left",
    "causal-off-by-one", "drop-last-key", "store-pad-write", "tail-unmasked",
    "combine-no-inf-guard", "lse-base2",  "skip-block-first",
    "window-top-left", "softcap-after-mask", "alibi-sign", "sink-numerator",
    "v-scale-dropped", "dv-as-dqk",
};

const char *ac_bug_name(ac_bug b) { return ((int)b >= 0 && b < AC_BUG_COUNT) ? bug_names[b] : "?"; }

int ac_bug_parse(const char *name, ac_bug *out)
{
    for (int b = 0; b < AC_BUG_COUNT; b++)
        if (name && !strcmp(name, bug_names[b])) {
            *out = (ac_bug)b;
            return 0;
        }
    return -1;
}
