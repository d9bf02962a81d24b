#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static bool pretend_missing(const char *list, const char *what)
{
    if (!list)
        return false;
    size_t n = strlen(what);
    for (const char *p = list; (p = strstr(p, what)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return true;
    return false;
}

/* The kernel reports a Seccomp line in /proc/self/status when it can filter; a worker that then fails to load
 * its filter refuses to start and says why. (Loading one in a throwaway child would be surer, but costs every
 * host start a fork.) */
static bool seccomp_works(void)
{
    if (!sh_seccomp_available())
        return false;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return false;
    char line[256];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strncmp(line, "Seccomp:", 8) == 0;
    fclose(f);
    return found;
}

void sh_sandbox_probe(const char *user, const char *pretend, sh_sandbox_support *out)
{
    memset(out, 0, sizeof *out);
    out->seccomp = !pretend_missing(pretend, "seccomp") && seccomp_works();
    out->landlock_abi = pretend_missing(pretend, "landlock") ? 0 : sh_landlock_abi();
    out->rlimits = true;
    out->user = user ? user : "nobody";
    struct passwd *pw = getpwnam(out->user);
    if (geteuid() == 0 && pw && pw->pw_uid != 0) {
        out->user_switch = true;
        out->uid = pw->pw_uid;
        out->gid = pw->pw_gid;
    }
}

/* Keeps only the granted variables of the host's environment, then sets what every worker gets. */
static int clean_environment(const sh_descriptor *d, const char *tmp_root, char *why, size_t len)
{
    size_t n = d->permissions.env.len;
    char **kept = calloc(n + 1, sizeof *kept);
    if (!kept) {
        snprintf(why, len, "out of memory cleaning the environment");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = getenv(d->permissions.env.items[i]);
        kept[i] = v ? strdup(v) : NULL;
    }
    /* clearenv() only forgets the strings: they would stay in memory, and in /proc/self/environ. Overwrite
     * them (this is the worker's copy of the memory; the host's is untouched). */
    for (char **e = environ; e && *e; e++)
        memset(*e, 0, strlen(*e));
    clearenv();
    for (size_t i = 0; i < n; i++)
        if (kept[i])
            setenv(d->permissions.env.items[i], kept[i], 1);
    for (size_t i = 0; i < n; i++)
        free(kept[i]);
    free(kept);
    setenv("PATH", "/usr/bin:/bin", 0);
    if (tmp_root) {
        setenv("TMPDIR", tmp_root, 1);
        setenv("HOME", tmp_root, 1);
    }
    return 0;
}

/* Opens the libraries to load (the plugin's and its dependencies') while the worker can still reach them: a host
 * running as root may keep plugins where the unprivileged worker user cannot look, as under /root. */
static int open_libraries(sh_descriptor *d, char *why, size_t len)
{
    for (size_t i = 0; i < d->dep_count; i++)
        if (open_libraries(d->deps[i], why, len) != 0)
            return -1;
    if (!d->library_path || d->library_fd)
        return 0;
    int fd = open(d->library_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, len, "cannot open %s: %s", d->library_path, strerror(errno));
        return -1;
    }
    d->library_fd = fd + 1;
    return 0;
}

int sh_sandbox_apply(const sh_sandbox_policy *policy, sh_descriptor *d, char *why, size_t len)
{
    int ruleset = -1;
    if (policy->uid) {
        if (open_libraries(d, why, len) != 0)
            return -1;
        if (policy->landlock && (ruleset = sh_landlock_prepare(d, policy->tmp_root, why, len)) < 0)
            return -1;
    }
    if (policy->uid) {
        /* Groups first: after setuid we could no longer drop them. */
        if (setgroups(0, NULL) != 0 || setgid(policy->gid) != 0 || setuid(policy->uid) != 0) {
            snprintf(why, len, "cannot switch to user %u: %s", (unsigned)policy->uid, strerror(errno));
            return -1;
        }
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(why, len, "cannot set no_new_privs: %s", strerror(errno));
        return -1;
    }
    if (clean_environment(d, policy->tmp_root, why, len) != 0)
        return -1;
    if (policy->tmp_root && chdir(policy->tmp_root) != 0) {
        snprintf(why, len, "cannot enter the private directory %s: %s", policy->tmp_root, strerror(errno));
        return -1;
    }
    if (policy->landlock && (ruleset >= 0 ? sh_landlock_restrict(ruleset, why, len)
                                          : sh_landlock_apply(d, policy->tmp_root, why, len)) != 0)
        return -1;
    return policy->seccomp ? sh_seccomp_apply(d, why, len) : 0;
}
