#include "serve/reload.h"
#include "registry/discovery.h"
#include "hooks/hooks.h"
#include "runtime/instance.h"
#include "runtime/policy.h"
#include "util/dirlist.h"
#include "util/log.h"
#include "registry/version.h"
#include "util/clock.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* IN_MODIFY is left out on purpose: a file being written is only interesting once it is closed. */
#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_ATTRIB | IN_ONLYDIR)

/* What stat says about a file: enough to tell that it was written, replaced, touched or deleted. */
typedef struct stamp {
    bool exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} stamp;

/* One descriptor as it was on disk when last applied (which is not always what the registry holds: a refused
 * version is recorded here, so that it is not refused again until it changes). */
typedef struct known {
    char *path;
    stamp desc;
    char *library; /* the library it named; NULL when it did not parse */
    stamp lib;
} known;

/* One watched directory. Several spellings of a directory share one inotify watch, hence one record. */
typedef struct watch {
    int wd;
    bool search;  /* on the search path: every descriptor in it matters */
    char **names; /* other files that matter in it: the pipeline, libraries */
    size_t name_count;
} watch;

struct sh_reload {
    sh_runtime *rt;
    int fd;
    char *pipeline; /* NULL in serve mode */
    stamp pipeline_stamp;
    known *known;
    size_t known_len;
    watch *watches;
    size_t watch_len;
    int64_t due_ns; /* when pending changes are applied; 0: none pending */
};

static stamp stamp_of(const char *path)
{
    stamp s = {0};
    struct stat st;
    if (path && stat(path, &st) == 0)
        s = (stamp){.exists = true, .dev = st.st_dev, .ino = st.st_ino, .size = st.st_size, .mtime = st.st_mtim,
                    .ctime = st.st_ctim};
    return s;
}

static bool same_time(struct timespec a, struct timespec b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

static bool same_stamp(const stamp *a, const stamp *b)
{
    if (a->exists != b->exists)
        return false;
    return !a->exists || (a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
                          same_time(a->mtime, b->mtime) && same_time(a->ctime, b->ctime));
}

static bool same_str(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

/* A descriptor, as discovery sees it: hidden files (editors' swap files) are not. */
static bool is_descriptor_name(const char *name) { return name[0] != '.' && ends_with(name, ".plugin"); }

/* A descriptor that failed to parse names no library we could track; any shared object appearing in a search
 * directory may be the one it is missing. A false alarm costs one comparison and changes nothing. */
static bool is_library_name(const char *name) { return name[0] != '.' && (ends_with(name, ".so") || strstr(name, ".so.")); }

/* Splits `path` into a new string holding its directory and a pointer to its last component. */
static char *split_path(const char *path, const char **base)
{
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    if (!slash)
        return strdup(".");
    return slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
}

static void free_known(known *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(k[i].path);
        free(k[i].library);
    }
    free(k);
}

static void free_watches(watch *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < w[i].name_count; j++)
            free(w[i].names[j]);
        free(w[i].names);
    }
    free(w);
}

static const known *find_known(const sh_reload *r, const char *path)
{
    for (size_t i = 0; i < r->known_len; i++)
        if (strcmp(r->known[i].path, path) == 0)
            return &r->known[i];
    return NULL;
}

static watch *find_watch(watch *w, size_t n, int wd)
{
    for (size_t i = 0; i < n; i++)
        if (w[i].wd == wd)
            return &w[i];
    return NULL;
}

/* Watches `dir` (once, whatever its spelling) and records that descriptors in it matter (`search`) or that the
 * file `name` in it does. A directory that cannot be watched is skipped: it may not exist yet. */
