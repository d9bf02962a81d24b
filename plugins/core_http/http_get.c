/*
 * get: fetches an http(s) URL per item (`url_field`, default "url") or once (`url` in the config; the stage then
 * passes its input on first and adds one item), and emits the response: the input item's fields plus url,
 * status, content_type and `field` (default "content"; text when the body is UTF-8, bytes otherwise).
 * A status outside 200-299 fails the stage naming the URL and the status, unless `pass_status = true`, which
 * emits such responses too (their `status` says what happened).
 */
#include "core_http.h"
#include "plugin_config.h"

typedef struct get_cfg {
    const char *url, *url_field, *field;
    int pass_status;
    fetch_opts fetch;
} get_cfg;

int get_create(sh_call *call, const sh_stage_def *def, void **user)
{
    static const char *const known[] = {"url", "url_field", "field", "pass_status", "headers", "timeout_ms",
                                        "max_bytes", "follow_redirects"};
    get_cfg c = {0};
    int rc = pc_check_keys(call, def->config, known, SH_SDK_COUNT(known));
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "url", NULL, &c.url);
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "url_field", "url", &c.url_field);
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "field", "content", &c.field);
    if (rc == SH_OK)
        rc = pc_bool(call, def->config, "pass_status", 0, &c.pass_status);
    if (rc == SH_OK)
        rc = fetch_opts_parse(call, def->config, "http,https", &c.fetch);
    if (rc != SH_OK)
        return rc;
    get_cfg *p = malloc(sizeof *p);
    if (!p) {
        fetch_opts_free(&c.fetch);
        return sh_failf(call, "out of memory");
    }
    *p = c;
    *user = p;
    return SH_OK;
}

void get_destroy(void *user)
{
    get_cfg *c = user;
    fetch_opts_free(&c->fetch);
    free(c);
}

typedef struct body {
    char *data;
    size_t len, cap;
} body;

static int to_body(void *ctx, const char *data, size_t len)
{
    body *b = ctx;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static int get_one(const get_cfg *c, sh_call *call, const char *url, const sh_value *item)
{
    body b = {0};
    fetch_result res;
    int rc = fetch(call, &c->fetch, "GET", url, to_body, &b, &res);
    if (rc == SH_ERR_IO)
        rc = sh_failf(call, "GET %s: out of memory holding the response", url);
    if (rc != SH_OK) {
        free(b.data);
        return rc;
    }
    if ((res.status < 200 || res.status > 299) && !c->pass_status) {
        free(b.data);
        return sh_failf(call, "GET %s answered HTTP %ld; check the URL (and headers), or set pass_status = true to "
                              "pass non-2xx responses on with their status", url, res.status);
    }
    sh_value *out = item ? sh_copy(item) : sh_new_map();
    /* Text when it is valid UTF-8 (new_string refuses anything else), bytes otherwise. */
    sh_value *content = sh_sdk_host->new_string(b.data ? b.data : "", b.len);
    if (!content)
        content = sh_sdk_host->new_bytes(b.data ? b.data : "", b.len);
    free(b.data);
    rc = out && content ? SH_OK : SH_ERR_NOMEM;
    if (rc == SH_OK)
        rc = sh_set_string(out, "url", url);
    if (rc == SH_OK)
        rc = sh_set_int(out, "status", res.status);
    if (rc == SH_OK && res.content_type[0])
        rc = sh_set_string(out, "content_type", res.content_type);
    if (rc == SH_OK) {
        rc = sh_sdk_host->map_set(out, c->field, content);
        content = NULL;
    }
    sh_free(content);
    if (rc != SH_OK) {
        sh_free(out);
        return sh_failf(call, "GET %s: out of memory building the item", url);
    }
    if (sh_emit(call, out) != SH_OK)
        return sh_failf(call, "GET %s: the host refused the output", url);
    return SH_OK;
}

int get_process(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    const get_cfg *c = user;
    if (c->url) {
        for (size_t i = 0; i < count; i++)
            if (sh_emit(call, sh_copy(items[i])) != SH_OK)
                return sh_failf(call, "cannot pass on item %zu: the host refused the output", i + 1);
        return get_one(c, call, c->url, NULL);
    }
    if (count == 0)
        return sh_failf(call, "no URL to get: set 'url' in the stage's config, or feed it items with a '%s' field",
                        c->url_field);
    for (size_t i = 0; i < count; i++) {
        const char *url = sh_get_string(items[i], c->url_field, NULL);
        if (!url)
            return sh_failf(call, "item %zu has no text field '%s' holding a URL; name it with 'url_field', or set "
                                  "'url' in the stage's config", i + 1, c->url_field);
        int rc = get_one(c, call, url, items[i]);
        if (rc != SH_OK)
            return rc;
    }
    return SH_OK;
}
