// diagram.cpp - recording a run's events (diagram.h); diagram_draw.cpp draws them.
#include "diagram.h"

#include "diagram_events.h"
#include "text.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

namespace diagram {

Recorder& recorder() {
    static Recorder r;
    return r;
}

double now(const Recorder& r) {
    return std::chrono::duration<double>(Clock::now() - r.start).count();
}

namespace {

int connection_of(Recorder& r, const std::string& client) {
    auto found = r.by_client.find(client);
    if (found != r.by_client.end()) return found->second;
    r.conns.emplace_back();
    r.conns.back().client = client;
    return r.by_client[client] = static_cast<int>(r.conns.size() - 1);
}

// Record an event. An arrow goes before the first receipt that waits for
// it (the server read bytes this send put on the wire); a receipt whose cause
// is not recorded yet waits for it.
void add(Recorder& r, int conn, Side side, Wire wire, const std::string& text,
         Merge merge = Merge::none, std::uint64_t bytes = 0, const Waiting* before = nullptr) {
    Connection& c = r.conns[conn];
    Event e{r.next_order++, now(r), conn, side, wire, text, merge, bytes};
    thread_local double last_event = 0;  // this thread's: ours, or the lab server's
    e.begin = last_event;
    e.end = last_event = e.at;
    std::vector<Waiting>& waits = c.waiting[other(side)];
    if (!before && wire != Wire::none && !waits.empty()) before = &waits.front();
    if (before) {  // it reached the wire before that receipt was recorded
        e.order = before->order - 0.5 + (r.nudge += 1e-9);
        e.at = e.end = std::min(e.at, before->at);
        e.begin = std::min(e.begin, e.end);
    }
    if (wire == Wire::data) c.sent[side] += bytes;
    if (wire == Wire::fin) {
        c.fin[side] = true;
        if (c.first_fin < 0) c.first_fin = side;
    }
    if (wire == Wire::rst) c.reset = true;
    waits.erase(std::remove_if(waits.begin(), waits.end(),
                               [&](const Waiting& w) {
                                   return (w.needs == Wire::data && c.sent[side] >= w.bytes) ||
                                          (w.needs != Wire::data && w.needs == wire);
                               }),
                waits.end());
    r.events.push_back(e);
}

// A receipt on `side`'s lane: drawn now, and waiting if its cause (`needs`
// from the other side) has not been recorded.
void receipt(Recorder& r, int conn, Side side, Wire needs, const std::string& text,
             Merge merge = Merge::none, std::uint64_t bytes = 0) {
    Connection& c = r.conns[conn];
    add(r, conn, side, Wire::none, text, merge, bytes);
    bool caused = needs == Wire::data  ? c.sent[other(side)] >= c.received[side]
                  : needs == Wire::fin ? c.fin[other(side)]
                  : needs == Wire::rst ? c.reset
                                       : c.established;
    if (!caused)
        c.waiting[side].push_back(
            {r.events.back().order, r.events.back().at, needs, c.received[side]});
}

// SYN-ACK and ACK: the connection is established.
void establish(Recorder& r, int conn) {
    Connection& c = r.conns[conn];
    if (c.established || c.reset) return;
    // Both before an accept recorded already (SYN-ACK and ACK come before it).
    Waiting accept{0, 0, Wire::ack, 0};
    bool accepted_first = !c.waiting[server].empty();
    if (accepted_first) accept = c.waiting[server].front();
    add(r, conn, server, Wire::syn_ack, "", Merge::none, 0, accepted_first ? &accept : nullptr);
    c.established = true;
    add(r, conn, client, Wire::ack, "", Merge::none, 0, accepted_first ? &accept : nullptr);
}

// ------------------------------------------------------------ the client

struct Call {
    std::string name, first, rest;  // "recv", "3", "65536"
    long long result = 0;
    std::string error;  // "ECONNRESET" (WSAECONNRESET on Windows), or ""
    std::string value;  // getsockopt SO_ERROR: what follows ", value "
};

bool parse(const std::string& line, Call& call) {
    std::size_t open = line.find('('), close = line.find(") = ");
    if (open == std::string::npos || close == std::string::npos || close < open) return false;
    call.name = line.substr(0, open);
    std::string args = line.substr(open + 1, close - open - 1);
    std::size_t comma = args.find(", ");
    call.first = args.substr(0, comma);
    call.rest = comma == std::string::npos ? "" : args.substr(comma + 2);
    std::string result = line.substr(close + 4);
    call.result = std::strtoll(result.c_str(), nullptr, 10);
    if (call.result == -1) {
        std::size_t space = result.find(' ');
        call.error = result.substr(space + 1, result.find(' ', space + 1) - space - 1);
    }
    std::size_t value = result.find(", value ");
    if (value != std::string::npos) call.value = result.substr(value + 8);
    return true;
}

bool error_is(const Call& call, const char* name) {
    return call.error.find(name) != std::string::npos;
}

// The client's connection for descriptor `fd`, or -1.
int client_conn(Recorder& r, const std::string& fd) {
    auto found =
        r.fds[client].find(static_cast<net::socket_t>(std::strtoull(fd.c_str(), nullptr, 10)));
    return found == r.fds[client].end() ? -1 : found->second;
}

void client_connects(Recorder& r, const Call& call) {
    net::socket_t fd = static_cast<net::socket_t>(std::strtoull(call.first.c_str(), nullptr, 10));
    sockaddr_storage local{};
    socklen_t size = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &size) != 0) return;
    int conn = connection_of(r, text::address_text(reinterpret_cast<sockaddr*>(&local)));
    Connection& c = r.conns[conn];
    if (c.lane == 0) c.lane = ++r.lanes;
    r.fds[client][fd] = conn;
    r.last_client_conn = conn;
    c.syn = true;
    bool refused = error_is(call, "REFUSED");
    // EINPROGRESS: connect returned before the SYN-ACK, even where the server's
    // accept was recorded first (the client's line comes after the call).
    add(r, conn, client, Wire::syn,
        call.result == 0 || refused ? "connect" : "connect = -1 " + call.error);
    if (refused)
        add(r, conn, server, Wire::rst, r.server_address.empty() ? "nothing listens" : "");
    else if (call.result == 0 || c.accepted)
        establish(r, conn);
}

