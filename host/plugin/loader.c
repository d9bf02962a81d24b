#include "plugin/loader.h"
#include "util/sanitizer.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

/* The sizes the magic block records, as of ABI 1.0 and as this host has them. The 1.0 sizes never change: a
 * plugin's struct is that large at least, and the host reads no further than the 1.0 layout unless the size the
 * plugin reported covers more. */
static const struct {
    const char *field;
    size_t offset; /* of the size field in sh_magic */
    size_t min_1_0;
    size_t host;
} struct_sizes[] = {
    {"size", offsetof(sh_magic, size), SH_THROUGH(sh_magic, context_size), sizeof(sh_magic)},
    {"entry_size", offsetof(sh_magic, entry_size), SH_THROUGH(sh_entry, negotiate), sizeof(sh_entry)},
    {"plugin_size", offsetof(sh_magic, plugin_size), SH_THROUGH(sh_plugin, create_stage), sizeof(sh_plugin)},
    {"stage_size", offsetof(sh_magic, stage_size), SH_THROUGH(sh_stage, destroy), sizeof(sh_stage)},
    {"stage_type_size", offsetof(sh_magic, stage_type_size), SH_THROUGH(sh_stage_type, description),
     sizeof(sh_stage_type)},
    {"host_size", offsetof(sh_magic, host_size), SH_THROUGH(sh_host, map_set), sizeof(sh_host)},
    {"stage_def_size", offsetof(sh_magic, stage_def_size), SH_THROUGH(sh_stage_def, config), sizeof(sh_stage_def)},
    {"context_size", offsetof(sh_magic, context_size), SH_THROUGH(sh_context, base_dir), sizeof(sh_context)},
};

static sh_status mismatch(sh_error *err, const char *lib, const char *field, unsigned long plugin,
                          unsigned long host, const char *what_to_do)
{
    return sh_error_set(err, SH_S_LOAD,
                        "%s: ABI mismatch in the magic block: field '%s' is %lu in the plugin, %lu in the host; %s",
                        lib, field, plugin, host, what_to_do);
}

sh_status sh_loader_check_magic(const sh_magic *m, const char *lib, sh_error *err)
{
    const char *rebuild = "rebuild the plugin against this host's stagehost SDK";
    if (m->magic != SH_MAGIC)
        return sh_error_set(err, SH_S_LOAD,
                            "%s: ABI mismatch in the magic block: field 'magic' is 0x%08x in the plugin, 0x%08x in "
                            "the host; the entry symbol is not a stagehost plugin entry (define it with "
                            "SH_SDK_PLUGIN or SH_MAGIC_INIT)",
                            lib, m->magic, SH_MAGIC);
    if (m->byte_order != SH_BYTE_ORDER_TAG)
        return sh_error_set(err, SH_S_LOAD,
                            "%s: ABI mismatch in the magic block: field 'byte_order' is 0x%08x in the plugin, "
                            "0x%08x in the host; the plugin was built for another byte order",
                            lib, m->byte_order, SH_BYTE_ORDER_TAG);
    if (m->abi_major != SH_ABI_MAJOR)
        return mismatch(err, lib, "abi_major", m->abi_major, SH_ABI_MAJOR, rebuild);
    if (m->pointer_size != sizeof(void *))
        return mismatch(err, lib, "pointer_size", m->pointer_size, sizeof(void *),
                        "the plugin was built for another architecture");
    int plugin_minor = m->abi_minor, host_minor = SH_ABI_MINOR;
    for (size_t i = 0; i < sizeof struct_sizes / sizeof struct_sizes[0]; i++) {
        uint32_t got;
        memcpy(&got, (const char *)m + struct_sizes[i].offset, sizeof got);
        size_t min = struct_sizes[i].min_1_0, ours = struct_sizes[i].host;
        /* Same minor: sizes agree exactly. Newer minor: at least ours, since structs only grow. Older minor:
         * from the 1.0 layout up to ours, as no older struct is larger. */
        if (plugin_minor < host_minor && (got < min || got > ours))
            return sh_error_set(err, SH_S_LOAD,
                                "%s: ABI mismatch in the magic block: field '%s' is %lu in the plugin, %lu in the "
                                "host; a plugin built for ABI 1.%d has %lu to %lu there: %s",
                                lib, struct_sizes[i].field, (unsigned long)got, (unsigned long)ours, plugin_minor,
                                (unsigned long)min, (unsigned long)ours, rebuild);
        if (plugin_minor == host_minor ? got != ours : plugin_minor > host_minor && got < ours)
            return mismatch(err, lib, struct_sizes[i].field, got, ours, rebuild);
    }
    return SH_S_OK;
}

