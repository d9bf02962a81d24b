/*
 * bench_isolation: what process isolation costs, each stagehost figure next to its floor, measured by this
 * program in the same run on the same machine.
 *
 *   1. A warm isolated call of a trivial stage (test/faults `echo`, one small item) against a raw round trip of
 *      64 bytes each way between two forked processes over an AF_UNIX SOCK_STREAM socketpair, the child doing
 *      nothing but echo. A call is one round trip (create, process and destroy in one CALL request); the goal
 *      applies to one sh_worker_call on a warm worker, and sh_instance_call (the same through an instance) is
 *      shown beside it.
 *   2. A cold first call (sh_instance_open through the zygote + the first sh_instance_call) against fork() with
 *      the child doing dlopen(RTLD_NOW) + dlsym(entry) + writing one byte to a pipe the parent reads. Closing
 *      the instance and reaping the floor's child are left out of both. Also without the zygote.
 *   3. A crash and the next successful call through the instance cache: the failed `segv` call, then release,
 *      acquire (a fresh worker) and a successful `echo`. The part after the crash was reported is held
 *      against a cold call as in 2, measured interleaved with the crashes.
 *
 * The goals are for bare isolation (no sandbox policy). For comparison, rows marked "confined" use every
 * protection the machine offers (as the runtime would), and a `counter` row (when test/faults has that stage)
 * shows the round trip with a stage that neither asks for its private directory nor logs.
 *
 * Medians of many repetitions after warm-up, in microseconds. Goals that are missed are reported, not failed:
 * the exit status is non-zero only when something that should work does not (a call failing unexpectedly).
 *
 * Environment: SH_TEST_PLUGIN_DIR, the directory holding libfaults.so (default build/test/plugins).
 */
#include "registry/descriptor.h"
#include "plugin/inproc.h"
#include "runtime/instance.h"
#include "runtime/pool.h"
#include "sandbox/sandbox.h"
#include "util/clock.h"
#include "worker/worker.h"
#include "worker/zygote.h"

#include "report.h"
#include "sh_config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#if SH_HAVE_SECCOMP
#include <seccomp.h>
#endif

/* Repetitions: a few seconds in all on a small (2 vCPU) machine, about 10 s under AddressSanitizer. */
#define WARM_REPS 2000
#define WARM_WARMUP 200
#define WARM_BLOCK 100 /* floor and stagehost alternate in blocks of this many round trips */
#define COLD_REPS 300
#define COLD_WARMUP 10
#define CRASH_REPS 200
#define CRASH_WARMUP 5
#define INPROC_REPS 2000

#define GOAL_RATIO 1.5
#define RECOVERY_GOAL_RATIO 1.0
#define MSG_SIZE 64

/* ---- errors and clean-up ------------------------------------------------------------------------------------ */

static char tmpdir[256];
static char descriptor_path[512];
static char library_link[512];

static void cleanup_files(void)
{
    if (descriptor_path[0]) {
        unlink(descriptor_path);
        descriptor_path[0] = '\0';
    }
    if (library_link[0]) {
        unlink(library_link);
        library_link[0] = '\0';
    }
    if (tmpdir[0]) {
        rmdir(tmpdir);
        tmpdir[0] = '\0';
    }
}

/* A real error: say what, remove the temporary files and fail. The zygote and the workers die with us. */
__attribute__((format(printf, 1, 2))) _Noreturn static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_isolation: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    cleanup_files();
    exit(1);
}

/* ---- statistics --------------------------------------------------------------------------------------------- */

typedef struct samples {
    int64_t *ns;
    size_t len, cap;
} samples;

static void samples_init(samples *s, size_t cap)
{
    s->ns = malloc(cap * sizeof *s->ns);
    if (!s->ns)
        die("out of memory");
    s->len = 0;
    s->cap = cap;
}

static void samples_add(samples *s, int64_t ns)
{
    if (s->len == s->cap)
        die("internal: sample buffer full");
    s->ns[s->len++] = ns;
}

static void samples_free(samples *s)
{
    free(s->ns);
    s->ns = NULL;
    s->len = s->cap = 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) in microseconds; sorts the samples. */
static double quantile_us(samples *s, double q)
{
    if (s->len == 0)
        return 0;
    qsort(s->ns, s->len, sizeof *s->ns, cmp_i64);
    size_t i = (size_t)(q * (double)(s->len - 1) + 0.5);
    return (double)s->ns[i] / 1000.0;
}

static double median_us(samples *s) { return quantile_us(s, 0.5); }

/* ---- I/O helpers for the floors ----------------------------------------------------------------------------- */

static int write_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len > 0) {
        ssize_t n = write(fd, c, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

/* 1: all of len; 0: end of stream before anything; -1: error or a partial message. */
static int read_all(int fd, void *p, size_t len)
{
    char *c = p;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, c + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return got == 0 ? 0 : -1;
        got += (size_t)n;
    }
    return 1;
}

static void reap_child(pid_t pid, const char *what)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid (%s): %s", what, strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("%s ended badly (wait status 0x%x)", what, status);
}

/* ---- the fixture -------------------------------------------------------------------------------------------- */

static char library[PATH_MAX];
static bool has_counter; /* test/faults has a `counter` stage: no private directory, no log line */

