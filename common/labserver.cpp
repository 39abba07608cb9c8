// labserver.cpp - the lab server: one blocking thread per connection.
#include "labserver.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <system_error>
#include <vector>

namespace lab {

namespace {

constexpr std::size_t max_head_size = 16 * 1024;  // a longer request head is refused
constexpr double drip_pause = 0.05;               // seconds between two drip pieces
constexpr double linger_limit = 10.0;  // seconds to wait for the client's FIN after answering
constexpr double send_limit = 10.0;    // a client that takes nothing for this long is dropped
constexpr std::uint64_t mebibyte = 1024 * 1024;
constexpr double silent_hold = 60.0;  // silent: seconds to hold a connection after the client's FIN

const char* const scenario_names[] = {"hello", "slow",  "drip", "big",      "silent",
                                      "reset", "close", "echo", "truncate", "chunked"};
constexpr int scenario_count = sizeof scenario_names / sizeof scenario_names[0];

bool parse_number(const std::string& text, double& value) {
    if (text.empty()) return false;
    char* end = nullptr;
    value = std::strtod(text.c_str(), &end);
    return end == text.c_str() + text.size() && value >= 0 && value < 1e9;
}

// What the head of a request told us.
struct Request {
    std::string line;     // "GET / HTTP/1.1", without the line end
    std::string target;   // "/"
    bool http09 = false;  // "GET /" with no version: answer with the body alone
};

// Is the head in `head` complete? A request line with no HTTP version is an
// HTTP/0.9 request, complete at its newline; otherwise the head ends at the
// first empty line ("\r\n\r\n", or "\n\n" from a sloppy client).
bool parse_head(const std::string& head, Request& request) {
    std::size_t newline = head.find('\n');
    if (newline == std::string::npos) return false;
    request.line = head.substr(0, newline);
    if (!request.line.empty() && request.line.back() == '\r') request.line.pop_back();
    std::size_t first_space = request.line.find(' ');
    std::size_t second_space = request.line.find(' ', first_space + 1);
    if (first_space != std::string::npos)
        request.target = request.line.substr(first_space + 1, second_space - first_space - 1);
    request.http09 = second_space == std::string::npos;
    if (request.http09) return true;
    return head.find("\r\n\r\n") != std::string::npos || head.find("\n\n") != std::string::npos;
}

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
    "  silent         read the request and never answer (the connection stays open)\n"
    "  reset          read the request and abort the connection (RST)\n"
    "  close          read the request and close without answering\n"
    "  echo           echo every byte until the client half-closes, then close\n"
    "  truncate[:BYTES]  promise a 1 MiB body (Content-Length), send BYTES of it\n"
    "                 (default 1000), close\n"
    "  chunked[:BYTES]   the hello body in chunks (Transfer-Encoding: chunked);\n"
    "                 with BYTES, close after BYTES of the body, before the last chunk\n";

bool parse_scenario(const std::string& text, Scenario& scenario, std::string& error) {
    std::size_t colon = text.find(':');
    std::string name = text.substr(0, colon);
    bool has_argument = colon != std::string::npos;
    std::string argument = has_argument ? text.substr(colon + 1) : "";

    int kind = -1;
    for (int i = 0; i < scenario_count; ++i)
        if (name == scenario_names[i]) kind = i;
    if (kind < 0) {
        error = "unknown scenario '" + name + "' (see --help)";
        return false;
    }
    scenario = Scenario{};
    scenario.kind = static_cast<Scenario::Kind>(kind);

    double value = 0;
    bool takes_argument = kind == Scenario::slow || kind == Scenario::drip ||
                          kind == Scenario::big || kind == Scenario::truncate ||
                          kind == Scenario::chunked;
    if (scenario.kind == Scenario::truncate) scenario.cut = 1000;
    if (!has_argument) return true;
    if (!takes_argument) {
        error = "scenario '" + name + "' takes no argument";
        return false;
    }
    if (!parse_number(argument, value)) {
        error = "scenario " + name + ": '" + argument + "' is not a non-negative number";
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
             : scenario.kind == Scenario::truncate ? " below 1048576"
                                                   : " up to 1048576");
    return false;
}

char big_body_byte(std::uint64_t offset) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::uint64_t column = offset % 64, line = (offset / 64) % 64;
    return column == 63 ? '\n' : alphabet[(line + column) % 64];
}

Server::Server(Scenario scenario, std::function<void(const std::string&)> on_event)
    : scenario_(scenario), on_event_(std::move(on_event)) {}

Server::~Server() {
    stop();
}

bool Server::start(const std::string& address, std::uint16_t port, std::string& error,
                   std::uint64_t max_connections) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    addrinfo* found = nullptr;
    int rc = ::getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &found);
    if (rc != 0) {
        error = "bind address '" + address + "': " + ::gai_strerror(rc);
        return false;
    }
    sockaddr_storage bound{};
    std::memcpy(&bound, found->ai_addr, found->ai_addrlen);
    socklen_t bound_size = static_cast<socklen_t>(found->ai_addrlen);
    ::freeaddrinfo(found);

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
        ::getsockname(listener.get(), where, &bound_size) != 0) {
        int err = net::last_error();
        error =
            "listen on " + address + " port " + std::to_string(port) + ": " + net::error_text(err);
        return false;
    }
    address_ = net::address_text(where);
    port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(where)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(where)->sin_port);

    max_connections_ = max_connections;
    listener_ = listener.release();
    accepting_ = true;
    accept_thread_ = std::thread(&Server::accept_loop, this);
    return true;
}

