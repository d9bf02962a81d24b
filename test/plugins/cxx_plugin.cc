// test/cxx: a plugin written in C++17 against the SDK, which must export its entry with C linkage. Stage
// "shout" upper-cases `content`; stage "count" counts its items and emits the count when its input ends.
#include <stagehost/sdk.h>

#include <algorithm>
#include <cctype>
#include <new>
#include <string>

namespace {

int shout(void *, sh_call *call, const sh_value *const *items, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        std::string text = sh_get_string(items[i], "content", "");
        std::transform(text.begin(), text.end(), text.begin(),
                       [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        sh_value *out = sh_copy(items[i]);
        if (!out || sh_set_stringn(out, "content", text.data(), text.size()) != SH_OK) {
            sh_free(out);
            return sh_failf(call, "cannot build item %zu", i + 1);
        }
        if (sh_emit(call, out) != SH_OK)
            return SH_ERR_IO;
    }
    return SH_OK;
}

struct counter {
    int64_t items = 0;
};

int count_create(sh_call *call, const sh_stage_def *, void **user)
{
    counter *c = new (std::nothrow) counter();
    if (!c)
        return sh_failf(call, "out of memory");
    *user = c;
    return SH_OK;
}

int count_process(void *user, sh_call *, const sh_value *const *, size_t count)
{
    static_cast<counter *>(user)->items += static_cast<int64_t>(count);
    return SH_OK;
}

int count_finish(void *user, sh_call *call)
{
    sh_value *m = sh_new_map();
    if (!m || sh_set_int(m, "count", static_cast<counter *>(user)->items) != SH_OK ||
        sh_set_string(m, "by", "c++") != SH_OK) {
        sh_free(m);
        return sh_failf(call, "out of memory");
    }
    return sh_emit(call, m);
}

void count_destroy(void *user) { delete static_cast<counter *>(user); }

// Positional: designated initialisers are C++20.
const sh_sdk_stage stages[] = {
    {"shout", "document", "document", "upper-cases content", nullptr, shout, nullptr, nullptr},
    {"count", "any", "any", "counts items", count_create, count_process, count_destroy, count_finish},
};

} // namespace

SH_SDK_PLUGIN("test/cxx", "1.0.0", stages, SH_SDK_COUNT(stages), 0, nullptr, nullptr, nullptr);