/* What the binary declares, read in a throwaway child so that this process never maps the library (that would
 * make every later fork's dlopen nearly free and flatter the floors): name, version, then one line per stage
 * type, "type<TAB>input<TAB>output". The descriptor is written from it, so it always matches the binary. */
static char *probe_plugin(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        die("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        FILE *f = fdopen(p[1], "w");
        void *h = dlopen(library, RTLD_NOW | RTLD_LOCAL);
        const sh_entry *e = h ? dlsym(h, "stagehost_plugin") : NULL;
        uint32_t version = 0;
        const char *reason = NULL;
        const sh_plugin *pl = e ? e->negotiate(SH_ABI_CURRENT, &version, &reason) : NULL;
        if (!f || !pl)
            _exit(1);
        fprintf(f, "%s\n%s\n", pl->name, pl->version);
        for (uint32_t i = 0; i < pl->stage_type_count; i++)
            fprintf(f, "%s\t%s\t%s\n", pl->stage_types[i]->type, pl->stage_types[i]->input,
                    pl->stage_types[i]->output);
        _exit(fclose(f) == 0 ? 0 : 1);
    }
    close(p[1]);
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    if (!text)
        die("out of memory");
    for (;;) {
        if (len + 1 == cap && !(text = realloc(text, cap *= 2)))
            die("out of memory");
        ssize_t n = read(p[0], text + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("reading the plugin probe: %s", strerror(errno));
        if (n == 0)
            break;
        len += (size_t)n;
    }
    text[len] = '\0';
    close(p[0]);
    reap_child(pid, "the plugin probe");
    return text;
}

static sh_descriptor *write_descriptor(void)
{
    const char *dir = getenv("SH_TEST_PLUGIN_DIR");
    char rel[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/libfaults.so", dir && *dir ? dir : "build/test/plugins");
    if (!realpath(rel, library))
        die("cannot find the test plugin %s: %s (set SH_TEST_PLUGIN_DIR)", rel, strerror(errno));
    char *probe = probe_plugin();

    snprintf(tmpdir, sizeof tmpdir, "/tmp/sh-bench-isolation-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        tmpdir[0] = '\0';
        die("mkdtemp: %s", strerror(errno));
    }
    /* Workers that drop to an unprivileged user must be able to reach the library through the directory. */
    if (chmod(tmpdir, 0755) != 0)
        die("chmod %s: %s", tmpdir, strerror(errno));
    /* The library must live in the plugin's directory: a link to the built one. */
    snprintf(library_link, sizeof library_link, "%s/libfaults.so", tmpdir);
    if (symlink(library, library_link) != 0) {
        int e = errno;
        library_link[0] = '\0';
        die("symlink %s: %s", library, strerror(e));
    }
    snprintf(descriptor_path, sizeof descriptor_path, "%s/faults.plugin", tmpdir);
    FILE *f = fopen(descriptor_path, "w");
    if (!f)
        die("cannot write %s: %s", descriptor_path, strerror(errno));
    char *save = NULL;
    const char *name = strtok_r(probe, "\n", &save);
    const char *version = strtok_r(NULL, "\n", &save);
    if (!name || !version)
        die("the plugin probe said nothing useful");
    fprintf(f,
            "format = 1; name = \"%s\"; version = \"%s\"; library = \"libfaults.so\"; abi = \"1.0\";\n"
            "entry = \"stagehost_plugin\";\nstages = (",
            name, version);
    bool has_echo = false, has_segv = false;
    has_counter = false;
    const char *sep = "";
    for (char *line; (line = strtok_r(NULL, "\n", &save)); sep = ",") {
        char *save2 = NULL;
        const char *type = strtok_r(line, "\t", &save2), *in = strtok_r(NULL, "\t", &save2),
                   *out = strtok_r(NULL, "\t", &save2);
        if (!type || !in || !out)
            die("the plugin probe sent a bad stage line");
        has_echo |= strcmp(type, "echo") == 0;
        has_segv |= strcmp(type, "segv") == 0;
        has_counter |= strcmp(type, "counter") == 0;
        fprintf(f, "%s\n  { type = \"%s\"; input = \"%s\"; output = \"%s\"; }", sep, type, in, out);
    }
    fputs(" );\n", f);
    free(probe);
    if (fclose(f) != 0)
        die("cannot write %s", descriptor_path);
    if (!has_echo || !has_segv)
        die("%s lacks the echo or segv stage", library);
    sh_descriptor *d = NULL;
    sh_error err;
    if (sh_descriptor_load(descriptor_path, &d, &err) != SH_S_OK)
        die("descriptor: %s", err.message);
    return d;
}

static const sh_invocation echo_inv = {.execution_id = "bench", .task_id = "t1", .pipeline = "bench",
                                       .stage = "echo", .plugin = "test/faults", .base_dir = "/tmp",
                                       .attempt = 1};
static const sh_invocation segv_inv = {.execution_id = "bench", .task_id = "t2", .pipeline = "bench",
                                       .stage = "segv", .plugin = "test/faults", .base_dir = "/tmp",
                                       .attempt = 1};

/* The stages' configuration: an empty map, as the engine passes for a stage without a `config` group. */
static sh_value *stage_config;

static sh_worker_limits bench_limits(void)
{
    sh_worker_limits l;
    memset(&l, 0, sizeof l);
    l.timeout_ms = 10000;
    return l;
}

/* The echo stage must hand back exactly the one item it got. */
static void check_echo(const sh_values *out, const sh_value *item, const char *what)
{
    if (out->len != 1 || !sh_value_equal(out->items[0], item))
        die("%s: echo returned %zu items, not the item sent", what, out->len);
}

static void call_echo(sh_instance *in, const sh_values *input, const char *what)
{
    sh_values out = {0};
    sh_call_usage usage;
    sh_error err;
    if (sh_instance_call(in, &echo_inv, "echo", stage_config, 0, input, &out, &usage, &err) != SH_S_OK)
        die("%s: echo failed: %s", what, err.message);
    check_echo(&out, input->items[0], what);
    sh_values_clear(&out);
}

/* ---- 1. warm calls ------------------------------------------------------------------------------------------ */

/* The floor's child: echo 64-byte messages until the end of the stream. */
_Noreturn static void echo_child(int fd)
{
    char buf[MSG_SIZE];
    for (;;) {
        int r = read_all(fd, buf, sizeof buf);
        if (r <= 0)
            _exit(r == 0 ? 0 : 1);
        if (write_all(fd, buf, sizeof buf) != 0)
            _exit(1);
    }
}

/* One warm worker, timed on sh_worker_call alone (no instance around it). */
typedef struct warm_stage {
    const char *type;
    const sh_sandbox_policy *policy; /* NULL: bare, unconfined */
    sh_worker *w;
    samples s;
    double median_us;
} warm_stage;

static void warm_stage_start(warm_stage *ws, sh_zygote *z, const sh_descriptor *d, const char *type,
                             const sh_sandbox_policy *policy)
{
    memset(ws, 0, sizeof *ws);
    ws->type = type;
    ws->policy = policy;
    sh_worker_limits limits = bench_limits();
    sh_error err;
    if (sh_worker_start(d, &limits, NULL, policy, z, &ws->w, &err) != SH_S_OK)
        die("worker start (%s%s): %s", type, policy ? ", confined" : "", err.message);
    samples_init(&ws->s, WARM_REPS);
}

static void warm_stage_run(warm_stage *ws, const sh_values *input, int n, bool record)
{
    sh_values out = {0};
    sh_error err;
    for (int i = 0; i < n; i++) {
        int64_t t0 = sh_monotonic_ns();
        sh_status st = sh_worker_call(ws->w, &echo_inv, ws->type, stage_config, (const sh_value *const *)input->items,
                                      input->len, false, &out, &err);
        int64_t t1 = sh_monotonic_ns();
        if (st != SH_S_OK)
            die("sh_worker_call (%s): %s", ws->type, err.message);
        if (strcmp(ws->type, "echo") == 0)
            check_echo(&out, input->items[0], "worker call");
        else if (out.len != 1)
            die("worker call (%s): %zu items, expected 1", ws->type, out.len);
        sh_values_clear(&out);
        if (record)
            samples_add(&ws->s, t1 - t0);
    }
}

static void warm_stage_stop(warm_stage *ws)
{
    sh_worker_stop(ws->w);
    ws->w = NULL;
    ws->median_us = median_us(&ws->s);
}

enum { WARM_BARE, WARM_CONFINED, WARM_COUNTER, WARM_STAGES };

typedef struct warm_result {
    double floor_us, call_us;
    samples floor, call;
    warm_stage stage[WARM_STAGES];
    bool have[WARM_STAGES];
} warm_result;

static void measure_warm(sh_zygote *z, const sh_descriptor *d, const sh_values *input,
                         const sh_sandbox_policy *confined, bool with_counter, warm_result *res)
{
    /* The floor: a forked echo child over a socketpair. */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(sv[0]);
        echo_child(sv[1]);
    }
    close(sv[1]);
    int fd = sv[0];
    char msg[MSG_SIZE], back[MSG_SIZE];
    memset(msg, 'x', sizeof msg);

    /* stagehost, worker call: the goal's figure (bare), and for comparison the same confined by the sandbox,
     * and a stage that does less than echo (no private directory, no log line), when the plugin has one. */
    memset(res->have, 0, sizeof res->have);
    warm_stage_start(&res->stage[WARM_BARE], z, d, "echo", NULL);
    res->have[WARM_BARE] = true;
    if (confined) {
        warm_stage_start(&res->stage[WARM_CONFINED], z, d, "echo", confined);
        res->have[WARM_CONFINED] = true;
    }
    if (with_counter) {
        warm_stage_start(&res->stage[WARM_COUNTER], z, d, "counter", NULL);
        res->have[WARM_COUNTER] = true;
    }

    /* stagehost, full call: a warm instance, sh_instance_call (create + process + destroy). */
    sh_worker_limits limits = bench_limits();
    sh_error err;
    sh_instance *in = NULL;
    if (sh_instance_open(d, SH_ISOLATION_PROCESS, &limits, NULL, NULL, z, &in, &err) != SH_S_OK)
        die("instance open: %s", err.message);

    samples_init(&res->floor, WARM_REPS);
    samples_init(&res->call, WARM_REPS);
    sh_values out = {0};
    sh_call_usage usage;

    for (int round = -1; round < WARM_REPS / WARM_BLOCK; round++) {
        bool warmup = round < 0;
        int n = warmup ? WARM_WARMUP : WARM_BLOCK;
        for (int i = 0; i < n; i++) {
            int64_t t0 = sh_monotonic_ns();
            if (write_all(fd, msg, sizeof msg) != 0 || read_all(fd, back, sizeof back) != 1)
                die("floor round trip failed");
            int64_t t1 = sh_monotonic_ns();
            if (memcmp(msg, back, sizeof msg) != 0)
                die("floor: the echo child sent back something else");
            if (!warmup)
                samples_add(&res->floor, t1 - t0);
        }
        for (int k = 0; k < WARM_STAGES; k++)
            if (res->have[k])
                warm_stage_run(&res->stage[k], input, n, !warmup);
        for (int i = 0; i < n; i++) {
            int64_t t0 = sh_monotonic_ns();
            sh_status st = sh_instance_call(in, &echo_inv, "echo", stage_config, 0, input, &out, &usage, &err);
            int64_t t1 = sh_monotonic_ns();
            if (st != SH_S_OK)
                die("sh_instance_call: %s", err.message);
            check_echo(&out, input->items[0], "warm call");
            sh_values_clear(&out);
            if (!warmup)
                samples_add(&res->call, t1 - t0);
        }
    }

    sh_instance_close(in);
    for (int k = 0; k < WARM_STAGES; k++)
        if (res->have[k])
            warm_stage_stop(&res->stage[k]);
    close(fd); /* the echo child sees the end of the stream and exits */
    reap_child(pid, "the floor's echo child");

    res->floor_us = median_us(&res->floor);
    res->call_us = median_us(&res->call);
}

/* ---- 2. cold calls ------------------------------------------------------------------------------------------ */

/* fork; the child loads the library and finds its entry, then says so with one byte. Returns the time until
 * the parent has the byte; the child is reaped after the clock stops. */
static int64_t floor_cold_once(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        die("pipe: %s", strerror(errno));
    int64_t t0 = sh_monotonic_ns();
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        void *h = dlopen(library, RTLD_NOW);
        char ok = h && dlsym(h, "stagehost_plugin") ? 'y' : 'n';
        _exit(write_all(p[1], &ok, 1) == 0 && ok == 'y' ? 0 : 1);
    }
    close(p[1]);
    char c = 0;
    int r = read_all(p[0], &c, 1);
    int64_t t1 = sh_monotonic_ns();
    close(p[0]);
    if (r != 1 || c != 'y')
        die("floor: the child could not dlopen %s", library);
    reap_child(pid, "the floor's dlopen child");
    return t1 - t0;
}

