/* Hand-built entries that break one ABI rule each, selected by -DVARIANT, for the loader's unit tests.
 * They use abi.h alone, as a plugin without the SDK would. */
#include <stagehost/abi.h>

#include <stddef.h>

#define V_WRONG_MAJOR 1
#define V_BAD_MAGIC 2
#define V_NEWER_ANSWER 3
#define V_REFUSE 4
#define V_FUNC_ENTRY 5
#define V_SMALL_HOST_SIZE 6
#define V_GOOD 7
#define V_BAD_POINTER 8

static const sh_stage_type t_echo = {sizeof(sh_stage_type), "echo", "any", "any", NULL};
static const sh_stage_type *const types[] = {&t_echo};

static int p_init(const sh_host *host, sh_call *call, const sh_value *config, void **state)
{
    (void)host, (void)call, (void)config;
    *state = NULL;
    return SH_OK;
}

static int p_create(void *state, sh_call *call, const sh_stage_def *def, sh_stage **out)
{
    (void)state, (void)call, (void)def, (void)out;
    return SH_ERR_UNSUPPORTED;
}

static const sh_plugin vtable = {
    .size = sizeof(sh_plugin),
    .name = "test/abi",
    .version = "1.0.0",
    .stage_types = types,
    .stage_type_count = 1,
    .init = p_init,
    .create_stage = p_create,
};

static const sh_plugin *negotiate(uint32_t host_version, uint32_t *plugin_version, const char **reason)
{
#if VARIANT == V_REFUSE
    (void)host_version, (void)plugin_version, (void)vtable;
    *reason = "this test plugin refuses every host";
    return NULL;
#elif VARIANT == V_NEWER_ANSWER
    (void)host_version, (void)reason;
    *plugin_version = SH_ABI_VERSION(1, 9);
    return &vtable;
#else
    (void)reason;
    /* Answer the version this plugin was built for (1.0), whatever newer minor the host offers. */
    (void)host_version;
    *plugin_version = SH_ABI_VERSION(1, 0);
    return &vtable;
#endif
}

#if VARIANT == V_FUNC_ENTRY
/* The entry name on a function: the host must notice before reading a magic block from code. */
__attribute__((visibility("default"))) int stagehost_plugin(void);
__attribute__((visibility("default"))) int stagehost_plugin(void) { return negotiate(0, NULL, NULL) != &vtable; }
#else
__attribute__((visibility("default"))) const sh_entry stagehost_plugin = {
    {
        sizeof(sh_magic),
#if VARIANT == V_BAD_MAGIC
        0xdeadbeefu,
#else
        SH_MAGIC,
#endif
#if VARIANT == V_WRONG_MAJOR
        2,
#else
        SH_ABI_MAJOR,
#endif
        SH_ABI_MINOR,
        SH_BYTE_ORDER_TAG,
#if VARIANT == V_BAD_POINTER
        4,
#else
        (uint32_t)sizeof(void *),
#endif
        sizeof(sh_entry),
        sizeof(sh_plugin),
        sizeof(sh_stage),
        sizeof(sh_stage_type),
#if VARIANT == V_SMALL_HOST_SIZE
        sizeof(sh_host) - sizeof(void *),
#else
        sizeof(sh_host),
#endif
        sizeof(sh_stage_def),
        sizeof(sh_context),
    },
    negotiate,
};
#endif
