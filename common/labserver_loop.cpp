// labserver_loop.cpp - the lab server's event loop: one thread, many clients.
//
// Beej's pollserver.c, the model for this file, is a loop of a few lines:
//
//     for (;;) {
//         poll(every socket);            // sleep until one is ready
//         for each ready socket:
//             the listener?  accept the new client, and watch it too
//             a client?      recv what it sent, and answer
//     }
//
// This loop is the same, grown up for a server that a whole class shares and
// that must outlast any one client:
//
//   - Every socket is non-blocking. A recv with nothing to read or a send with
//     no room returns EWOULDBLOCK at once, and the loop serves the others
//     while that client catches up. One blocking call would freeze every
//     client for the sake of one slow one.
//   - Every connection has a deadline (its phase's: labserver_loop.h), and the
//     wait sleeps only until the nearest one. A client that stops talking is
//     dropped on time (a "slowloris" cannot hold a connection forever), and a
//     slow or dripping answer resumes on time, all without a timer thread.
//   - What a client can make us hold is bounded: a request head of
//     max_head_size, echo_backlog unsent bytes, drain_bytes after the answer,
//     max_connections and per_client connections (labserver.cpp).
//   - Once per turn the loop looks at each connection: deadlines that came,
//     connections that are done (closed), and what each now waits for, which
//     the waiter (waiter.h: epoll on Linux, poll elsewhere) is told when it
//     changes.
//
// The chapters are the client's side of the same calls: chapter 5 is this
// loop from the other end.
#include "labserver_loop.h"

#include "diagram.h"

#include "text.h"

#include <algorithm>
#include <string>