/* The sandbox "by hand", as a careful author would write it without stagehost: a Landlock ruleset (reads
 * anywhere, writes only under /tmp) and a seccomp filter built with libseccomp that refuses a dozen system calls
 * a stage has no business making. 0 on success. */
static int hand_sandbox(void)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    /* The access rights of Landlock ABI 1, handled as a whole: what is not granted below is refused. */
    const __u64 all = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;
    const __u64 read = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
    struct landlock_ruleset_attr attr = {.handled_access_fs = all};
    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (rs < 0)
        return -1;
    struct landlock_path_beneath_attr root = {.allowed_access = read, .parent_fd = open("/", O_PATH | O_CLOEXEC)};
    struct landlock_path_beneath_attr tmp = {.allowed_access = all, .parent_fd = open("/tmp", O_PATH | O_CLOEXEC)};
    int rc = root.parent_fd < 0 || tmp.parent_fd < 0 ||
             syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &root, 0) != 0 ||
             syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &tmp, 0) != 0 ||
             syscall(SYS_landlock_restrict_self, rs, 0) != 0;
    close(root.parent_fd);
    close(tmp.parent_fd);
    close(rs);
    if (rc)
        return -1;
#if SH_HAVE_SECCOMP
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return -1;
    static const int denied[] = {SCMP_SYS(ptrace), SCMP_SYS(mount),        SCMP_SYS(umount2), SCMP_SYS(bpf),
                                 SCMP_SYS(kexec_load), SCMP_SYS(init_module), SCMP_SYS(unshare), SCMP_SYS(setns),
                                 SCMP_SYS(reboot), SCMP_SYS(keyctl),       SCMP_SYS(perf_event_open),
                                 SCMP_SYS(process_vm_readv)};
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++)
        rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), denied[i], 0);
    rc |= seccomp_load(ctx);
    seccomp_release(ctx);
