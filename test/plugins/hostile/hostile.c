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
#include <pthread.h>
#include <stdio.h>
#include <mqueue.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
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

/* The worker's shared buffer with the host (a memfd mapping named stagehost-shm), found in /proc/self/maps. */
__attribute__((unused)) static unsigned char *find_shm(size_t *size, char *range, size_t range_len)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    unsigned char *base = NULL;
    while (f && !base && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (strstr(line, "stagehost-shm") && sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
            base = (unsigned char *)lo;
            *size = hi - lo;
            if (range)
                snprintf(range, range_len, "%lx-%lx", lo, hi);
        }
    }
    if (f)
        fclose(f);
    return base;
}

#if defined(ATTACK_shm_scribble)
static unsigned char *scribble_base;
static size_t scribble_size;

/* Rewrites the whole buffer with garbage, forever: tags, lengths, invalid UTF-8, while the host copies items
 * out of it. */
static void *scribble(void *arg)
{
    (void)arg;
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (;;) {
        for (size_t i = 0; i < scribble_size; i += 8) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            uint64_t v = x;
            if ((x & 0xff) < 8)
                v = 0xffffffff05; /* a string tag with a length far past the buffer's end */
            memcpy(scribble_base + i, &v, i + 8 <= scribble_size ? 8 : scribble_size - i);
        }
    }
    return NULL;
}
#endif

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
#elif defined(ATTACK_shm_scribble)
    /* Large items go through the shared buffer; a thread scribbles over it while the host copies them out. */
    static bool started;
    if (!started) {
        if (!(scribble_base = find_shm(&scribble_size, NULL, 0)))
            return sh_failf(call, "no shared buffer (send a large item)");
        pthread_t t;
        if (pthread_create(&t, NULL, scribble, NULL) != 0)
            return sh_failf(call, "no thread");
        started = true;
    }
    size_t len = 300 * 1024;
    char *text = malloc(len);
    if (!text)
        return sh_failf(call, "out of memory");
    memset(text, 'a', len);
    int rc = SH_OK;
    for (int i = 0; i < 8 && rc == SH_OK; i++) {
        sh_value *m = sh_new_map();
        rc = sh_set_stringn(m, "text", text, len);
        rc = rc == SH_OK ? sh_emit(call, m) : rc;
        rc = rc == SH_OK ? sh_emit(call, sh_sdk_host->new_string(text, len)) : rc;
        rc = rc == SH_OK ? sh_emit(call, sh_sdk_host->new_bytes(text, len)) : rc;
    }
    free(text);
    return rc;
#elif defined(ATTACK_shm_forge)
    /* An item frame pointing far outside the shared buffer (offset + length wraps around), written straight
     * onto the channel before the worker's own answer. */
    static const unsigned char frame[] = {17, 0, 0, 0, 15, 0xf5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          100, 0, 0, 0, 0, 0, 0, 0};
    for (int fd = 3; fd < 64; fd++)
        if (write(fd, frame, sizeof frame) < 0)
            continue;
    return SH_OK;
#elif defined(ATTACK_shm_truncate)
    /* Shrink the shared buffer under the host (which would kill it with SIGBUS): through a descriptor reopened
     * from /proc, and by punching its pages out. */
    size_t size = 0;
    char range[64];
    unsigned char *base = find_shm(&size, range, sizeof range);
    if (!base)
        return sh_failf(call, "no shared buffer (send a large item)");
    char path[128];
    snprintf(path, sizeof path, "/proc/self/map_files/%s", range);
    int fd = open(path, O_RDWR);
    int e = fd < 0 ? errno : 0;
    bool shrunk = false;
    if (fd >= 0) {
        shrunk = ftruncate(fd, 0) == 0 || ftruncate(fd, 4096) == 0 || ftruncate(fd, (off_t)size * 2) == 0;
        e = shrunk ? 0 : errno;
        close(fd);
    }
    madvise(base, size, MADV_REMOVE); /* the pages go, the size stays: the host reads zeros */
    return report(call, shrunk, e, (int64_t)size);
#elif defined(ATTACK_ctl_socket_fork)
    /* The control-socket attack from a child that is gone by the time the server looks at who connected. */
    const char *path = getenv("SH_HOSTILE_PATH");
    int pfd[2];
    if (pipe(pfd) != 0)
        return report(call, false, errno, 0);
    pid_t child = fork();
    if (child == 0) {
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path ? path : "");
        int e = 0;
        if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) != 0)
            e = errno;
        static const unsigned char req[] = {19, 0, 0, 0, 1, 7, 1, 0, 0, 0, 5, 8, 0, 0, 0,
                                            's', 'h', 'u', 't', 'd', 'o', 'w', 'n'};
        if (!e && write(s, req, sizeof req) != (ssize_t)sizeof req)
            e = errno;
        (void)!write(pfd[1], &e, sizeof e);
        _exit(0); /* the request stays queued in the socket; its sender is gone */
    }
    int e = EIO;
    if (child < 0 || read(pfd[0], &e, sizeof e) != (ssize_t)sizeof e)
        e = child < 0 ? errno : EIO;
    if (child > 0)
        waitpid(child, NULL, 0);
    close(pfd[0]);
    close(pfd[1]);
    return report(call, e == 0, e, 0);