// Data reaching a client that has shut its reading side and sent its FIN is
// answered with an RST by Linux (RFC 1122's rule for data after SHUT_RD)
// [claim:data-after-shutdown-both-resets].
void reset_if_refused(Recorder& r, int conn) {
    Connection& c = r.conns[conn];
    if (c.reached_before_shut >= 0 && !c.reset &&
        c.sent[server] > static_cast<std::uint64_t>(c.reached_before_shut))
        add(r, conn, client, Wire::rst, "(reading shut: the kernel answers)");
}

void client_sees(Recorder& r, const Call& call) {
    if (call.name == "connect") return client_connects(r, call);
    bool offline = !r.server_address.empty();
    if (call.name == "select" || call.name == "poll") {
        int conn = call.name == "poll" ? client_conn(r, call.first) : r.last_client_conn;
        if (conn >= 0 && call.result == 0)
            add(r, conn, client, Wire::none, call.name + ": timed out, nothing ready");
        return;
    }
    int conn = client_conn(r, call.first);
    if (conn < 0) return;
    Connection& c = r.conns[conn];
    if (call.name == "getsockopt" && call.rest == "SO_ERROR" && call.result == 0) {
        if (call.value.compare(0, 1, "0") == 0)
            establish(r, conn);
        else if (call.value.find("REFUSED") != std::string::npos)
            add(r, conn, server, Wire::rst, offline ? "" : "nothing listens");
        else
            add(r, conn, client, Wire::none, "SO_ERROR " + call.value);
    } else if (call.name == "send") {
        if (call.result > 0) {
            establish(r, conn);
            add(r, conn, client, Wire::data, "send", Merge::sent,
                static_cast<std::uint64_t>(call.result));
        } else if (call.result < 0) {
            add(r, conn, client, Wire::none, "send = -1 " + call.error);
        }
    } else if (call.name == "recv") {
        if (call.result > 0) {
            std::uint64_t n = static_cast<std::uint64_t>(call.result);
            c.received[client] += n;
            if (!offline) add(r, conn, server, Wire::data, "", Merge::sent, n);
            receipt(r, conn, client, Wire::data, "recv", Merge::read, n);
        } else if (call.result == 0 && c.shut_rd) {
            add(r, conn, client, Wire::none, "recv = 0: our own SHUT_RD, not a FIN");
        } else if (call.result == 0) {
            if (!offline && !c.fin[server]) add(r, conn, server, Wire::fin, "");
            receipt(r, conn, client, Wire::fin, "recv = 0: their FIN");
        } else if (error_is(call, "RESET") || error_is(call, "ABORTED")) {
            if (!offline && !c.reset) add(r, conn, server, Wire::rst, "");
            receipt(r, conn, client, Wire::rst, "recv = -1 " + call.error);
        } else {
            add(r, conn, client, Wire::none, "recv = -1 " + call.error, Merge::empty);
        }
    } else if (call.name == "shutdown" && call.result == 0) {
        bool reading_ends = call.rest.find("RD") != std::string::npos;
        bool writing_ends = call.rest.find("WR") != std::string::npos;
        c.shut_rd = c.shut_rd || reading_ends;
        std::string what = "shutdown(" + call.rest + ")";
        if (writing_ends && !c.fin[client] && !c.reset)
            add(r, conn, client, Wire::fin, what);
        else
            add(r, conn, client, Wire::none, what + (writing_ends ? "" : ": nothing is sent"));
        if (c.shut_rd && c.fin[client] && c.reached_before_shut < 0) {
            long waiting = net::bytes_waiting(
                static_cast<net::socket_t>(std::strtoull(call.first.c_str(), nullptr, 10)));
            c.reached_before_shut =
                static_cast<long long>(c.received[client]) + (waiting > 0 ? waiting : 0);
            reset_if_refused(r, conn);  // the server's send was recorded first
        }
    }
}