#endif
    return rc ? -1 : 0;
}

/* The floor of the cold goal: fork; the child loads the library, finds its entry and confines itself by hand
 * (hand_sandbox), then says so with one byte. Timed like floor_cold_once. */
static int64_t floor_cold_sandboxed_once(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        die("pipe: %s", strerror(errno));
    int64_t t0 = sh_monotonic_ns();
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        void *h = dlopen(library, RTLD_NOW);
        char ok = h && dlsym(h, "stagehost_plugin") && hand_sandbox() == 0 ? 'y' : 'n';
        _exit(write_all(p[1], &ok, 1) == 0 && ok == 'y' ? 0 : 1);
    }
    close(p[1]);
    char c = 0;
    int r = read_all(p[0], &c, 1);
    int64_t t1 = sh_monotonic_ns();
    close(p[0]);
    if (r != 1 || c != 'y')
        die("floor: the child could not dlopen %s and confine itself (Landlock, seccomp)", library);
    reap_child(pid, "the floor's sandboxed dlopen child");
    return t1 - t0;
}

/* sh_instance_open + the first call; the close is timed into *close_ns. */
static int64_t stagehost_cold_once(sh_zygote *z, const sh_descriptor *d, const sh_values *input,
                                   const sh_sandbox_policy *policy, int64_t *close_ns)
{
    sh_worker_limits limits = bench_limits();
    sh_instance *in = NULL;
    sh_values out = {0};
    sh_call_usage usage;
    sh_error err;
    int64_t t0 = sh_monotonic_ns();
    if (sh_instance_open(d, SH_ISOLATION_PROCESS, &limits, NULL, policy, z, &in, &err) != SH_S_OK)
        die("cold open (%s%s): %s", z ? "zygote" : "no zygote", policy ? ", confined" : "", err.message);
    sh_status st = sh_instance_call(in, &echo_inv, "echo", stage_config, 0, input, &out, &usage, &err);
    int64_t t1 = sh_monotonic_ns();
    if (st != SH_S_OK)
        die("cold call (%s): %s", z ? "zygote" : "no zygote", err.message);
    check_echo(&out, input->items[0], "cold call");
    sh_values_clear(&out);
    sh_instance_close(in);
    *close_ns = sh_monotonic_ns() - t1;
    return t1 - t0;
}

