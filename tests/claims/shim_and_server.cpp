// Claims made in common/: the platform shim and the lab server.
#include "harness.h"

#include <atomic>
#include <cstdio>
#include <thread>

#ifdef __linux__
#include <sys/epoll.h>
#endif

using harness::describe;
using harness::must;
using harness::seconds_since;
using Clock = std::chrono::steady_clock;

// scope: linux; wine skips: Winsock has no file status flags; FIONBIO is the only switch
TEST_CASE("nonblocking-keeps-other-flags") {
#ifdef _WIN32
    harness::skip("Winsock has no file status flags; FIONBIO is the only switch");
#else
    harness::Pair p = harness::connected_pair();
    int fd = p.client.get();
    must(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_APPEND), "F_SETFL O_APPEND");
    must(net::set_nonblocking(fd, true), "set_nonblocking(true)");
    int flags = ::fcntl(fd, F_GETFL);
    EXPECT((flags & O_NONBLOCK) != 0, "O_NONBLOCK is not set");
    EXPECT((flags & O_APPEND) != 0, "setting O_NONBLOCK cleared O_APPEND");
    must(net::set_nonblocking(fd, false), "set_nonblocking(false)");
    flags = ::fcntl(fd, F_GETFL);
    EXPECT((flags & O_NONBLOCK) == 0, "O_NONBLOCK is still set");
    EXPECT((flags & O_APPEND) != 0, "clearing O_NONBLOCK cleared O_APPEND");
#endif
}

// scope: linux, wine
TEST_CASE("timeout-option-reads-back") {
    harness::Pair p = harness::connected_pair();
    for (int option : {SO_RCVTIMEO, SO_SNDTIMEO}) {
        must(net::set_timeout_option(p.client.get(), option, 1.25), "set 1.25 s");
        double got = net::get_timeout_option(p.client.get(), option);
        EXPECT(got > 1.24 && got < 1.26,
               "read back " + std::to_string(got) + " s after setting 1.25");
        must(net::set_timeout_option(p.client.get(), option, 0), "set 0");
        got = net::get_timeout_option(p.client.get(), option);
        EXPECT(got == 0, "read back " + std::to_string(got) + " s after setting 0 (no timeout)");
    }
}

// scope: linux, wine
TEST_CASE("zero-rcvtimeo-means-no-timeout") {
    harness::Pair p = harness::connected_pair();
    must(net::set_timeout_option(p.client.get(), SO_RCVTIMEO, 0.2), "SO_RCVTIMEO 0.2 s");
    must(net::set_timeout_option(p.client.get(), SO_RCVTIMEO, 0), "SO_RCVTIMEO 0");
    // With a 0.2 s limit recv would fail after 0.2 s; with 0 it must still be
    // waiting at 0.6 s, when data comes.
    std::thread sender([&] {
        harness::sleep_for(0.6);
        ::send(p.server.get(), "late", 4, net::send_flags);
    });
    char buffer[16];
    auto start = Clock::now();
    long n = ::recv(p.client.get(), buffer, sizeof buffer, 0);
    int err = net::last_error();
    double took = seconds_since(start);
    sender.join();
    EXPECT(n == 4, "recv returned " + std::to_string(n) + " (" + describe(err) + ") after " +
                       std::to_string(took) + " s");
    EXPECT(took >= 0.5, "recv returned after only " + std::to_string(took) + " s");
}

// scope: linux, wine
//
// elsewhere: real Windows: Microsoft does not document whether shutdown wakes a blocked recv; the
// Windows outcome asserted is Wine's
TEST_CASE("shutdown-wakes-blocked-recv") {
    harness::Pair p = harness::connected_pair();
    net::socket_t fd = p.server.get();
    harness::RecvOutcome r = harness::recv_while(
        fd, [&] { must(::shutdown(fd, net::shut_rdwr), "shutdown"); }, 1.5);
    std::string seen = std::to_string(r.result) + ", " + describe(r.error) + " after " +
                       std::to_string(r.seconds) + " s";
#ifdef _WIN32
    // Winsock: shutdown does not abort a pending recv; only the 1.5 s limit ends it.
    EXPECT(r.result == -1 && r.error == WSAETIMEDOUT && r.seconds > 1.2,
           "on Windows shutdown was expected not to wake recv, yet: " + seen);
#else
    EXPECT(r.result == 0 && r.seconds < 1.0, "recv after shutdown from another thread: " + seen);
#endif
}

// scope: wine; linux skips: POSIX wakes a blocked recv with shutdown(), not close()
TEST_CASE("windows-closesocket-wakes-blocked-recv") {
#ifndef _WIN32
    harness::skip("POSIX wakes a blocked recv with shutdown(), not close()");
#else
    harness::Pair p = harness::connected_pair();
    net::socket_t fd = p.server.release();  // closed below, by hand
    harness::RecvOutcome r = harness::recv_while(
        fd, [&] { must(net::close_socket(fd), "closesocket"); }, 1.5);
    EXPECT(r.result == -1 && r.seconds < 1.0,
           "recv after closesocket from another thread: " + std::to_string(r.result) + ", " +
               describe(r.error) + " after " + std::to_string(r.seconds) + " s");
#endif
}

