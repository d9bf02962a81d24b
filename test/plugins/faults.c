/* test/faults: a plugin whose stages misbehave on purpose, for fault-injection tests. Each stage does one
 * thing wrong; `echo` behaves, so a test can check the next stage still works. */
#include <stagehost/sdk.h>

#include <signal.h>
#include <time.h>
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

/* Emits how many times this process ran it: state that survives between calls in a warm worker, and must not
 * with "call" isolation. */
static int counter(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)items, (void)count;
    static int64_t calls;
    sh_value *m = sh_new_map();
    sh_set_int(m, "calls", ++calls);
    sh_set_int(m, "pid", getpid());
    return sh_emit(call, m);
}

/* Writes a file into the invocation's private directory and emits the path, so a test can check the directory
 * is gone after the call. */
static int tmpfile_stage(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)items, (void)count;
    sh_context ctx = sh_get_context(call);
    if (!ctx.tmp_dir)
        return sh_failf(call, "no private temporary directory");
    char path[4096];
    snprintf(path, sizeof path, "%s/scratch", ctx.tmp_dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return sh_failf(call, "cannot write %s", path);
    fputs("scratch", f);
    fclose(f);
    sh_value *m = sh_new_map();
    sh_set_string(m, "tmp_dir", ctx.tmp_dir);
    sh_set_string(m, "task_id", ctx.task_id ? ctx.task_id : "");
    return sh_emit(call, m);
}

/* Announces a frame longer than what follows, then exits: a truncated frame. */
_Noreturn static int truncate_frame(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)call, (void)items, (void)count;
    static const unsigned char partial[] = {0x40, 0x00, 0x00, 0x00, 11, 0x05, 0x30, 0x00};
    for (int fd = 3; fd < 64; fd++)
        if (write(fd, partial, sizeof partial) < 0)
            continue;
    _exit(0);
}

/* Emits 1 MiB strings, `count` config times (default 64): more than a small output cap. */
static int flood(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)items, (void)count;
    size_t len = 1024 * 1024;
    char *big = malloc(len);
    if (!big)
        return sh_failf(call, "out of memory");
    memset(big, 'x', len);
    int rc = SH_OK;
    for (int i = 0; i < 64 && rc == SH_OK; i++) {
        sh_value *m = sh_new_map();
        rc = sh_set_stringn(m, "blob", big, len);
        if (rc == SH_OK)
            rc = sh_emit(call, m);
        else
            sh_free(m);
    }
    free(big);
    return rc;
}

/* Allocates and touches memory 1 MiB at a time, up to 2 GiB, so a memory limit must stop it; it stops by itself
 * otherwise, so a broken limit cannot take the machine down. */
static int membomb(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)items, (void)count;
    size_t chunk = 1024 * 1024, total = 0;
    for (int i = 0; i < 2048; i++) {
        char *p = malloc(chunk);
        if (!p)
            return sh_failf(call, "allocation failed after %zu MiB", total / chunk);
        memset(p, 1, chunk);
        total += chunk;
    }
    return sh_failf(call, "allocated 2048 MiB without being stopped");
}

/* Spins on the CPU for up to 60 seconds. */
static int cpuspin(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)items, (void)count;
    volatile uint64_t x = 0;
    time_t end = time(NULL) + 60;
    while (time(NULL) < end)
        for (int i = 0; i < 1000000; i++)
            x += (uint64_t)i;
    return sh_failf(call, "spun for 60 s (%llu) without being stopped", (unsigned long long)x);
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

/* Stages that read their configuration keep the definition: the ABI keeps it alive until destroy(). */
static int keep_def(sh_call *call, const sh_stage_def *def, void **user)
{
    (void)call;
    *user = (void *)def;
    return SH_OK;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps config.ms (default 300), then passes its items on, plus (unless config.report is false) one item
 * saying when it ran: tests compare these intervals to see stages run at once. */
static int sleep_stage(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    const sh_stage_def *def = user;
    int64_t ms = sh_get_int(def->config, "ms", 300);
    sh_logf(call, SH_LOG_INFO, "sleeping %lld ms", (long long)ms);
    int64_t start = wall_ms();
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
    for (size_t i = 0; i < count; i++)
        if (sh_emit(call, sh_copy(items[i])) != SH_OK)
            return sh_failf(call, "cannot emit");
    if (!sh_get_bool(def->config, "report", 1))
        return SH_OK;
    sh_context ctx = sh_get_context(call);
    sh_value *m = sh_new_map();
    sh_set_string(m, "stage", ctx.stage);
    sh_set_int(m, "start_ms", start);
    sh_set_int(m, "end_ms", wall_ms());
    return sh_emit(call, m) == SH_OK ? SH_OK : sh_failf(call, "cannot emit");
}

/* Fails its first config.fail_times attempts, then passes its items on with one item naming the attempt. */
static int flaky(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    const sh_stage_def *def = user;
    sh_context ctx = sh_get_context(call);
    int64_t fail_times = sh_get_int(def->config, "fail_times", 1);
    if ((int64_t)ctx.attempt <= fail_times)
        return sh_failf(call, "failing attempt %u of the first %lld on purpose", ctx.attempt, (long long)fail_times);
    for (size_t i = 0; i < count; i++)
        if (sh_emit(call, sh_copy(items[i])) != SH_OK)
            return sh_failf(call, "cannot emit");
    sh_value *m = sh_new_map();
    sh_set_int(m, "attempt", ctx.attempt);
    return sh_emit(call, m) == SH_OK ? SH_OK : sh_failf(call, "cannot emit");
}

/* Fails with a message that is not UTF-8: raw bytes, and a character cut short at the end. */
static int failbytes(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)items, (void)count;
    return sh_failf(call, "bad \xff\xfe bytes, then a cut \xe6\x97");
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
    {.type = "counter", .process = counter},
    {.type = "tmpfile", .process = tmpfile_stage},
    {.type = "truncate", .process = truncate_frame},
    {.type = "flood", .process = flood},
    {.type = "membomb", .process = membomb},
    {.type = "cpuspin", .process = cpuspin},
    {.type = "sleep", .create = keep_def, .process = sleep_stage},
    {.type = "flaky", .create = keep_def, .process = flaky},
    {.type = "failbytes", .process = failbytes},
};

/* Unhealthy while the file named by SH_FAULTS_UNHEALTHY exists, so a test can make it fail and recover. */
static int health(void *state, sh_call *call)
{
    (void)state;
    const char *flag = getenv("SH_FAULTS_UNHEALTHY");
    if (flag && access(flag, F_OK) == 0)
        return sh_failf(call, "the flag file %s says so", flag);
    return SH_OK;
}

SH_SDK_PLUGIN(.name = "test/faults", .version = "1.0.0", .stages = stages, .stage_count = SH_SDK_COUNT(stages),
              .health = health);
