/* test/marker: its library constructor writes a marker file, so a test can tell whether the library was ever
 * loaded. Discovery must never load it; running one of its stages must. */
#include <stagehost/sdk.h>

#include <fcntl.h>
#include <unistd.h>

__attribute__((constructor)) static void mark_loaded(void)
{
    const char *path = getenv("SH_TEST_MARKER");
    if (path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            if (write(fd, "loaded\n", 7) < 0) {
                /* nothing to do: the test sees a missing marker */
            }
            close(fd);
        }
    }
}

static int mark(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user, (void)items, (void)count;
    sh_value *m = sh_new_map();
    if (!m || sh_set_bool(m, "marked", 1) != SH_OK)
        return sh_failf(call, "out of memory");
    return sh_emit(call, m);
}

static const sh_sdk_stage stages[] = {
    {.type = "mark", .output = "document", .process = mark},
};

SH_SDK_PLUGIN(.name = "test/marker", .version = "0.1.0", .stages = stages, .stage_count = SH_SDK_COUNT(stages));
