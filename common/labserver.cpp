// labserver.cpp - the lab server: an event loop over non-blocking sockets.
#include "labserver.h"

#include "chapter.h"  // seconds_text

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <thread>
#include <vector>

#ifdef __linux__
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#endif

namespace lab {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t max_head_size = 16 * 1024;  // a longer request head is refused
constexpr double drip_pause = 0.05;               // seconds between two drip pieces
constexpr std::uint64_t mebibyte = 1024 * 1024;
constexpr std::size_t echo_backlog = 256 * 1024;  // echo: stop reading while this much is unsent
constexpr int accepts_per_wake = 64;              // then serve the others before accepting more

const char* const scenario_names[] = {"hello", "slow",     "drip",    "big",   "silent", "reset",
                                      "close", "echo",     "truncate", "stall", "chunked", "mix"};
constexpr std::size_t most_mix_items = 64;
constexpr int scenario_count = sizeof scenario_names / sizeof scenario_names[0];

double seconds_until(Clock::time_point deadline) {
    return std::chrono::duration<double>(deadline - Clock::now()).count();
}

Clock::time_point after(double seconds) {
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(seconds));
}

// "203.0.113.7:51234" -> "203.0.113.7"; "[::1]:51234" -> "[::1]"
std::string host_of(const std::string& client) {
    return client.substr(0, client.rfind(':'));
}

bool is_token_char(char c) {  // RFC 9110, 5.6.2: the characters of a method or field name
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_visible(char c) {
    return c > 0x20 && c < 0x7f;
}  // no space, control or non-ASCII byte

// Can `line` (or its start, while it is still arriving) be a request line?
// METHOD SP TARGET [SP HTTP/d.d] (RFC 9112, 3), each space a single one, or
// the tutorial's HTTP/0.9 "GET /path" with no version.
bool request_line_so_far(const std::string& line, bool whole, Request& request) {
    std::size_t first_space = line.find(' ');
    std::string method = line.substr(0, first_space);
    for (char c : method)
        if (!is_token_char(c)) return false;
    if (first_space == std::string::npos) return !whole;  // still in the method
    if (method.empty()) return false;
    std::size_t second_space = line.find(' ', first_space + 1);
    std::string target = line.substr(first_space + 1, second_space - first_space - 1);
    for (char c : target)
        if (!is_visible(c)) return false;
    if (second_space == std::string::npos) {
        if (!whole) return true;
        request.http09 = true;  // HTTP/0.9 knew one method, and no headers
        request.target = target;
        return method == "GET" && !target.empty();
    }
    std::string version = line.substr(second_space + 1);
    static const std::string form = "HTTP/1.1";  // its shape: HTTP/ DIGIT . DIGIT
    if (target.empty() || version.size() > form.size() || (whole && version.size() < form.size()))
        return false;
    for (std::size_t i = 0; i < version.size(); ++i) {
        bool digit = std::isdigit(static_cast<unsigned char>(version[i])) != 0;
        if (i == 5 || i == 7 ? !digit : version[i] != form[i]) return false;
    }
    request.http09 = false;
    request.target = target;
    return true;
}

// A header line: NAME ":" value, the name a token with no space before the
// colon (RFC 9112, 5.1), no line folding (5.2), no bare CR (2.2).
bool is_field_line(const std::string& line) {
    std::size_t colon = line.find(':');
    if (colon == 0 || colon == std::string::npos) return false;
    for (std::size_t i = 0; i < colon; ++i)
        if (!is_token_char(line[i])) return false;
    return line.find('\r') == std::string::npos;
}

}  // namespace

HeadStatus parse_head(const std::string& head, Request& request) {
    // A client may send an empty line or two (CRLF, or a bare LF) before the
    // request line (RFC 9112, 2.2); a third, or a bare CR, is not a request.
    std::size_t at = 0;
    for (int empty_lines = 0;; ++empty_lines) {
        std::size_t size = head.compare(at, 1, "\n") == 0     ? 1
                           : head.compare(at, 2, "\r\n") == 0 ? 2
                                                              : 0;
        if (size == 0) break;
        if (empty_lines == 2) return HeadStatus::bad;
        at += size;
    }
    if (at == head.size() || head.compare(at, std::string::npos, "\r") == 0)
        return HeadStatus::incomplete;  // nothing yet, or a CR whose LF may follow
    std::size_t end = head.find('\n', at);
    std::string line = head.substr(at, end == std::string::npos ? std::string::npos : end - at);
    bool whole = end != std::string::npos;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // the CR of CRLF
    if (!request_line_so_far(line, whole, request) || line.find('\r') != std::string::npos)
        return HeadStatus::bad;
    if (!whole) return HeadStatus::incomplete;
    request.line = line;
    if (request.http09) return HeadStatus::complete;
    // Then header lines, up to the first empty line.
    for (at = end + 1;; at = end + 1) {
        end = head.find('\n', at);
        if (end == std::string::npos) return HeadStatus::incomplete;
        line = head.substr(at, end - at);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) return HeadStatus::complete;
        if (!is_field_line(line)) return HeadStatus::bad;
    }
}

