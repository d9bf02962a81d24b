/* Host error objects: a status code and a message a person can act on (what failed, where, why, what to do). */
#ifndef SH_ERROR_H
#define SH_ERROR_H

#include <stdarg.h>

/* Host status codes. They map onto the CLI's exit codes: configuration and validation errors exit 2, failures
 * of a stage while a pipeline runs exit 1. */
typedef enum sh_status {
    SH_S_OK = 0,
    SH_S_CONFIG,   /* a descriptor, pipeline or option is invalid */
    SH_S_RESOLVE,  /* a stage type resolves to nothing, or ambiguously */
    SH_S_LOAD,     /* a plugin library could not be loaded or was refused */
    SH_S_STAGE,    /* a stage failed while running */
    SH_S_CRASH,    /* a worker died */
    SH_S_TIMEOUT,  /* a worker exceeded its time limit */
    SH_S_PROTOCOL, /* a worker sent something that is not a valid frame */
    SH_S_IO,       /* a file or socket operation failed */
    SH_S_NOMEM     /* out of memory */
} sh_status;

#define SH_ERROR_MESSAGE_MAX 2048

/* What failed, for code that decides by it: a decision is made on the kind, never on the message's text, which is
 * for people and may change. Most errors have none; add a kind when something must tell one failure from others. */
typedef enum sh_error_kind {
    SH_EK_NONE = 0,
    SH_EK_OUTPUT_CAP, /* a peer sent more than the reader's limit allows (a worker's output cap) */
    /* The step of loading a plugin that refused it (plugin/loader.c); any other load failure has no kind. */
    SH_EK_LOAD_MAGIC,       /* the entry symbol or its magic block */
    SH_EK_LOAD_NEGOTIATION, /* ABI negotiation or the plugin vtable */
    SH_EK_LOAD_METADATA,    /* the binary's metadata against its descriptor */
    SH_EK_LOAD_INIT,        /* the plugin's init() */
    SH_EK_COUNT             /* not a kind: one past the last, to check a kind another process sent */
} sh_error_kind;

typedef struct sh_error {
    sh_status status;
    int kind; /* an sh_error_kind: SH_EK_NONE unless the error was made with one (sh_error_set_kind) */
    char message[SH_ERROR_MESSAGE_MAX];
} sh_error;

/* Sets the error (when err is not NULL), of kind SH_EK_NONE, and returns `status`. */
__attribute__((format(printf, 3, 4))) sh_status sh_error_set(sh_error *err, sh_status status, const char *fmt,
                                                               ...);
/* The same with a kind. */
__attribute__((format(printf, 4, 5))) sh_status sh_error_set_kind(sh_error *err, sh_status status, int kind,
                                                                    const char *fmt, ...);

/* Prepends "prefix: " to the message, keeping the status and the kind. Returns the status. */
__attribute__((format(printf, 2, 3))) sh_status sh_error_prefix(sh_error *err, const char *fmt, ...);

void sh_error_clear(sh_error *err);

/* Adds a line to the message (a newline first unless it is empty) and sets the status, keeping the kind: for
 * checks that report every problem at once. */
__attribute__((format(printf, 3, 4))) void sh_error_append(sh_error *err, sh_status status, const char *fmt, ...);

/* The CLI exit code for a status: 0, 1 (a stage failed) or 2 (usage, configuration, validation). */
int sh_status_exit_code(sh_status status);

#endif
