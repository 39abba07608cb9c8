// Claims of chapter 3: non-blocking sockets and select(), on real loopback sockets.
#include "harness.h"

#include <algorithm>
#include <atomic>
#include <vector>

using harness::describe;
using harness::must;
using harness::seconds_since;
using Clock = std::chrono::steady_clock;

namespace {

// select() on one socket for reading or writing, with the exception set too.
struct Selected {
    int result;
    bool in_wanted, in_except;
};
Selected select_one(net::socket_t fd, bool for_writing, double seconds) {
    fd_set wanted, except;
    FD_ZERO(&wanted);
    FD_ZERO(&except);
    FD_SET(fd, &wanted);
    FD_SET(fd, &except);
    timeval timeout{};
    timeout.tv_sec = static_cast<long>(seconds);
    timeout.tv_usec = static_cast<long>((seconds - static_cast<double>(timeout.tv_sec)) * 1e6);
    int n = ::select(static_cast<int>(fd) + 1, for_writing ? nullptr : &wanted,
                     for_writing ? &wanted : nullptr, &except, &timeout);
    return {n, n > 0 && FD_ISSET(fd, &wanted) != 0, n > 0 && FD_ISSET(fd, &except) != 0};
}

int so_error(net::socket_t fd) {
    int value = -1;
    socklen_t length = sizeof value;
    must(::getsockopt(fd, SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&value), &length),
         "getsockopt SO_ERROR");
    return value;
}

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port);
    return to;
}

// A non-blocking socket whose connect to 127.0.0.1:port is under way (or done).
net::Socket start_connect(std::uint16_t port) {
    net::Socket sock(must(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP), "socket"));
    must(net::set_nonblocking(sock.get(), true), "set_nonblocking");
    sockaddr_in to = loopback(port);
    int rc = ::connect(sock.get(), reinterpret_cast<sockaddr*>(&to), sizeof to);
    int err = net::last_error();
    if (rc != 0 && !net::is_in_progress(err))
        throw harness::Failed("non-blocking connect failed at once: " + describe(err));
    return sock;
}

}  // namespace

TEST_CASE("select-timeout-returns-zero") {
    harness::Pair p = harness::connected_pair();
    auto start = Clock::now();
    Selected s = select_one(p.client.get(), false, 0.3);
    double took = seconds_since(start);
    EXPECT(s.result == 0, "select returned " + std::to_string(s.result) + " with nothing sent");
    EXPECT(took >= 0.25 && took < 1.5, "select returned after " + std::to_string(took) + " s");
}

TEST_CASE("select-clears-sets") {
    harness::Pair quiet = harness::connected_pair();
    harness::Pair talking = harness::connected_pair();
    must(::send(talking.server.get(), "x", 1, net::send_flags), "send");
    harness::wait_readable(talking.client.get(), 5);
    fd_set readable;
    FD_ZERO(&readable);
    FD_SET(quiet.client.get(), &readable);
    FD_SET(talking.client.get(), &readable);
    timeval timeout{5, 0};
    net::socket_t highest = std::max(quiet.client.get(), talking.client.get());
    int n = ::select(static_cast<int>(highest) + 1, &readable, nullptr, nullptr, &timeout);
    EXPECT(n == 1, "select returned " + std::to_string(n));
    EXPECT(FD_ISSET(talking.client.get(), &readable), "the socket with data is not in the set");
    EXPECT(!FD_ISSET(quiet.client.get(), &readable),
           "the socket without data is still in the set: select did not clear it");
}

TEST_CASE("select-readable-at-eof") {
    harness::Pair p = harness::connected_pair();
    p.server.reset();  // the peer's FIN, and no data
    Selected s = select_one(p.client.get(), false, 5);
    EXPECT(s.result == 1 && s.in_wanted, "select did not report readable at EOF");
    char buffer[16];
    long n = ::recv(p.client.get(), buffer, sizeof buffer, 0);
    EXPECT(n == 0, "recv after readable-at-EOF returned " + std::to_string(n));
}

TEST_CASE("nonblocking-recv-would-block") {
    harness::Pair p = harness::connected_pair();
    must(net::set_nonblocking(p.client.get(), true), "set_nonblocking");
    char buffer[16];
    auto start = Clock::now();
    long n = ::recv(p.client.get(), buffer, sizeof buffer, 0);
    int err = net::last_error();
    double took = seconds_since(start);
    EXPECT(n == -1 && net::is_would_block(err),
           "recv returned " + std::to_string(n) + ", " + describe(err));
#ifdef _WIN32
    EXPECT(err == WSAEWOULDBLOCK, describe(err));
#else
    EXPECT(err == EAGAIN || err == EWOULDBLOCK, describe(err));
#endif
    EXPECT(took < 0.1, "recv took " + std::to_string(took) + " s: it waited");
}

TEST_CASE("nonblocking-connect-writable-so-error-zero") {
    harness::Listener listener = harness::listen_on_loopback();
    net::Socket sock = start_connect(listener.port());
    Selected s = select_one(sock.get(), true, 5);
    EXPECT(s.result == 1 && s.in_wanted && !s.in_except,
           "select: " + std::to_string(s.result) + " writable " + std::to_string(s.in_wanted) +
               " except " + std::to_string(s.in_except));
    int err = so_error(sock.get());
    EXPECT(err == 0, "SO_ERROR is " + describe(err));
}