#elif defined(ATTACK_tiocsti)
    /* Push a command into the terminal of the shell that ran stagehost: it would run once stagehost exits. */
    int e = ENOTTY;
    bool pushed = false;
    for (int fd = 0; fd <= 2 && !pushed; fd++) {
        if (!isatty(fd))
            continue;
        char c = '#';
        pushed = ioctl(fd, TIOCSTI, &c) == 0;
        e = errno;
    }
    return report(call, pushed, e, 0);
#elif defined(ATTACK_sysv_shm)
    /* A segment that outlives the worker and the host, larger than the worker's memory limit. */
    int id = shmget(IPC_PRIVATE, 512u << 20, IPC_CREAT | 0600);
    int e = errno;
    if (id >= 0) {
        void *p = shmat(id, NULL, 0);
        if (p != (void *)-1) {
            memset(p, 1, 512u << 20);
            shmdt(p);
        }
        shmctl(id, IPC_RMID, NULL); /* the test must not leak it either */
    }
    return report(call, id >= 0, e, 0);
#elif defined(ATTACK_mqueue)
    mqd_t q = mq_open("/stagehost-hostile", O_CREAT | O_RDWR, 0600, NULL);
    int e = errno;
    if (q != (mqd_t)-1) {
        mq_close(q);
        mq_unlink("/stagehost-hostile");
    }
    return report(call, q != (mqd_t)-1, e, 0);
#elif defined(ATTACK_forge_output)
    /* Forge a host line and steer the terminal from a log line and a failure message; and a log line far longer
     * than any message may be. */
    static char big[200000];
    memset(big, 'x', sizeof big - 1);
    sh_logf(call, SH_LOG_WARN, "logged\nstagehost: error: forged by a log line\x1b[2J\xc2\x9b" "31m");
    sh_logf(call, SH_LOG_WARN, "%s", big);
    return sh_failf(call, "failed\nstagehost: error: forged by a failure\x1b]0;title\x07");
#elif defined(ATTACK_call_leftover)
    /* In isolation = "call" no state may survive a call: look for what an earlier call left in the working
     * directory, then leave something for the next. */
    bool found = access("leftover", F_OK) == 0;
    int e = errno;
    int fd = open("leftover", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0)
        close(fd);
    return report(call, found, found ? 0 : e, fd >= 0);
#elif defined(ATTACK_destroy_hang)
    return report(call, false, 0, 1);
#elif defined(ATTACK_stdin_read)
    /* Read what was piped into the host. */
    char buf[256];
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    return report(call, n > 0, n < 0 ? errno : ENODATA, n);
#elif defined(ATTACK_stderr_rewrite)
    /* Rewrite the host's log: truncate it, rewind it, overwrite its start, or get a copy of it to do so. */
    int e = 0, worked = 0;
    if (ftruncate(STDERR_FILENO, 0) == 0)
        worked++;
    else
        e = errno;
    if (lseek(STDERR_FILENO, 0, SEEK_SET) == 0)
        worked++;
    if (pwrite(STDERR_FILENO, "forged", 6, 0) == 6)
        worked++;
    int copies[] = {dup(STDERR_FILENO), dup2(STDERR_FILENO, 7), fcntl(STDERR_FILENO, F_DUPFD, 0)};
    for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++)
        if (copies[i] >= 0) {
            worked += ftruncate(copies[i], 0) == 0;
            close(copies[i]);
        }
    /* Copying among the standard streams (a shell's 2>&1) stays allowed: not an escape. */
    if (dup2(STDERR_FILENO, STDOUT_FILENO) != STDOUT_FILENO)
        worked = 100;
    return report(call, worked > 0, e, worked);
#elif defined(ATTACK_close_wire)
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    return SH_OK;
#else
#error "unknown ATTACK"
#endif
}

#if defined(ATTACK_destroy_hang)
/* A stage configured with hang = true does its work, then hangs in destroy(): the hang is its own call's, not
 * the next stage's of the same plugin. */
static int hang_create(sh_call *call, const sh_stage_def *def, void **user)
{
    (void)call;
    *user = sh_get_bool(def->config, "hang", 0) ? (void *)1 : NULL;
    return SH_OK;
}

static void hang_destroy(void *user)
{
    while (user)
        pause();
}
#endif

static const sh_sdk_stage stages[] = {
#if defined(ATTACK_destroy_hang)
    {.type = "attack", .input = "any", .output = "any", .create = hang_create, .process = attack,
     .destroy = hang_destroy},
#else
    {.type = "attack", .input = "any", .output = "any", .process = attack},
#endif
};

SH_SDK_PLUGIN(.name = "hostile/" PLUGIN_NAME, .version = "1.0.0", .stages = stages,
              .stage_count = SH_SDK_COUNT(stages));