// ------------------------------------------------------------ closing

// Just before close: a FIN, an RST or nothing, by what the socket holds.
void closing(net::socket_t fd) {
    long unread = net::bytes_waiting(fd);
    linger how{};
    socklen_t size = sizeof how;
    bool abort =
        ::getsockopt(fd, SOL_SOCKET, SO_LINGER, reinterpret_cast<char*>(&how), &size) == 0 &&
        how.l_onoff != 0 && how.l_linger == 0;
    // An RST that reached this socket and no call has reported yet: the peer's
    // record of it may come later (its kernel answered data on its own).
    int pending = 0;
    size = sizeof pending;
    bool was_reset =
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&pending), &size) == 0 &&
        net::is_connection_reset(pending);
    Recorder& r = recorder();
    std::lock_guard<std::mutex> lock(r.mutex);
    for (Side side : {client, server}) {
        auto found = r.fds[side].find(fd);
        if (found == r.fds[side].end()) continue;
        int conn = found->second;
        r.fds[side].erase(found);
        Connection& c = r.conns[conn];
        c.closed[side] = true;
        if (c.reset || was_reset)
            receipt(r, conn, side, Wire::rst, "close: nothing is sent (the connection was reset)");
        else if (abort)
            add(r, conn, side, Wire::rst, "close, SO_LINGER {1, 0}");
        else if (unread > 0 && !(c.fin[client] && c.fin[server])) {
            if (side == client) {  // the bytes arrived: the server's send came first
                c.received[client] += static_cast<std::uint64_t>(unread);
                receipt(r, conn, client, Wire::data, std::to_string(unread) + " B arrived, unread");
            }
            add(r, conn, side, Wire::rst, "close, " + std::to_string(unread) + " B unread");
        } else if (unread > 0)  // both FINs are through: the connection is over already
            add(r, conn, side, Wire::none,
                "close, " + std::to_string(unread) +
                    " B unread: nothing is sent (both FINs are through)");
        else if (!c.fin[side] && c.syn)
            add(r, conn, side, Wire::fin, "close");
        else
            add(r, conn, side, Wire::none, "close");
        return;
    }
}

}  // namespace