namespace {

std::string response_head(std::uint64_t content_length, const char* status = "200 OK") {
    return std::string("HTTP/1.1 ") + status +
           "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(content_length) +
           "\r\nConnection: close\r\n\r\n";
}

std::string hello_body(const Request& request) {
    return "Hello from the lab server.\nYou asked for " + request.target + "\n";
}

std::string hello_response(const Request& request) {
    std::string body = hello_body(request);
    return request.http09 ? body : response_head(body.size()) + body;
}

// The hello body with Transfer-Encoding: chunked, in chunks of 1, 2, 4, 8...
// bytes (sizes in hex: "10" is 16), an extension on the first chunk, and a
// trailer field after the last chunk, of size 0. With a `cut`, the answer
// stops after that many body bytes, before the last chunk.
std::string chunked_response(const std::string& body, std::uint64_t cut) {
    std::string answer =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n";
    std::size_t at = 0;
    for (std::size_t size = 1; at < body.size(); size *= 2) {
        std::size_t chunk = std::min(size, body.size() - at);
        char line[32];
        std::snprintf(line, sizeof line, "%zX%s\r\n", chunk, at == 0 ? ";lab=first" : "");
        answer += line;
        if (at + chunk > cut) return answer + body.substr(at, cut - at);
        answer += body.substr(at, chunk) + "\r\n";
        at += chunk;
    }
    if (cut != Scenario::no_cut) return answer;
    return answer + "0\r\nLab-Trailer: the end\r\n\r\n";
}

// One MiB of the big body; a multiple of its 4096-byte period, so any offset
// into the body is the same offset modulo this block.
const std::string& big_block() {
    static const std::string block = [] {
        std::string bytes(mebibyte, '\0');
        for (std::uint64_t i = 0; i < bytes.size(); ++i)
            bytes[i] = big_body_byte(i);
        return bytes;
    }();
    return block;
}

#ifdef __linux__
// The same block as a file in memory, for sendfile(): the kernel hands the
// file's pages to the socket where send() copies our bytes into it. For one
// client alone the copy is faster (3.8 against 2.5 GiB/s here), but with
// 1,000 downloads at once the copies took the CPU time the clients needed
// (docs/benchmarks.md): so send() while a client is alone, sendfile() when
// others are connected. nginx's `sendfile on` hands pages over too. -1 if
// memfd_create is not available.
int big_file() {
    static const int fd = [] {
        int file = ::memfd_create("labserver-big", MFD_CLOEXEC);
        const std::string& block = big_block();
        if (file >= 0 && ::write(file, block.data(), block.size()) ==
                             static_cast<ssize_t>(block.size()))
            return file;
        if (file >= 0) ::close(file);
        return -1;
    }();
    return fd;
}
#endif

bool is_reset(int err) {
#ifdef _WIN32
    return err == WSAECONNRESET || err == WSAECONNABORTED;
#else
    return err == ECONNRESET || err == EPIPE;
#endif
}

}  // namespace

const char* const scenario_help =
    "  hello          a small HTTP/1.1 response, then close\n"
    "  slow[:SECS]    wait SECS (default 2) before the hello response\n"
    "  drip[:BYTES]   send the hello response BYTES (default 8) at a time, 50 ms apart\n"
    "  big[:MIB]      a response of MIB MiB (default 64) of a checkable pattern, at full speed\n"
    "  silent         read the request and never answer (the connection is held\n"
    "                 open 60 s; labserver --silent-hold changes it)\n"
    "  reset          read the request and abort the connection (RST)\n"
    "  close          read the request and close without answering\n"
    "  echo           echo every byte until the client half-closes, then close\n"
    "  truncate[:BYTES]  promise a 1 MiB body (Content-Length), send BYTES of it\n"
    "                 (default 1000), close\n"
    "  stall[:BYTES]  promise a 1 MiB body, send BYTES of it (default 200000), then\n"
    "                 go silent with the connection open (held as silent holds it)\n"
    "  chunked[:BYTES]   the hello body in chunks (Transfer-Encoding: chunked);\n"
    "                 with BYTES, close after BYTES of the body, before the last chunk\n"
    "  mix[:LIST]     a different scenario per connection: connection k gets item k of\n"
    "                 LIST (comma-separated, repeated), e.g. mix:hello,slow:1,silent,reset;\n"
    "                 default slow:1,hello,silent,hello,reset,hello,slow:2,hello\n";

const char* const default_mix = "slow:1,hello,silent,hello,reset,hello,slow:2,hello";

bool parse_decimal(const std::string& text, double& value) {
    if (text.empty() || text == "." || text.size() > 30 ||
        text.find_first_not_of("0123456789.") != std::string::npos ||
        text.find('.') != text.rfind('.'))
        return false;
    value = std::strtod(text.c_str(), nullptr);
    return true;
}

bool is_address(const std::string& text) {
    in6_addr address{};  // room for either
    return ::inet_pton(AF_INET, text.c_str(), &address) == 1 ||
           ::inet_pton(AF_INET6, text.c_str(), &address) == 1;
}

