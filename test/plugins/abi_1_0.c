/* test/stamp: one stage, "stamp", that passes each item on with its place in the batch. Built twice: with
 * -DABI_1_0 as a plugin compiled against ABI 1.0 (its own copy of the 1.0 sh_stage, minor 0 and the 1.0 sizes
 * in the magic block), and without, against this header. A newer host must run both alike, reading nothing of
 * the 1.0 stage past its size. abi.h alone, as a plugin without the SDK would. */
#include <stagehost/abi.h>

#include <stdlib.h>

#ifdef ABI_1_0
/* sh_stage as ABI 1.0 froze it. */
typedef struct stage_t {
    uint32_t size;
    void *user;
    int (*process)(struct sh_stage *stage, sh_call *call, const sh_value *const *items, size_t count);
    void (*destroy)(struct sh_stage *stage);
} stage_t;
#define MINOR 0
#else
typedef sh_stage stage_t;
#define MINOR SH_ABI_MINOR
#endif

static const sh_host *host;

static int p_init(const sh_host *h, sh_call *call, const sh_value *config, void **state)
{
    (void)call, (void)config;
    host = h;
    *state = NULL;
    return SH_OK;
}

static int s_process(struct sh_stage *stage, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)stage;
    for (size_t i = 0; i < count; i++) {
        sh_value *out = host->value_copy(items[i]);
        if (!out || host->map_set(out, "stamp", host->new_int((int64_t)i)) != SH_OK ||
            host->map_set(out, "batch", host->new_int((int64_t)count)) != SH_OK) {
            host->value_free(out);
            host->fail(call, "out of memory");
            return SH_ERR_NOMEM;
        }
        if (host->emit(call, out) != SH_OK)
            return SH_ERR_IO;
    }
    return SH_OK;
}

static void s_destroy(struct sh_stage *stage) { free(stage); }

static int p_create(void *state, sh_call *call, const sh_stage_def *def, sh_stage **out)
{
    (void)state, (void)def;
    /* Exactly the struct's size, so that a host reading past it reads past the allocation (ASan sees it). */
    stage_t *s = malloc(sizeof *s);
    if (!s) {
        host->fail(call, "out of memory");
        return SH_ERR_NOMEM;
    }
    *s = (stage_t){.size = sizeof *s, .process = s_process, .destroy = s_destroy};
    *out = (sh_stage *)(void *)s;
    return SH_OK;
}

static const sh_stage_type t_stamp = {sizeof(sh_stage_type), "stamp", "any", "any", NULL};
static const sh_stage_type *const types[] = {&t_stamp};

static const sh_plugin vtable = {
    .size = sizeof(sh_plugin),
    .name = "test/stamp",
    .version = "1.0.0",
    .stage_types = types,
    .stage_type_count = 1,
    .init = p_init,
    .create_stage = p_create,
};

static const sh_plugin *negotiate(uint32_t host_version, uint32_t *plugin_version, const char **reason)
{
    if (SH_ABI_VERSION_MAJOR(host_version) != 1) {
        *reason = "built for ABI 1";
        return NULL;
    }
    uint32_t minor = SH_ABI_VERSION_MINOR(host_version);
    *plugin_version = SH_ABI_VERSION(1, minor > MINOR ? MINOR : minor);
    return &vtable;
}

/* The other structs did not change in 1.1: their sizes are the 1.0 ones. */
__attribute__((visibility("default"))) const sh_entry stagehost_plugin = {
    {sizeof(sh_magic), SH_MAGIC, 1, MINOR, SH_BYTE_ORDER_TAG, (uint32_t)sizeof(void *), sizeof(sh_entry),
     sizeof(sh_plugin), sizeof(stage_t), sizeof(sh_stage_type), sizeof(sh_host), sizeof(sh_stage_def),
     sizeof(sh_context)},
    negotiate,
};