typedef struct cold_result {
    double floor_us, zygote_us, direct_us, confined_us, zygote_close_us, direct_close_us, floor_sb_us, sandboxed_us;
    samples floor, zygote, direct, confined, zygote_close, direct_close, floor_sb, sandboxed;
} cold_result;

static void measure_cold(sh_zygote *z, const sh_descriptor *d, const sh_values *input,
                         const sh_sandbox_policy *confined, const sh_sandbox_policy *sandboxed, cold_result *res)
{
    samples_init(&res->floor_sb, COLD_REPS);
    samples_init(&res->sandboxed, COLD_REPS);
    samples_init(&res->confined, COLD_REPS);
    samples_init(&res->floor, COLD_REPS);
    samples_init(&res->zygote, COLD_REPS);
    samples_init(&res->direct, COLD_REPS);
    samples_init(&res->zygote_close, COLD_REPS);
    samples_init(&res->direct_close, COLD_REPS);
    /* Interleaved, so that drift in the machine's state touches all of them alike. */
    for (int i = -COLD_WARMUP; i < COLD_REPS; i++) {
        int64_t f = floor_cold_once();
        int64_t zc, dc, dc2;
        int64_t zt = stagehost_cold_once(z, d, input, NULL, &zc);
        int64_t dt = stagehost_cold_once(NULL, d, input, NULL, &dc);
        int64_t ct = confined ? stagehost_cold_once(z, d, input, confined, &dc2) : 0;
        int64_t fs = sandboxed ? floor_cold_sandboxed_once() : 0;
        int64_t st = sandboxed ? stagehost_cold_once(z, d, input, sandboxed, &dc2) : 0;
        if (i < 0)
            continue;
        if (sandboxed) {
            samples_add(&res->floor_sb, fs);
            samples_add(&res->sandboxed, st);
        }
        if (confined)
            samples_add(&res->confined, ct);
        samples_add(&res->floor, f);
        samples_add(&res->zygote, zt);
        samples_add(&res->direct, dt);
        samples_add(&res->zygote_close, zc);
        samples_add(&res->direct_close, dc);
    }
    res->floor_us = median_us(&res->floor);
    res->zygote_us = median_us(&res->zygote);
    res->direct_us = median_us(&res->direct);
    res->confined_us = median_us(&res->confined);
    res->floor_sb_us = median_us(&res->floor_sb);
    res->sandboxed_us = median_us(&res->sandboxed);
    res->zygote_close_us = median_us(&res->zygote_close);
    res->direct_close_us = median_us(&res->direct_close);
}

/* ---- 3. crash, then the next successful call ---------------------------------------------------------------- */

typedef struct crash_result {
    double total_us, crash_us, recovery_us, release_us, cold_us;
    samples total, crash, recovery, release, cold;
} crash_result;