namespace {

// mix's LIST: scenarios separated by commas, each as --scenario takes it
// (not mix itself), at most most_mix_items of them.
bool parse_mix(const std::string& list, Scenario& scenario, std::string& error) {
    std::size_t at = 0;
    for (;;) {
        std::size_t comma = list.find(',', at);
        std::string item =
            list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        Scenario one;
        if (item.empty()) {
            error = "scenario mix: '" + text::printable(list) + "' has an empty item";
            return false;
        }
        if (item.compare(0, 3, "mix") == 0 && (item.size() == 3 || item[3] == ':')) {
            error = "scenario mix: a mix cannot contain a mix";
            return false;
        }
        if (!parse_scenario(item, one, error)) {
            error = "scenario mix: " + error;
            return false;
        }
        scenario.items.push_back(one);
        if (scenario.items.size() > most_mix_items) {
            error = "scenario mix: more than " + std::to_string(most_mix_items) + " items";
            return false;
        }
        if (comma == std::string::npos) return true;
        at = comma + 1;
    }
}

// How a mix item is written: "slow:1", "reset".
std::string scenario_name(const Scenario& scenario) {
    std::string name = scenario_names[scenario.kind];
    switch (scenario.kind) {
        case Scenario::slow: {
            // As it was written: "0.25", "9919999" (not %g's "9.92e+06").
            char seconds[48];
            std::snprintf(seconds, sizeof seconds, "%.6f", scenario.seconds);
            std::string text = seconds;
            text.erase(text.find_last_not_of('0') + 1);
            if (text.back() == '.') text.pop_back();
            return name + ":" + text;
        }
        case Scenario::drip:
            return name + ":" + std::to_string(scenario.count);
        case Scenario::big:
            return name + ":" + std::to_string(scenario.mebibytes);
        case Scenario::truncate:
        case Scenario::stall:
        case Scenario::chunked:
            return scenario.cut == Scenario::no_cut ? name
                                                    : name + ":" + std::to_string(scenario.cut);
        default:
            return name;
    }
}

}  // namespace

bool parse_scenario(const std::string& text, Scenario& scenario, std::string& error) {
    std::size_t colon = text.find(':');
    std::string name = text.substr(0, colon);
    bool has_argument = colon != std::string::npos;
    std::string argument = has_argument ? text.substr(colon + 1) : "";

    int kind = -1;
    for (int i = 0; i < scenario_count; ++i)
        if (name == scenario_names[i]) kind = i;
    if (kind < 0) {
        error = "unknown scenario '" + text::printable(name) + "' (see --help)";
        return false;
    }
    scenario = Scenario{};
    scenario.kind = static_cast<Scenario::Kind>(kind);
    if (scenario.kind == Scenario::mix)
        return parse_mix(has_argument ? argument : default_mix, scenario, error);

    double value = 0;
    bool takes_argument = kind == Scenario::slow || kind == Scenario::drip ||
                          kind == Scenario::big || kind == Scenario::truncate ||
                          kind == Scenario::stall || kind == Scenario::chunked;
    if (scenario.kind == Scenario::truncate) scenario.cut = 1000;
    if (scenario.kind == Scenario::stall) scenario.cut = 200000;
    if (!has_argument) return true;
    if (!takes_argument) {
        error = "scenario '" + name + "' takes no argument";
        return false;
    }
    if (!parse_decimal(argument, value) || value >= 1e9) {
        error = "scenario " + name + ": '" + text::printable(argument) +
                "' is not a number (digits, with at most one decimal point)";
        return false;
    }
    bool whole = value == static_cast<double>(static_cast<std::uint64_t>(value));
    switch (scenario.kind) {
        case Scenario::slow:
            scenario.seconds = value;
            return true;
        case Scenario::drip:
            if (!whole || value < 1) break;
            scenario.count = static_cast<std::uint64_t>(value);
            return true;
        case Scenario::big:
            if (!whole || value > 1024 * 1024) break;
            scenario.mebibytes = static_cast<std::uint64_t>(value);
            return true;
        case Scenario::truncate:
        case Scenario::stall:
            if (!whole || value >= static_cast<double>(truncate_promise)) break;
            scenario.cut = static_cast<std::uint64_t>(value);
            return true;
        case Scenario::chunked:
            if (!whole || value > 1024 * 1024) break;
            scenario.cut = static_cast<std::uint64_t>(value);
            return true;
        default:
            break;
    }
    error = "scenario " + name + ": '" + argument + "' must be a whole number" +
            (scenario.kind == Scenario::drip       ? " of at least 1"
             : scenario.kind == Scenario::truncate || scenario.kind == Scenario::stall
                 ? " below 1048576"
                                                   : " up to 1048576");
    return false;
}

char big_body_byte(std::uint64_t offset) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::uint64_t column = offset % 64, line = (offset / 64) % 64;
    return column == 63 ? '\n' : alphabet[(line + column) % 64];
}

// One client, as the event loop sees it. Each phase says what we wait for,
// and `deadline` when we stop waiting.
struct Server::Connection {
    enum Phase {
        head,   // reading the request head (until header_timeout)
        pause,  // slow, drip: waiting before sending more (until the scenario's time)
        send,   // sending the answer (while the client takes bytes within send_timeout)
        drain,  // answered and sent our FIN: waiting for the client's (drain_timeout)
        echo,   // echo: reading and sending back (until silent for header_timeout)
        hold,   // silent: holding the connection unanswered (silent_hold)
    };
    net::socket_t fd = net::invalid_socket;
    std::string client;  // "127.0.0.1:51234"
    const Scenario* scenario = nullptr;  // the server's, or for mix, this connection's item
    Phase phase = head;
    Clock::time_point deadline;
    std::string head_text;  // head: the request head so far
    Request request;
    std::string out;              // the answer, or echo's bytes not sent yet
    std::size_t sent = 0;         // bytes of `out` sent
    std::size_t release = 0;      // we may send `out` up to here (drip: piece by piece)
    std::uint64_t big_left = 0;   // big: body bytes still to send after `out`
    std::uint64_t big_at = 0;     // big: offset into the body
    std::uint64_t taken = 0;      // drain, hold, echo: bytes read
    bool reading = true;          // hold, echo: still reading (no FIN, not too much)
    bool done = false;            // close it
    short watched = 0;            // what the loop's Waiter waits for on it
};

Server::Server(Scenario scenario, EventSink on_event, Limits limits, unsigned loops)
    : scenario_(scenario), on_event_(std::move(on_event)), limits_(limits),
      loop_count_(std::max(1u, loops)) {}

