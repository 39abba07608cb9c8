/* short_send.c - for the lab grader (tests/see_it.py --short-send): loaded
 * into a program with LD_PRELOAD, it makes every send() and sendto() take at
 * most SHORT_SEND bytes (default 16), as a send() into a socket buffer with
 * little room does. A program that sends only once, ignoring how many bytes
 * send() took, then sends a part of its request; one that sends the rest
 * works as before.
 *
 * Why not a long request instead: on Linux loopback the send buffer grows to
 * megabytes at once, so a request that fits on a command line never comes
 * back short.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>

static size_t at_most(size_t length) {
    const char* text = getenv("SHORT_SEND");
    size_t most = text ? strtoul(text, NULL, 10) : 16;
    if (most == 0) most = 1;
    return length < most ? length : most;
}

ssize_t send(int fd, const void* data, size_t length, int flags) {
    ssize_t (*real)(int, const void*, size_t, int) = (ssize_t(*)(int, const void*, size_t, int))dlsym(RTLD_NEXT, "send");
    return real(fd, data, at_most(length), flags);
}

ssize_t sendto(int fd, const void* data, size_t length, int flags, const struct sockaddr* to, socklen_t to_length) {
    ssize_t (*real)(int, const void*, size_t, int, const struct sockaddr*, socklen_t) =
        (ssize_t(*)(int, const void*, size_t, int, const struct sockaddr*, socklen_t))dlsym(RTLD_NEXT, "sendto");
    return real(fd, data, at_most(length), flags, to, to_length);
}
