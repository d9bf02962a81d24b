#include "cli/cli.h"
#include "sandbox/sandbox.h"

#include <stdio.h>
#include <unistd.h>

static const char usage[] =
    "Usage: stagehost doctor [--config FILE]\n"
    "\n"
    "Report each protection stagehost puts around plugin workers, whether this system provides it, and what a\n"
    "missing one means. Exits 0 when every protection is available, 1 otherwise.\n";

static void line(bool ok, const char *name, const char *detail, const char *missing)
{
    printf("%-16s %-10s %s\n", name, ok ? "available" : "MISSING", ok ? detail : missing);
}

int sh_cmd_doctor(const sh_env *env, int argc, char **argv)
{
    sh_cli cli = {.env = env, .command = "doctor", .usage = usage};
    int rc = sh_cli_parse(&cli, argc, argv);
    if (rc >= 0)
        goto out;
    sh_runtime rt;
    rc = sh_cli_runtime(&cli, &rt, false, false);
    if (rc >= 0)
        goto out;
    const sh_sandbox_support *s = &rt.sandbox;
    char ll[160], user[200];
    snprintf(ll, sizeof ll, "file-system rules%s (Landlock ABI %d)",
             s->landlock_abi >= 6 ? ", TCP rules and signal scoping" : s->landlock_abi >= 4 ? " and TCP rules" : "",
             s->landlock_abi);
    if (geteuid() == 0)
        snprintf(user, sizeof user, "workers run as user '%s' (uid %u)", s->user, (unsigned)s->uid);
    else
        snprintf(user, sizeof user, "not needed: the host does not run as root");
    line(s->seccomp, "seccomp", "system-call filter: no ptrace, mount, module loading, bpf, namespaces; no "
                                "network sockets or execve without a grant",
         "plugins could make any system call: isolated plugins are refused unless --allow-unconfined");
    line(s->landlock_abi > 0, "landlock", ll,
         "plugins could read and write any file their user can: isolated plugins are refused unless "
         "--allow-unconfined");
    line(s->rlimits, "resource limits", "memory, CPU time, open files, processes, file size; no core dumps",
         "limits cannot be applied");
    line(geteuid() != 0 || s->user_switch, "user switching", user,
         "the host runs as root and the user to switch to does not exist: workers would keep root's "
         "privileges; set sandbox.user in the host configuration to an existing unprivileged account");
    bool all = s->seccomp && s->landlock_abi > 0 && s->rlimits && (geteuid() != 0 || s->user_switch);
    printf("\n%s\n", all ? "Every protection is available: plugins run confined."
                         : "Some protections are missing: see above for what that means.");
    rc = all ? 0 : 1;
    sh_runtime_stop(&rt);
out:
    sh_cli_free(&cli);
    return rc;
}
