// Claims of chapter 4: shutdown, close, SO_LINGER, TIME_WAIT.
#include "harness.h"

#include <cstdio>
#include <fstream>
#include <sstream>

using harness::describe;
using harness::must;
using harness::seconds_since;
using Clock = std::chrono::steady_clock;

// scope: linux, wine
TEST_CASE("shut-wr-peer-reads-eof-and-can-still-send") {
    harness::Pair p = harness::connected_pair();
    must(net::set_timeout_option(p.server.get(), SO_RCVTIMEO, 5), "SO_RCVTIMEO");
    must(net::set_timeout_option(p.client.get(), SO_RCVTIMEO, 5), "SO_RCVTIMEO");
    must(::send(p.client.get(), "request", 7, net::send_flags), "send");
    must(::shutdown(p.client.get(), net::shut_wr), "shutdown(SHUT_WR)");
    char buffer[16];
    long first = ::recv(p.server.get(), buffer, sizeof buffer, 0);
    long second = ::recv(p.server.get(), buffer, sizeof buffer, 0);
    EXPECT(first == 7, "the server read " + std::to_string(first) + " bytes of the request");
    EXPECT(second == 0, "after the client's SHUT_WR the server's recv returned " +
                            std::to_string(second) + " (" + harness::last_error_text() + ")");
    must(::send(p.server.get(), "answer", 6, net::send_flags), "send the answer");
    long answer = ::recv(p.client.get(), buffer, sizeof buffer, 0);
    EXPECT(answer == 6, "the half-closed client could not receive: recv returned " +
                            std::to_string(answer) + " (" + harness::last_error_text() + ")");
}

// scope: linux, wine
//
// elsewhere: real Windows: after SD_RECEIVE, data already queued or arriving later resets the
// connection (Microsoft's shutdown() documentation: read, not run)
TEST_CASE("recv-after-shut-rd") {
    harness::Pair p = harness::connected_pair();
    must(::shutdown(p.client.get(), net::shut_rd), "shutdown(SHUT_RD)");
    must(net::set_timeout_option(p.client.get(), SO_RCVTIMEO, 2), "SO_RCVTIMEO");
    char buffer[16];
    auto start = Clock::now();
    long n = ::recv(p.client.get(), buffer, sizeof buffer, 0);
    int err = net::last_error();
    double took = seconds_since(start);
#ifdef _WIN32
    (void)took;
    EXPECT(n == -1 && err == WSAESHUTDOWN, "Windows: recv after SD_RECEIVE returned " +
                                               std::to_string(n) + " (" + describe(err) + ")");
#else
    EXPECT(n == 0, "recv after SHUT_RD returned " + std::to_string(n) + " (" + describe(err) + ")");
    EXPECT(took < 1.0, "recv after SHUT_RD waited " + std::to_string(took) + " s");
#endif
}

// scope: linux; wine skips: a second handle to one socket needs WSADuplicateSocket on Windows; not
// shown
TEST_CASE("shutdown-acts-on-every-descriptor-close-on-one") {
#ifdef _WIN32
    harness::skip("a second handle to one socket needs WSADuplicateSocket on Windows; not shown");
#else
    harness::Pair p = harness::connected_pair();
    int copy = must(::dup(p.client.get()), "dup");
    must(::close(copy), "close(copy)");  // drops one reference: the connection lives
    EXPECT(!harness::wait_readable(p.server.get(), 0.3),
           "closing one of two descriptors ended the connection");
    copy = must(::dup(p.client.get()), "dup");
    must(::shutdown(copy, SHUT_WR), "shutdown(copy, SHUT_WR)");  // acts on the socket itself
    char buffer[16];
    must(net::set_timeout_option(p.server.get(), SO_RCVTIMEO, 5), "SO_RCVTIMEO");
    long n = ::recv(p.server.get(), buffer, sizeof buffer, 0);
    ::close(copy);
    EXPECT(n == 0, "after shutdown on a copy the peer's recv returned " + std::to_string(n));
#endif
}

#ifdef __linux__
namespace {
// One connection's two ends as Linux's table of IPv4 TCP sockets
// (/proc/net/tcp) spells them: "0100007F:D3F2" is 127.0.0.1, port 0xD3F2.
struct Ends {
    std::string local, remote;
};

std::string proc_address(const sockaddr_in& address) {
    char text[16];
    // The kernel prints the address as the 32-bit number it stores, in this
    // machine's byte order, and the port as a plain number.
    std::snprintf(text, sizeof text, "%08X:%04X", static_cast<unsigned>(address.sin_addr.s_addr),
                  static_cast<unsigned>(ntohs(address.sin_port)));
    return text;
}

// Read while the socket is still open.
Ends ends_of(net::socket_t fd) {
    sockaddr_in local{}, remote{};
    socklen_t length = sizeof local;
    must(::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length), "getsockname");
    length = sizeof remote;
    must(::getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &length), "getpeername");
    return {proc_address(local), proc_address(remote)};
}

