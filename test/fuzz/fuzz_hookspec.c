/* libFuzzer target: hookspec files (*.hooks), which the host reads from every directory on the plugin search
 * path. Whatever a file says, parsing must end in a hookspec or an error, without crashing or leaking. */
#include "registry/hookspec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    sh_hookspec *s = NULL;
    sh_error err;
    if (sh_hookspec_parse_text(text, "fuzz.hooks", &s, &err) == SH_S_OK)
        sh_hookspec_free(s);
    free(text);
    return 0;
}
