/* stagehost new-plugin: writes a plugin project (source, descriptor, meson build, README, example pipeline)
 * from the templates compiled in from sdk/template/. */
#include "builtin/builtins.h"
#include "util/buf.h"
#include "cli/cli.h"
#include "registry/descriptor.h"
#include "sh_config.h"
#include "cli/templates.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "Usage: stagehost new-plugin NAMESPACE/NAME [DIR]\n"
    "\n"
    "Create a plugin project in DIR (default: ./NAME), ready to build against the installed SDK:\n"
    "  NAME.c             one stage type, NAME, that upper-cases a text field of document items\n"
    "  NAME.plugin        its descriptor, every key explained\n"
    "  meson.build        builds libNAME.so with dependency('stagehost-sdk'); installs nothing unless\n"
    "                     configured with -Dinstall_plugin=true (meson_options.txt)\n"
    "  README.md          how to build, run and install it\n"
    "  example.cfg        a pipeline that runs the stage over example/*.txt\n"
    "DIR may already exist, but no file in it is ever overwritten: if one of these exists, nothing is written.\n"
    "\n"
    "NAMESPACE and NAME use lowercase letters, digits and '-', and start with a letter or digit.\n"
    "\n"
    "Then:\n"
    "  cd DIR && meson setup build && ninja -C build\n"
    "  stagehost run example.cfg --plugins-dir build\n"
    "\n"
    "Options:\n"
    "  -h, --help          show this help\n";

/* Which template becomes which file; "@NAME@" in a path is the plugin's short name. */
static const struct {
    const char *template;
    const char *path;
} outputs[] = {
    {"plugin.c", "@NAME@.c"},
    {"plugin.plugin", "@NAME@.plugin"},
    {"meson.build", "meson.build"},
    {"meson_options.txt", "meson_options.txt"},
    {"README.md", "README.md"},
    {"example.cfg", "example.cfg"},
    {"hello.txt", "example/hello.txt"},
};
#define OUTPUT_COUNT (sizeof outputs / sizeof outputs[0])

typedef struct scaffold_vars {
    const char *plugin;    /* "acme/shout" */
    char namespace_[128];  /* "acme" */
    const char *name;      /* "shout" */
    char abi[32];          /* "1.0" */
} scaffold_vars;

/* Appends `text` to `out` with every known @VAR@ replaced; an unknown @...@ (say, in a meson format string) is
 * copied as it is. */
static void expand(sh_buf *out, const char *text, const scaffold_vars *v)
{
    const struct {
        const char *key;
        const char *value;
    } vars[] = {
        {"@PLUGIN@", v->plugin}, {"@NAMESPACE@", v->namespace_}, {"@NAME@", v->name},
        {"@ABI@", v->abi},       {"@SDK_VERSION@", SH_VERSION},
    };
    for (const char *p = text; *p;) {
        const char *at = strchr(p, '@');
        if (!at) {
            sh_buf_puts(out, p);
            return;
        }
        sh_buf_append(out, p, (size_t)(at - p));
        size_t k = 0;
        while (k < sizeof vars / sizeof vars[0] && strncmp(at, vars[k].key, strlen(vars[k].key)) != 0)
            k++;
        if (k < sizeof vars / sizeof vars[0]) {
            sh_buf_puts(out, vars[k].value);
            p = at + strlen(vars[k].key);
        } else {
            sh_buf_putc(out, '@');
            p = at + 1;
        }
    }
}

static const sh_template *find_template(const char *name)
{
    for (size_t i = 0; i < sh_template_count; i++)
        if (strcmp(sh_templates[i].name, name) == 0)
            return &sh_templates[i];
    return NULL;
}

/* "DIR/" + the output path with its variables expanded, as a NUL-terminated string in `out`. */
static void output_path(sh_buf *out, const char *dir, const char *path, const scaffold_vars *v)
{
    sh_buf_reset(out);
    sh_buf_puts(out, dir);
    if (out->len && out->data[out->len - 1] != '/')
        sh_buf_putc(out, '/');
    expand(out, path, v);
    sh_buf_putc(out, '\0');
}

/* mkdir -p: creates `path` and its missing parents. Returns 0 or -1 with errno set. */
static int make_dirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0777);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* Writes `b` to a new file at `path`: O_EXCL, so a file that appeared since the check is still not replaced. */
static int write_new(const char *path, const sh_buf *b)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < b->len) {
        ssize_t n = write(fd, b->data + done, b->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int saved = n < 0 ? errno : EIO;
            close(fd);
            unlink(path);
            errno = saved;
            return -1;
        }
        done += (size_t)n;
    }
    if (close(fd) != 0) {
        int saved = errno;
        unlink(path);
        errno = saved;
        return -1;
    }
    return 0;
}

/* Lists every output that already exists under `dir`. Returns how many do. */
static int existing_outputs(const char *dir, const scaffold_vars *v, sh_buf *list)
{
    sh_buf path;
    sh_buf_init(&path);
    int found = 0;
    for (size_t i = 0; i < OUTPUT_COUNT; i++) {
        output_path(&path, dir, outputs[i].path, v);
        struct stat st;
        if (!path.failed && lstat((const char *)path.data, &st) == 0) {
            sh_buf_printf(list, "  %s\n", (const char *)path.data);
            found++;
        }
    }
    sh_buf_free(&path);
    return found;
}