static void measure_crash(sh_zygote *z, const sh_descriptor *d, const sh_values *input, crash_result *res)
{
    sh_pool_config cfg = {0};
    sh_pool *pool = sh_pool_new(&cfg, z, NULL);
    if (!pool)
        die("out of memory creating the pool");
    sh_worker_limits limits = bench_limits();
    samples_init(&res->total, CRASH_REPS);
    samples_init(&res->crash, CRASH_REPS);
    samples_init(&res->recovery, CRASH_REPS);
    samples_init(&res->release, CRASH_REPS);
    samples_init(&res->cold, CRASH_REPS);
    sh_values out = {0};
    sh_call_usage usage;
    sh_error err;
    bool reused;
    for (int i = -CRASH_WARMUP; i < CRASH_REPS; i++) {
        /* A warm instance (the one that recovered last time; a new one the first time round). */
        sh_instance *in = NULL;
        if (sh_pool_acquire(pool, d, SH_ISOLATION_PROCESS, &limits, NULL, NULL, &in, &reused, &err) != SH_S_OK)
            die("pool acquire: %s", err.message);
        if (i > -CRASH_WARMUP && !reused)
            die("pool: the recovered instance was not kept warm");

        int64_t t0 = sh_monotonic_ns();
        sh_status st = sh_instance_call(in, &segv_inv, "segv", stage_config, 0, input, &out, &usage, &err);
        int64_t t1 = sh_monotonic_ns();
        if (st != SH_S_CRASH)
            die("segv: expected a crash (status %d), got status %d: %s", SH_S_CRASH, st, err.message);
        if (sh_instance_alive(in))
            die("segv: the instance is still alive after its worker crashed");
        sh_pool_release(pool, in); /* drops the dead instance */
        int64_t t1b = sh_monotonic_ns();
        if (sh_pool_acquire(pool, d, SH_ISOLATION_PROCESS, &limits, NULL, NULL, &in, &reused, &err) != SH_S_OK)
            die("pool acquire after the crash: %s", err.message);
        st = sh_instance_call(in, &echo_inv, "echo", stage_config, 0, input, &out, &usage, &err);
        int64_t t2 = sh_monotonic_ns();
        if (st != SH_S_OK)
            die("echo after the crash: %s", err.message);
        if (reused)
            die("pool: a dead instance was handed out again");
        check_echo(&out, input->items[0], "echo after the crash");
        sh_values_clear(&out);
        sh_pool_release(pool, in);
        if (i < 0)
            continue;
        samples_add(&res->total, t2 - t0);
        samples_add(&res->crash, t1 - t0);
        samples_add(&res->recovery, t2 - t1);
        samples_add(&res->release, t1b - t1);
        /* The cold reference, interleaved: the same machine state as the recovery it is held against. */
        int64_t ignored;
        samples_add(&res->cold, stagehost_cold_once(z, d, input, NULL, &ignored));
    }
    if (sh_pool_live_workers(pool) != 1)
        die("pool: %zu live workers, expected 1", sh_pool_live_workers(pool));
    sh_pool_free(pool);
    res->total_us = median_us(&res->total);
    res->crash_us = median_us(&res->crash);
    res->recovery_us = median_us(&res->recovery);
    res->release_us = median_us(&res->release);
    res->cold_us = median_us(&res->cold);
}

/* ---- breakdown: the stage's own cost, in the host process --------------------------------------------------- */

static int collect(void *sink, sh_value *item) { return sh_values_push(sink, item); }

/* Last, as it loads the library into this process (which would make later forks' dlopen free). */
static double measure_inproc(const sh_descriptor *d, const sh_values *input, samples *s)
{
    sh_inproc *ip = NULL;
    sh_error err;
    if (sh_inproc_open(d, NULL, &ip, &err) != SH_S_OK)
        die("in-process open: %s", err.message);
    uint32_t id = 0;
    if (sh_inproc_create_stage(ip, &echo_inv, "echo", stage_config, &id, &err) != SH_S_OK)
        die("in-process create: %s", err.message);
    samples_init(s, INPROC_REPS);
    sh_values out = {0};
    for (int i = -WARM_WARMUP; i < INPROC_REPS; i++) {
        int64_t t0 = sh_monotonic_ns();
        /* A sink that drops log lines: the worker forwards them too, and the host filters them by level. */
        sh_status st = sh_inproc_process(ip, id, &echo_inv, (const sh_value *const *)input->items, input->len,
                                         collect, &out, NULL, NULL, &err);
        int64_t t1 = sh_monotonic_ns();
        if (st != SH_S_OK)
            die("in-process echo: %s", err.message);
        check_echo(&out, input->items[0], "in-process echo");
        sh_values_clear(&out);
        if (i >= 0)
            samples_add(s, t1 - t0);
    }
    sh_inproc_destroy_stage(ip, id);
    sh_inproc_close(ip);
    return median_us(s);
}

/* ---- the report --------------------------------------------------------------------------------------------- */

static void print_machine(const char *sandbox)
{
    char model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) != 0)
                continue;
            const char *colon = strchr(line, ':');
            if (colon) {
                snprintf(model, sizeof model, "%s", colon + 1 + (colon[1] == ' '));
                model[strcspn(model, "\n")] = '\0';
            }
            break;
        }
        fclose(f);
    }
    char date[64] = "?";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", &tm);
    printf("stagehost isolation benchmark\n");
    printf("machine: %ld online CPUs (nproc), %s\n", sysconf(_SC_NPROCESSORS_ONLN), model);
    printf("date:    %s\n", date);
#if defined(__SANITIZE_ADDRESS__)
    printf("build:   AddressSanitizer (figures are not representative)\n");
#endif
    printf("plugin:  %s\n", library);
    printf("sandbox: %s\n", sandbox);
    printf("reps:    warm %d (+%d warm-up), cold %d (+%d), crash %d (+%d); medians in microseconds\n\n", WARM_REPS,
           WARM_WARMUP, COLD_REPS, COLD_WARMUP, CRASH_REPS, CRASH_WARMUP);
}

static int goals_missed;

/* One table row; goal <= 0 means the row is for information only. */
static void row(const char *measure, double value, double floor, double goal)
{
    double ratio = floor > 0 ? value / floor : 0;
    char goal_s[16] = "-", verdict[8] = "info";
    if (goal > 0) {
        snprintf(goal_s, sizeof goal_s, "<= %.1fx", goal);
        bool pass = ratio <= goal;
        snprintf(verdict, sizeof verdict, "%s", pass ? "PASS" : "FAIL");
        goals_missed += !pass;
    }
    printf("| %-52s | %10.1f | %10.1f | %6.2fx | %-7s | %-9s |\n", measure, value, floor, ratio, goal_s, verdict);
}

