/* libFuzzer target: descriptor and pipeline parsing and validation, on arbitrary file contents. The first byte
 * picks which parser runs. */
#include "registry/descriptor.h"
#include "engine/pipeline.h"

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* An in-memory file: the parsers take paths, and the disk has no business in a fuzz loop. */
    int fd = memfd_create("fuzz", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data + 1, size - 1) != (ssize_t)(size - 1)) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    sh_error err;
    if (data[0] & 1) {
        sh_pipeline *p = NULL;
        if (sh_pipeline_load(path, &p, &err) == SH_S_OK)
            sh_pipeline_free(p);
    } else {
        sh_descriptor *d = NULL;
        if (sh_descriptor_load(path, &d, &err) == SH_S_OK)
            sh_descriptor_free(d);
    }
    close(fd);
    return 0;
}