Server::~Server() {
    stop();
}

bool Server::start(const std::string& address, std::uint16_t port, std::string& error,
                   std::uint64_t count) {
    // Only an address written out (is_address()).
    sockaddr_storage bound{};
    socklen_t bound_size = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&bound);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&bound);
    if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        bound_size = sizeof *v4;
    } else if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        bound_size = sizeof *v6;
    } else {
        error = "bind address '" + text::printable(address) +
                "' is not an IPv4 or IPv6 address (for every interface: 0.0.0.0 or ::)";
        return false;
    }

    net::Socket listener(::socket(bound.ss_family, SOCK_STREAM, IPPROTO_TCP));
    if (!listener.valid()) {
        error = "socket: " + net::error_text(net::last_error());
        return false;
    }
    int one = 1;
#ifdef _WIN32
    // Microsoft documents that Winsock's SO_REUSEADDR lets another socket bind
    // the same port while we listen; SO_EXCLUSIVEADDRUSE forbids that.
    ::setsockopt(listener.get(), SOL_SOCKET, SO_EXCLUSIVEADDRUSE,
                 reinterpret_cast<const char*>(&one), sizeof one);
#else
    // Restart on the same port at once, while connections of the previous run
    // still sit in TIME_WAIT on it: Linux allows it when that run set
    // SO_REUSEADDR too, as every run does [claim:reuseaddr-rebinds-port-in-time-wait].
    ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const char*>(&one),
                 sizeof one);
#endif
    sockaddr* where = reinterpret_cast<sockaddr*>(&bound);
    if (::bind(listener.get(), where, bound_size) != 0 ||
        ::listen(listener.get(), SOMAXCONN) != 0 ||
        ::getsockname(listener.get(), where, &bound_size) != 0 ||
        net::set_nonblocking_untraced(listener.get()) != 0) {
        int err = net::last_error();
        error =
            "listen on " + address + " port " + std::to_string(port) + ": " + net::error_text(err);
        return false;
    }
    address_ = text::address_text(where);
    port_ = ntohs(bound.ss_family == AF_INET6 ? v6->sin6_port : v4->sin_port);

    // A loop sleeps in poll until a socket is ready or a deadline comes; to
    // wake it at once (stop()), we send a datagram to a UDP socket it polls.
    for (unsigned i = 0; i < loop_count_; ++i) {
        sockaddr_in self{};
        self.sin_family = AF_INET;
        self.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        net::Socket waker(::socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP));
        if (!waker.valid() || ::bind(waker.get(), reinterpret_cast<sockaddr*>(&self), sizeof self) ||
            net::set_nonblocking_untraced(waker.get()) != 0) {
            error = "wake-up socket: " + net::error_text(net::last_error());
            for (net::socket_t w : wakers_) net::close_socket(w);
            wakers_.clear();
            return false;
        }
        wakers_.push_back(waker.release());
    }
    count_ = count;
    listener_ = listener.release();
    listening_ = true;
    for (net::socket_t waker : wakers_) loops_.emplace_back(&Server::run_loop, this, waker);
    return true;
}

// What poll should watch a connection for, in its phase.
short wanted_events(const Server::Connection& c) {
    switch (c.phase) {
        case Server::Connection::head:
        case Server::Connection::drain:
            return POLLIN;
        case Server::Connection::send:
            return POLLOUT;
        case Server::Connection::echo:
            return static_cast<short>((c.reading && c.out.size() < echo_backlog ? POLLIN : 0) |
                                      (c.sent < c.out.size() ? POLLOUT : 0));
        case Server::Connection::hold:
            return c.reading ? POLLIN : 0;
        default:
            return 0;  // pause: only the deadline
    }
}

// The waiting call. poll() (WSAPoll() on Windows) is handed the whole list of
// sockets on every call, and the kernel checks each one; Linux's epoll keeps
// the list between calls and hands back only the ready sockets. With 1,000
// connections open, poll's check of every socket on every wake-up was a third
// of the server's CPU time (docs/benchmarks.md), so on Linux we wait with
// epoll. Either way, the loop says each time what it waits for (watch()),
// then waits (wait()).
class Waiter {
public:
    struct Ready {
        Server::Connection* connection;  // nullptr: the listener or the wake-up socket
        net::socket_t fd;
        short revents;
    };

#ifdef __linux__
    Waiter() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {}
    ~Waiter() { ::close(epoll_); }
    bool ok() const { return epoll_ >= 0; }

    // What to wait for on `fd` (0: nothing), told to the kernel only when it
    // changes. `watched` remembers what the kernel has.
    void watch(net::socket_t fd, short events, Server::Connection* c, short& watched) {
        if (events == watched) return;
        epoll_event e{};
        e.events = (events & POLLIN ? EPOLLIN : 0u) | (events & POLLOUT ? EPOLLOUT : 0u);
        // What epoll hands back: the connection, or for the listener and the
        // wake-up socket their descriptor, made odd (2 fd + 1) so that it can
        // never be mistaken for a connection's (even, aligned) address.
        e.data.ptr = c ? static_cast<void*>(c) : reinterpret_cast<void*>(static_cast<intptr_t>(fd) * 2 + 1);
        int op = watched == 0 ? EPOLL_CTL_ADD : events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
        ::epoll_ctl(epoll_, op, fd, &e);
        watched = events;
    }