// The state (hex) of exactly this connection, matched on both ends (the
// whole address/port 4-tuple: another connection may share a local port), or
// "" if the table no longer has it. 06 is TIME_WAIT.
std::string tcp_state(const Ends& ends) {
    std::ifstream table("/proc/net/tcp");
    std::string line;
    std::getline(table, line);  // header
    while (std::getline(table, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, state;
        fields >> slot >> local >> remote >> state;
        if (local == ends.local && remote == ends.remote) return state;
    }
    return "";
}

std::string describe(const Ends& ends) {
    return ends.local + " -> " + ends.remote;
}

std::uint16_t local_port(net::socket_t fd) {
    sockaddr_in local{};
    socklen_t length = sizeof local;
    must(::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length), "getsockname");
    return ntohs(local.sin_port);
}
}  // namespace
#endif

// scope: linux; wine skips: reads /proc/net/tcp, which only Linux has
TEST_CASE("active-closer-ends-in-time-wait") {
#ifndef __linux__
    harness::skip("reads /proc/net/tcp, which only Linux has");
#else
    harness::Pair p = harness::connected_pair();
    Ends client = ends_of(p.client.get());
    p.client.reset();  // the client closes first: its FIN goes first
    char buffer[16];
    must(net::set_timeout_option(p.server.get(), SO_RCVTIMEO, 5), "SO_RCVTIMEO");
    long n = ::recv(p.server.get(), buffer, sizeof buffer, 0);
    EXPECT(n == 0, "the server did not see the client's FIN: recv returned " + std::to_string(n));
    p.server.reset();  // the server's FIN, which the client's side acknowledges
    std::string state;
    for (int i = 0; i < 50 && state != "06"; ++i) {
        state = tcp_state(client);
        if (state != "06") harness::sleep_for(0.02);
    }
    EXPECT(state == "06", "the client's side (" + describe(client) + ") is in state " +
                              (state.empty() ? "(gone)" : state) + ", not 06 (TIME_WAIT)");
#endif
}

// scope: linux; wine skips: Linux's rule, checked against /proc/net/tcp (the lab server uses
// SO_EXCLUSIVEADDRUSE on Windows)
TEST_CASE("reuseaddr-rebinds-port-in-time-wait") {
#ifndef __linux__
    harness::skip(
        "Linux's rule, checked against /proc/net/tcp (the lab server uses "
        "SO_EXCLUSIVEADDRUSE on Windows)");
#else
    auto socket_on = [](std::uint16_t port, bool reuse) {
        net::Socket sock(must(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP), "socket"));
        int one = 1;
        if (reuse)
            must(::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one),
                 "SO_REUSEADDR");
        sockaddr_in at{};
        at.sin_family = AF_INET;
        at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        at.sin_port = htons(port);
        int rc = ::bind(sock.get(), reinterpret_cast<sockaddr*>(&at), sizeof at);
        return std::make_pair(std::move(sock), rc == 0 ? 0 : errno);
    };
    // A first run, as the lab server does it: a listener (with or without
    // SO_REUSEADDR) that closes its connection first, leaving TIME_WAIT on
    // its own port. Returns that port.
    auto run_leaving_time_wait = [&](bool reuse) {
        auto [listener, err] = socket_on(0, reuse);
        EXPECT(err == 0, "bind: " + describe(err));
        must(::listen(listener.get(), 4), "listen");
        std::uint16_t port = local_port(listener.get());
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        to.sin_port = htons(port);
        net::Socket client(must(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP), "socket"));
        must(::connect(client.get(), reinterpret_cast<sockaddr*>(&to), sizeof to), "connect");
        net::Socket served(must(::accept(listener.get(), nullptr, nullptr), "accept"));
        Ends server_side = ends_of(served.get());
        served.reset();  // the server's FIN first: TIME_WAIT on its side
        char buffer[16];
        must(net::set_timeout_option(client.get(), SO_RCVTIMEO, 5), "SO_RCVTIMEO");
        EXPECT(::recv(client.get(), buffer, sizeof buffer, 0) == 0, "the client saw no FIN");
        client.reset();
        listener.reset();
        EXPECT(tcp_state(server_side) == "06", "no TIME_WAIT for " + describe(server_side));
        return port;
    };
    // The old socket set SO_REUSEADDR: a new one may bind with it, not without.
    std::uint16_t port = run_leaving_time_wait(true);
    auto plain = socket_on(port, false);
    EXPECT(plain.second == EADDRINUSE,
           "without SO_REUSEADDR the bind gave " + describe(plain.second));
    auto reusing = socket_on(port, true);
    EXPECT(reusing.second == 0, "with SO_REUSEADDR the bind failed: " + describe(reusing.second));
    // The old socket did not set it: the new one's SO_REUSEADDR is not enough.
    port = run_leaving_time_wait(false);
    auto late = socket_on(port, true);
    EXPECT(late.second == EADDRINUSE,
           "SO_REUSEADDR on the new socket alone rebound the port: " + describe(late.second));