void start(const char* program, bool text, const std::string& mermaid_file) {
    Recorder& r = recorder();
    r.on = true;
    r.text = text;
    r.mermaid_file = mermaid_file;
    r.program = program;
    r.start = Clock::now();
    net::set_close_watcher(closing);
    std::atexit(draw);
}

bool recording() {
    return recorder().on;
}

void client_call(const std::string& line) {
    Call call;
    if (!recording() || !parse(line, call)) return;
    Recorder& r = recorder();
    std::lock_guard<std::mutex> lock(r.mutex);
    client_sees(r, call);
}

void client_failed(const std::string& error) {
    if (!recording()) return;
    Recorder& r = recorder();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.error = error;
}

void server_started(const std::string& address) {
    if (!recording()) return;
    Recorder& r = recorder();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.server_address = address;
}

void server_accepted(net::socket_t fd, const std::string& client_address) {
    if (!recording()) return;
    Recorder& r = recorder();
    std::lock_guard<std::mutex> lock(r.mutex);
    int conn = connection_of(r, client_address);
    r.fds[server][fd] = conn;
    Connection& c = r.conns[conn];
    c.accepted = true;
    c.syn = true;
    if (c.lane > 0) establish(r, conn);  // the client's connect is recorded: SYN-ACK, ACK now
    receipt(r, conn, server, Wire::ack, "accept");
}

namespace {
int server_conn(Recorder& r, net::socket_t fd) {
    auto found = r.fds[server].find(fd);
    return found == r.fds[server].end() ? -1 : found->second;
}
}  // namespace

void server_received(net::socket_t fd, long result, int err) {
    if (!recording()) return;
    Recorder& r = recorder();
    std::lock_guard<std::mutex> lock(r.mutex);
    int conn = server_conn(r, fd);
    if (conn < 0) return;
    Connection& c = r.conns[conn];
    if (result > 0) {
        c.received[server] += static_cast<std::uint64_t>(result);
        receipt(r, conn, server, Wire::data, "read", Merge::read,
                static_cast<std::uint64_t>(result));
    } else if (result == 0) {
        receipt(r, conn, server, Wire::fin, "recv = 0: the client's FIN");
    } else if (net::is_connection_reset(err)) {
        receipt(r, conn, server, Wire::rst, "recv = -1 " + net::error_name(err));
    }
}

void server_sent(net::socket_t fd, std::uint64_t bytes) {
    if (!recording()) return;
    Recorder& r = recorder();
    std::lock_guard<std::mutex> lock(r.mutex);
    int conn = server_conn(r, fd);
    if (conn < 0) return;
    Connection& c = r.conns[conn];
    add(r, conn, server, Wire::data, "send", Merge::sent, bytes);
    // Data that reaches a closed socket is answered with an RST by its kernel
    // [claim:data-after-close-resets] (bytes the client read before closing
    // were recorded late, not unread).
    if (c.closed[client] && !c.reset && c.sent[server] > c.received[client])
        add(r, conn, client, Wire::rst, "(closed: the kernel answers)");
    else
        reset_if_refused(r, conn);
}

void server_shut_down(net::socket_t fd) {
    if (!recording()) return;
    Recorder& r = recorder();
    std::lock_guard<std::mutex> lock(r.mutex);
    int conn = server_conn(r, fd);
    if (conn < 0) return;
    Connection& c = r.conns[conn];
    if (!c.fin[server] && !c.reset) add(r, conn, server, Wire::fin, "shutdown(SHUT_WR)");
}

void server_note(const std::string& client_address, const std::string& text) {
    if (!recording()) return;
    Recorder& r = recorder();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto found = r.by_client.find(client_address);
    if (found != r.by_client.end()) add(r, found->second, server, Wire::none, text);
}

}  // namespace diagram
