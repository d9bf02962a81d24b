/* core/http: the shared transfer (http_fetch.c) and the stage functions of each file. */
#ifndef STAGEHOST_CORE_HTTP_H
#define STAGEHOST_CORE_HTTP_H

#include <stagehost/sdk.h>

#include <curl/curl.h>

/* What every transfer takes from the stage's config. */
typedef struct fetch_opts {
    struct curl_slist *headers; /* "Name: value" lines, from the `headers` group */
    int64_t timeout_ms;
    int64_t max_bytes;
    int follow_redirects;
    const char *protocols; /* curl's CURLOPT_PROTOCOLS_STR */
} fetch_opts;

/* Reads headers, timeout_ms, max_bytes and follow_redirects from `cfg` into `o`. */
int fetch_opts_parse(sh_call *call, const sh_value *cfg, const char *protocols, fetch_opts *o);
void fetch_opts_free(fetch_opts *o);

/* Receives the body as it arrives; returns 0 to go on, nonzero to stop the transfer (after setting its reason). */
typedef int (*fetch_sink)(void *ctx, const char *data, size_t len);

/* The result of one transfer. */
typedef struct fetch_result {
    long status;              /* HTTP status; 0 for file:// */
    char content_type[256];   /* empty when the server sent none */
    char effective_url[1024]; /* after redirects */
} fetch_result;

/* Transfers `url` into `sink`. Transport failures (cannot connect, timeout, too large...) fail the call with a
 * message naming `what`, the URL and the cause; HTTP statuses are the caller's to judge. */
int fetch(sh_call *call, const fetch_opts *o, const char *what, const char *url, fetch_sink sink, void *ctx,
          fetch_result *res);

/* http_get.c */
int get_create(sh_call *call, const sh_stage_def *def, void **user);
int get_process(void *user, sh_call *call, const sh_value *const *items, size_t count);
void get_destroy(void *user);

/* http_download.c */
int download_create(sh_call *call, const sh_stage_def *def, void **user);
int download_process(void *user, sh_call *call, const sh_value *const *items, size_t count);
void download_destroy(void *user);

#endif
