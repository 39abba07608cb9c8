// Claims of chapter 5: many sockets on one thread, select() and poll().
#include "harness.h"

#include <string>
#include <vector>

#ifndef _WIN32
#include <sys/resource.h>
#endif

using harness::describe;
using harness::must;

namespace {

// A non-blocking socket whose connect to 127.0.0.1:port is under way (or done).
net::Socket start_connect(std::uint16_t port) {
    net::Socket sock(must(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP), "socket"));
    must(net::set_nonblocking(sock.get(), true), "set_nonblocking");
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port);
    int rc = ::connect(sock.get(), reinterpret_cast<sockaddr*>(&to), sizeof to);
    int err = net::last_error();
    if (rc != 0 && !net::is_in_progress(err))
        throw harness::Failed("non-blocking connect failed at once: " + describe(err));
    return sock;
}

std::string revents_text(short revents) {
    std::string text;
    if (revents & POLLIN) text += "POLLIN ";
    if (revents & POLLOUT) text += "POLLOUT ";
    if (revents & POLLERR) text += "POLLERR ";
    if (revents & POLLHUP) text += "POLLHUP ";
    if (revents & POLLNVAL) text += "POLLNVAL ";
    return text.empty() ? "0" : text;
}

}  // namespace

// scope: linux, wine
//
// elsewhere: POSIX poll() has no FD_SETSIZE; on Winsock an fd_set is a list of FD_SETSIZE (64)
// sockets and WSAPoll has no such cap (Microsoft's select() and WSAPoll pages: read)
TEST_CASE("poll-watches-beyond-fd-setsize") {
#ifdef _WIN32
    // Winsock: more sockets in one WSAPoll than an fd_set can hold (64).
    std::vector<harness::Pair> pairs;
    for (int i = 0; i < FD_SETSIZE + 8; ++i)
        pairs.push_back(harness::connected_pair());
    harness::Pair& last = pairs.back();
    must(::send(last.server.get(), "x", 1, net::send_flags), "send");
    std::vector<net::pollfd_t> fds;
    for (harness::Pair& p : pairs)
        fds.push_back({p.client.get(), POLLIN, 0});
    int n = net::poll_many(fds.data(), fds.size(), 5000);
    EXPECT(n == 1 && (fds.back().revents & POLLIN),
           "WSAPoll over " + std::to_string(fds.size()) + " sockets returned " + std::to_string(n) +
               ", the last one's revents " + revents_text(fds.back().revents));
#else
    // POSIX: a socket whose descriptor number is above FD_SETSIZE.
    rlimit files{};
    must(::getrlimit(RLIMIT_NOFILE, &files), "getrlimit");
    if (files.rlim_cur < FD_SETSIZE + 64) {
        if (files.rlim_max < FD_SETSIZE + 64) harness::skip("the descriptor limit is too low");
        files.rlim_cur = FD_SETSIZE + 64;
        must(::setrlimit(RLIMIT_NOFILE, &files), "setrlimit");
    }
    harness::Pair p = harness::connected_pair();
    net::Socket high(must(::fcntl(p.client.get(), F_DUPFD, FD_SETSIZE + 10), "fcntl F_DUPFD"));
    EXPECT(!net::why_select_cannot_watch(high.get(), 0).empty(),
           "descriptor " + std::to_string(high.get()));
    must(::send(p.server.get(), "x", 1, net::send_flags), "send");
    short revents = 0;
    int n = net::poll_one(high.get(), POLLIN, 5000, &revents);
    EXPECT(n == 1 && (revents & POLLIN), "poll on descriptor " + std::to_string(high.get()) +
                                             " returned " + std::to_string(n) + ", revents " +
                                             revents_text(revents));
#endif
}

// scope: linux, wine
//
// elsewhere: POSIX allows a non-blocking connect to complete at once ("If the connection cannot be
// established immediately and O_NONBLOCK is set", connect() fails with EINPROGRESS: POSIX
// connect(), read); whether a BSD or macOS ever does on loopback was not run
TEST_CASE("nonblocking-connect-in-progress-on-loopback") {
    // 100 non-blocking connects to a listener on 127.0.0.1: none completes
    // inside connect(), even with the peer on this machine.
    harness::Listener listener = harness::listen_on_loopback(AF_INET, 128);
    std::vector<net::Socket> started;
    for (int i = 1; i <= 100; ++i) {
        net::Socket sock(must(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP), "socket"));
        must(net::set_nonblocking(sock.get(), true), "set_nonblocking");
        int rc = ::connect(sock.get(), listener.addr(), listener.length);
        int err = net::last_error();
        EXPECT(rc == -1 && net::is_in_progress(err),
               "connect " + std::to_string(i) + " of 100 returned " + std::to_string(rc) +
                   (rc == -1 ? " " + describe(err) : ": connected at once"));
        started.push_back(std::move(sock));
    }
}

