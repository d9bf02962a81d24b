/* Unit tests for util/fdpass: one descriptor with a payload, and a receiver that keeps at most one, close-on-exec,
 * and closes whatever else a peer sends (extra descriptors, a truncated control message, a message without bytes). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/fdpass.h"

#include <dirent.h>
#include <stdbool.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* How many descriptors this process has open. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* Sends `len` bytes with `count` descriptors in one SCM_RIGHTS message, as a hostile peer could. */
static void send_many(int sock, const void *data, size_t len, const int *fds, size_t count)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(16 * sizeof(int))];
    } cm;
    memset(&cm, 0, sizeof cm);
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                        .msg_controllen = CMSG_SPACE(count * sizeof(int))};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(count * sizeof(int));
    memcpy(CMSG_DATA(c), fds, count * sizeof(int));
    assert_int_equal(sendmsg(sock, &mh, 0), (ssize_t)len);
}

static bool same_file(int a, int b)
{
    struct stat sa, sb;
    assert_int_equal(fstat(a, &sa), 0);
    assert_int_equal(fstat(b, &sb), 0);
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static void test_one_descriptor_with_payload(void **state)
{
    (void)state;
    int sv[2], p[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(pipe(p), 0);
    int before = open_fds();
    assert_int_equal(sh_fdpass_send(sv[0], "hello", 5, p[0]), 5);
    char buf[16];
    int fd = -2;
    assert_int_equal(sh_fdpass_recv(sv[1], buf, sizeof buf, 0, &fd), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_true(fd >= 0 && fd != p[0]);
    assert_true(same_file(fd, p[0]));
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    assert_int_equal(open_fds(), before);

    /* Bytes without a descriptor: none reported. */
    assert_int_equal(write(sv[0], "x", 1), 1);
    fd = -2;
    assert_int_equal(sh_fdpass_recv(sv[1], buf, sizeof buf, 0, &fd), 1);
    assert_int_equal(fd, -1);

    /* Nothing there, without waiting: -1 (EAGAIN), no descriptor. */
    fd = -2;
    assert_int_equal(sh_fdpass_recv(sv[1], buf, sizeof buf, MSG_DONTWAIT, &fd), -1);
    assert_int_equal(fd, -1);

    /* The end of the stream. */
    close(sv[0]);
    assert_int_equal(sh_fdpass_recv(sv[1], buf, sizeof buf, 0, &fd), 0);
    assert_int_equal(fd, -1);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

static void test_extra_descriptors_closed(void **state)
{
    (void)state;
    int sv[2], p[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(pipe(p), 0);
    int before = open_fds();
    /* Two descriptors: the first is kept, the second closed. */
    send_many(sv[0], "ab", 2, (int[]){p[0], p[1]}, 2);
    char buf[16];
    int fd = -2;
    assert_int_equal(sh_fdpass_recv(sv[1], buf, sizeof buf, 0, &fd), 2);
    assert_true(fd >= 0 && same_file(fd, p[0]));
    close(fd);
    assert_int_equal(open_fds(), before);

    /* More than the receiver has room for: the control message is truncated and nothing is kept. */
    int many[8] = {p[0], p[1], p[0], p[1], p[0], p[1], p[0], p[1]};
    send_many(sv[0], "cd", 2, many, 8);
    fd = -2;
    assert_int_equal(sh_fdpass_recv(sv[1], buf, sizeof buf, 0, &fd), 2);
    assert_int_equal(fd, -1);
    assert_int_equal(open_fds(), before);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

static void test_descriptor_without_bytes_dropped(void **state)
{
    (void)state;
    /* A datagram socket can carry a descriptor with no bytes at all: that is not a message, nothing is kept. */
    int sv[2], p[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(pipe(p), 0);
    int before = open_fds();
    send_many(sv[0], "", 0, (int[]){p[0]}, 1);
    char buf[16];
    int fd = -2;
    assert_int_equal(sh_fdpass_recv(sv[1], buf, sizeof buf, 0, &fd), 0);
    assert_int_equal(fd, -1);
    assert_int_equal(open_fds(), before);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_descriptor_with_payload),
        cmocka_unit_test(test_extra_descriptors_closed),
        cmocka_unit_test(test_descriptor_without_bytes_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
