// Claims made in common/: the platform shim and the lab server.
#include "harness.h"

#include <thread>

using harness::describe;
using harness::must;
using harness::seconds_since;
using Clock = std::chrono::steady_clock;

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

TEST_CASE("timeout-option-reads-back") {
    harness::Pair p = harness::connected_pair();
    for (int option : {SO_RCVTIMEO, SO_SNDTIMEO}) {
        must(net::set_timeout_option(p.client.get(), option, 1.25), "set 1.25 s");
        double got = net::get_timeout_option(p.client.get(), option);
        EXPECT(got > 1.24 && got < 1.26, "read back " + std::to_string(got) + " s after setting 1.25");
        must(net::set_timeout_option(p.client.get(), option, 0), "set 0");
        got = net::get_timeout_option(p.client.get(), option);
        EXPECT(got == 0, "read back " + std::to_string(got) + " s after setting 0 (no timeout)");
    }
}

namespace {
// Block a thread in recv on `fd` (limited to 1.5 s by SO_RCVTIMEO, so nothing
// hangs), run `wake` from this thread 0.2 s later, and report how the recv ended.
struct BlockedRecv {
    long result = 1;
    int error = 0;
    double seconds = 0;
};
template <class Wake>
BlockedRecv recv_woken_by(net::socket_t fd, Wake wake) {
    must(net::set_timeout_option(fd, SO_RCVTIMEO, 1.5), "SO_RCVTIMEO");
    BlockedRecv outcome;
    std::thread reader([&] {
        char buffer[16];
        auto start = Clock::now();
        outcome.result = ::recv(fd, buffer, sizeof buffer, 0);
        outcome.error = net::last_error();
        outcome.seconds = seconds_since(start);
    });
    harness::sleep_for(0.2);  // let the reader block in recv
    wake();
    reader.join();
    return outcome;
}
}  // namespace

TEST_CASE("shutdown-wakes-blocked-recv") {
    harness::Pair p = harness::connected_pair();
    net::socket_t fd = p.server.get();
    BlockedRecv r = recv_woken_by(fd, [&] { must(::shutdown(fd, net::shut_rdwr), "shutdown"); });
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

TEST_CASE("windows-closesocket-wakes-blocked-recv") {
#ifndef _WIN32
    harness::skip("POSIX wakes a blocked recv with shutdown(), not close()");
#else
    harness::Pair p = harness::connected_pair();
    net::socket_t fd = p.server.release();  // closed below, by hand
    BlockedRecv r = recv_woken_by(fd, [&] { must(net::close_socket(fd), "closesocket"); });
    EXPECT(r.result == -1 && r.seconds < 1.0,
           "recv after closesocket from another thread: " + std::to_string(r.result) + ", " +
               describe(r.error) + " after " + std::to_string(r.seconds) + " s");
#endif
}

TEST_CASE("close-with-unread-data-sends-rst") {
    harness::Pair p = harness::connected_pair();
    must(net::set_timeout_option(p.client.get(), SO_RCVTIMEO, 5), "SO_RCVTIMEO");
    must(::send(p.client.get(), "unread", 6, net::send_flags), "send");
    harness::wait_readable(p.server.get(), 5);  // the bytes are in the server's buffer
    p.server.reset();                           // close without reading them
    char buffer[16];
    long n = ::recv(p.client.get(), buffer, sizeof buffer, 0);
    int err = net::last_error();
    EXPECT(n == -1, "the peer closed with unread data, yet recv returned " + std::to_string(n) +
                        (n == 0 ? " (a FIN, not an RST)" : ""));
#ifdef _WIN32
    EXPECT(err == WSAECONNRESET || err == WSAECONNABORTED, "recv failed with " + describe(err));
#else
    EXPECT(err == ECONNRESET, "recv failed with " + describe(err));
#endif
}