static sh_status want(sh_reload *r, watch **list, size_t *len, const char *dir, bool search, const char *name,
                      sh_error *err)
{
    int wd = inotify_add_watch(r->fd, dir, WATCH_MASK);
    if (wd < 0) {
        sh_log(errno == ENOENT || errno == ENOTDIR || errno == EACCES ? SH_LOG_DEBUG : SH_LOG_WARN,
               "reload: cannot watch %s: %s; changes there go unnoticed", dir, strerror(errno));
        return SH_S_OK;
    }
    watch *w = find_watch(*list, *len, wd);
    if (!w) {
        watch *grown = realloc(*list, (*len + 1) * sizeof *grown);
        if (!grown)
            return sh_error_set(err, SH_S_NOMEM, "out of memory watching %s", dir);
        *list = grown;
        w = &grown[(*len)++];
        *w = (watch){.wd = wd};
    }
    w->search |= search;
    if (!name)
        return SH_S_OK;
    for (size_t i = 0; i < w->name_count; i++)
        if (strcmp(w->names[i], name) == 0)
            return SH_S_OK;
    char **names = realloc(w->names, (w->name_count + 1) * sizeof *names);
    if (!names)
        return sh_error_set(err, SH_S_NOMEM, "out of memory watching %s", dir);
    w->names = names;
    if (!(names[w->name_count] = strdup(name)))
        return sh_error_set(err, SH_S_NOMEM, "out of memory watching %s", dir);
    w->name_count++;
    return SH_S_OK;
}

static sh_status want_name(sh_reload *r, watch **list, size_t *len, const char *path, sh_error *err)
{
    const char *base;
    char *dir = split_path(path, &base);
    if (!dir)
        return sh_error_set(err, SH_S_NOMEM, "out of memory watching %s", path);
    sh_status rc = want(r, list, len, dir, false, base, err);
    free(dir);
    return rc;
}

/* Watches the file at `path` by its directory, and, when it is a symbolic link (a library linked from its build
 * directory, say), the file it resolves to as well: writing there changes what is loaded but makes no event
 * beside the link. */
static sh_status want_file(sh_reload *r, watch **list, size_t *len, const char *path, sh_error *err)
{
    sh_status rc = want_name(r, list, len, path, err);
    struct stat st;
    if (rc != SH_S_OK || lstat(path, &st) != 0 || !S_ISLNK(st.st_mode))
        return rc;
    char *target = realpath(path, NULL);
    if (target)
        rc = want_name(r, list, len, target, err);
    free(target);
    return rc;
}

/* Brings the watches in line with the search path, the libraries descriptors name (which may live elsewhere)
 * and the pipeline; drops watches nothing needs any more. */
static sh_status sync_watches(sh_reload *r, sh_error *err)
{
    const sh_registry *reg = &r->rt->registry;
    watch *list = NULL;
    size_t len = 0;
    sh_status rc = SH_S_OK;
    for (size_t i = 0; rc == SH_S_OK && i < reg->dir_count; i++)
        rc = want(r, &list, &len, reg->dirs[i], true, NULL, err);
    for (size_t i = 0; rc == SH_S_OK && i < r->known_len; i++) {
        rc = want_file(r, &list, &len, r->known[i].path, err);
        if (rc == SH_S_OK && r->known[i].library)
            rc = want_file(r, &list, &len, r->known[i].library, err);
    }
    /* A refused version leaves the working one in the registry, whose library may be elsewhere. */
    for (size_t i = 0; rc == SH_S_OK && i < reg->len; i++)
        if (reg->entries[i].desc)
            rc = want_file(r, &list, &len, reg->entries[i].desc->library_path, err);
    if (rc == SH_S_OK && r->pipeline)
        rc = want_file(r, &list, &len, r->pipeline, err);
    if (rc != SH_S_OK) {
        /* The old set stays in force; watches added meanwhile are harmless and dropped next time. */
        free_watches(list, len);
        return rc;
    }
    for (size_t i = 0; i < r->watch_len; i++)
        if (!find_watch(list, len, r->watches[i].wd))
            inotify_rm_watch(r->fd, r->watches[i].wd);
    free_watches(r->watches, r->watch_len);
    r->watches = list;
    r->watch_len = len;
    return SH_S_OK;
}

/* Records how every descriptor of the registry, and the library it names, is on disk now. */
static sh_status record_registry(sh_reload *r, sh_error *err)
{
    const sh_registry *reg = &r->rt->registry;
    known *k = calloc(reg->len + 1, sizeof *k);
    if (!k)
        return sh_error_set(err, SH_S_NOMEM, "out of memory watching the plugin search path");
    for (size_t i = 0; i < reg->len; i++) {
        const sh_registry_entry *e = &reg->entries[i];
        const char *lib = e->desc ? e->desc->library_path : NULL;
        k[i] = (known){.path = strdup(e->path), .desc = stamp_of(e->path), .library = lib ? strdup(lib) : NULL,
                       .lib = stamp_of(lib)};
        if (!k[i].path || (lib && !k[i].library)) {
            free_known(k, i + 1);
            return sh_error_set(err, SH_S_NOMEM, "out of memory watching the plugin search path");
        }
    }
    r->known = k;
    r->known_len = reg->len;
    return SH_S_OK;
}

