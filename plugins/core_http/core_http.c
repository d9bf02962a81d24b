/*
 * core/http: HTTP(S) requests and artifact downloads with libcurl.
 *
 *   get       fetch a URL and emit the response (status, content type, body)
 *   download  fetch an http(s) or file:// URL into a file, verifying its SHA-256
 *
 * The plugin needs the `network` permission (declared in its descriptor): a pipeline runs it only with
 * --grant core/http:network or the host configuration's grants.
 */
#include "core_http.h"

/* libcurl's global state (and OpenSSL's through it) is set up once per process, before any transfer. */
static int http_init(sh_call *call, const sh_value *config, void **state)
{
    (void)config;
    *state = NULL;
    CURLcode cc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (cc != CURLE_OK)
        return sh_failf(call, "libcurl could not initialise: %s", curl_easy_strerror(cc));
    return SH_OK;
}

static void http_fini(void *state)
{
    (void)state;
    curl_global_cleanup();
}

static const sh_sdk_stage stages[] = {
    {.type = "get", .input = "any", .output = "any",
     .description = "fetch a URL: url or url_field, headers, timeout_ms, pass_status, field",
     .create = get_create, .process = get_process, .destroy = get_destroy},
    {.type = "download", .input = "any", .output = "any",
     .description = "download an http(s) or file:// URL to a path, verifying sha256",
     .create = download_create, .process = download_process, .destroy = download_destroy},
};

SH_SDK_PLUGIN(.name = "core/http", .version = "1.0.0", .stages = stages, .stage_count = SH_SDK_COUNT(stages),
              .init = http_init, .fini = http_fini);