sh_status sh_loader_negotiate(const sh_entry *e, uint32_t offer, const char *lib, const sh_plugin **out,
                              uint32_t *abi, sh_error *err)
{
    if (!e->negotiate)
        return sh_error_set(err, SH_S_LOAD, "%s: the entry has no negotiate function", lib);
    uint32_t answer = 0;
    const char *reason = NULL;
    const sh_plugin *p = e->negotiate(offer, &answer, &reason);
    if (!p)
        return sh_error_set(err, SH_S_LOAD, "%s: the plugin refused ABI %u.%u offered by the host: %s", lib,
                            SH_ABI_VERSION_MAJOR(offer), SH_ABI_VERSION_MINOR(offer),
                            reason ? reason : "it gave no reason");
    if (SH_ABI_VERSION_MAJOR(answer) != SH_ABI_VERSION_MAJOR(offer) ||
        SH_ABI_VERSION_MINOR(answer) > SH_ABI_VERSION_MINOR(offer))
        return sh_error_set(err, SH_S_LOAD,
                            "%s: ABI negotiation failed: the host offered %u.%u and the plugin answered %u.%u; a "
                            "plugin must answer the same major and a minor no newer than the offer",
                            lib, SH_ABI_VERSION_MAJOR(offer), SH_ABI_VERSION_MINOR(offer),
                            SH_ABI_VERSION_MAJOR(answer), SH_ABI_VERSION_MINOR(answer));
    if (p->size < SH_THROUGH(sh_plugin, create_stage))
        return sh_error_set(err, SH_S_LOAD, "%s: the plugin vtable is %u bytes, smaller than the %zu of ABI 1.0",
                            lib, p->size, SH_THROUGH(sh_plugin, create_stage));
    if (!p->name || !p->version || !p->init || !p->create_stage || (p->stage_type_count && !p->stage_types))
        return sh_error_set(err, SH_S_LOAD,
                            "%s: the plugin vtable lacks a required member (name, version, stage_types, init or "
                            "create_stage)",
                            lib);
    for (uint32_t i = 0; i < p->stage_type_count; i++) {
        const sh_stage_type *t = p->stage_types[i];
        if (!t || t->size < SH_THROUGH(sh_stage_type, description) || !t->type || !t->input || !t->output)
            return sh_error_set(err, SH_S_LOAD, "%s: stage type %u in the plugin's metadata is malformed", lib,
                                i + 1);
    }
    *out = p;
    *abi = answer;
    return SH_S_OK;
}

static sh_status meta_field(sh_error *err, const sh_descriptor *d, const char *field, const char *bin,
                            const char *desc, int line)
{
    return sh_error_set(err, SH_S_LOAD,
                        "%s does not match its descriptor %s:%d: field '%s' is '%s' in the binary, '%s' in the "
                        "descriptor; rebuild the plugin or correct the descriptor",
                        d->library_path, d->path, line, field, bin, desc);
}

sh_status sh_loader_check_metadata(const sh_plugin *p, const sh_descriptor *d, sh_error *err)
{
    if (strcmp(p->name, d->name) != 0)
        return meta_field(err, d, "name", p->name, d->name, d->name_line);
    if (strcmp(p->version, d->version) != 0)
        return meta_field(err, d, "version", p->version, d->version, d->version_line);
    for (uint32_t i = 0; i < p->stage_type_count; i++) {
        const sh_stage_type *t = p->stage_types[i];
        const sh_stage_decl *decl = sh_descriptor_find_stage(d, t->type);
        if (!decl)
            return sh_error_set(err, SH_S_LOAD,
                                "%s does not match its descriptor %s:%d: field 'stages' lacks type '%s', which the "
                                "binary provides; add it to the descriptor or rebuild the plugin",
                                d->library_path, d->path, d->stages_line, t->type);
        char field[300];
        if (strcmp(t->input, decl->input) != 0) {
            snprintf(field, sizeof field, "stages[%s].input", t->type);
            return meta_field(err, d, field, t->input, decl->input, decl->line);
        }
        if (strcmp(t->output, decl->output) != 0) {
            snprintf(field, sizeof field, "stages[%s].output", t->type);
            return meta_field(err, d, field, t->output, decl->output, decl->line);
        }
    }
    for (size_t i = 0; i < d->stage_count; i++) {
        /* A function stage is the host's doing, around a plain C function: the binary does not list it. */
        bool found = d->stages[i].function != NULL;
        for (uint32_t k = 0; k < p->stage_type_count && !found; k++)
            found = strcmp(p->stage_types[k]->type, d->stages[i].type) == 0;
        if (!found)
            return sh_error_set(err, SH_S_LOAD,
                                "%s does not match its descriptor %s:%d: field 'stages' declares type '%s', which "
                                "the binary does not provide; remove it from the descriptor or rebuild the plugin",
                                d->library_path, d->path, d->stages[i].line, d->stages[i].type);
    }
    return SH_S_OK;
}

static sh_status open_with(const sh_descriptor *d, uint32_t offer, int scope, sh_loaded *out, sh_error *err);

