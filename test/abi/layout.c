/* The frozen layout of ABI 1 on x86-64 (LP64): the offset and size of every member of every ABI struct, the
 * struct sizes and the codes, checked against numbers written down when each member was added (as GStreamer's
 * tests/check/gst/gstabi.c does). A failure here means a compiled plugin would break: members may only be
 * appended, and a new one gets its row here. */
#include <stagehost/abi.h>
#include <stagehost/hooks.h>

#include <stdio.h>

static int failures;

static void check(const char *what, size_t got, size_t want)
{
    if (got != want) {
        fprintf(stderr, "FAIL: %s is %zu, frozen at %zu\n", what, got, want);
        failures++;
    }
}

#define MEMBER(type, member, offset, size)                                          \
    do {                                                                            \
        check("offsetof(" #type ", " #member ")", offsetof(type, member), offset);  \
        check("sizeof(" #type "." #member ")", sizeof(((type *)0)->member), size);  \
    } while (0)
#define SIZE(type, size) check("sizeof(" #type ")", sizeof(type), size)
#define CODE(name, value) check(#name, (size_t)(name), value)

int main(void)
{
#if !defined(__x86_64__) || !defined(__LP64__)
    puts("SKIP: the frozen numbers are those of x86-64 LP64");
    return 77;
#else
    /* sh_host, 1.0 */
    MEMBER(sh_host, size, 0, 4);
    MEMBER(sh_host, abi_version, 4, 4);
    MEMBER(sh_host, fail, 8, 8);
    MEMBER(sh_host, log, 16, 8);
    MEMBER(sh_host, context, 24, 8);
    MEMBER(sh_host, now_ns, 32, 8);
    MEMBER(sh_host, random_u64, 40, 8);
    MEMBER(sh_host, emit, 48, 8);
    MEMBER(sh_host, value_type, 56, 8);
    MEMBER(sh_host, value_bool, 64, 8);
    MEMBER(sh_host, value_int, 72, 8);
    MEMBER(sh_host, value_double, 80, 8);
    MEMBER(sh_host, value_string, 88, 8);
    MEMBER(sh_host, value_bytes, 96, 8);
    MEMBER(sh_host, value_count, 104, 8);
    MEMBER(sh_host, array_get, 112, 8);
    MEMBER(sh_host, map_get, 120, 8);
    MEMBER(sh_host, map_entry, 128, 8);
    MEMBER(sh_host, new_null, 136, 8);
    MEMBER(sh_host, new_bool, 144, 8);
    MEMBER(sh_host, new_int, 152, 8);
    MEMBER(sh_host, new_double, 160, 8);
    MEMBER(sh_host, new_string, 168, 8);
    MEMBER(sh_host, new_bytes, 176, 8);
    MEMBER(sh_host, new_array, 184, 8);
    MEMBER(sh_host, new_map, 192, 8);
    MEMBER(sh_host, value_copy, 200, 8);
    MEMBER(sh_host, value_free, 208, 8);
    MEMBER(sh_host, array_push, 216, 8);
    MEMBER(sh_host, map_set, 224, 8);
    SIZE(sh_host, 232);

    /* sh_plugin, 1.0 */
    MEMBER(sh_plugin, size, 0, 4);
    MEMBER(sh_plugin, name, 8, 8);
    MEMBER(sh_plugin, version, 16, 8);
    MEMBER(sh_plugin, stage_types, 24, 8);
    MEMBER(sh_plugin, stage_type_count, 32, 4);
    MEMBER(sh_plugin, init, 40, 8);
    MEMBER(sh_plugin, fini, 48, 8);
    MEMBER(sh_plugin, health, 56, 8);
    MEMBER(sh_plugin, create_stage, 64, 8);
    SIZE(sh_plugin, 72);

    /* sh_stage, 1.0 (32 bytes), then 1.1 */
    MEMBER(sh_stage, size, 0, 4);
    MEMBER(sh_stage, user, 8, 8);
    MEMBER(sh_stage, process, 16, 8);
    MEMBER(sh_stage, destroy, 24, 8);
    MEMBER(sh_stage, finish, 32, 8);
    SIZE(sh_stage, 40);

    /* sh_stage_def, 1.0 */
    MEMBER(sh_stage_def, size, 0, 4);
    MEMBER(sh_stage_def, type, 8, 8);
    MEMBER(sh_stage_def, name, 16, 8);
    MEMBER(sh_stage_def, config, 24, 8);
    SIZE(sh_stage_def, 32);

    /* sh_stage_type, 1.0 */
    MEMBER(sh_stage_type, size, 0, 4);
    MEMBER(sh_stage_type, type, 8, 8);
    MEMBER(sh_stage_type, input, 16, 8);
    MEMBER(sh_stage_type, output, 24, 8);
    MEMBER(sh_stage_type, description, 32, 8);
    SIZE(sh_stage_type, 40);

    /* sh_context, 1.0 */
    MEMBER(sh_context, size, 0, 4);
    MEMBER(sh_context, attempt, 4, 4);
    MEMBER(sh_context, execution_id, 8, 8);
    MEMBER(sh_context, task_id, 16, 8);
    MEMBER(sh_context, pipeline, 24, 8);
    MEMBER(sh_context, stage, 32, 8);
    MEMBER(sh_context, plugin, 40, 8);
    MEMBER(sh_context, tmp_dir, 48, 8);
    MEMBER(sh_context, base_dir, 56, 8);
    SIZE(sh_context, 64);

    /* sh_magic, 1.0 */
    MEMBER(sh_magic, size, 0, 4);
    MEMBER(sh_magic, magic, 4, 4);
    MEMBER(sh_magic, abi_major, 8, 2);
    MEMBER(sh_magic, abi_minor, 10, 2);
    MEMBER(sh_magic, byte_order, 12, 4);
    MEMBER(sh_magic, pointer_size, 16, 4);
    MEMBER(sh_magic, entry_size, 20, 4);
    MEMBER(sh_magic, plugin_size, 24, 4);
    MEMBER(sh_magic, stage_size, 28, 4);
    MEMBER(sh_magic, stage_type_size, 32, 4);
    MEMBER(sh_magic, host_size, 36, 4);
    MEMBER(sh_magic, stage_def_size, 40, 4);
    MEMBER(sh_magic, context_size, 44, 4);
    SIZE(sh_magic, 48);

    /* sh_entry, 1.0 */
    MEMBER(sh_entry, magic, 0, 48);
    MEMBER(sh_entry, negotiate, 48, 8);
    SIZE(sh_entry, 56);

    /* Codes, and the types that carry them in signatures (4 bytes, as the C enums of 1.0 were). */
    SIZE(sh_type, 4);
    SIZE(sh_log_level, 4);
    CODE(SH_OK, 0);
    CODE(SH_ERR_FAILED, 1);
    CODE(SH_ERR_INVALID, 2);
    CODE(SH_ERR_NOMEM, 3);
    CODE(SH_ERR_UNSUPPORTED, 4);
    CODE(SH_ERR_IO, 5);
    CODE(SH_TYPE_NULL, 0);
    CODE(SH_TYPE_BOOL, 1);
    CODE(SH_TYPE_INT, 2);
    CODE(SH_TYPE_DOUBLE, 3);
    CODE(SH_TYPE_STRING, 4);
    CODE(SH_TYPE_BYTES, 5);
    CODE(SH_TYPE_ARRAY, 6);
    CODE(SH_TYPE_MAP, 7);
    CODE(SH_LOG_ERROR, 0);
    CODE(SH_LOG_WARN, 1);
    CODE(SH_LOG_INFO, 2);
    CODE(SH_LOG_DEBUG, 3);
    CODE(SH_HOOK_STOP, 100);
    CODE(SH_MAGIC, 0x48475453u);
    CODE(SH_BYTE_ORDER_TAG, 0x01020304u);
    CODE(SH_ABI_MAJOR, 1);
    CODE(SH_ABI_MINOR, 1);
    CODE(SH_ABI_VERSION(1, 1), 0x10001u);

    if (failures) {
        fprintf(stderr, "%d frozen number(s) changed\n", failures);
        return 1;
    }
    puts("the ABI 1.1 layout is unchanged");
    return 0;
#endif
}