void Server::accept_loop() {
    std::uint64_t accepted = 0;
    net::socket_t listener = listener_;  // set before this thread started
    while (max_connections_ == 0 || accepted < max_connections_) {
        sockaddr_storage peer{};
        socklen_t peer_length = sizeof peer;
        net::socket_t fd = ::accept(listener, reinterpret_cast<sockaddr*>(&peer), &peer_length);
        int err = net::last_error();
        std::unique_lock<std::mutex> lock(mutex_);
        if (stopping_) {
            if (fd != net::invalid_socket) net::close_socket(fd);
            break;
        }
        if (fd == net::invalid_socket) {
            lock.unlock();
            if (net::is_interrupted(err)) continue;
            event("accept failed: " + net::error_text(err));
            pause(0.05);  // e.g. out of descriptors: let connections finish
            continue;
        }
        open_.insert(fd);
        ++active_;
        ++observed_.connections;
        lock.unlock();
        ++accepted;
        std::string client = net::address_text(reinterpret_cast<sockaddr*>(&peer));
        try {
            std::thread(&Server::serve, this, fd, client).detach();
        } catch (const std::system_error&) {
            event(client + ": no thread to serve it, closing");
            end_connection(fd);
        }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (listener_ != net::invalid_socket)  // (stop() may have closed it: Windows)
        net::close_socket(listener_);      // from now on, connecting clients are refused
    listener_ = net::invalid_socket;
    accepting_ = false;
    changed_.notify_all();
}

void Server::wait() {
    {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [this] { return !accepting_ && active_ == 0; });
    }
    if (accept_thread_.joinable()) accept_thread_.join();
}

void Server::stop(double grace) {
    {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait_for(lock, std::chrono::duration<double>(grace),
                          [this] { return active_ == 0; });
        stopping_ = true;
        // Wake every connection thread blocked in recv or send. On POSIX the
        // thread closes its socket itself later; where waking closed it
        // (Windows) we forget it, and end_connection() leaves it alone.
        for (auto it = open_.begin(); it != open_.end();)
            it = net::wake_blocked_calls(*it) ? open_.erase(it) : std::next(it);
        // Wake the accept loop the same way, with no connection of our own
        // (one would leave a TIME_WAIT entry behind): shutdown on a listening
        // socket makes a blocked accept fail on Linux, closesocket does on
        // Windows [claim:wake-blocked-accept].
        if (accepting_ && listener_ != net::invalid_socket && net::wake_blocked_calls(listener_))
            listener_ = net::invalid_socket;
        changed_.notify_all();
    }
    wait();
}