    int wait(int timeout_ms, std::vector<Ready>& ready) {
        epoll_event events[256];
        int n = ::epoll_wait(epoll_, events, 256, timeout_ms);
        ready.clear();
        for (int i = 0; i < n; ++i) {
            auto tag = reinterpret_cast<intptr_t>(events[i].data.ptr);
            bool socket_only = tag & 1;  // the listener or the wake-up socket
            short revents = static_cast<short>((events[i].events & EPOLLIN ? POLLIN : 0) |
                                               (events[i].events & EPOLLOUT ? POLLOUT : 0) |
                                               (events[i].events & EPOLLERR ? POLLERR : 0) |
                                               (events[i].events & EPOLLHUP ? POLLHUP : 0));
            ready.push_back({socket_only ? nullptr : static_cast<Server::Connection*>(events[i].data.ptr),
                             socket_only ? static_cast<net::socket_t>(tag / 2) : net::invalid_socket,
                             revents});
        }
        return n;
    }

private:
    int epoll_;
#else
    bool ok() const { return true; }

    void watch(net::socket_t fd, short events, Server::Connection* c, short& watched) {
        watched = events;
        if (events == 0) return;
        fds_.push_back({fd, events, 0});
        owners_.push_back(c);
    }

    int wait(int timeout_ms, std::vector<Ready>& ready) {
        int n = net::poll_many(fds_.data(), fds_.size(), timeout_ms);
        ready.clear();
        for (std::size_t i = 0; n > 0 && i < fds_.size(); ++i)
            if (fds_[i].revents) ready.push_back({owners_[i], fds_[i].fd, fds_[i].revents});
        fds_.clear();
        owners_.clear();
        return n;
    }

private:
    std::vector<net::pollfd_t> fds_;
    std::vector<Server::Connection*> owners_;
#endif
};

// The event loop: wait for any socket or the nearest deadline, then do what
// each ready connection allows, without ever blocking.
void Server::run_loop(net::socket_t waker) {
    std::vector<std::unique_ptr<Connection>> connections;
    Waiter waiter;
    if (!waiter.ok()) {
        event("errors", "", "epoll_create1 failed: " + net::error_text(net::last_error()));
        return;
    }
    std::vector<Waiter::Ready> ready;
    short waker_watched = 0, listener_watched = 0;
    Clock::time_point accept_again{};  // after an accept failure: a pause
    for (;;) {
        bool accepting = listening_ && !stopping_;
        if (stopping_ || (!accepting && connections.empty())) break;
        // What each socket waits for: the wake-up socket, the listener, and
        // each connection as its phase says; a connection that waits only for
        // a deadline (pause, or holding after the client's FIN) is left out.
        waiter.watch(waker, POLLIN, nullptr, waker_watched);
        bool polling_listener = accepting && Clock::now() >= accept_again;
        waiter.watch(listener_, polling_listener ? POLLIN : 0, nullptr, listener_watched);
        Clock::time_point next = polling_listener ? Clock::time_point::max() : accept_again;
        for (auto& c : connections) {
            next = std::min(next, c->deadline);
            waiter.watch(c->fd, wanted_events(*c), c.get(), c->watched);
        }
        int timeout = -1;  // no deadline: sleep until a socket is ready
        if (next != Clock::time_point::max())
            timeout = static_cast<int>(std::clamp(seconds_until(next) * 1000 + 1, 0.0, 1e9));
        if (waiter.wait(timeout, ready) < 0) {
            int err = net::last_error();
            if (!net::is_interrupted(err))
                event("errors", "", "poll failed: " + net::error_text(err));
            continue;
        }
        bool listener_ready = false;
        for (const Waiter::Ready& r : ready) {
            if (r.connection) {
                on_ready(*r.connection, r.revents);
            } else if (r.fd == waker) {  // woken: read the datagrams, then look at stopping_
                char byte[16];
                while (::recv(waker, byte, sizeof byte, 0) > 0) {
                }
            } else {
                listener_ready = true;
            }
        }
        Clock::time_point now = Clock::now();
        for (auto& c : connections)
            if (!c->done && now >= c->deadline) on_deadline(*c);
        // Close what is done: move the last connection into its place.
        for (std::size_t i = 0; i < connections.size();) {
            if (!connections[i]->done) {
                ++i;
                continue;
            }
            end_connection(*connections[i]);  // (closing it also takes it out of epoll)
            connections[i] = std::move(connections.back());
            connections.pop_back();
        }
        if (listener_ready && !accept_new(connections))
            accept_again = now + std::chrono::milliseconds(50);  // e.g. out of descriptors
    }
    for (auto& c : connections) end_connection(*c);  // stop(): close the rest quietly
}