#endif
}

// scope: linux; wine skips: reads /proc/net/tcp, which only Linux has
TEST_CASE("linger-zero-leaves-no-time-wait") {
#ifndef __linux__
    harness::skip("reads /proc/net/tcp, which only Linux has");
#else
    harness::Pair p = harness::connected_pair();
    Ends client = ends_of(p.client.get());
    linger abort_on_close{};
    abort_on_close.l_onoff = 1;
    abort_on_close.l_linger = 0;
    must(::setsockopt(p.client.get(), SOL_SOCKET, SO_LINGER,
                      reinterpret_cast<const char*>(&abort_on_close), sizeof abort_on_close),
         "SO_LINGER");
    p.client.reset();  // the client closes first, but with an RST
    harness::sleep_for(0.1);
    std::string state = tcp_state(client);
    EXPECT(state.empty(),
           "the client's side (" + describe(client) + ") is still in the table, state " + state);
#endif
}

// scope: linux; wine skips: Wine does not reset when data arrives after SD_BOTH
//
// elsewhere: real Windows resets the connection when data arrives after SD_RECEIVE (Microsoft's
// shutdown() documentation: read, not run)
TEST_CASE("data-after-shutdown-both-resets") {
    // The client shuts down both directions; the server reads its FIN, then
    // sends anyway. The client's kernel answers that data with an RST, so
    // the server's next send fails.
#ifdef _WIN32
    harness::skip("Wine does not reset when data arrives after SD_BOTH");
#else
    harness::Pair p = harness::connected_pair();
    must(::shutdown(p.client.get(), net::shut_rdwr), "shutdown(SHUT_RDWR)");
    must(net::set_timeout_option(p.server.get(), SO_RCVTIMEO, 5), "SO_RCVTIMEO");
    char buffer[16];
    long n = ::recv(p.server.get(), buffer, sizeof buffer, 0);
    EXPECT(n == 0, "the server did not see the client's FIN: recv returned " + std::to_string(n));
    must(::send(p.server.get(), "echo", 4, net::send_flags), "send after the FIN");
    harness::sleep_for(0.3);  // the RST comes back
    long again = ::send(p.server.get(), "more", 4, net::send_flags);
    int err = net::last_error();
    EXPECT(again == -1 && (err == EPIPE || err == ECONNRESET),
           "the second send returned " + std::to_string(again) + " (" + describe(err) +
               "): no RST came back");
#endif
}

// scope: linux, wine
TEST_CASE("data-after-close-resets") {
    // The client closes with nothing unread: a FIN, and no socket is left
    // to take bytes. The server reads that FIN and sends anyway; the
    // client's kernel answers with an RST, so a later send of the server's
    // fails. (After SHUT_RDWR the socket still exists, and Linux resets
    // too: claim data-after-shutdown-both-resets.)
    harness::Pair p = harness::connected_pair();
    p.client.reset();
    must(net::set_timeout_option(p.server.get(), SO_RCVTIMEO, 5), "SO_RCVTIMEO");
    char buffer[16];
    long n = ::recv(p.server.get(), buffer, sizeof buffer, 0);
    EXPECT(n == 0, "the server did not see the client's FIN: recv returned " + std::to_string(n));
    must(::send(p.server.get(), "late", 4, net::send_flags), "send after the FIN");
    // The RST comes back at once on loopback; keep sending for up to 5 s.
    long again = 0;
    int err = 0;
    auto start = Clock::now();
    while (again >= 0 && seconds_since(start) < 5) {
        harness::sleep_for(0.05);
        again = ::send(p.server.get(), "more", 4, net::send_flags);
        err = net::last_error();
    }
#ifdef _WIN32
    bool reset = err == WSAECONNRESET || err == WSAECONNABORTED;
#else
    // ECONNRESET, or EPIPE: an RST that reaches a socket in CLOSE_WAIT (it
    // has read the FIN) is reported as EPIPE (tcp_reset(), net/ipv4/tcp_input.c).
    bool reset = err == EPIPE || err == ECONNRESET;
#endif
    EXPECT(again == -1 && reset, "5 s of sends after the client's close, the last returned " +
                                     std::to_string(again) + " (" + describe(err) +
                                     "): no RST came back");
}
