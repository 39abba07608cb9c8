// harness.h - the test harness: a registry of named tests, EXPECT, and
// loopback helpers. No framework: one test program lists its tests
// (--list) and runs one by name; CTest registers each name as a test.
//
// A test arranges real sockets on loopback, does one thing and checks what
// the OS did. Exit status: 0 passed, 1 failed, 77 skipped (does not apply on
// this platform; the reason is printed).
#pragma once

#include "platform.h"
#include "text.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace harness {

struct Test {
    const char* id;
    void (*run)();
};
std::vector<Test>& registry();
struct Register {
    Register(const char* id, void (*run)()) { registry().push_back({id, run}); }
};

struct Failed : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct Skipped : std::runtime_error {
    using std::runtime_error::runtime_error;
};
[[noreturn]] void fail(const char* file, int line, const std::string& message);
[[noreturn]] void skip(const std::string& reason);

// "ECONNREFUSED (Connection refused)"
std::string describe(int err);
// The last error, described; for messages after a failed call.
std::string last_error_text();

// Fail the test unless a setup call succeeded (result != -1).
template <class Result>
Result must(Result result, const char* what) {
    if (result == static_cast<Result>(-1))
        throw Failed(std::string("setup call failed: ") + what + ": " + last_error_text());
    return result;
}

// A listening socket on 127.0.0.1 (or ::1) with an ephemeral port.
struct Listener {
    net::Socket sock;
    sockaddr_storage address{};
    socklen_t length = 0;
    std::uint16_t port() const;
    const sockaddr* addr() const { return reinterpret_cast<const sockaddr*>(&address); }
};
Listener listen_on_loopback(int family = AF_INET, int backlog = 16);

// A connected pair on loopback: `client` connected, `server` accepted.
struct Pair {
    net::Socket client, server;
};
Pair connected_pair(int family = AF_INET);

// A loopback port where nothing listens (bound once, then released).
std::uint16_t unused_port();

// A listener that never accepts, with its accept queue full: a new connect
// to it gets no answer (its SYN is dropped) until the listener goes away.
struct FullListener {
    Listener listener;
    std::vector<net::Socket> fillers;
};
FullListener full_backlog_listener();

// Wait until fd is readable (or writable), up to `seconds`. True if it is.
bool wait_readable(net::socket_t fd, double seconds);
bool wait_writable(net::socket_t fd, double seconds);

double seconds_since(std::chrono::steady_clock::time_point start);
void sleep_for(double seconds);

// How one recv ended.
struct RecvOutcome {
    long result = 1;
    int error = 0;
    double seconds = 0;
};
// Block a thread in recv on `fd` (bounded by SO_RCVTIMEO `limit`, so nothing
// hangs), run `action` 0.2 s later from this thread, and report how recv ended.
// Resets are checked this way, with the reader already waiting: Wine reports
// a reset only to a recv that is waiting when it arrives (a later recv gets 0).
RecvOutcome recv_while(net::socket_t fd, const std::function<void()>& action, double limit = 3);

// True when this Windows program runs under Wine (its ntdll exports
// wine_get_version); false on a real Windows and on POSIX.
bool under_wine();

}  // namespace harness

#define HARNESS_CONCAT2(a, b) a##b
#define HARNESS_CONCAT(a, b) HARNESS_CONCAT2(a, b)

// TEST_CASE("claim-id") { ... }  - the id is the claim tag it proves.
#define TEST_CASE(id)                                                        \
    static void HARNESS_CONCAT(test_case_, __LINE__)();                      \
    static const harness::Register HARNESS_CONCAT(test_register_, __LINE__)( \
        id, &HARNESS_CONCAT(test_case_, __LINE__));                          \
    static void HARNESS_CONCAT(test_case_, __LINE__)()

// EXPECT(condition, what the OS did instead)
#define EXPECT(condition, message)                                                   \
    do {                                                                             \
        if (!(condition))                                                            \
            harness::fail(__FILE__, __LINE__,                                        \
                          std::string("expected ") + #condition + "; " + (message)); \
    } while (0)