// Accept the connections waiting in the queue (a few at a time, so that the
// others are served meanwhile). False if accept failed for want of
// something (descriptors, memory): then the loop retries 50 ms later, as
// connections end, instead of spinning on a listener that stays ready.
bool Server::accept_new(std::vector<std::unique_ptr<Connection>>& connections) {
    for (int i = 0; i < accepts_per_wake && listening_; ++i) {
        sockaddr_storage peer{};
        socklen_t peer_length = sizeof peer;
#ifdef __linux__
        // accept4 makes it non-blocking at once, saving a call per connection.
        net::socket_t fd = ::accept4(listener_, reinterpret_cast<sockaddr*>(&peer), &peer_length,
                                     SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
        net::socket_t fd = ::accept(listener_, reinterpret_cast<sockaddr*>(&peer), &peer_length);
#endif
        if (fd == net::invalid_socket) {
            int err = net::last_error();
            if (net::is_would_block(err)) return true;  // none left (or another loop took it)
            if (net::is_interrupted(err)) continue;
            event("errors", "", "accept failed: " + net::error_text(err));
            return false;
        }
        std::uint64_t number = ++accepted_;
        if (count_ != 0 && number >= count_) stop_accepting();  // --count reached
        if (count_ != 0 && number > count_) {  // another loop took the last one
            net::close_socket(fd);
            return true;
        }
        std::string client = text::address_text(reinterpret_cast<sockaddr*>(&peer));
#ifndef __linux__
        net::set_nonblocking_untraced(fd);  // no call of ours may hold the loop, not even a 503
#endif
        if (!admit(fd, client)) continue;
        net::no_sigpipe(fd);
        auto c = std::make_unique<Connection>();
        c->fd = fd;
        c->client = std::move(client);
        c->scenario = &scenario_;
        if (scenario_.kind == Scenario::mix) {
            c->scenario = &scenario_.items[(number - 1) % scenario_.items.size()];
            event("scenario", c->client,
                  "scenario mix: connection " + std::to_string(number) + " gets " +
                      scenario_name(*c->scenario));
        }
        if (c->scenario->kind == Scenario::echo) c->phase = Connection::echo;
        c->deadline = after(limits_.header_timeout);
        // The request usually arrives with the connection: read it now, and
        // wait (for it, or for room to send) only if it has not.
        on_ready(*c, POLLIN);
        connections.push_back(std::move(c));
    }
    return true;
}

// Count the connection in, or refuse it when the server or this client's
// address already has as many open as allowed. True if admitted.
bool Server::admit(net::socket_t fd, const std::string& client) {
    ++counters_.connections;
    std::string why;
    std::uint64_t open = ++open_;
    if (open > limits_.max_connections) {
        why = std::to_string(open - 1) + " connections open (--max-connections " +
              std::to_string(limits_.max_connections) + ")";
    } else if (counts_per_client()) {
        std::string host = host_of(client);
        std::lock_guard<std::mutex> lock(clients_mutex_);
        std::uint64_t& mine = per_client_[host];
        if (mine >= limits_.per_client)
            why = std::to_string(mine) + " connections from " + host + " open (--per-client " +
                  std::to_string(limits_.per_client) + ")";
        if (why.empty())
            ++mine;
        else if (mine == 0)
            per_client_.erase(host);
    }
    if (why.empty()) return true;
    --open_;
    refuse(fd, client, why);
    return false;
}

// Over a limit: a short 503, our FIN, and close, all without waiting (the
// socket is non-blocking; what does not fit is not sent).
void Server::refuse(net::socket_t fd, const std::string& client, const std::string& why) {
    ++counters_.refused;
    event("refusals", client, "refused: " + why);
    std::string body = "The lab server is busy: " + why + ". Try again later.\n";
    std::string answer = response_head(body.size(), "503 Service Unavailable") + body;
    ::send(fd, answer.data(), static_cast<int>(answer.size()), net::send_flags);
    ::shutdown(fd, net::shut_wr);
    net::close_socket(fd);
    ++counters_.finished;
}

void Server::end_connection(Connection& c) {
    if (counts_per_client()) {
        std::lock_guard<std::mutex> lock(clients_mutex_);
        auto mine = per_client_.find(host_of(c.client));
        if (mine != per_client_.end() && --mine->second == 0) per_client_.erase(mine);
    }
    net::close_socket(c.fd);
    --open_;
    ++counters_.finished;
}

// recv, counting what arrives and noting how the client ended. Returns what
// recv returned, with its error in net::last_error().
long Server::receive(Connection& c, char* buffer, std::size_t size) {
    for (;;) {
        long n = ::recv(c.fd, buffer, static_cast<int>(size), 0);
        int err = net::last_error();
        if (n < 0 && net::is_interrupted(err)) continue;
        if (n > 0) counters_.bytes_read += static_cast<std::uint64_t>(n);
        if (n == 0) {
            ++counters_.eofs_seen;
            event("client FINs", c.client, "recv returned 0: the client's FIN arrived");
        }
        if (n < 0 && is_reset(err)) ++counters_.resets_seen;
        if (n < 0 && !net::is_would_block(err))
            event(is_reset(err) ? "resets" : "errors", c.client,
                  "recv failed: " + net::error_name(err) + " (" + net::error_text(err) + ")" +
                      (is_reset(err) ? ": the client reset the connection" : ""));
        net::set_last_error(err);
        return n;
    }
}

// The socket is ready for what the phase waits for (or has an error).
void Server::on_ready(Connection& c, short revents) {
    char buffer[16 * 1024];
    switch (c.phase) {
        case Connection::head: {
            long n = receive(c, buffer, sizeof buffer);
            if (n <= 0) {
                c.done = n == 0 || !net::is_would_block(net::last_error());  // left early
                return;
            }
            c.head_text.append(buffer, static_cast<std::size_t>(n));
            HeadStatus head = parse_head(c.head_text, c.request);
            if (head == HeadStatus::complete) return on_request(c);
            if (head == HeadStatus::bad) {
                event("refusals", c.client,
                      "not an HTTP request: \"" + text::printable(c.head_text, 60) + "\", 400");
                return refuse_request(c, "400 Bad Request", "not an HTTP request\n");
            }
            if (c.head_text.size() >= max_head_size) {
                event("refusals", c.client,
                      "request head over " + std::to_string(max_head_size) + " bytes, refused");
                return refuse_request(c, "431 Request Header Fields Too Large",
                                      "request head too large\n");
            }
            return;
        }
        case Connection::send:
            return send_some(c);
        case Connection::echo:
            if (revents & (POLLIN | POLLERR | POLLHUP)) {
                long n = c.reading ? receive(c, buffer, sizeof buffer) : 0;
                if (n > 0) {
                    c.out.append(buffer, static_cast<std::size_t>(n));
                    c.taken += static_cast<std::uint64_t>(n);
                    c.deadline = after(limits_.header_timeout);
                } else if (n == 0) {
                    c.reading = false;
                } else if (!net::is_would_block(net::last_error())) {
                    c.done = true;
                    return;
                }
            }
            c.release = c.out.size();
            send_some(c);
            if (c.done || c.sent < c.out.size()) return;
            c.out.clear();
            c.sent = c.release = 0;
            if (!c.reading) {
                event("echoes", c.client, "echoed " + std::to_string(c.taken) + " bytes, closing");
                c.done = true;
            }
            return;
        case Connection::drain:
        case Connection::hold:
        case Connection::pause: {
            long n = receive(c, buffer, sizeof buffer);
            if (n < 0) {
                c.done = !net::is_would_block(net::last_error());
            } else if (n == 0) {
                c.done = c.phase == Connection::drain;  // the client's FIN: all is well
                c.reading = false;
            } else if ((c.taken += static_cast<std::uint64_t>(n)) > limits_.drain_bytes) {
                if (c.phase == Connection::drain) {
                    ++counters_.flooded;
                    event("floods", c.client,
                          "still sending after the answer: closing after " +
                              std::to_string(c.taken) + " more bytes (an RST)");
                    c.done = true;
                }
                c.reading = false;  // hold: stop reading, keep holding
            }
            return;
        }
    }
}

// The phase's deadline has come.
void Server::on_deadline(Connection& c) {
    std::string why;
    switch (c.phase) {
        case Connection::head: {
            ++counters_.timed_out;
            event("timeouts", c.client,
                  "no complete request head within " + chapter::seconds_text(limits_.header_timeout) +
                      " (" + std::to_string(c.head_text.size()) + " bytes came): 408, closing");
            std::string body = "no complete request in time\n";
            std::string answer = response_head(body.size(), "408 Request Timeout") + body;
            ::send(c.fd, answer.data(), static_cast<int>(answer.size()), net::send_flags);
            ::shutdown(c.fd, net::shut_wr);
            c.done = true;
            return;
        }
        case Connection::pause:  // slow's wait is over, or drip's next piece is due
            c.release = std::min(c.out.size(), c.scenario->kind == Scenario::drip
                                                   ? c.release + c.scenario->count
                                                   : c.out.size());
            c.phase = Connection::send;
            c.deadline = after(limits_.send_timeout);
            return send_some(c);
        case Connection::send:
            why = "took none of our bytes for " + chapter::seconds_text(limits_.send_timeout) + ", dropped";
            break;
        case Connection::drain:
            why = "no FIN within " + chapter::seconds_text(limits_.drain_timeout) + " of the answer, closing";
            break;
        case Connection::echo:
            why = "nothing for " + chapter::seconds_text(limits_.header_timeout) + ", closing";
            break;
        case Connection::hold:
            why = "scenario " + std::string(scenario_names[c.scenario->kind]) + ": held " +
                  chapter::seconds_text(limits_.silent_hold) +
                  " unanswered, closing";
            break;
    }
    ++counters_.timed_out;
    event("timeouts", c.client, why);
    c.done = true;
}

// A request we will not serve: a short answer, then close.
void Server::refuse_request(Connection& c, const char* status, const std::string& body) {
    c.out = response_head(body.size(), status) + body;
    c.release = c.out.size();
    c.phase = Connection::send;
    c.deadline = after(limits_.send_timeout);
    send_some(c);
}

// The request head is complete: start the scenario's answer.
void Server::on_request(Connection& c) {
    const Request& request = c.request;
    event("requests", c.client,
          "request \"" + text::printable(request.line, 200) + "\"" +
              (request.http09 ? " (HTTP/0.9)" : ""));
    c.out = hello_response(request);
    c.phase = Connection::send;
    const Scenario& scenario = *c.scenario;
    switch (scenario.kind) {
        case Scenario::silent:
            event("scenario", c.client,
                  "scenario silent: not answering; closing in " + chapter::seconds_text(limits_.silent_hold));
            c.phase = Connection::hold;
            c.deadline = after(limits_.silent_hold);
            return;
        case Scenario::reset: {
            event("scenario", c.client,
                  "scenario reset: close with SO_LINGER {on, 0} sends an RST");
            linger abort_on_close{};
            abort_on_close.l_onoff = 1;
            abort_on_close.l_linger = 0;
            ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER,
                         reinterpret_cast<const char*>(&abort_on_close), sizeof abort_on_close);
            c.done = true;  // end_connection() closes it
            return;
        }
        case Scenario::close:
            event("scenario", c.client, "scenario close: closing without an answer");
            return finish(c);
        case Scenario::slow:
            c.phase = Connection::pause;
            c.deadline = after(scenario.seconds);
            return;
        case Scenario::drip:
            c.release = std::min<std::size_t>(c.out.size(), scenario.count);
            break;
        case Scenario::truncate:
        case Scenario::stall:
            // A promise it does not keep: the client must notice, whether
            // the server closes (truncate) or just stops sending (stall).
            c.out = request.http09 ? "" : response_head(truncate_promise);
            c.out += big_block().substr(0, static_cast<std::size_t>(scenario.cut));
            event("scenario", c.client,
                  "scenario " + std::string(scenario_names[scenario.kind]) + ": " +
                      std::to_string(scenario.cut) + " of " + std::to_string(truncate_promise) +
                      (scenario.kind == Scenario::stall ? " body bytes, then silence"
                                                        : " body bytes, then close"));
            break;
        case Scenario::chunked:
            c.out = request.http09 ? hello_body(request)
                                   : chunked_response(hello_body(request), scenario.cut);
            break;
        case Scenario::big:
            c.out = request.http09 ? "" : response_head(scenario.mebibytes * mebibyte);
            c.big_left = scenario.mebibytes * mebibyte;
            break;
        default:
            break;
    }
    if (scenario.kind != Scenario::drip) c.release = c.out.size();
    c.deadline = after(limits_.send_timeout);
    send_some(c);
}

