#include "ac_stop.h"

#include <string.h>

volatile sig_atomic_t ac_stop_requested;
static struct sigaction old_int, old_term;

static void on_stop(int sig)
{
    (void)sig;
    ac_stop_requested = 1;
}

void ac_stop_catch(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    ac_stop_requested = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
}

void ac_stop_release(void)
{
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
}
