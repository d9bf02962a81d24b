/* bench/stages (or the name in BENCH_NAME, for benchmarks that need several plugins): the smallest stages a benchmark can time, so the figures show the host's cost and not a stage's
 * own work. `gen` is a source emitting `count` small integers (config `count`, default 1); `pass` emits a copy
 * of each item (the identity stage: copying is the least a stage can do, as inputs are borrowed); `drop` consumes
 * everything and emits nothing (a sink). */
#include <stagehost/sdk.h>

#ifndef BENCH_NAME
#define BENCH_NAME "bench/stages"
#endif

static int gen(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)items, (void)count;
    int64_t n = (int64_t)(intptr_t)user;
    for (int64_t i = 0; i < n; i++)
        if (sh_emit(call, sh_sdk_host->new_int(i)) != SH_OK)
            return SH_ERR_IO;
    return SH_OK;
}

static int gen_create(sh_call *call, const sh_stage_def *def, void **user)
{
    int64_t n = sh_get_int(def->config, "count", 1);
    if (n < 0)
        return sh_failf(call, "gen: count must be at least 0, got %lld", (long long)n);
    *user = (void *)(intptr_t)n;
    return SH_OK;
}

static int pass(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user;
    for (size_t i = 0; i < count; i++)
        if (sh_emit(call, sh_copy(items[i])) != SH_OK)
            return SH_ERR_IO;
    return SH_OK;
}

static int drop(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)call, (void)items, (void)count;
    return SH_OK;
}

static const sh_sdk_stage stages[] = {
    {.type = "gen", .input = "any", .output = "any", .create = gen_create, .process = gen},
    {.type = "pass", .input = "any", .output = "any", .process = pass},
    {.type = "drop", .input = "any", .output = "any", .process = drop},
};
SH_SDK_PLUGIN(.name = BENCH_NAME, .version = "1.0.0", .stages = stages, .stage_count = SH_SDK_COUNT(stages));