sh_status sh_reload_new(sh_runtime *rt, const char *pipeline_path, sh_reload **out, sh_error *err)
{
    *out = NULL;
    sh_reload *r = calloc(1, sizeof *r);
    if (!r)
        return sh_error_set(err, SH_S_NOMEM, "out of memory starting to watch for changes");
    r->rt = rt;
    r->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (r->fd < 0) {
        int e = errno;
        free(r);
        return sh_error_set(err, SH_S_IO, "cannot watch for changes: inotify: %s", strerror(e));
    }
    sh_status rc = SH_S_OK;
    if (pipeline_path) {
        if (!(r->pipeline = strdup(pipeline_path)))
            rc = sh_error_set(err, SH_S_NOMEM, "out of memory starting to watch for changes");
        r->pipeline_stamp = stamp_of(pipeline_path);
    }
    if (rc == SH_S_OK)
        rc = record_registry(r, err);
    if (rc == SH_S_OK)
        rc = sync_watches(r, err);
    if (rc != SH_S_OK) {
        sh_reload_free(r);
        return rc;
    }
    sh_log(SH_LOG_DEBUG, "reload: watching %zu director%s", r->watch_len, r->watch_len == 1 ? "y" : "ies");
    *out = r;
    return SH_S_OK;
}

void sh_reload_free(sh_reload *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->pipeline);
    free_known(r->known, r->known_len);
    free_watches(r->watches, r->watch_len);
    free(r);
}

int sh_reload_fd(const sh_reload *r) { return r->fd; }

/* Whether an event concerns a file we care about. */
static bool relevant(sh_reload *r, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW)
        return true; /* events were lost: look at everything */
    watch *w = find_watch(r->watches, r->watch_len, ev->wd);
    if (!w)
        return false; /* a watch we dropped; its last events may still be queued */
    if (ev->mask & IN_IGNORED) {
        /* The directory went away (or its file system): what was in it is gone too. */
        for (size_t j = 0; j < w->name_count; j++)
            free(w->names[j]);
        free(w->names);
        *w = r->watches[--r->watch_len];
        return true;
    }
    if (!ev->len)
        return false;
    for (size_t i = 0; i < w->name_count; i++)
        if (strcmp(w->names[i], ev->name) == 0)
            return true;
    return w->search && (is_descriptor_name(ev->name) || is_library_name(ev->name));
}

sh_status sh_reload_read(sh_reload *r, sh_error *err)
{
    _Alignas(struct inotify_event) char buf[8192];
    for (;;) {
        ssize_t n = read(r->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return SH_S_OK;
        if (n < 0)
            return sh_error_set(err, SH_S_IO, "reading file change events: %s", strerror(errno));
        if (n == 0)
            return SH_S_OK;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            if (relevant(r, ev)) {
                sh_log(SH_LOG_DEBUG, "reload: %s changed (event 0x%x)", ev->len ? ev->name : "a watched directory",
                       (unsigned)ev->mask);
                r->due_ns = sh_monotonic_ns() + (int64_t)SH_RELOAD_DEBOUNCE_MS * 1000000;
            }
            p += sizeof *ev + ev->len;
        }
    }
}

int sh_reload_wait_ms(const sh_reload *r)
{
    if (!r->due_ns)
        return -1;
    int64_t left = r->due_ns - sh_monotonic_ns();
    return left <= 0 ? 0 : (int)((left + 999999) / 1000000);
}

/* ---- applying changes ---- */

/* A descriptor file's stamp taken before it is read, so that a write racing the read is seen as a change the
 * next time rather than recorded as already applied. */
typedef struct prestamp {
    char *path;
    stamp st;
} prestamp;

typedef struct scan {
    sh_registry fresh; /* what discovery finds now, in search order */
    prestamp *stamps;
    size_t stamp_len;
} scan;