// scope: linux, wine
TEST_CASE("wake-aborts-blocking-connect") {
    harness::FullListener full = harness::full_backlog_listener();  // connect will hang
    net::socket_t fd = must(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP), "socket");
    bool closed = false;
    std::thread watchdog([&] {
        harness::sleep_for(0.3);
        closed = net::wake_blocked_calls(fd);
    });
    auto start = Clock::now();
    int rc = ::connect(fd, full.listener.addr(), full.listener.length);
    int err = net::last_error();
    double took = seconds_since(start);
    watchdog.join();
    if (!closed) net::close_socket(fd);
    EXPECT(rc == -1, "connect to a listener that never answers succeeded");
    EXPECT(took < 1.5, "connect was still blocked " + std::to_string(took) + " s later (" +
                           describe(err) + ")");
}

// scope: linux, wine
//
// elsewhere: FreeBSD flushes the unread data and sends a FIN (tcp_disconnect(),
// sys/netinet/tcp_usrreq.c: read, not run); a recent XNU (macOS) tcp_disconnect() drops with an
// RST, as Linux does (read, not run)
TEST_CASE("close-with-unread-data-sends-rst") {
    harness::Pair p = harness::connected_pair();
    must(::send(p.client.get(), "unread", 6, net::send_flags), "send");
    harness::wait_readable(p.server.get(), 5);  // the bytes are in the server's buffer
    harness::RecvOutcome r = harness::recv_while(p.client.get(), [&] {
        p.server.reset();  // close without reading them
    });
    EXPECT(r.result == -1, "the peer closed with unread data, yet recv returned " +
                               std::to_string(r.result) +
                               (r.result == 0 ? " (a FIN, not an RST)" : ""));
#ifdef _WIN32
    EXPECT(r.error == WSAECONNRESET || r.error == WSAECONNABORTED,
           "recv failed with " + describe(r.error));
#else
    EXPECT(r.error == ECONNRESET, "recv failed with " + describe(r.error));
#endif
}

// scope: linux; wine skips: POSIX signals: Windows has no SIGPIPE (e2e *:stdout-closed-pipe runs
// there)
TEST_CASE("closed-pipe-write-fails-epipe") {
#ifdef _WIN32
    harness::skip("POSIX signals: Windows has no SIGPIPE (e2e *:stdout-closed-pipe runs there)");
#else
    net::Startup startup;  // ignores SIGPIPE, as every chapter does
    int fds[2];
    must(::pipe(fds), "pipe");
    ::close(fds[0]);  // the reader is gone, as after `| head -c10`
    long n = ::write(fds[1], "x", 1);
    int err = errno;
    ::close(fds[1]);
    // Still alive: without SIG_IGN the process would have died of SIGPIPE here.
    EXPECT(n == -1 && err == EPIPE,
           "write returned " + std::to_string(n) + " (" + describe(err) + ")");
#endif
}

// scope: linux, wine
TEST_CASE("wake-blocked-accept") {
    // A thread blocked in accept on a listener; net::wake_blocked_calls from
    // this thread: shutdown on POSIX (Linux fails the accept), closesocket on
    // Windows. Nobody connects.
    harness::Listener listener = harness::listen_on_loopback();
    net::socket_t fd = listener.sock.get();
    std::atomic<bool> returned{false};
    net::socket_t accepted = net::invalid_socket;
    int err = 0;
    std::thread acceptor([&] {
        accepted = ::accept(fd, nullptr, nullptr);
        err = net::last_error();
        returned = true;
    });
    harness::sleep_for(0.2);
    auto start = Clock::now();
    if (net::wake_blocked_calls(fd)) listener.sock.release();  // Windows closed it
    while (!returned && seconds_since(start) < 2)
        harness::sleep_for(0.01);
    double took = seconds_since(start);
    if (!returned) {  // still blocked: release it with a connection, then fail
        net::Socket unblock(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP));
        ::connect(unblock.get(), listener.addr(), listener.length);
    }
    acceptor.join();
    if (accepted != net::invalid_socket) net::close_socket(accepted);
    EXPECT(took < 2, "accept still blocked 2 s after the wake");
    EXPECT(accepted == net::invalid_socket, "accept returned a connection; nobody connected");
    std::printf("accept failed with %s after %.3f s\n", describe(err).c_str(), took);
}

// scope: linux; wine skips: Windows has no epoll (the lab server waits with WSAPoll there)
//
// elsewhere: epoll is Linux only; kqueue (BSDs, macOS) likewise drops a closed descriptor's
// events (kqueue(2): read, not run)
TEST_CASE("epoll-forgets-closed-descriptor") {
#ifndef __linux__
    harness::skip("Windows has no epoll (the lab server waits with WSAPoll there)");
#else
    // A descriptor in an epoll set, readable: reported. Closed (its only
    // descriptor), it leaves the set by itself: no epoll_ctl(DEL), and the
    // next wait reports nothing, though its bytes were never read.
    harness::Pair p = harness::connected_pair();
    net::Socket epoll_fd(must(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
    epoll_event wanted{};
    wanted.events = EPOLLIN;
    wanted.data.fd = p.client.get();
    must(::epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, p.client.get(), &wanted), "epoll_ctl ADD");
    must(::send(p.server.get(), "x", 1, net::send_flags), "send");
    epoll_event ready[4];
    int n = ::epoll_wait(epoll_fd.get(), ready, 4, 2000);
    EXPECT(n == 1 && ready[0].data.fd == p.client.get(),
           "epoll_wait returned " + std::to_string(n));
    p.client.reset();  // close(): the descriptor's last reference
    n = ::epoll_wait(epoll_fd.get(), ready, 4, 200);
    EXPECT(n == 0,
           "after close, epoll_wait still reported " + std::to_string(n) + " descriptor(s)");
#endif
}