bool Server::wait_for_finished(std::uint64_t count, double seconds) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::duration<double>(seconds),
                             [&] { return observed_.finished >= count; });
}

Observed Server::observed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return observed_;
}

void Server::event(const std::string& text) {
    if (on_event_) on_event_(text);
}

bool Server::pause(double seconds) {
    std::unique_lock<std::mutex> lock(mutex_);
    return !changed_.wait_for(lock, std::chrono::duration<double>(seconds),
                              [this] { return stopping_; });
}

void Server::end_connection(net::socket_t fd) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (open_.erase(fd) == 1) net::close_socket(fd);  // else stop() closed it
    ++observed_.finished;
    --active_;
    changed_.notify_all();  // under the lock: stop() cannot return before we let go
}

// recv, counting what arrives and noting how the client ended. Returns what recv returned.
long Server::receive(net::socket_t fd, const std::string& client, char* buffer, std::size_t size) {
    for (;;) {
        long n = ::recv(fd, buffer, static_cast<int>(size), 0);
        int err = net::last_error();
        if (n < 0 && net::is_interrupted(err)) continue;
        std::string news;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (n > 0) observed_.bytes_read += static_cast<std::uint64_t>(n);
            if (n == 0) {
                ++observed_.eofs_seen;
                news = "recv returned 0: the client's FIN arrived";
            }
            if (n < 0 && is_reset(err)) ++observed_.resets_seen;
            if (n < 0 && !net::is_timed_out(err))
                news = "recv failed: " + net::error_name(err) + " (" + net::error_text(err) + ")" +
                       (is_reset(err) ? ": the client reset the connection" : "");
            if (stopping_) news.clear();
        }
        if (!news.empty()) event(client + ": " + news);
        net::set_last_error(err);
        return n;
    }
}

