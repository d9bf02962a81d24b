/* test/hook-LETTER: hook implementations for every dispatch rule, compiled once per LETTER (a, b, c) so that
 * several plugins implement the same hooks. Each answer names the plugin, so a test sees who answered and in
 * which order. Also a stage `numbers` that emits its config's `items`, and `ctx` that emits its context. */
#include <stagehost/sdk.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef LETTER
#define LETTER "a"
#endif

static const sh_value *plugin_config;

static int init(sh_call *call, const sh_value *config, void **state)
{
    (void)call, (void)state;
    plugin_config = config; /* lives until fini(), as the ABI promises */
    return SH_OK;
}

static int text_result(sh_call *call, sh_value **out, const char *fmt, const char *a, const char *b)
{
    char buf[1024];
    snprintf(buf, sizeof buf, fmt, a, b);
    if (!(*out = sh_new_text(buf)))
        return sh_failf(call, "out of memory");
    return SH_OK;
}

/* "LETTER:input": who answered, with what. */
SH_SDK_EXPORT int h_tag(sh_call *call, const char *s, sh_value **out);
SH_SDK_EXPORT int h_tag(sh_call *call, const char *s, sh_value **out)
{
    return text_result(call, out, "%s:%s", LETTER, s);
}

SH_SDK_EXPORT int h_fail(sh_call *call, const char *s, sh_value **out);
SH_SDK_EXPORT int h_fail(sh_call *call, const char *s, sh_value **out)
{
    (void)out;
    return sh_failf(call, "plugin %s refuses '%s'", LETTER, s);
}

/* Chain: appends the letter. */
SH_SDK_EXPORT int h_append(sh_call *call, const char *s, sh_value **out);
SH_SDK_EXPORT int h_append(sh_call *call, const char *s, sh_value **out)
{
    return text_result(call, out, "%s%s", s, LETTER);
}

SH_SDK_EXPORT int h_stop(sh_call *call, const char *s, sh_value **out);
SH_SDK_EXPORT int h_stop(sh_call *call, const char *s, sh_value **out)
{
    (void)call, (void)s, (void)out;
    return SH_HOOK_STOP;
}

/* Notify: writes "LETTER input" to the file named by the argument (in-process plugins only: workers cannot). */
/* An implementation with nothing to say: a null value (for hooks returning `value`). */
SH_SDK_EXPORT int h_null(sh_call *call, const char *s, sh_value **out);
SH_SDK_EXPORT int h_null(sh_call *call, const char *s, sh_value **out)
{
    (void)call, (void)s;
    *out = sh_sdk_host->new_null();
    return *out ? SH_OK : SH_ERR_NOMEM;
}

SH_SDK_EXPORT int h_notify(sh_call *call, const char *path, const char *what);
SH_SDK_EXPORT int h_notify(sh_call *call, const char *path, const char *what)
{
    FILE *f = fopen(path, "a");
    if (!f)
        return sh_failf(call, "cannot open %s", path);
    fprintf(f, "%s %s\n", LETTER, what);
    fclose(f);
    return SH_OK;
}

SH_SDK_EXPORT int h_notify_fail(sh_call *call, const char *path, const char *what);
SH_SDK_EXPORT int h_notify_fail(sh_call *call, const char *path, const char *what)
{
    (void)path, (void)what;
    return sh_failf(call, "notify failed in plugin %s", LETTER);
}

SH_SDK_EXPORT int h_add(sh_call *call, int64_t a, int64_t b, int64_t *out);
SH_SDK_EXPORT int h_add(sh_call *call, int64_t a, int64_t b, int64_t *out)
{
    (void)call;
    *out = a + b;
    return SH_OK;
}

/* The benchmark's implementation: as cheap as a hook can be. */
SH_SDK_EXPORT int h_add32(sh_call *call, int32_t a, int32_t b, int32_t *out);
SH_SDK_EXPORT int h_add32(sh_call *call, int32_t a, int32_t b, int32_t *out)
{
    (void)call;
    *out = a + b;
    return SH_OK;
}

SH_SDK_EXPORT int h_note32(sh_call *call, int32_t a, int32_t b);
SH_SDK_EXPORT int h_note32(sh_call *call, int32_t a, int32_t b)
{
    (void)call, (void)a, (void)b;
    return SH_OK;
}

/* Every scalar type through the convention: a bool says whether they all arrived intact. */
SH_SDK_EXPORT int h_types(sh_call *call, int32_t i32, uint32_t u32, uint64_t u64, double d, int b, const void *data,
                          size_t len, double *out);
SH_SDK_EXPORT int h_types(sh_call *call, int32_t i32, uint32_t u32, uint64_t u64, double d, int b, const void *data,
                          size_t len, double *out)
{
    (void)call;
    *out = (double)i32 + (double)u32 + (double)u64 + d + b + (double)len + (len ? ((const unsigned char *)data)[0] : 0);
    return SH_OK;
}