// scope: linux; wine skips: Winsock ignores select's first argument (Microsoft's select() page)
//
// elsewhere: POSIX defines nfds the same way (select(2), POSIX select: read)
TEST_CASE("select-scans-up-to-nfds") {
#ifdef _WIN32
    harness::skip("Winsock ignores nfds");
#else
    // A readable socket, asked about with nfds one too low: the kernel looks
    // only at descriptors below nfds, so it never sees it.
    harness::Pair p = harness::connected_pair();
    must(::send(p.server.get(), "x", 1, net::send_flags), "send");
    EXPECT(harness::wait_readable(p.client.get(), 5), "the byte never arrived");
    int fd = p.client.get();
    fd_set readable;
    FD_ZERO(&readable);
    FD_SET(fd, &readable);
    timeval timeout{0, 100 * 1000};
    int n = ::select(fd, &readable, nullptr, nullptr, &timeout);
    EXPECT(n == 0, "select(nfds " + std::to_string(fd) + ") with descriptor " + std::to_string(fd) +
                       " readable returned " + std::to_string(n));
    FD_ZERO(&readable);
    FD_SET(fd, &readable);
    timeout = {0, 100 * 1000};
    n = ::select(fd + 1, &readable, nullptr, nullptr, &timeout);
    EXPECT(n == 1 && FD_ISSET(fd, &readable),
           "with nfds fd + 1, select returned " + std::to_string(n));
#endif
}

// scope: linux, wine
//
// elsewhere: real Windows before Windows 10 version 2004 (build 19041): WSAPoll never reports a
// failed connect (curl's commit 8bad5f2 disabling WSAPoll; the winpoll package's notes); from that
// version on, a TCP socket that fails to connect is indicated with POLLHUP, POLLERR and POLLWRNORM
// (Microsoft's WSAPoll function page, Remarks). Read, not run
TEST_CASE("poll-reports-refused-connect") {
    net::Socket sock = start_connect(harness::unused_port());
    net::pollfd_t watched{};
    watched.fd = sock.get();
    watched.events = POLLOUT;
    int n = net::poll_many(&watched, 1, 5000);
    EXPECT(n == 1, "poll returned " + std::to_string(n) + " for a refused connect");
    EXPECT((watched.revents & POLLERR) || (watched.revents & POLLHUP),
           "revents " + revents_text(watched.revents) + ", expected POLLERR or POLLHUP");
}

// scope: linux, wine
TEST_CASE("readiness-can-be-spurious") {
    // poll says readable; by the time our recv runs the bytes are gone (here
    // an earlier recv took them, as a second reader of the socket would):
    // the recv fails with EWOULDBLOCK, though the report said "ready".
    harness::Pair p = harness::connected_pair();
    must(net::set_nonblocking(p.client.get(), true), "set_nonblocking");
    must(::send(p.server.get(), "hello", 5, net::send_flags), "send");
    short revents = 0;
    int n = net::poll_one(p.client.get(), POLLIN, 5000, &revents);
    EXPECT(n == 1 && (revents & POLLIN), "poll returned " + std::to_string(n));
    char buffer[64];
    must(::recv(p.client.get(), buffer, sizeof buffer, 0), "the other reader's recv");
    long got = ::recv(p.client.get(), buffer, sizeof buffer, 0);
    int err = net::last_error();
    EXPECT(got == -1 && net::is_would_block(err),
           "recv after a ready report returned " + std::to_string(got) + ", " + describe(err));
}

// scope: linux, wine
//
// elsewhere: POSIX poll() and select() report a state, not an event (POSIX poll: read); epoll's
// EPOLLET mode is the edge-triggered exception (epoll(7): read)
TEST_CASE("poll-reports-again-while-bytes-wait") {
    // poll and select are level-triggered: they report the socket readable
    // as long as bytes wait, so a loop that reads only part of them now is
    // told again at its next wait.
    harness::Pair p = harness::connected_pair();
    must(net::set_nonblocking(p.client.get(), true), "set_nonblocking");
    must(::send(p.server.get(), "hello, world", 12, net::send_flags), "send");
    net::pollfd_t watched{};
    watched.fd = p.client.get();
    watched.events = POLLIN;
    EXPECT(net::poll_many(&watched, 1, 5000) == 1 && (watched.revents & POLLIN),
           "the first poll: revents " + revents_text(watched.revents));
    char five[5];
    must(::recv(p.client.get(), five, sizeof five, 0), "recv 5 of the 12 bytes");
    watched.revents = 0;
    int n = net::poll_many(&watched, 1, 0);
    EXPECT(n == 1 && (watched.revents & POLLIN), "poll with 7 bytes still waiting returned " +
                                                     std::to_string(n) + ", revents " +
                                                     revents_text(watched.revents));
}