sh_status sh_loader_open(const sh_descriptor *d, uint32_t offer, sh_loaded *out, sh_error *err)
{
    return open_with(d, offer, RTLD_LOCAL, out, err);
}

sh_status sh_loader_open_global(const sh_descriptor *d, uint32_t offer, sh_loaded *out, sh_error *err)
{
    return open_with(d, offer, RTLD_GLOBAL, out, err);
}

static sh_status open_with(const sh_descriptor *d, uint32_t offer, int scope, sh_loaded *out, sh_error *err)
{
    memset(out, 0, sizeof *out);
    /* Through the descriptor opened before the worker dropped privileges, when there is one: the path may not be
     * reachable by the unprivileged user. */
    char fd_path[64];
    const char *open_path = d->library_path;
    if (d->library_fd > 0) {
        snprintf(fd_path, sizeof fd_path, "/proc/self/fd/%d", d->library_fd - 1);
        open_path = fd_path;
    }
    int flags = RTLD_NOW | scope;
#ifdef SH_UNDER_ASAN
    /* LeakSanitizer's exit-time scan walks each thread's dynamic TLS, and the runtime we build with leaves a
     * dlclose()d library's entries there dangling (libcurl's OpenSSL has some): the scan then crashes instead of
     * reporting. A library kept mapped also lets a leak report name the plugin's frames. */
    flags |= RTLD_NODELETE;
#endif
    void *dl = dlopen(open_path, flags);
    if (!dl)
        return sh_error_set(err, SH_S_LOAD, "cannot load %s (plugin '%s'): %s", d->library_path, d->name,
                            dlerror());
    dlerror();
    void *sym = dlsym(dl, d->entry);
    if (!sym) {
        sh_error_set(err, SH_S_LOAD,
                     "%s (plugin '%s') does not export the entry symbol '%s' named by %s; export it with "
                     "SH_SDK_PLUGIN, or fix 'entry' in the descriptor",
                     d->library_path, d->name, d->entry, d->path);
        dlclose(dl);
        return SH_S_LOAD;
    }
    /* Before reading the entry, make sure the symbol is data of at least its 1.0 size: a function or a small
     * variable under the entry name must not make the host read past it. */
    Dl_info info;
    const ElfW(Sym) *es = NULL;
    if (dladdr1(sym, &info, (void **)&es, RTLD_DL_SYMENT) && es &&
        (ELF64_ST_TYPE(es->st_info) != STT_OBJECT || es->st_size < SH_THROUGH(sh_entry, negotiate))) {
        sh_error_set_kind(err, SH_S_LOAD, SH_EK_LOAD_MAGIC,
                     "%s (plugin '%s'): entry symbol '%s' is not an sh_entry object (%s, %zu bytes); define it "
                     "with SH_SDK_PLUGIN",
                     d->library_path, d->name, d->entry,
                     ELF64_ST_TYPE(es->st_info) == STT_FUNC ? "a function" : "data", (size_t)es->st_size);
        dlclose(dl);
        return SH_S_LOAD;
    }
    const sh_entry *e = sym;
    /* Each step says which it was, for `plugins inspect`. */
    sh_status rc = sh_loader_check_magic(&e->magic, d->library_path, err);
    if (rc != SH_S_OK)
        err->kind = SH_EK_LOAD_MAGIC;
    else if ((rc = sh_loader_negotiate(e, offer, d->library_path, &out->plugin, &out->abi, err)) != SH_S_OK)
        err->kind = SH_EK_LOAD_NEGOTIATION;
    else if ((rc = sh_loader_check_metadata(out->plugin, d, err)) != SH_S_OK)
        err->kind = SH_EK_LOAD_METADATA;
    if (rc != SH_S_OK) {
        dlclose(dl);
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->dl = dl;
    return SH_S_OK;
}

sh_status sh_loader_init(sh_loaded *l, const char *plugin_name, const sh_value *config, sh_error *err)
{
    sh_invocation inv = {.plugin = plugin_name, .stage = "(init)", .attempt = 1};
    sh_call call;
    sh_call_init(&call, &inv, NULL, NULL, NULL, NULL);
    int rc = l->plugin->init(sh_host_table(), &call, config, &l->state);
    sh_status st = SH_S_OK;
    if (rc != SH_OK)
        st = sh_error_set_kind(err, SH_S_LOAD, SH_EK_LOAD_INIT, "plugin '%s' failed to initialise: %s", plugin_name,
                          sh_call_error(&call, rc));
    else
        l->inited = true;
    sh_call_finish(&call);
    return st;
}

void sh_loader_close(sh_loaded *l)
{
    if (l->inited && l->plugin->fini)
        l->plugin->fini(l->state);
    l->inited = false;
    if (l->dl)
        dlclose(l->dl);
    l->dl = NULL;
}