static void scan_free(scan *s)
{
    sh_registry_free(&s->fresh);
    for (size_t i = 0; i < s->stamp_len; i++)
        free(s->stamps[i].path);
    free(s->stamps);
}

static sh_status stamp_dir(scan *s, const char *dir, sh_error *err)
{
    sh_strlist names;
    sh_error derr;
    sh_status rc = sh_dirlist(dir, ".plugin", &names, &derr);
    if (rc != SH_S_OK)
        return rc == SH_S_NOMEM ? sh_error_set(err, rc, "%s", derr.message) : SH_S_OK; /* discovery says why */
    prestamp *grown = names.len ? realloc(s->stamps, (s->stamp_len + names.len) * sizeof *grown) : s->stamps;
    if (names.len && !grown)
        rc = sh_error_set(err, SH_S_NOMEM, "out of memory scanning %s", dir);
    else
        s->stamps = grown;
    for (size_t i = 0; rc == SH_S_OK && i < names.len; i++) {
        size_t n = strlen(dir) + strlen(names.items[i]) + 2;
        char *path = malloc(n);
        if (!path) {
            rc = sh_error_set(err, SH_S_NOMEM, "out of memory scanning %s", dir);
            break;
        }
        snprintf(path, n, "%s/%s", dir, names.items[i]); /* as discovery spells it */
        s->stamps[s->stamp_len++] = (prestamp){.path = path, .st = stamp_of(path)};
    }
    sh_strlist_clear(&names);
    return rc;
}

/* Discovers the search path again into s->fresh, as sh_discover does (each directory once, in order). */
static sh_status rescan(const sh_registry *reg, const sh_env *env, scan *s, sh_error *err)
{
    memset(s, 0, sizeof *s);
    sh_registry_init(&s->fresh);
    for (size_t i = 0; i < reg->dir_count; i++) {
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(reg->dirs[k], reg->dirs[i]) == 0;
        if (seen)
            continue;
        if (stamp_dir(s, reg->dirs[i], err) != SH_S_OK)
            return SH_S_NOMEM;
        sh_error derr;
        sh_error_clear(&derr);
        sh_status rc = sh_discover_dir(&s->fresh, env, reg->dirs[i], &derr);
        if (rc == SH_S_NOMEM)
            return sh_error_set(err, SH_S_NOMEM, "%s", derr.message);
        if (rc != SH_S_OK)
            /* A search directory that went away holds no plugins now; it is not a reason to stop. */
            sh_log(SH_LOG_WARN, "reload: %s", derr.message);
    }
    return SH_S_OK;
}

static stamp prestamp_of(const scan *s, const char *path)
{
    for (size_t i = 0; i < s->stamp_len; i++)
        if (strcmp(s->stamps[i].path, path) == 0)
            return s->stamps[i].st;
    return (stamp){0}; /* created after the listing: seen as changed next time, which is harmless */
}

static sh_registry_entry *entry_at(sh_registry *reg, const char *path)
{
    for (size_t i = 0; i < reg->len; i++)
        if (strcmp(reg->entries[i].path, path) == 0)
            return &reg->entries[i];
    return NULL;
}

/* Removes entry `i` from `reg`, keeping the order of the rest (it is the search order). */
static void remove_entry(sh_registry *reg, size_t i)
{
    sh_registry_entry *e = &reg->entries[i];
    free(e->path);
    free(e->name);
    free(e->reason);
    sh_descriptor_free(e->desc);
    memmove(e, e + 1, (reg->len - i - 1) * sizeof *e);
    reg->len--;
}

/* Loads the plugin in a throwaway worker, as a run would (policy, limits, host configuration), and closes it.
 * No stage is called: this checks what loading checks, the binary against its descriptor and init(). */
