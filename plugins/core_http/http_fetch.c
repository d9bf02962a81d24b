/*
 * One transfer with libcurl, shared by get and download: request headers from config, an overall deadline, a
 * size cap, the protocols the stage allows (so an http URL cannot redirect to file://), and transport errors
 * turned into messages that name the URL and say what to do.
 */
#include "core_http.h"
#include "plugin_config.h"

int fetch_opts_parse(sh_call *call, const sh_value *cfg, const char *protocols, fetch_opts *o)
{
    memset(o, 0, sizeof *o);
    o->protocols = protocols;
    int rc = pc_int(call, cfg, "timeout_ms", 30000, 1, 24LL * 3600 * 1000, &o->timeout_ms);
    if (rc == SH_OK)
        rc = pc_int(call, cfg, "max_bytes", 64LL << 20, 1, 1LL << 40, &o->max_bytes);
    if (rc == SH_OK)
        rc = pc_bool(call, cfg, "follow_redirects", 1, &o->follow_redirects);
    if (rc != SH_OK)
        return rc;
    const sh_value *h = sh_get(cfg, "headers");
    if (!h)
        return SH_OK;
    if (sh_sdk_host->value_type(h) != SH_TYPE_MAP)
        return sh_failf(call, "config: 'headers' must be a group of name = \"value\", e.g. headers = { Accept = "
                              "\"text/plain\"; }");
    for (size_t i = 0; i < sh_sdk_host->value_count(h); i++) {
        const sh_value *v;
        const char *name = sh_sdk_host->map_entry(h, i, &v);
        const char *value = sh_sdk_host->value_string(v, NULL);
        if (!value || strpbrk(value, "\r\n")) {
            fetch_opts_free(o);
            return sh_failf(call, "config: headers.%s must be a string on one line (no CR or LF)", name);
        }
        /* Sized to the header: a long value (a bearer token, say) must be sent whole, never cut short. */
        size_t size = strlen(name) + strlen(value) + 3;
        char *line = malloc(size);
        if (!line) {
            fetch_opts_free(o);
            return sh_failf(call, "out of memory");
        }
        /* "Name;" is curl's way to send a header with an empty value ("Name:" would remove it). */
        if (*value)
            snprintf(line, size, "%s: %s", name, value);
        else
            snprintf(line, size, "%s;", name);
        struct curl_slist *l = curl_slist_append(o->headers, line);
        free(line);
        if (!l) {
            fetch_opts_free(o);
            return sh_failf(call, "out of memory");
        }
        o->headers = l;
    }
    return SH_OK;
}

void fetch_opts_free(fetch_opts *o)
{
    curl_slist_free_all(o->headers);
    o->headers = NULL;
}

typedef struct transfer {
    fetch_sink sink;
    void *ctx;
    int64_t max_bytes, received;
    int too_large, sink_failed;
} transfer;

static size_t on_data(char *data, size_t size, size_t n, void *user)
{
    transfer *t = user;
    size_t len = size * n;
    if (t->received + (int64_t)len > t->max_bytes) {
        t->too_large = 1;
        return 0; /* anything but len makes curl stop with CURLE_WRITE_ERROR */
    }
    t->received += (int64_t)len;
    if (t->sink(t->ctx, data, len) != 0) {
        t->sink_failed = 1;
        return 0;
    }
    return len;
}

int fetch(sh_call *call, const fetch_opts *o, const char *what, const char *url, fetch_sink sink, void *ctx,
          fetch_result *res)
{
    memset(res, 0, sizeof *res);
    CURL *c = curl_easy_init();
    if (!c)
        return sh_failf(call, "%s %s: cannot start a transfer (libcurl could not allocate a handle)", what, url);
    transfer t = {.sink = sink, .ctx = ctx, .max_bytes = o->max_bytes};
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, o->protocols);
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, (long)o->follow_redirects);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    /* No signals: a worker's signals belong to the host's protocol, and curl would otherwise use SIGALRM for
     * DNS timeouts. */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "stagehost-core-http/1.0.0");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, o->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    CURLcode cc = curl_easy_perform(c);
    int rc = SH_OK;
    if (t.too_large)
        rc = sh_failf(call, "%s %s: the response is larger than max_bytes (%lld bytes); raise max_bytes in the stage's "
                            "config if that is expected", what, url, (long long)o->max_bytes);
    else if (t.sink_failed)
        rc = SH_ERR_IO; /* the sink has said why */
    else if (cc == CURLE_OPERATION_TIMEDOUT)
        rc = sh_failf(call, "%s %s: timed out after %lld ms (timeout_ms); check that the server answers, or raise "
                            "timeout_ms in the stage's config", what, url, (long long)o->timeout_ms);
    else if (cc == CURLE_UNSUPPORTED_PROTOCOL)
        rc = sh_failf(call, "%s %s: unsupported URL scheme; this stage takes %s URLs", what, url, o->protocols);
    else if (cc != CURLE_OK)
        rc = sh_failf(call, "%s %s failed: %s; check the URL and that the server is reachable", what, url,
                      *err ? err : curl_easy_strerror(cc));
    if (rc == SH_OK) {
        char *ct = NULL, *eff = NULL;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
        if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
            snprintf(res->content_type, sizeof res->content_type, "%s", ct);
        if (curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff)
            snprintf(res->effective_url, sizeof res->effective_url, "%s", eff);
    }
    curl_easy_cleanup(c);
    return rc;
}
