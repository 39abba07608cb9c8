// harness.cpp - test registry, main() and loopback helpers.
#include "harness.h"

#include <cstdio>
#include <cstring>
#include <thread>

namespace harness {

std::vector<Test>& registry() {
    static std::vector<Test> tests;
    return tests;
}

void fail(const char* file, int line, const std::string& message) {
    const char* base = std::strrchr(file, '/');
    throw Failed(std::string(base ? base + 1 : file) + ":" + std::to_string(line) + ": " + message);
}

void skip(const std::string& reason) {
    throw Skipped(reason);
}

std::string describe(int err) {
    return net::error_name(err) + " (" + net::error_text(err) + ")";
}
std::string last_error_text() {
    return describe(net::last_error());
}

std::uint16_t Listener::port() const {
    return ntohs(address.ss_family == AF_INET6
                     ? reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port
                     : reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
}

Listener listen_on_loopback(int family, int backlog) {
    Listener l;
    l.sock = net::Socket(must(::socket(family, SOCK_STREAM, IPPROTO_TCP), "socket"));
    if (family == AF_INET6) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&l.address);
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        l.length = sizeof *in6;
    } else {
        auto* in = reinterpret_cast<sockaddr_in*>(&l.address);
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        l.length = sizeof *in;
    }
    auto* addr = reinterpret_cast<sockaddr*>(&l.address);
    must(::bind(l.sock.get(), addr, l.length), "bind");
    must(::listen(l.sock.get(), backlog), "listen");
    must(::getsockname(l.sock.get(), addr, &l.length), "getsockname");
    return l;
}

Pair connected_pair(int family) {
    Listener l = listen_on_loopback(family);
    Pair p;
    p.client = net::Socket(must(::socket(family, SOCK_STREAM, IPPROTO_TCP), "socket"));
    net::no_sigpipe(p.client.get());
    must(::connect(p.client.get(), l.addr(), l.length), "connect");
    p.server = net::Socket(must(::accept(l.sock.get(), nullptr, nullptr), "accept"));
    net::no_sigpipe(p.server.get());
    return p;
}

std::uint16_t unused_port() {
    Listener l = listen_on_loopback(AF_INET, 1);
    return l.port();  // closed when `l` goes: nothing listens there any more
}

FullListener full_backlog_listener() {
    FullListener full;
    full.listener = listen_on_loopback(AF_INET, 0);
    for (int i = 0; i < 64; ++i) {
        net::Socket filler(must(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP), "socket"));
        must(net::set_nonblocking(filler.get(), true), "set_nonblocking");
        int rc = ::connect(filler.get(), full.listener.addr(), full.listener.length);
        if (rc != 0 && !net::is_in_progress(net::last_error()))
            throw Failed("filling the backlog: connect: " + last_error_text());
        bool answered = rc == 0 || wait_writable(filler.get(), 0.3);
        full.fillers.push_back(std::move(filler));
        if (!answered) return full;  // this SYN was dropped: the queue is full
    }
    throw Failed("could not fill the listen backlog with 64 connections");
}

namespace {
bool wait_for(net::socket_t fd, short events, double seconds) {
    short revents = 0;
    return net::poll_one(fd, events, static_cast<int>(seconds * 1000), &revents) > 0;
}
}  // namespace

bool wait_readable(net::socket_t fd, double seconds) {
    return wait_for(fd, POLLIN, seconds);
}
bool wait_writable(net::socket_t fd, double seconds) {
    return wait_for(fd, POLLOUT, seconds);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void sleep_for(double seconds) {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

RecvOutcome recv_while(net::socket_t fd, const std::function<void()>& action, double limit) {
    must(net::set_timeout_option(fd, SO_RCVTIMEO, limit), "SO_RCVTIMEO");
    RecvOutcome outcome;
    std::thread reader([&] {
        char buffer[16];
        auto start = std::chrono::steady_clock::now();
        outcome.result = ::recv(fd, buffer, sizeof buffer, 0);
        outcome.error = net::last_error();
        outcome.seconds = seconds_since(start);
    });
    sleep_for(0.2);  // let the reader block in recv
    action();
    reader.join();
    return outcome;
}

bool under_wine() {
#ifdef _WIN32
    HMODULE ntdll = ::GetModuleHandleA("ntdll.dll");
    return ntdll && ::GetProcAddress(ntdll, "wine_get_version") != nullptr;
#else
    return false;
#endif
}

}  // namespace harness

int main(int argc, char** argv) {
    net::Startup startup;
    auto& tests = harness::registry();
    if (argc == 2 && std::string(argv[1]) == "--list") {
        for (const auto& t : tests)
            std::printf("%s\n", t.id);
        return 0;
    }
    // For a claim test that watches one call from outside, under strace: this
    // program, making just that call. Exit 0 if the name resolved, 3 if not.
    if (argc == 3 && std::string(argv[1]) == "--getaddrinfo") {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* found = nullptr;
        if (::getaddrinfo(argv[2], "80", &hints, &found) != 0) return 3;
        ::freeaddrinfo(found);
        return 0;
    }
    int failed = 0, passed = 0, skipped = 0;
    for (const auto& t : tests) {
        if (argc >= 2 && std::string(argv[1]) != t.id) continue;
        try {
            t.run();
            std::printf("PASS %s\n", t.id);
            ++passed;
        } catch (const harness::Skipped& s) {
            std::printf("SKIP %s: %s\n", t.id, s.what());
            ++skipped;
        } catch (const std::exception& e) {
            std::printf("FAIL %s: %s\n", t.id, e.what());
            ++failed;
        }
    }
    std::fflush(stdout);
    if (passed + failed + skipped == 0) {
        std::fprintf(stderr, "no test named '%s' (see --list)\n", argc >= 2 ? argv[1] : "");
        return 1;
    }
    if (failed) return 1;
    return skipped && !passed ? 77 : 0;
}
