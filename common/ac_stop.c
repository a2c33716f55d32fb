#include "ac_stop.h"

#include <string.h>

volatile sig_atomic_t ac_stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    ac_stop_requested = 1;
}

void ac_stop_catch(ac_stop_saved *saved)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    ac_stop_requested = 0;
    sigaction(SIGINT, &sa, &saved->old_int);
    sigaction(SIGTERM, &sa, &saved->old_term);
}

void ac_stop_release(const ac_stop_saved *saved)
{
    sigaction(SIGINT, &saved->old_int, NULL);
    sigaction(SIGTERM, &saved->old_term, NULL);
}