// Send what the socket takes now, without waiting: `out` up to `release`,
// then the big body. Each send that moves bytes restarts the send timeout.
void Server::send_some(Connection& c) {
    for (;;) {
        const char* data;
        std::size_t size;
        bool from_out = c.sent < c.release;
        if (from_out) {
            data = c.out.data() + c.sent;
            size = c.release - c.sent;
        } else if (c.big_left > 0 && c.release == c.out.size()) {
            std::size_t at = static_cast<std::size_t>(c.big_at % mebibyte);
            data = big_block().data() + at;
            size = static_cast<std::size_t>(std::min<std::uint64_t>(c.big_left, mebibyte - at));
        } else {
            if (c.phase == Connection::send) sent_all(c);
            return;
        }
        long n;
#ifdef __linux__
        if (!from_out && open_ > 1 && big_file() >= 0) {  // other clients too: no copy
            off_t at = static_cast<off_t>(c.big_at % mebibyte);
            n = ::sendfile(c.fd, big_file(), &at, size);
        } else
#endif
            n = ::send(c.fd, data, static_cast<int>(size), net::send_flags);
        if (n < 0) {
            int err = net::last_error();
            if (net::is_interrupted(err)) continue;
            if (net::is_would_block(err)) return;  // the buffer is full: poll says when
            if (is_reset(err)) ++counters_.resets_seen;
            event(is_reset(err) ? "resets" : "errors", c.client,
                  "send failed: " + net::error_name(err) + " (" + net::error_text(err) + ")");
            c.done = true;
            return;
        }
        if (from_out) {
            c.sent += static_cast<std::size_t>(n);
        } else {
            c.big_at += static_cast<std::uint64_t>(n);
            c.big_left -= static_cast<std::uint64_t>(n);
        }
        if (c.phase == Connection::send) c.deadline = after(limits_.send_timeout);
    }
}