static sh_status check_binary(sh_runtime *rt, sh_descriptor *d, sh_error *err)
{
    /* Always in a worker, never in the host: the new binary is untrusted until it passes. A plugin trusted to
     * run in the host would get no confinement there, so its check does with what this kernel offers. */
    bool in_host = sh_runtime_isolation(rt, d, SH_ISOLATION_DEFAULT) == SH_ISOLATION_NONE;
    sh_sandbox_policy policy;
    sh_status rc = sh_runtime_policy(rt, d, SH_ISOLATION_PROCESS, rt->allow_unconfined || in_host, &policy, err);
    if (rc != SH_S_OK)
        return rc;
    sh_limits limits;
    sh_runtime_limits(rt, d, &limits);
    sh_log(SH_LOG_INFO, "reload: checking plugin '%s' %s (%s) in a throwaway worker", d->name, d->version,
           d->library_path);
    /* Its dependencies load before it, as in a run: the versions the registry holds now. */
    const sh_registry_entry *deps[64];
    sh_registry_entry probe = {.path = d->path, .name = d->name, .desc = d};
    size_t n = d->requires.len ? sh_registry_dependencies(&rt->registry, &probe, deps, 64) : 0;
    sh_descriptor *dep_descs[64];
    for (size_t i = 0; i < n; i++)
        dep_descs[i] = deps[i]->desc;
    sh_descriptor with = *d;
    with.deps = n ? dep_descs : NULL;
    with.dep_count = n;
    with.owns_deps = false;
    sh_instance *in = NULL;
    rc = sh_instance_open(&with, SH_ISOLATION_PROCESS, &limits, sh_runtime_plugin_config(rt, d->name), &policy,
                          rt->zygote, &in, err);
    sh_instance_close(in);
    return rc;
}

/* Plugin names whose workers must go, each once. */
typedef struct namelist {
    char **items;
    size_t len;
} namelist;

static sh_status retire(namelist *l, const char *name, sh_error *err)
{
    if (!name)
        return SH_S_OK;
    for (size_t i = 0; i < l->len; i++)
        if (strcmp(l->items[i], name) == 0)
            return SH_S_OK;
    char **grown = realloc(l->items, (l->len + 1) * sizeof *grown);
    if (!grown || !(grown[l->len] = strdup(name))) {
        if (grown)
            l->items = grown;
        return sh_error_set(err, SH_S_NOMEM, "out of memory reloading plugin '%s'", name);
    }
    l->items = grown;
    l->len++;
    return SH_S_OK;
}

