#include "engine/progress.h"
#include "util/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct line {
    char name[128];
    char state[16];
    uint32_t attempt;
    size_t items_in, items_out;
    int64_t started_ns, ended_ns;
} line;

struct sh_progress {
    FILE *out;
    line *lines;
    size_t len, cap;
    size_t drawn; /* lines on screen from the last draw */
    /* Log lines come from any thread (plugins log while their stage runs): each one takes the display down and
     * puts it back under this lock, so lines never land inside it. */
    pthread_mutex_t lock;
};

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void erase(sh_progress *p);
static void draw(sh_progress *p, int64_t now_ns);

static void before_log(void *ctx)
{
    sh_progress *p = ctx;
    pthread_mutex_lock(&p->lock);
    erase(p);
}

static void after_log(void *ctx)
{
    sh_progress *p = ctx;
    draw(p, monotonic_ns());
    pthread_mutex_unlock(&p->lock);
}

sh_progress *sh_progress_new(FILE *out)
{
    sh_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->out = out;
    pthread_mutex_init(&p->lock, NULL);
    sh_log_set_guard(before_log, after_log, p);
    return p;
}

void sh_progress_free(sh_progress *p)
{
    if (!p)
        return;
    sh_log_set_guard(NULL, NULL, NULL);
    pthread_mutex_destroy(&p->lock);
    free(p->lines);
    free(p);
}

static line *find(sh_progress *p, const char *name)
{
    for (size_t i = 0; i < p->len; i++)
        if (strcmp(p->lines[i].name, name) == 0)
            return &p->lines[i];
    return NULL;
}

void sh_progress_set(sh_progress *p, const char *name, const char *state, uint32_t attempt, size_t items_in,
                     size_t items_out, int64_t started_ns, int64_t ended_ns)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    line *l = find(p, name);
    if (!l) {
        if (p->len == p->cap) {
            size_t cap = p->cap ? p->cap * 2 : 8;
            line *grown = realloc(p->lines, cap * sizeof *grown);
            if (!grown) {
                pthread_mutex_unlock(&p->lock);
                return;
            }
            p->lines = grown;
            p->cap = cap;
        }
        l = &p->lines[p->len++];
        snprintf(l->name, sizeof l->name, "%s", name);
    }
    snprintf(l->state, sizeof l->state, "%s", state);
    l->attempt = attempt;
    l->items_in = items_in;
    l->items_out = items_out;
    l->started_ns = started_ns;
    l->ended_ns = ended_ns;
    pthread_mutex_unlock(&p->lock);
}

static void erase(sh_progress *p)
{
    /* Up to the first line drawn, then clear to the end of the screen. */
    if (p->drawn)
        fprintf(p->out, "\033[%zuA", p->drawn);
    fputs("\r\033[J", p->out);
    p->drawn = 0;
}

static void draw(sh_progress *p, int64_t now_ns)
{
    for (size_t i = 0; i < p->len; i++) {
        const line *l = &p->lines[i];
        double s = (double)((l->ended_ns ? l->ended_ns : now_ns) - l->started_ns) / 1e9;
        char out[32] = "-";
        if (l->items_out != SIZE_MAX)
            snprintf(out, sizeof out, "%zu", l->items_out);
        fprintf(p->out, "  %s %-24.24s %-9s attempt %-3u in %-8zu out %-8s %7.1fs\n",
                l->ended_ns ? " " : "\342\226\270", l->name, l->state, l->attempt, l->items_in, out, s < 0 ? 0 : s);
    }
    p->drawn = p->len;
    fflush(p->out);
}

void sh_progress_draw(sh_progress *p, int64_t now_ns)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    erase(p);
    draw(p, now_ns);
    pthread_mutex_unlock(&p->lock);
}

void sh_progress_clear(sh_progress *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    erase(p);
    fflush(p->out);
    p->len = 0; /* a log line from here on is not followed by a redraw */
    pthread_mutex_unlock(&p->lock);
}