TEST_CASE("nonblocking-connect-refused-via-so-error") {
    net::Socket sock = start_connect(harness::unused_port());
    Selected s = select_one(sock.get(), true, 5);
    EXPECT(s.result >= 1, "select gave no answer for a refused connect");
    int err = so_error(sock.get());
#ifdef _WIN32
    EXPECT(err == WSAECONNREFUSED, "SO_ERROR is " + describe(err));
#else
    EXPECT(err == ECONNREFUSED, "SO_ERROR is " + describe(err));
#endif
}

TEST_CASE("windows-failed-connect-in-exceptfds") {
    net::Socket sock = start_connect(harness::unused_port());
    Selected s = select_one(sock.get(), true, 5);
#ifdef _WIN32
    EXPECT(s.in_except && !s.in_wanted,
           "Windows: a refused connect should be in exceptfds only; "
           "writable " +
               std::to_string(s.in_wanted) + " except " + std::to_string(s.in_except));
#else
    EXPECT(s.in_wanted && !s.in_except,
           "POSIX: a refused connect should show as writable only; "
           "writable " +
               std::to_string(s.in_wanted) + " except " + std::to_string(s.in_except));
#endif
}

TEST_CASE("nonblocking-send-partial-then-would-block") {
    harness::Pair p = harness::connected_pair();  // the server never reads
    must(net::set_nonblocking(p.client.get(), true), "set_nonblocking");
    std::vector<char> chunk(256 * 1024, 'x');
    bool partial = false;
    int last_error = 0;
    for (int i = 0; i < 4096; ++i) {  // at most 1 GiB: far more than the buffers hold
        long n =
            ::send(p.client.get(), chunk.data(), static_cast<int>(chunk.size()), net::send_flags);
        if (n < 0) {
            last_error = net::last_error();
            break;
        }
        if (static_cast<std::size_t>(n) < chunk.size()) partial = true;
    }
    EXPECT(net::is_would_block(last_error),
           "sending to a peer that does not read ended with " + describe(last_error));
    EXPECT(partial, "no send returned less than asked before EWOULDBLOCK");
}

#ifndef _WIN32
#include <pthread.h>
#include <csignal>
#include <thread>

namespace {
void on_signal(int) {}

// Send SIGUSR1 to `target` every 0.1 s until `stop`; with a handler installed
// without SA_RESTART, each one ends a poll in that thread with EINTR.
struct SignalRain {
    std::atomic<bool> stop{false};
    std::thread thread;
    explicit SignalRain(pthread_t target) {
        struct sigaction action {};
        action.sa_handler = on_signal;  // no SA_RESTART
        sigemptyset(&action.sa_mask);
        ::sigaction(SIGUSR1, &action, nullptr);
        thread = std::thread([this, target] {
            while (!stop) {
                harness::sleep_for(0.1);
                ::pthread_kill(target, SIGUSR1);
            }
        });
    }
    ~SignalRain() {
        stop = true;
        thread.join();
        ::signal(SIGUSR1, SIG_IGN);
    }
};
}  // namespace
#endif

TEST_CASE("poll-eintr-returns-early") {
#ifdef _WIN32
    harness::skip("Windows has no signals to interrupt WSAPoll");
#else
    harness::Pair p = harness::connected_pair();  // nothing will arrive
    SignalRain rain(::pthread_self());
    short revents = 0;
    auto start = Clock::now();
    int n = net::poll_one(p.client.get(), POLLIN, 3000, &revents);
    int err = errno;
    double took = seconds_since(start);
    EXPECT(n == -1 && err == EINTR,
           "poll returned " + std::to_string(n) + " (" + describe(err) + ")");
    EXPECT(took < 1.0, "poll waited " + std::to_string(took) + " s of its 3 s despite the signal");
#endif
}

TEST_CASE("deadline-loop-total-wait-bounded") {
#ifdef _WIN32
    harness::skip("Windows has no signals to interrupt WSAPoll");
#else
    harness::Pair p = harness::connected_pair();  // nothing will arrive
    SignalRain rain(::pthread_self());
    // Chapter 2's deadline loop: poll with the time left, again after EINTR.
    auto deadline = Clock::now() + std::chrono::milliseconds(800);
    auto start = Clock::now();
    int wakeups = 0, n = 0;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        short revents = 0;
        n = net::poll_one(p.client.get(), POLLIN,
                          static_cast<int>(std::max<long long>(0, left.count())), &revents);
        if (n == -1 && errno == EINTR) {
            ++wakeups;
            continue;
        }
        break;
    }
    double took = seconds_since(start);
    EXPECT(n == 0, "the loop ended with poll returning " + std::to_string(n));
    EXPECT(wakeups >= 3, "only " + std::to_string(wakeups) + " wake-ups: the test did not test");
    EXPECT(took >= 0.75 && took < 1.2, "total wait " + std::to_string(took) +
                                           " s for a 0.8 s deadline across " +
                                           std::to_string(wakeups) + " wake-ups");
#endif
}
