#include "ac_family.h"

#include <stdio.h>
#include <string.h>

#include "ac_backends.h"

static const ac_family *const all[AC_OP_COUNT + 1] = {
#define AC_FAMILY(name, NAME, ...) [AC_OP_##NAME] = &ac_family_##name,
#include "ac_families.def"
#undef AC_FAMILY
    NULL,
};

const ac_family *const *ac_families(void) { return all; }

const ac_family *ac_family_of(ac_op op) { return ((int)op >= 0 && op < AC_OP_COUNT) ? all[op] : NULL; }

const ac_family *ac_family_find(const char *name)
{
    for (int i = 0; name && i < AC_OP_COUNT; i++)
        if (!strcmp(all[i]->name, name)) return all[i];
    return NULL;
}

void ac_family_names(char *buf, size_t n)
{
    size_t len = 0;
    if (n) buf[0] = '\0';
    for (int i = 0; i < AC_OP_COUNT && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", all[i]->name,
                                i + 2 < AC_OP_COUNT ? ", " : i + 2 == AC_OP_COUNT ? " or " : "");
}

ac_judge ac_family_judge(ac_op op)
{
    const ac_family *f = ac_family_of(op);
    return f ? f->judge : AC_JUDGE_BOUND;
}

ac_run_fn ac_family_entry(const ac_family *f, ac_backend be)
{
    const ac_backend_ops *ops = ac_backend_get(be);
    return (f && ops) ? ops->run[f->op] : NULL;
}