namespace lab {

namespace {

constexpr int accepts_per_wake = 64;  // then serve the others before accepting more

// The wait's timeout: until `deadline`, rounded up (waking a moment early
// would only turn the loop once more for nothing); -1, no deadline: until a
// socket is ready.
int milliseconds_until(Clock::time_point deadline) {
    if (deadline == Clock::time_point::max()) return -1;
    double seconds = std::chrono::duration<double>(deadline - Clock::now()).count();
    return static_cast<int>(std::clamp(seconds * 1000 + 1, 0.0, 1e9));
}

// Tell the waiter what `fd` waits for now, if that changed since it was last
// told (`watched`): each change is a system call with epoll, so none is made
// for nothing. 0 takes the socket out of the waiter.
int watch(Waiter& waiter, net::socket_t fd, unsigned wanted, unsigned& watched) {
    if (wanted == watched) return 0;
    int result = watched == 0  ? waiter.add(fd, wanted)
                 : wanted == 0 ? waiter.remove(fd)
                               : waiter.modify(fd, wanted);
    if (result == 0) watched = wanted;
    return result;
}

}  // namespace

// One event loop, on its own thread. Several loops (--loops N) share the
// listener: each accepts and serves its own clients.
void Server::run_loop(net::socket_t waker) {
    Loop loop(waker);
    if (!loop.waiter.ok() || loop.waiter.add(waker, Waiter::readable) != 0) {
        event("errors", "",
              std::string(loop.waiter.name()) + " failed: " + net::error_text(net::last_error()));
        return;
    }
    while (!stopping_) {
        // Deadlines, closes, and what each socket waits for now.
        Clock::time_point next = std::min(look_at_each(loop), watch_listener(loop));
        if (!listening_ && loop.connections.empty()) break;  // --count served, or stop()

        // Sleep until a socket is ready or the nearest deadline comes.
        if (loop.waiter.wait(milliseconds_until(next), loop.ready) < 0) {
            int err = net::last_error();
            if (!net::is_interrupted(err))
                event("errors", "",
                      std::string(loop.waiter.name()) + " failed: " + net::error_text(err));
            continue;
        }

        // Handle what is ready.
        for (const Waiter::Ready& ready : loop.ready) {
            if (ready.fd == loop.waker) {  // woken: read the datagrams; the loop's head says why
                char datagram[16];
                while (::recv(loop.waker, datagram, sizeof datagram, 0) > 0) {
                }
            } else if (ready.fd == listener_) {  // clients are waiting to be accepted
                accept_new(loop);
            } else {  // a client's socket: what it means depends on the phase
                auto found = loop.connections.find(ready.fd);
                if (found != loop.connections.end() && !found->second.done)
                    on_ready(found->second, ready.events);
            }
        }
    }
    for (auto& entry : loop.connections)
        end_connection(entry.second);  // stop(): close quietly
}

// Once per turn, each connection: its deadline, if it has come; closed, if it
// is done; else the waiter told what it waits for now. Returns the nearest
// deadline: the longest the loop may sleep.
Clock::time_point Server::look_at_each(Loop& loop) {
    Clock::time_point now = Clock::now(), nearest = Clock::time_point::max();
    for (auto entry = loop.connections.begin(); entry != loop.connections.end();) {
        Connection& c = entry->second;
        if (!c.done && now >= c.deadline) on_deadline(c);
        if (!c.done && watch(loop.waiter, c.fd, wanted_events(c), c.watched) != 0) {
            event("errors", c.client,
                  std::string("cannot wait for this client: ") + loop.waiter.name() + ": " +
                      net::error_text(net::last_error()));
            c.done = true;
        }
        if (!c.done) {
            nearest = std::min(nearest, c.deadline);
            ++entry;
            continue;
        }
        if (c.watched != 0) loop.waiter.closing(c.fd);
        end_connection(c);
        entry = loop.connections.erase(entry);
    }
    return nearest;
}

// A connecting client makes the listener readable. It is watched while we
// accept, except for a pause after accept failed for want of descriptors:
// the client is still queued then, the listener stays readable, and watching
// it would spin the loop. Returns when to watch it again, or max().
Clock::time_point Server::watch_listener(Loop& loop) {
    bool accepting = listening_;
    bool wanted = accepting && Clock::now() >= loop.accept_again;
    if (watch(loop.waiter, listener_, wanted ? Waiter::readable : 0, loop.listener_watched) != 0)
        event("errors", "",
              std::string("cannot wait for the listener: ") + net::error_text(net::last_error()));
    return accepting && !wanted ? loop.accept_again : Clock::time_point::max();
}

// Accept the clients waiting in the listener's queue, a few at a time
// (accepts_per_wake), so that those already connected are served meanwhile.
void Server::accept_new(Loop& loop) {
    for (int i = 0; i < accepts_per_wake && listening_; ++i) {
        sockaddr_storage peer{};
        net::socket_t fd = net::accept_nonblocking(listener_, peer);
        if (fd == net::invalid_socket) {
            int err = net::last_error();
            if (net::is_would_block(err)) return;  // none left (or another loop took it)
            if (net::is_interrupted(err)) continue;
            // Out of descriptors (EMFILE) or memory: retry 50 ms later, as
            // connections end, instead of spinning on a listener that stays ready.
            event("errors", "", "accept failed: " + net::error_text(err));
            loop.accept_again = Clock::now() + std::chrono::milliseconds(50);
            return;
        }
        std::uint64_t number = ++accepted_;
        if (count_ != 0 && number >= count_) stop_accepting();  // --count reached
        if (count_ != 0 && number > count_) {                   // another loop took the last one
            net::close_socket(fd);
            return;
        }
        std::string client = text::address_text(reinterpret_cast<sockaddr*>(&peer));
        if (admit(fd, client)) welcome(loop, fd, client, number);
    }
}

// A new client, admitted: its connection, found from now on by its
// descriptor; its scenario; and a first read.
void Server::welcome(Loop& loop, net::socket_t fd, const std::string& client,
                     std::uint64_t number) {
    net::no_sigpipe(fd);
    diagram::server_accepted(fd, client);
    Connection& c = loop.connections[fd];
    c.fd = fd;
    c.client = client;
    c.scenario = &scenario_;
    if (scenario_.kind == Scenario::mix) {
        c.scenario = &scenario_.items[(number - 1) % scenario_.items.size()];
        event("scenario", c.client,
              "scenario mix: connection " + std::to_string(number) + " gets " +
                  describe_scenario(*c.scenario));
    }
    c.deadline = after(limits_.header_timeout);
    if (c.scenario->kind == Scenario::echo) {
        c.phase = Connection::echo;
        c.quiet_deadline = c.deadline;
        if (c.scenario->seconds > 0)
            event("scenario", c.client,
                  "scenario " + describe_scenario(*c.scenario) + ": each piece read goes back " +
                      text::seconds_text(c.scenario->seconds) + " after it came");
    }
    // The request usually arrives with the connection: read it now, and wait
    // (for it, or for room to send) only if it has not. The loop's next look
    // tells the waiter what it waits for.
    on_ready(c, Waiter::readable);
}

// Closed, and counted out.
void Server::end_connection(Connection& c) {
    leave(c.client);
    net::close_socket(c.fd);
    --open_;
    ++counters_.finished;
}

}  // namespace lab
