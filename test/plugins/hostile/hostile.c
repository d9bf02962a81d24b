/*
 * Hostile plugins: each build of this file (-DATTACK=name) is a plugin "hostile/NAME" with one stage, `attack`,
 * that tries one thing a plugin must not be able to do. Attacks that the sandbox turns into a failed system
 * call emit {attack, succeeded, error}; the others crash, hang or flood, and the host must contain them.
 */
#include <stagehost/sdk.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#if defined(ATTACK_ctor_write)
/* Runs as soon as the library is loaded, before any stage: plugins checked with `plugins validate` or
 * `plugins inspect` must already be confined when this runs. */
__attribute__((constructor)) static void write_on_load(void)
{
    int fd = open("/tmp/stagehost-hostile-ctor", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0)
        close(fd);
}
#endif

#define STR2(x) #x
#define STR(x) STR2(x)

/* Emits whether the attack worked and, if not, why. */
__attribute__((unused)) static int report(sh_call *call, bool succeeded, int err, int64_t count)
{
    sh_value *m = sh_new_map();
    sh_set_string(m, "attack", STR(ATTACK));
    sh_set_bool(m, "succeeded", succeeded);
    sh_set_string(m, "error", succeeded ? "" : strerror(err));
    sh_set_int(m, "count", count);
    return sh_emit(call, m);
}

/* The host's process: the worker's parent is the zygote, whose parent is the host. */
__attribute__((unused)) static pid_t host_pid(void)
{
    const char *env = getenv("SH_HOSTILE_TARGET");
    return env ? (pid_t)atoi(env) : getppid();
}

__attribute__((unused, noinline)) static int recurse(volatile int depth)
{
    volatile char pad[4096];
    pad[0] = (char)depth;
    if (depth < 0) /* never: the recursion must run until the stack is gone */
        return 0;
    return recurse(depth + 1) + pad[0];
}

static int attack(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)items, (void)count;
    sh_context ctx = sh_get_context(call);
    (void)ctx;
#if defined(ATTACK_read_file)
    /* A file outside the grants, readable by everyone as far as permissions go. */
    const char *path = getenv("SH_HOSTILE_PATH");
    int fd = open(path ? path : "/etc/hostname", O_RDONLY);
    int e = errno;
    if (fd >= 0)
        close(fd);
    return report(call, fd >= 0, e, 0);
#elif defined(ATTACK_write_file)
    const char *path = getenv("SH_HOSTILE_PATH");
    int fd = open(path ? path : "/tmp/stagehost-hostile", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = errno;
    if (fd >= 0)
        close(fd);
    return report(call, fd >= 0, e, 0);
#elif defined(ATTACK_connect)
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return report(call, false, errno, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(9)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(s, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    close(s);
    /* Refused by the peer still means the network was reachable. */
    return report(call, rc == 0 || e == ECONNREFUSED, e, 0);
#elif defined(ATTACK_ptrace)
    long rc = ptrace(PTRACE_ATTACH, host_pid(), NULL, NULL);
    return report(call, rc == 0, errno, 0);
#elif defined(ATTACK_kill)
    int rc = kill(host_pid(), SIGKILL);
    return report(call, rc == 0, errno, 0);
#elif defined(ATTACK_exec)
    execl("/bin/sh", "sh", "-c", "echo pwned", (char *)NULL);
    return report(call, false, errno, 0); /* execl returns only when it failed */
#elif defined(ATTACK_fork_bomb)
    int64_t forks = 0;
    int e = 0;
    for (int i = 0; i < 100000; i++) {
        pid_t p = fork();
        if (p == 0) {
            for (;;)
                pause();
        }
        if (p < 0) {
            e = errno;
            break;
        }
        forks++;
    }
    return report(call, e == 0, e, forks);
#elif defined(ATTACK_memory_bomb)
    int64_t mib = 0;
    for (int i = 0; i < 4096; i++) {
        char *p = malloc(1024 * 1024);
        if (!p)
            return report(call, false, ENOMEM, mib);
        memset(p, 1, 1024 * 1024);
        mib++;
    }
    return report(call, true, 0, mib);
#elif defined(ATTACK_fd_exhaustion)
    int64_t n = 0;
    int e = 0;
    for (int i = 0; i < 1000000; i++) {
        if (open("/dev/null", O_RDONLY) < 0) {
            e = errno;
            break;
        }
        n++;
    }
    return report(call, e == 0, e, n);
#elif defined(ATTACK_cpu_spin)
    volatile uint64_t x = 0;
    for (;;)
        x++;
    return SH_OK;
#elif defined(ATTACK_sleep_forever)
    for (;;)
        pause();
    return SH_OK;
#elif defined(ATTACK_stack_overflow)
    return recurse(0);
#elif defined(ATTACK_big_output)
    size_t len = 4 * 1024 * 1024;
    char *big = malloc(len);
    if (!big)
        return sh_failf(call, "out of memory");
    memset(big, 'x', len);
    int rc = SH_OK;
    for (int i = 0; i < 1024 && rc == SH_OK; i++) {
        sh_value *m = sh_new_map();
        rc = sh_set_stringn(m, "blob", big, len);
        rc = rc == SH_OK ? sh_emit(call, m) : rc;
    }
    free(big);
    return rc;
#elif defined(ATTACK_garbage)
    static const unsigned char junk[] = {0xff, 0xff, 0xff, 0x7f, 0x0b, 'g', 'a', 'r', 'b', 'a', 'g', 'e'};
    for (int fd = 3; fd < 64; fd++)
        if (write(fd, junk, sizeof junk) < 0)
            continue;
    return SH_OK;
#elif defined(ATTACK_environ)
    /* The host's environment holds secrets no grant gave the plugin: look for them where they used to be. */
    int fd = open("/proc/self/environ", O_RDONLY);
    char buf[65536];
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    bool found = false;
    for (ssize_t i = 0; n > 0 && i + 9 < n && !found; i++)
        found = memcmp(buf + i, "SH_SECRET", 9) == 0;
    return report(call, found || getenv("SH_SECRET") != NULL, EACCES, n);
#elif defined(ATTACK_ctl_socket)
    /* Drive the serving host through its control socket: ask it to shut down. */
    const char *path = getenv("SH_HOSTILE_PATH");
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path ? path : "");
    if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        if (s >= 0)
            close(s);
        return report(call, false, e, 0);
    }
    /* A ctl request frame: length 19, type 1, an array of one string "shutdown". */
    static const unsigned char req[] = {19, 0, 0, 0, 1, 7, 1, 0, 0, 0, 5, 8, 0, 0, 0,
                                        's', 'h', 'u', 't', 'd', 'o', 'w', 'n'};
    ssize_t w = write(s, req, sizeof req);
    char answer[512];
    ssize_t n = w == (ssize_t)sizeof req ? read(s, answer, sizeof answer - 1) : -1;
    close(s);
    answer[n > 0 ? n : 0] = '\0';
    bool obeyed = n > 0 && memmem(answer, (size_t)n, "shutting down", 13) != NULL;
    return report(call, obeyed, EACCES, n);
#elif defined(ATTACK_ctor_write)
    return report(call, access("/tmp/stagehost-hostile-ctor", F_OK) == 0, EACCES, 0);
#elif defined(ATTACK_close_wire)
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    return SH_OK;
#else
#error "unknown ATTACK"
#endif
}

static const sh_sdk_stage stages[] = {
    {.type = "attack", .input = "any", .output = "any", .process = attack},
};

SH_SDK_PLUGIN(.name = "hostile/" PLUGIN_NAME, .version = "1.0.0", .stages = stages,
              .stage_count = SH_SDK_COUNT(stages));