static void dist(const char *what, samples *s)
{
    printf("  %-52s n=%-5zu min %9.1f  p10 %9.1f  p50 %9.1f  p90 %9.1f  p99 %9.1f\n", what, s->len,
           quantile_us(s, 0), quantile_us(s, 0.10), quantile_us(s, 0.5), quantile_us(s, 0.90), quantile_us(s, 0.99));
}

int main(void)
{
    /* The zygote first, before this process loads or grows anything. */
    sh_zygote *z = NULL;
    sh_error err;
    if (sh_zygote_start(&z, &err) != SH_S_OK)
        die("zygote: %s", err.message);
    int64_t started = sh_monotonic_ns();

    sh_descriptor *d = write_descriptor();

    /* The confinement the runtime would apply here (sh_runtime_policy): every protection this machine offers.
     * The goals are for the bare isolation (no policy); the confined figures show what the sandbox adds. */
    sh_sandbox_support sup;
    sh_sandbox_probe(NULL, getenv("STAGEHOST_PRETEND_MISSING"), &sup);
    sh_sandbox_policy confined_policy = {
        .landlock = sup.landlock_abi > 0,
        .seccomp = sup.seccomp,
        .uid = sup.user_switch ? sup.uid : 0,
        .gid = sup.user_switch ? sup.gid : 0,
        .default_processes = sup.user_switch ? SH_DEFAULT_WORKER_PROCESSES : 0,
    };
    const sh_sandbox_policy *confined = &confined_policy;
    /* The cold goal's stagehost side: the same protections as the floor's sandbox by hand, Landlock and
     * seccomp, without the switch to an unprivileged user (which the floor does not do either). */
    sh_sandbox_policy sandboxed_policy = {.landlock = true, .seccomp = true};
    const sh_sandbox_policy *sandboxed = sup.landlock_abi > 0 && sup.seccomp ? &sandboxed_policy : NULL;
    char sandbox[256];
    snprintf(sandbox, sizeof sandbox, "confined rows use seccomp %s, Landlock %s (ABI %d), user %s",
             sup.seccomp ? "on" : "off", sup.landlock_abi > 0 ? "on" : "off", sup.landlock_abi,
             sup.user_switch ? sup.user : "unchanged");
    print_machine(sandbox);
    fflush(stdout);

    stage_config = sh_value_map();
    sh_values input = {0};
    sh_value *item = sh_value_cstring("a small item for the echo stage");
    if (!stage_config || !item || sh_values_push(&input, item) != SH_OK)
        die("out of memory");

    /* Sanity: echo works, bare and confined, before anything is timed. */
    for (int k = 0; k < 2; k++) {
        sh_worker_limits limits = bench_limits();
        sh_instance *in = NULL;
        if (sh_instance_open(d, SH_ISOLATION_PROCESS, &limits, NULL, k ? confined : NULL, z, &in, &err) !=
            SH_S_OK)
            die("instance open (%s): %s", k ? "confined" : "bare", err.message);
        call_echo(in, &input, k ? "sanity, confined" : "sanity");
        sh_instance_close(in);
    }

    warm_result warm;
    measure_warm(z, d, &input, confined, has_counter, &warm);
    cold_result cold;
    measure_cold(z, d, &input, confined, sandboxed, &cold);
    crash_result crash;
    measure_crash(z, d, &input, &crash);
    samples inproc;
    double inproc_us = measure_inproc(d, &input, &inproc);
    double worker_us = warm.stage[WARM_BARE].median_us;

    printf("| %-52s | %10s | %10s | %7s | %-7s | %-9s |\n", "measure (median, us)", "stagehost", "floor", "ratio",
           "goal", "pass/fail");
    printf("|------------------------------------------------------|------------|------------|---------|---------|"
           "-----------|\n");
    row("1. warm call, sh_worker_call (1 round trip)", worker_us, warm.floor_us, GOAL_RATIO);
    row("1. warm call, sh_instance_call (create+process+destroy)", warm.call_us, warm.floor_us, 0);
    if (warm.have[WARM_CONFINED])
        row("   worker call, confined", warm.stage[WARM_CONFINED].median_us, warm.floor_us, 0);
    if (warm.have[WARM_COUNTER])
        row("   worker call, `counter` (no tmp dir, no log)", warm.stage[WARM_COUNTER].median_us, warm.floor_us,
            0);
    if (sandboxed)
        row("2. cold open + first call (zygote, Landlock+seccomp)", cold.sandboxed_us, cold.floor_sb_us,
            GOAL_RATIO);
    row("2. cold open + first call (zygote)", cold.zygote_us, cold.floor_us, sandboxed ? 0 : GOAL_RATIO);
    row("2. cold open + first call (no zygote)", cold.direct_us, cold.floor_us, 0);
    row("2. cold open + first call (zygote, confined)", cold.confined_us, cold.floor_us, 0);
    row("3. crash + next successful call (total)", crash.total_us, crash.cold_us, 0);
    row("3. next successful call after the crash", crash.recovery_us, crash.cold_us, RECOVERY_GOAL_RATIO);
    row("   same, against the cold figure of 2", crash.recovery_us, cold.zygote_us, 0);
    /* The rows of the one table (test/bench/run): the goal is for a trivial stage, `counter` when the plugin
     * has it (echo also creates its private directory and logs a line, work of the stage and not of isolation). */
    bool trivial = warm.have[WARM_COUNTER];
    char what[160];
    snprintf(what, sizeof what, "warm isolated call, trivial stage (%s) vs raw round trip",
             trivial ? "counter" : "echo");
    sh_bench_row_max(what, trivial ? warm.stage[WARM_COUNTER].median_us : worker_us, warm.floor_us, "us",
                     GOAL_RATIO);
    sh_bench_row_max("warm isolated call, echo (tmp dir + log) vs raw round trip", worker_us, warm.floor_us, "us",
                     0);
    if (sandboxed)
        sh_bench_row_max("cold first isolated call vs fork+dlopen+Landlock+seccomp", cold.sandboxed_us,
                         cold.floor_sb_us, "us", GOAL_RATIO);
    else
        sh_bench_row("cold first isolated call vs fork+dlopen+Landlock+seccomp", "-", "no Landlock or seccomp", 0,
                     "<= 1.5x", SH_BENCH_NA);
    sh_bench_row_max("cold first isolated call, no sandbox vs fork+dlopen", cold.zygote_us, cold.floor_us, "us", 0);
    sh_bench_row_max("crash -> next successful call vs a cold call", crash.recovery_us, crash.cold_us, "us",
                     RECOVERY_GOAL_RATIO);

    printf("\nfloors: 1 = raw 64-byte round trip over an AF_UNIX stream socketpair to a forked echo child;\n"
           "        2 = fork + child dlopen(RTLD_NOW) + dlsym + 1 byte over a pipe (reaping excluded);\n"
           "        2 (Landlock+seccomp) = the same, the child also applying a Landlock ruleset and a libseccomp\n"
           "            filter by hand;\n"
           "        3 = a cold call as in 2 (zygote), measured interleaved with the crashes. \"next successful call\"\n"
           "            = release of the dead instance + acquire (a new worker through the zygote) + echo call,\n"
           "            timed from the crash being reported.\n"
           "stagehost rows are bare (no sandbox policy) unless they say \"confined\".\n");

    printf("\ndistributions (us):\n");
    dist("1. floor: raw round trip", &warm.floor);
    dist("1. sh_worker_call", &warm.stage[WARM_BARE].s);
    if (warm.have[WARM_CONFINED])
        dist("1. worker call, confined", &warm.stage[WARM_CONFINED].s);
    if (warm.have[WARM_COUNTER])
        dist("1. worker call, counter", &warm.stage[WARM_COUNTER].s);
    dist("1. sh_instance_call", &warm.call);
    dist("   echo in the host process (no isolation)", &inproc);
    dist("2. floor: fork + dlopen + 1 byte", &cold.floor);
    dist("2. cold, zygote", &cold.zygote);
    dist("2. cold, no zygote", &cold.direct);
    dist("2. cold, zygote, confined", &cold.confined);
    if (sandboxed) {
        dist("2. floor: fork + dlopen + Landlock + seccomp", &cold.floor_sb);
        dist("2. cold, zygote, Landlock + seccomp", &cold.sandboxed);
    }
    dist("2. close after the cold call, zygote", &cold.zygote_close);
    dist("2. close after the cold call, no zygote", &cold.direct_close);
    dist("3. crash + next successful call", &crash.total);
    dist("3. the failed segv call (crash reported)", &crash.crash);
    dist("3. release + acquire + echo after the crash", &crash.recovery);
    dist("3. of which release (the pool drops the dead one)", &crash.release);
    dist("3. cold reference (interleaved)", &crash.cold);

    printf("\nbreakdown:\n");
    printf("  echo's own work in the host process (no isolation, no IPC): %.1f us of the %.1f us worker call\n",
           inproc_us, worker_us);
    if (warm.have[WARM_COUNTER]) {
        double counter_us = warm.stage[WARM_COUNTER].median_us;
        printf("  the round trip itself, with a stage that does next to nothing (`counter`): %.1f us = %.2fx floor\n",
               counter_us, warm.floor_us > 0 ? counter_us / warm.floor_us : 0);
        printf("  echo's extra work over `counter` (private tmp dir created and removed, a log frame): %.1f us\n",
               worker_us - counter_us);
    }
    printf("  instance close after a cold call: %.1f us (zygote), %.1f us (no zygote)\n", cold.zygote_close_us,
           cold.direct_close_us);
    printf("  failed segv call until the crash is reported: %.1f us\n", crash.crash_us);
    printf("\n%d goal(s) missed; total run time %.1f s\n", goals_missed,
           (double)(sh_monotonic_ns() - started) / 1e9);

    samples_free(&warm.floor);
    samples_free(&warm.call);
    for (int k = 0; k < WARM_STAGES; k++)
        samples_free(&warm.stage[k].s);
    samples_free(&cold.floor);
    samples_free(&cold.zygote);
    samples_free(&cold.direct);
    samples_free(&cold.confined);
    samples_free(&cold.floor_sb);
    samples_free(&cold.sandboxed);
    samples_free(&cold.zygote_close);
    samples_free(&cold.direct_close);
    samples_free(&crash.total);
    samples_free(&crash.crash);
    samples_free(&crash.recovery);
    samples_free(&crash.release);
    samples_free(&crash.cold);
    samples_free(&inproc);
    sh_values_clear(&input);
    sh_value_free(stage_config);
    sh_descriptor_free(d);
    sh_zygote_stop(z);
    cleanup_files();
    return 0; /* a missed goal is a finding, not a failure */
}