/* Writes every output under `dir`; on failure removes what it wrote and returns 2 after printing why. */
static int write_outputs(const char *dir, const scaffold_vars *v)
{
    sh_buf path, text;
    sh_buf_init(&path);
    sh_buf_init(&text);
    size_t written = 0;
    int rc = 0;
    for (; written < OUTPUT_COUNT; written++) {
        const sh_template *t = find_template(outputs[written].template);
        if (!t) {
            rc = sh_cli_error(2, "new-plugin: template '%s' is missing from this build of stagehost (a build "
                                 "bug: check sdk/template/meson.build)", outputs[written].template);
            break;
        }
        sh_buf_reset(&text);
        for (size_t k = 0; k < t->line_count; k++)
            expand(&text, t->lines[k], v);
        output_path(&path, dir, outputs[written].path, v);
        if (path.failed || text.failed) {
            rc = sh_cli_error(2, "new-plugin: out of memory");
            break;
        }
        char *file = (char *)path.data;
        char *slash = strrchr(file, '/');
        if (slash && slash != file) {
            *slash = '\0';
            int made = make_dirs(file);
            *slash = '/';
            if (made != 0) {
                rc = sh_cli_error(2, "new-plugin: cannot create the directory of %s: %s", file, strerror(errno));
                break;
            }
        }
        if (write_new(file, &text) != 0) {
            rc = sh_cli_error(2, "new-plugin: cannot write %s: %s", file,
                              errno == EEXIST ? "it appeared while writing the scaffold; nothing is overwritten"
                                              : strerror(errno));
            break;
        }
    }
    if (rc != 0) {
        /* Leave no half scaffold: remove the files written so far (directories stay, they may have existed). */
        for (size_t i = 0; i < written; i++) {
            output_path(&path, dir, outputs[i].path, v);
            if (!path.failed)
                unlink((const char *)path.data);
        }
        if (written)
            fprintf(stderr, "stagehost: removed the %zu file%s written before the error\n", written,
                    written == 1 ? "" : "s");
    }
    sh_buf_free(&path);
    sh_buf_free(&text);
    return rc;
}

static int scaffold(const char *plugin, const char *dir_arg)
{
    if (strlen(plugin) >= 128)
        return sh_cli_error(2, "new-plugin: plugin name '%.40s...' is too long: at most 127 characters", plugin);
    if (!sh_valid_plugin_name(plugin))
        return sh_cli_error(2, "new-plugin: '%s' is not a valid plugin name: use NAMESPACE/NAME with lowercase "
                               "letters, digits and '-' in each part (each starting with a letter or digit), "
                               "such as acme/shout",
                            plugin);
    scaffold_vars v = {.plugin = plugin};
    const char *slash = strchr(plugin, '/');
    snprintf(v.namespace_, sizeof v.namespace_, "%.*s", (int)(slash - plugin), plugin);
    v.name = slash + 1;
    snprintf(v.abi, sizeof v.abi, "%d.%d", SH_ABI_MAJOR, SH_ABI_MINOR);
    /* The stage type is the plugin's short name; a bare type a plugin provides takes over the built-in of that
     * name wherever the plugin is on the search path, which would also break the example pipeline's `read`. */
    if (sh_builtin_find(v.name))
        return sh_cli_error(2, "new-plugin: '%s' is the name of a built-in stage type, which the new plugin's "
                               "stage (named after the plugin) would replace: choose another name, such as %s/my-%s",
                            v.name, v.namespace_, v.name);
    const char *dir = dir_arg ? dir_arg : v.name;
    if (!*dir)
        return sh_cli_error(2, "new-plugin: DIR is empty: give a directory, or leave it out to use ./%s", v.name);

    struct stat st;
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
        return sh_cli_error(2, "new-plugin: %s exists and is not a directory: give another DIR, such as "
                               "'stagehost new-plugin %s %s-plugin'",
                            dir, plugin, v.name);
    sh_buf list;
    sh_buf_init(&list);
    int found = existing_outputs(dir, &v, &list);
    if (found) {
        sh_buf_putc(&list, '\0');
        int rc = sh_cli_error(2, "new-plugin: %s already exist%s in %s, and new-plugin never overwrites:\n%s"
                                 "Nothing was written. Move %s away, or give another DIR: "
                                 "'stagehost new-plugin %s OTHER-DIR'",
                              found == 1 ? "this file" : "these files", found == 1 ? "s" : "", dir,
                              list.failed ? "" : (const char *)list.data, found == 1 ? "it" : "them", plugin);
        sh_buf_free(&list);
        return rc;
    }
    sh_buf_free(&list);

    int rc = write_outputs(dir, &v);
    if (rc != 0)
        return rc;
    int shown = (int)strlen(dir);
    while (shown > 1 && dir[shown - 1] == '/')
        shown--; /* "DIR/" given: print "DIR/", not "DIR//" */
    printf("Created plugin %s in %.*s/:\n", plugin, shown, dir);
    printf("  %s.c  %s.plugin  meson.build  meson_options.txt  README.md  example.cfg  example/hello.txt\n",
           v.name, v.name);
    printf("Build it against the installed SDK and try it:\n");
    printf("  cd %s && meson setup build && ninja -C build\n", dir);
    printf("  stagehost run example.cfg --plugins-dir build\n");
    return 0;
}

int sh_cmd_new_plugin(const sh_env *env, int argc, char **argv)
{
    sh_cli cli = {.env = env, .command = "new-plugin", .usage = usage};
    int rc = sh_cli_parse(&cli, argc, argv);
    if (rc < 0) {
        if (cli.arg_count == 0)
            rc = sh_cli_error(2, "new-plugin: expected NAMESPACE/NAME, such as acme/shout\n%s", usage);
        else if (cli.arg_count > 2)
            rc = sh_cli_error(2, "new-plugin: expected NAMESPACE/NAME [DIR], got %d arguments\n%s", cli.arg_count,
                              usage);
        else
            rc = scaffold(cli.args[0], cli.arg_count == 2 ? cli.args[1] : NULL);
    }
    sh_cli_free(&cli);
    return rc;
}
