/* libFuzzer target: a pipeline file through everything that runs before a pipeline does: parsing, the graph
 * check (names, depends_on, cycles), the order, validation against the built-ins (types, gates, contracts), and
 * the DOT rendering. Nothing here may crash, leak or loop, whatever the file says. */
#include "engine/engine.h"
#include "engine/graph_dot.h"
#include "engine/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    sh_error err;
    sh_pipeline *p = NULL;
    if (sh_pipeline_load(path, &p, &err) == SH_S_OK) {
        sh_registry reg = {0};
        sh_target *targets = calloc(p->count, sizeof *targets);
        size_t *order = calloc(p->count, sizeof *order);
        if (targets && order) {
            sh_engine_validate(p, &reg, NULL, targets, &err);
            sh_error_clear(&err);
            if (sh_pipeline_check(p, &err) == 0) {
                sh_pipeline_order(p, order);
                sh_buf b;
                sh_buf_init(&b);
                sh_graph_dot(p, targets, &b);
                sh_buf_free(&b);
            }
        }
        free(targets);
        free(order);
        sh_pipeline_free(p);
    }
    close(fd);
    return 0;
}