/* The invocation's clock and random source, and the plugin's init configuration. */
SH_SDK_EXPORT int h_context(sh_call *call, const char *s, sh_value **out);
SH_SDK_EXPORT int h_context(sh_call *call, const char *s, sh_value **out)
{
    char buf[256];
    uint64_t r1 = sh_sdk_host->random_u64(call), r2 = sh_sdk_host->random_u64(call);
    snprintf(buf, sizeof buf, "%s now=%lld rand=%016llx%016llx greeting=%s", s,
             (long long)sh_sdk_host->now_ns(call), (unsigned long long)r1, (unsigned long long)r2,
             sh_get_string(plugin_config, "greeting", "-"));
    if (!(*out = sh_new_text(buf)))
        return sh_failf(call, "out of memory");
    return SH_OK;
}

/* A hostile worker: writes its own answer to a hook call straight onto the worker's channel (every socket it
 * has), ahead of the worker's real one, as `mode` says: "int" an integer result, "two" two results, "none"
 * success without a result, "stopval" a result together with a stop, "big" an integer outside i32. Then stops,
 * so that the worker's own answer is a bare DONE that nobody reads. In workers only. */
static size_t put_u32(unsigned char *b, size_t n, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[n++] = (unsigned char)(v >> (8 * i));
    return n;
}

static size_t put_int(unsigned char *b, size_t n, int64_t v)
{
    b[n++] = 3; /* SH_CODEC_INT */
    for (int i = 0; i < 8; i++)
        b[n++] = (unsigned char)((uint64_t)v >> (8 * i));
    return n;
}

static size_t put_str(unsigned char *b, size_t n, const char *s)
{
    b[n++] = 5; /* SH_CODEC_STRING */
    n = put_u32(b, n, (uint32_t)strlen(s));
    memcpy(b + n, s, strlen(s));
    return n + strlen(s);
}

/* A frame: u32 length of type and payload, u8 type, payload. */
static size_t frame_emit(unsigned char *b, size_t n, bool is_int, int64_t i, const char *s)
{
    size_t start = n;
    n += 4;
    b[n++] = 11; /* SH_MSG_EMIT */
    n = is_int ? put_int(b, n, i) : put_str(b, n, s);
    put_u32(b, start, (uint32_t)(n - start - 4));
    return n;
}

static size_t frame_done(unsigned char *b, size_t n, int64_t stopped)
{
    size_t start = n;
    n += 4;
    b[n++] = 13; /* SH_MSG_DONE */
    n = put_int(b, n, 0);
    n = put_int(b, n, stopped);
    n = put_str(b, n, "");
    put_u32(b, start, (uint32_t)(n - start - 4));
    return n;
}

SH_SDK_EXPORT int h_forge(sh_call *call, const char *mode, void *out);
SH_SDK_EXPORT int h_forge(sh_call *call, const char *mode, void *out)
{
    (void)call, (void)out;
    unsigned char b[512];
    size_t n = 0;
    if (strcmp(mode, "int") == 0)
        n = frame_emit(b, n, true, 7, NULL);
    else if (strcmp(mode, "big") == 0)
        n = frame_emit(b, n, true, (int64_t)1 << 40, NULL);
    else if (strcmp(mode, "two") == 0)
        n = frame_emit(b, frame_emit(b, n, false, 0, "x"), false, 0, "y");
    else if (strcmp(mode, "stopval") == 0)
        n = frame_emit(b, n, false, 0, "forged");
    n = frame_done(b, n, strcmp(mode, "stopval") == 0);
    for (int fd = 3; fd < 64; fd++) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && write(fd, b, n) < 0)
            continue;
    }
    return SH_HOOK_STOP;
}

static int numbers_create(sh_call *call, const sh_stage_def *def, void **user)
{
    (void)call;
    *user = (void *)sh_get(def->config, "items");
    return SH_OK;
}

static int numbers_process(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)items, (void)count;
    const sh_value *list = user;
    size_t n = list ? sh_sdk_host->value_count(list) : 0;
    for (size_t i = 0; i < n; i++)
        if (sh_emit(call, sh_copy(sh_sdk_host->array_get(list, i))) != SH_OK)
            return sh_failf(call, "cannot emit");
    return SH_OK;
}

/* One item with the context: the clock, two random numbers, and the init configuration's greeting. */
static int ctx_process(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)items, (void)count;
    sh_value *m = sh_new_map();
    if (!m)
        return sh_failf(call, "out of memory");
    sh_set_int(m, "now", sh_sdk_host->now_ns(call));
    sh_set_int(m, "rand", (int64_t)sh_sdk_host->random_u64(call));
    sh_set_string(m, "greeting", sh_get_string(plugin_config, "greeting", "-"));
    return sh_emit(call, m);
}

static const sh_sdk_stage stages[] = {
    {.type = "numbers", .create = numbers_create, .process = numbers_process},
    {.type = "ctx", .process = ctx_process},
};

SH_SDK_PLUGIN(.name = "test/hook-" LETTER, .version = "1.0.0", .stages = stages, .stage_count = SH_SDK_COUNT(stages),
              .init = init);
