// labserver.cpp - the lab server's life: listening, the wake-up sockets, the
// limits every loop shares, stopping, and what was observed. The loops
// themselves are in labserver_loop.cpp.
#include "labserver.h"

#include "diagram.h"

#include "text.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace lab {

namespace {

using Clock = std::chrono::steady_clock;

Clock::time_point after(double seconds) {
    return Clock::now() +
           std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// "203.0.113.7:51234" -> "203.0.113.7"; "[::1]:51234" -> "[::1]"
std::string host_of(const std::string& client) {
    return client.substr(0, client.rfind(':'));
}

// ADDRESS and PORT as a socket address; only an address written out
// (is_address()). False if it is none.
bool socket_address(const std::string& address, std::uint16_t port, sockaddr_storage& where,
                    socklen_t& size) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&where);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&where);
    if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        size = sizeof *v4;
        return true;
    }
    if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        size = sizeof *v6;
        return true;
    }
    return false;
}

// A loop sleeps in its waiter until a socket is ready or a deadline comes; to
// wake it at once (stop(), or --count reached by another loop), we send a
// datagram to a UDP socket it watches, its own on 127.0.0.1. A socket, not a
// pipe: Windows cannot wait for a pipe and a socket in one call.
net::socket_t wake_up_socket() {
    sockaddr_in self{};
    self.sin_family = AF_INET;
    self.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    net::Socket waker(::socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP));
    if (!waker.valid() || ::bind(waker.get(), reinterpret_cast<sockaddr*>(&self), sizeof self) ||
        net::set_nonblocking_untraced(waker.get()) != 0)
        return net::invalid_socket;
    return waker.release();
}

}  // namespace

Server::Server(Scenario scenario, EventSink on_event, Limits limits, unsigned loops)
    : scenario_(scenario),
      on_event_(std::move(on_event)),
      limits_(limits),
      loop_count_(std::max(1u, loops)) {}

Server::~Server() {
    stop();
}

bool Server::start(const std::string& address, std::uint16_t port, std::string& error,
                   std::uint64_t count) {
    sockaddr_storage bound{};
    socklen_t bound_size = 0;
    if (!socket_address(address, port, bound, bound_size)) {
        error = "bind address '" + text::printable(address) +
                "' is not an IPv4 or IPv6 address (for every interface: 0.0.0.0 or ::)";
        return false;
    }
    net::Socket listener(::socket(bound.ss_family, SOCK_STREAM, IPPROTO_TCP));
    if (!listener.valid()) {
        error = "socket: " + net::error_text(net::last_error());
        return false;
    }
    // listen(SOMAXCONN): the longest queue of connected clients the system
    // allows, for a class that connects at once; the loops take them 64 at a
    // time. The listener is non-blocking too: when another loop has taken the
    // client the waiter announced, accept says EWOULDBLOCK instead of waiting.
    sockaddr* where = reinterpret_cast<sockaddr*>(&bound);
    if (net::set_listener_options(listener.get()) != 0 ||
        ::bind(listener.get(), where, bound_size) != 0 ||
        ::listen(listener.get(), SOMAXCONN) != 0 ||
        ::getsockname(listener.get(), where, &bound_size) != 0 ||
        net::set_nonblocking_untraced(listener.get()) != 0) {
        int err = net::last_error();
        error =
            "listen on " + address + " port " + std::to_string(port) + ": " + net::error_text(err);
        return false;
    }
    address_ = text::address_text(where);
    port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(where)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(where)->sin_port);

    for (unsigned i = 0; i < loop_count_; ++i) {
        net::socket_t waker = wake_up_socket();
        if (waker == net::invalid_socket) {
            error = "wake-up socket: " + net::error_text(net::last_error());
            for (net::socket_t w : wakers_)
                net::close_socket(w);
            wakers_.clear();
            return false;
        }
        wakers_.push_back(waker);
    }
    count_ = count;
    listener_ = listener.release();
    listening_ = true;
    for (net::socket_t waker : wakers_)
        loops_.emplace_back(&Server::run_loop, this, waker);
    return true;
}

// Count the connection in, or refuse it when the server or this client's
// address already has as many open as allowed. True if admitted. A class
// shares the server: one student's script that opens connections in a loop
// must not lock the others out (per_client), nor anyone exhaust the
// descriptors (max_connections).
bool Server::admit(net::socket_t fd, const std::string& client) {
    ++counters_.connections;
    std::string why;
    std::uint64_t open = ++open_;
    if (open > limits_.max_connections) {
        why = std::to_string(open - 1) + " connections open (--max-connections " +
              std::to_string(limits_.max_connections) + ")";
    } else if (counts_per_client()) {
        std::string host = host_of(client);
        std::lock_guard<std::mutex> lock(clients_mutex_);  // loops share the counts
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
    std::string answer = short_answer("503 Service Unavailable",
                                      "The lab server is busy: " + why + ". Try again later.\n");
    ::send(fd, answer.data(), static_cast<int>(answer.size()), net::send_flags);
    ::shutdown(fd, net::shut_wr);
    net::close_socket(fd);
    ++counters_.finished;
}

// A connection from `client` has ended: one fewer from its address.
void Server::leave(const std::string& client) {
    if (!counts_per_client()) return;
    std::lock_guard<std::mutex> lock(clients_mutex_);
    auto mine = per_client_.find(host_of(client));
    if (mine != per_client_.end() && --mine->second == 0) per_client_.erase(mine);
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
    // --diagram: what the server decided, on its lane (what it read and saw
    // arrive is recorded where it happens).
    if (!client.empty() && std::string(kind) != "client FINs" && std::string(kind) != "resets" &&
        std::string(kind) != "errors")
        diagram::server_note(client, text);
}

void Server::wait() {
    for (std::thread& loop : loops_)
        if (loop.joinable()) loop.join();
    loops_.clear();
    for (net::socket_t waker : wakers_)
        net::close_socket(waker);
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
