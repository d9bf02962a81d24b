/* test/finish: ABI 1.1's finish() through the SDK. Stage "total" counts its items and their bytes of `content`
 * and emits the total once its input has ended; config `pass = true` also passes the items on as they come,
 * `fail = true` makes finish() emit and then fail. */
#include <stagehost/sdk.h>

typedef struct totals {
    int64_t items, bytes, batches;
    int pass, fail;
} totals;

static int t_create(sh_call *call, const sh_stage_def *def, void **user)
{
    totals *t = calloc(1, sizeof *t);
    if (!t)
        return sh_failf(call, "out of memory");
    t->pass = sh_get_bool(def->config, "pass", 0);
    t->fail = sh_get_bool(def->config, "fail", 0);
    *user = t;
    return SH_OK;
}

static int t_process(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    totals *t = user;
    t->batches++;
    for (size_t i = 0; i < count; i++) {
        size_t len = 0;
        const sh_value *content = sh_get(items[i], "content");
        if (content && sh_sdk_host->value_string(content, &len))
            t->bytes += (int64_t)len;
        t->items++;
        if (t->pass && sh_emit(call, sh_copy(items[i])) != SH_OK)
            return sh_failf(call, "cannot pass item %zu on", i + 1);
    }
    return SH_OK;
}

static int t_finish(void *user, sh_call *call)
{
    const totals *t = user;
    sh_value *m = sh_new_map();
    if (!m || sh_set_int(m, "items", t->items) != SH_OK || sh_set_int(m, "bytes", t->bytes) != SH_OK ||
        sh_set_int(m, "batches", t->batches) != SH_OK) {
        sh_free(m);
        return sh_failf(call, "out of memory");
    }
    if (sh_emit(call, m) != SH_OK)
        return sh_failf(call, "cannot emit the total");
    if (t->fail)
        return sh_failf(call, "finish failed on purpose after %lld items", (long long)t->items);
    return SH_OK;
}

static void t_destroy(void *user) { free(user); }

static const sh_sdk_stage stages[] = {
    {.type = "total", .input = "any", .output = "any", .create = t_create, .process = t_process,
     .destroy = t_destroy, .finish = t_finish},
};

SH_SDK_PLUGIN(.name = "test/finish", .version = "1.1.0", .stages = stages, .stage_count = SH_SDK_COUNT(stages));