bool Server::send_all(net::socket_t fd, const std::string& client, const char* data,
                      std::size_t size) {
    while (size > 0) {
        int chunk = static_cast<int>(std::min<std::size_t>(size, 1u << 30));
        long n = ::send(fd, data, chunk, net::send_flags);
        if (n < 0) {
            int err = net::last_error();
            if (net::is_interrupted(err)) continue;
            bool quiet;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                if (is_reset(err)) ++observed_.resets_seen;
                quiet = stopping_;
            }
            if (!quiet)
                event(client + ": send failed: " + net::error_name(err) + " (" +
                      net::error_text(err) + ")");
            return false;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

void Server::serve(net::socket_t fd, std::string client) {
    net::no_sigpipe(fd);
    // A client that stops reading must not hold this thread for ever: each
    // send gives up after send_limit [claim:send-partial-on-timeout]. (It also
    // bounds stop(): under Wine, closesocket does not always wake a thread
    // blocked in send.)
    net::set_timeout_option(fd, SO_SNDTIMEO, send_limit);
    if (scenario_.kind == Scenario::echo)
        serve_echo(fd, client);
    else
        serve_request(fd, client);
    end_connection(fd);
}

void Server::serve_echo(net::socket_t fd, const std::string& client) {
    std::vector<char> buffer(64 * 1024);
    std::uint64_t echoed = 0;
    for (;;) {
        long n = receive(fd, client, buffer.data(), buffer.size());
        if (n <= 0) break;
        if (!send_all(fd, client, buffer.data(), static_cast<std::size_t>(n))) return;
        echoed += static_cast<std::uint64_t>(n);
    }
    event(client + ": echoed " + std::to_string(echoed) + " bytes, closing");
}

void Server::serve_request(net::socket_t fd, const std::string& client) {
    std::string head;
    Request request;
    char buffer[4096];
    while (!parse_head(head, request)) {
        if (head.size() >= max_head_size) {
            event(client + ": request head over " + std::to_string(max_head_size) +
                  " bytes, refused");
            std::string body = "request head too large\n";
            std::string answer = response_head(body.size(), "431 Request Header Fields Too Large");
            send_all(fd, client, (answer + body).data(), answer.size() + body.size());
            return finish(fd, client);
        }
        long n = receive(fd, client, buffer, sizeof buffer);
        if (n <= 0) return;  // the client left before finishing its request
        head.append(buffer, static_cast<std::size_t>(n));
    }
    event(client + ": request \"" + request.line + "\"" + (request.http09 ? " (HTTP/0.9)" : ""));

    std::string answer = hello_response(request);
    switch (scenario_.kind) {
        case Scenario::silent:
            event(client + ": scenario silent: not answering");
            long n;
            while ((n = receive(fd, client, buffer, sizeof buffer)) > 0) {
            }
            // A client that half-closed may still wait for an answer: keep
            // the connection open (up to silent_hold, or until stop()).
            if (n == 0) pause(silent_hold);
            return;
        case Scenario::reset: {
            event(client + ": scenario reset: close with SO_LINGER {on, 0} sends an RST");
            linger abort_on_close{};
            abort_on_close.l_onoff = 1;
            abort_on_close.l_linger = 0;
            ::setsockopt(fd, SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&abort_on_close),
                         sizeof abort_on_close);
            return;  // end_connection() closes it
        }
        case Scenario::close:
            event(client + ": scenario close: closing without an answer");
            return finish(fd, client);
        case Scenario::slow:
            if (!pause(scenario_.seconds)) return;
            break;
        case Scenario::drip:
            for (std::size_t at = 0; at < answer.size(); at += scenario_.count) {
                if (at > 0 && !pause(drip_pause)) return;
                std::size_t piece = std::min<std::size_t>(scenario_.count, answer.size() - at);
                if (!send_all(fd, client, answer.data() + at, piece)) return;
            }
            return finish(fd, client);
        case Scenario::truncate: {
            // A promise it does not keep: the client must notice.
            std::string out = request.http09 ? "" : response_head(truncate_promise);
            out += big_block().substr(0, static_cast<std::size_t>(scenario_.cut));
            event(client + ": scenario truncate: " + std::to_string(scenario_.cut) + " of " +
                  std::to_string(truncate_promise) + " body bytes, then close");
            if (send_all(fd, client, out.data(), out.size())) finish(fd, client);
            return;
        }
        case Scenario::chunked:
            answer = request.http09 ? hello_body(request)
                                    : chunked_response(hello_body(request), scenario_.cut);
            break;
        case Scenario::big: {
            std::uint64_t size = scenario_.mebibytes * mebibyte;
            if (!request.http09) {
                std::string head_out = response_head(size);
                if (!send_all(fd, client, head_out.data(), head_out.size())) return;
            }
            const std::string& block = big_block();
            for (std::uint64_t sent = 0; sent < size; sent += mebibyte)
                if (!send_all(fd, client, block.data(), block.size())) return;
            event(client + ": sent " + std::to_string(scenario_.mebibytes) + " MiB");
            return finish(fd, client);
        }
        default:
            break;
    }
    if (send_all(fd, client, answer.data(), answer.size())) finish(fd, client);
}

// After answering: send our FIN (shutdown for writing), then wait for the
// client's FIN before closing. Closing while received bytes sit unread sends
// an RST instead of a FIN [claim:close-with-unread-data-sends-rst], which can
// destroy the answer the client has not read yet; and waiting lets us report
// how the client ended.
void Server::finish(net::socket_t fd, const std::string& client) {
    ::shutdown(fd, net::shut_wr);
    net::set_timeout_option(fd, SO_RCVTIMEO, linger_limit);
    char buffer[4096];
    while (receive(fd, client, buffer, sizeof buffer) > 0) {
    }
}

}  // namespace lab
