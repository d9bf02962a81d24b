#include "serve/ctl.h"
#include "value/codec.h"
#include "worker/frame.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

sh_status sh_ctl_address(const char *path, struct sockaddr_un *sa, sh_error *err)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa->sun_path)
        return sh_error_set(err, SH_S_CONFIG, "--socket %s: the path is longer than the %zu bytes a Unix socket allows",
                            path, sizeof sa->sun_path - 1);
    memcpy(sa->sun_path, path, strlen(path));
    return SH_S_OK;
}

sh_status sh_ctl(const char *socket_path, const char *const *args, size_t count, int *exit_code, sh_buf *output,
                 sh_error *err)
{
    struct sockaddr_un sa;
    if (sh_ctl_address(socket_path, &sa, err) != SH_S_OK)
        return SH_S_CONFIG;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sh_error_set(err, SH_S_IO, "cannot create a socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        return sh_error_set(err, SH_S_CONFIG,
                            "cannot connect to %s: %s; is 'stagehost serve --socket %s' running?", socket_path,
                            strerror(e), socket_path);
    }
    sh_value *a = sh_value_array();
    for (size_t i = 0; a && i < count; i++)
        if (sh_value_array_push(a, sh_value_cstring(args[i])) != SH_OK) {
            sh_value_free(a);
            a = NULL;
        }
    sh_buf b;
    sh_buf_init(&b);
    size_t f = sh_frame_begin(&b, SH_CTL_REQUEST);
    sh_codec_put_value(&b, a);
    sh_frame_end(&b, f);
    sh_value_free(a);
    sh_status st = a ? sh_frame_send(fd, &b, err) : sh_error_set(err, SH_S_NOMEM, "out of memory");
    uint8_t type = 0;
    bool eof;
    if (st == SH_S_OK)
        st = sh_frame_recv(fd, &b, &type, SH_FRAME_DEFAULT_MAX, 0, &eof, err);
    sh_value *m = NULL;
    if (st == SH_S_OK) {
        sh_codec_reader r;
        sh_codec_reader_init(&r, b.data, b.len);
        st = type == SH_CTL_RESPONSE ? sh_codec_get_typed(&r, SH_TYPE_MAP, "response", &m, err)
                                     : sh_error_set(err, SH_S_PROTOCOL, "unexpected answer from %s", socket_path);
    }
    if (st == SH_S_OK) {
        *exit_code = (int)sh_value_get_int(sh_value_map_get(m, "exit"));
        size_t len = 0;
        const char *text = sh_value_get_string(sh_value_map_get(m, "output"), &len);
        if (text)
            sh_buf_append(output, text, len);
    } else if (st == SH_S_IO) {
        sh_error_prefix(err, "the server at %s closed the connection without answering", socket_path);
    }
    sh_value_free(m);
    sh_buf_free(&b);
    close(fd);
    return st;
}
