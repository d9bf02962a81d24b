/* test/faults: a plugin whose stages misbehave on purpose, for fault-injection tests. Each stage does one
 * thing wrong; `echo` behaves, so a test can check the next stage still works. */
#include <stagehost/sdk.h>

#include <signal.h>
#include <unistd.h>

static int echo(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user;
    sh_context ctx = sh_get_context(call);
    sh_logf(call, SH_LOG_INFO, "echo: %zu items, pid %d, attempt %u", count, (int)getpid(), ctx.attempt);
    if (count == 0) {
        /* A source stage: emit one item describing the invocation, so tests can see the context. */
        sh_value *m = sh_new_map();
        sh_set_string(m, "stage", ctx.stage ? ctx.stage : "");
        sh_set_string(m, "plugin", ctx.plugin ? ctx.plugin : "");
        sh_set_string(m, "execution_id", ctx.execution_id ? ctx.execution_id : "");
        sh_set_int(m, "attempt", ctx.attempt);
        sh_set_int(m, "pid", getpid());
        sh_set_bool(m, "tmp_dir_exists", ctx.tmp_dir && access(ctx.tmp_dir, W_OK) == 0);
        return sh_emit(call, m);
    }
    for (size_t i = 0; i < count; i++)
        if (sh_emit(call, sh_copy(items[i])) != SH_OK)
            return SH_ERR_IO;
    return SH_OK;
}

/* Not instrumented: under UBSan the store must still reach the MMU and raise SIGSEGV. */
__attribute__((no_sanitize("undefined"))) static int segv(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)call, (void)items, (void)count;
    volatile int *p = NULL;
    *p = 42;
    return SH_OK;
}

_Noreturn static int abrt(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)call, (void)items, (void)count;
    abort();
}

_Noreturn static int do_exit(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)call, (void)items, (void)count;
    exit(3);
}

_Noreturn static int hang(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)call, (void)items, (void)count;
    for (;;)
        pause();
}

/* Writes a frame header announcing more bytes than follow, then a bogus type, on every descriptor that might be
 * the channel: the host must reject it as a protocol error. */
static int garbage(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)call, (void)items, (void)count;
    static const unsigned char junk[] = {0x05, 0x00, 0x00, 0x00, 0xee, 'j', 'u', 'n', 'k'};
    for (int fd = 3; fd < 64; fd++)
        if (write(fd, junk, sizeof junk) < 0)
            continue;
    return SH_OK;
}

static int fail(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)items;
    return sh_failf(call, "refusing %zu items on purpose", count);
}

static int create_fails(sh_call *call, const sh_stage_def *def, void **user)
{
    (void)user;
    return sh_failf(call, "cannot build stage '%s': config is never good enough", def->name);
}

static const sh_sdk_stage stages[] = {
    {.type = "echo", .process = echo},
    {.type = "segv", .process = segv},
    {.type = "abort", .process = abrt},
    {.type = "exit", .process = do_exit},
    {.type = "hang", .process = hang},
    {.type = "garbage", .process = garbage},
    {.type = "fail", .process = fail},
    {.type = "badconfig", .create = create_fails, .process = echo},
};

SH_SDK_PLUGIN(.name = "test/faults", .version = "1.0.0", .stages = stages, .stage_count = SH_SDK_COUNT(stages));