// Everything released so far is sent.
void Server::sent_all(Connection& c) {
    if (c.release < c.out.size()) {  // drip: the next piece after a pause
        c.phase = Connection::pause;
        c.deadline = after(drip_pause);
        return;
    }
    if (c.big_at > 0 && c.big_left == 0)
        event("scenario", c.client, "sent " + std::to_string(c.scenario->mebibytes) + " MiB");
    if (c.scenario->kind == Scenario::stall) {  // silent from here on, the connection open
        c.phase = Connection::hold;
        c.deadline = after(limits_.silent_hold);
        return;
    }
    finish(c);
}

// After answering: send our FIN (shutdown for writing), then wait for the
// client's FIN before closing. Closing while received bytes sit unread sends
// an RST instead of a FIN [claim:close-with-unread-data-sends-rst], which can
// destroy the answer the client has not read yet; and waiting lets us report
// how the client ended. The wait is bounded: drain_timeout in all, and at
// most drain_bytes read (and dropped), so no client can make us absorb data.
void Server::finish(Connection& c) {
    ::shutdown(c.fd, net::shut_wr);
    c.phase = Connection::drain;
    c.taken = 0;
    c.deadline = after(limits_.drain_timeout);
}

void Server::stop_accepting() {
    if (listening_.exchange(false)) wake_loops();
}

void Server::wake_loops() {
    for (net::socket_t waker : wakers_) {
        sockaddr_storage self{};
        socklen_t length = sizeof self;
        ::getsockname(waker, reinterpret_cast<sockaddr*>(&self), &length);
        ::sendto(waker, "w", 1, 0, reinterpret_cast<sockaddr*>(&self), length);
    }
}

void Server::event(const char* kind, const std::string& client, const std::string& text) {
    if (on_event_ && !stopping_) on_event_(kind, client.empty() ? text : client + ": " + text);
}

void Server::wait() {
    for (std::thread& loop : loops_)
        if (loop.joinable()) loop.join();
    loops_.clear();
    for (net::socket_t waker : wakers_) net::close_socket(waker);
    wakers_.clear();
    if (listener_ != net::invalid_socket) net::close_socket(listener_);
    listener_ = net::invalid_socket;
}

void Server::stop(double grace) {
    // Let open connections end by themselves for a moment, so their last
    // events are reported.
    Clock::time_point deadline = after(grace);
    while (open_ > 0 && !loops_.empty() && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    stopping_ = true;
    listening_ = false;
    wake_loops();
    wait();
}

bool Server::wait_for_finished(std::uint64_t count, double seconds) {
    Clock::time_point deadline = after(seconds);
    while (counters_.finished < count) {
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

Observed Server::observed() const {
    Observed seen;
    seen.connections = counters_.connections;
    seen.finished = counters_.finished;
    seen.bytes_read = counters_.bytes_read;
    seen.eofs_seen = counters_.eofs_seen;
    seen.resets_seen = counters_.resets_seen;
    seen.refused = counters_.refused;
    seen.timed_out = counters_.timed_out;
    seen.flooded = counters_.flooded;
    return seen;
}

}  // namespace lab