static __attribute__((format(printf, 2, 3))) void note(sh_buf *what, const char *fmt, ...)
{
    char line[SH_ERROR_MESSAGE_MAX + 512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (what->len)
        sh_buf_puts(what, "; ");
    sh_buf_puts(what, line);
}

static const char *label(const sh_registry_entry *e) { return e->name ? e->name : e->path; }

/* Why an entry is being replaced, for the change note. */
static void describe_change(sh_buf *what, const sh_registry_entry *old, const known *k, const known *now,
                            const sh_registry_entry *fresh)
{
    if (!old) {
        if (fresh->desc)
            note(what, "plugin '%s' added (%s)", fresh->desc->name, fresh->path);
        else
            note(what, "invalid descriptor %s added: %s", fresh->path, fresh->reason);
    } else if (!fresh->desc) {
        note(what, "plugin '%s' is now invalid: %s", label(old), fresh->reason);
    } else if (!k || !same_stamp(&k->desc, &now->desc)) {
        note(what, "plugin '%s' updated: descriptor %s changed", fresh->desc->name, fresh->path);
    } else if (!same_str(k->library, now->library)) {
        note(what, "plugin '%s' updated: it now names library %s", fresh->desc->name, now->library);
    } else {
        note(what, "plugin '%s' updated: library %s %s", fresh->desc->name, now->library,
             now->lib.exists ? "changed" : "is gone");
    }
}

/* Undoes a failed rebuild: descriptors taken from the old registry go back to it. `lost` is the old entry whose
 * descriptor a failed sh_registry_add freed, if any: it must not stay without one. */
static void give_back(sh_registry *old, sh_registry *next, sh_registry_entry **origin, sh_registry_entry *lost)
{
    for (size_t j = 0; j < next->len; j++)
        if (origin[j]) {
            origin[j]->desc = next->entries[j].desc;
            next->entries[j].desc = NULL;
        }
    if (lost)
        remove_entry(old, (size_t)(lost - old->entries));
}

/* Forgets every plugin's list of dependencies: they point at other entries' descriptors, some of which a reload
 * frees. sh_registry_check_dependencies attaches them again. */
static void detach_dependencies(sh_registry *reg)
{
    for (size_t i = 0; i < reg->len; i++) {
        sh_descriptor *d = reg->entries[i].desc;
        if (d && d->deps && !d->owns_deps) {
            free(d->deps);
            d->deps = NULL;
            d->dep_count = 0;
        }
    }
}

static bool requires_one_of(const sh_descriptor *d, const namelist *names)
{
    for (size_t r = 0; d && r < d->requires.len; r++)
        for (size_t i = 0; i < names->len; i++)
            if (strcmp(d->requirements[r].name, names->items[i]) == 0)
                return true;
    return false;
}

/* What discovery at start decides beyond the descriptors themselves, decided again for the new registry: an
 * unchanged plugin keeps its health and quarantine; a changed one is quarantined only if its library, as it is
 * now, still is; then every dependency is checked again. */
static void settle(sh_runtime *rt, sh_registry *next, sh_registry_entry *const *origin)
{
    for (size_t j = 0; j < next->len; j++) {
        sh_registry_entry *e = &next->entries[j];
        if (e->status != SH_PLUGIN_AVAILABLE)
            continue;
        const sh_registry_entry *o = origin[j];
        const char *last = NULL;
        if (o) {
            e->health_failures = o->health_failures;
            if (o->status == SH_PLUGIN_QUARANTINED || o->status == SH_PLUGIN_DEGRADED)
                sh_registry_set_status(e, o->status, o->reason);
        } else if (rt->quarantine && sh_quarantine_is_quarantined(rt->quarantine, e->desc->library_path, &last)) {
            char why[2048];
            sh_runtime_quarantine_reason(rt, e, last, why, sizeof why);
            sh_registry_set_status(e, SH_PLUGIN_QUARANTINED, why);
        }
    }
    sh_registry_check_dependencies(next);
}

sh_status sh_reload_apply(sh_reload *r, bool revalidate, sh_hooks **hooks, sh_reload_result *result, sh_buf *what,
                          sh_error *err)
{
    memset(result, 0, sizeof *result);
    r->due_ns = 0;
    sh_runtime *rt = r->rt;
    sh_registry *cur = &rt->registry;
    /* The hook table points into the registry this replaces (entries, descriptors, their hook declarations) and
     * holds in-process instances of plugins this may unload: it goes, and is linked again on its next use. */
    sh_hooks_free(*hooks);
    *hooks = NULL;
    if (r->pipeline) {
        stamp now = stamp_of(r->pipeline);
        if (!same_stamp(&now, &r->pipeline_stamp)) {
            result->pipeline_changed = true;
            r->pipeline_stamp = now;
            note(what, "pipeline %s %s", r->pipeline, now.exists ? "changed" : "deleted");
        }
    }
    scan s;
    sh_status rc = rescan(cur, rt->env, &s, err);
    sh_registry next;
    sh_registry_init(&next);
    /* Where each entry of `next` came from in the current registry (NULL: freshly read). */
    sh_registry_entry **origin = calloc(s.fresh.len + 1, sizeof *origin);
    known *nk = calloc(s.fresh.len + 1, sizeof *nk);
    size_t nk_len = 0;
    namelist gone = {0};
    size_t direct = SIZE_MAX; /* gone.items from here on are there for a plugin they require */
    sh_registry_entry *lost = NULL;
    if (rc == SH_S_OK && (!origin || !nk))
        rc = sh_error_set(err, SH_S_NOMEM, "out of memory reloading plugins");
    for (size_t i = 0; rc == SH_S_OK && i < s.fresh.len; i++) {
        sh_registry_entry *e = &s.fresh.entries[i];
        sh_registry_entry *old = entry_at(cur, e->path);
        const known *k = find_known(r, e->path);
        const char *lib = e->desc ? e->desc->library_path : NULL;
        known *now = &nk[nk_len];
        *now = (known){.path = strdup(e->path), .desc = prestamp_of(&s, e->path), .library = lib ? strdup(lib) : NULL,
                       .lib = stamp_of(lib)};
        nk_len++;
        if (!now->path || (lib && !now->library)) {
            rc = sh_error_set(err, SH_S_NOMEM, "out of memory reloading plugins");
            break;
        }
        bool changed = !k || !same_stamp(&k->desc, &now->desc) || !same_str(k->library, now->library) ||
                       !same_stamp(&k->lib, &now->lib);
        sh_registry_entry *take = e;
        if (!changed && old) {
            take = old;
        } else {
            sh_error cerr;
            const char *refusal = NULL;
            if (revalidate && !e->desc)
                refusal = e->reason;
            else if (revalidate && check_binary(rt, e->desc, &cerr) != SH_S_OK)
                refusal = cerr.message;
            if (refusal && old && old->desc) {
                sh_log(SH_LOG_WARN, "reload: refused the new version of plugin '%s' (%s): %s; keeping the loaded "
                                    "version %s",
                       old->desc->name, e->path, refusal, old->desc->version);
                result->refused++;
                take = old;
            } else {
                if (refusal) {
                    sh_log(SH_LOG_WARN, "reload: refused plugin %s: %s", label(e), refusal);
                    result->refused++;
                    /* The entry is kept as invalid so a run that needs it says why it cannot. */
                    char *why = strdup(refusal);
                    if (!why) {
                        rc = sh_error_set(err, SH_S_NOMEM, "out of memory reloading plugins");
                        break;
                    }
                    free(e->reason);
                    e->reason = why;
                    sh_descriptor_free(e->desc);
                    e->desc = NULL; /* sh_registry_add marks an entry without one refused, with the reason */
                }
                describe_change(what, old, k, now, e);
                result->plugin_changes++;
                rc = retire(&gone, old ? old->name : NULL, err);
                if (rc == SH_S_OK)
                    rc = retire(&gone, e->name, err);
            }
        }
        if (rc != SH_S_OK)
            break;
        origin[next.len] = take == old ? old : NULL;
        sh_descriptor *d = take->desc;
        take->desc = NULL; /* sh_registry_add owns it now, even when it fails */
        rc = sh_registry_add(&next, take->path, d, take->name, d ? NULL : take->reason, err);
        if (rc != SH_S_OK && take == old && d)
            lost = old;
    }
    for (size_t i = 0; rc == SH_S_OK && i < cur->len; i++) {
        const sh_registry_entry *e = &cur->entries[i];
        if (entry_at(&s.fresh, e->path))
            continue;
        note(what, "plugin '%s' removed (%s is gone)", label(e), e->path);
        result->plugin_changes++;
        rc = retire(&gone, e->name, err);
    }
    if (rc == SH_S_OK) {
        detach_dependencies(&next);
        settle(rt, &next, origin);
        /* A plugin's worker loads the plugins it requires too: when one of them goes, so does it. */
        direct = gone.len;
        for (bool more = gone.len > 0; more && rc == SH_S_OK;) {
            size_t before = gone.len;
            for (size_t j = 0; rc == SH_S_OK && j < next.len; j++)
                if (requires_one_of(next.entries[j].desc, &gone))
                    rc = retire(&gone, next.entries[j].name, err);
            more = gone.len > before;
        }
    }
    if (rc == SH_S_OK) {
        /* The search path stays; only what is on it changed. */
        next.dirs = cur->dirs;
        next.dir_count = cur->dir_count;
        cur->dirs = NULL;
        cur->dir_count = 0;
        sh_registry_free(cur);
        *cur = next;
        free_known(r->known, r->known_len);
        r->known = nk;
        r->known_len = nk_len;
        nk = NULL;
        nk_len = 0;
    } else {
        if (origin)
            give_back(cur, &next, origin, lost);
        sh_registry_free(&next);
        /* Dependency lists may point at descriptors that went with `next` (or with the lost entry). */
        detach_dependencies(cur);
        sh_registry_check_dependencies(cur);
        /* Whatever was lost goes with its workers; the next event tries again. */
        for (size_t i = 0; i < s.fresh.len; i++)
            retire(&gone, s.fresh.entries[i].name, NULL);
    }
    /* No request is in flight between requests, so every worker of these plugins is idle and goes now; the
     * next call starts one with the new code. */
    for (size_t i = 0; i < gone.len; i++) {
        if (sh_pool_unload(rt->pool, gone.items[i]) && i >= direct)
            note(what, "plugin '%s' restarts too: it requires a changed plugin", gone.items[i]);
        free(gone.items[i]);
    }
    free(gone.items);
    free_known(nk, nk_len);
    free(origin);
    scan_free(&s);
    if (rc == SH_S_OK)
        rc = sync_watches(r, err);
    return rc;
}
