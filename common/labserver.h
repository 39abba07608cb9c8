// labserver.h - the lab server every chapter talks to when no HOST is given,
// also built as the standalone `labserver` program for a classroom.
//
// One thread runs an event loop (labserver --loops N runs N): non-blocking
// sockets, one wait for the listening socket and every connection at once,
// and a small state per connection: reading the request head, pausing (slow,
// drip), sending, draining after the answer. Each state has a deadline, so
// every wait is bounded. This is chapter 5's idea on the server's side: no
// thread per connection, no lock held across a call, so thousands of clients
// cost a few hundred bytes each.
//
// It answers according to a scenario (SPEC, "The lab server") and reports
// what it saw of the client (its FIN, a reset, how many bytes), so a chapter
// can narrate the other side of the connection. Shared by a class, no client
// can hold it: see Limits.
//
// Its files, from the bottom up:
//   scenario.h/.cpp          the scenarios, read from text (pure)
//   http_answers.h/.cpp      the request head and the answers' bytes (pure)
//   waiter.h                 waiting for many sockets: waiter_epoll.cpp (Linux),
//                            waiter_poll.cpp (poll, WSAPoll: everywhere else)
//   labserver.h/.cpp         this class: listening, the limits, starting and
//                            stopping the loops, what was observed
//   labserver_loop.h/.cpp    the event loop: wait, then handle what is ready
//   labserver_connection.cpp one connection, phase by phase
//   labserver_main.cpp       the standalone program and its log
#pragma once

#include "http_answers.h"
#include "platform.h"
#include "scenario.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lab {

struct Connection;  // one client's state, and
struct Loop;        // one event loop's: the lab server's own (labserver_loop.h)

// What one client may take, and for how long. The defaults suit one user on
// loopback; labserver_main.cpp makes them stricter for a class.
struct Limits {
    double header_timeout = 10;  // the whole request head must arrive within this (also:
                                 // echo's longest silence)
    double send_timeout = 10;    // a client that takes none of our bytes for this long is dropped
    double drain_timeout = 2;    // after answering, wait this long at most for the client's FIN,
    std::uint64_t drain_bytes = 64 * 1024;  // reading (and dropping) at most this much
    double silent_hold = 60;                // silent: how long an unanswered connection is held
    std::uint64_t max_connections = 10000;  // open at once; over it: a 503 and a close
    std::uint64_t per_client = 10000;       // open at once from one client address
};

// What the server saw, added up over all its connections.
struct Observed {
    std::uint64_t connections = 0;  // accepted
    std::uint64_t finished = 0;     // done and closed
    std::uint64_t bytes_read = 0;   // from clients
    std::uint64_t eofs_seen = 0;    // clients' FINs (recv returned 0)
    std::uint64_t resets_seen = 0;  // clients' RSTs (recv or send failed with a reset)
    std::uint64_t refused = 0;      // over a connection limit: answered 503
    std::uint64_t timed_out = 0;    // closed at the header, send or silent timeout
    std::uint64_t flooded = 0;      // kept sending after the answer: closed at drain_bytes
};

// One line for the log or the narration, and its kind, a plural noun ("requests",
// "resets"...), so that a log can sum up a flood of one kind in a single line.
using EventSink = std::function<void(const char* kind, const std::string& line)>;

class Server {
public:
    // `loops`: how many threads run an event loop (each accepts and serves its
    // own connections).
    explicit Server(Scenario scenario, EventSink on_event = {}, Limits limits = {},
                    unsigned loops = 1);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Bind ADDRESS (an IPv4 or IPv6 address, written out: "0.0.0.0" or "::"
    // for every interface) and PORT (0: any free port), listen, and start
    // serving. After `count` accepted connections (0: no limit) it stops
    // accepting. False with `error` set if it cannot listen.
    bool start(const std::string& address, std::uint16_t port, std::string& error,
               std::uint64_t count = 0);

    std::uint16_t port() const { return port_; }
    std::string address() const { return address_; }  // "127.0.0.1:41234"

    // Block until accepting has ended (after `count`, or stop()) and every
    // connection is finished.
    void wait();

    // Wait up to `seconds` until `count` connections have been served to
    // their end (accepted, answered, closed). False if time ran out.
    bool wait_for_finished(std::uint64_t count, double seconds);

    // Stop accepting; give open connections up to `grace` seconds to end by
    // themselves (so their last events are reported), then close them.
    void stop(double grace = 0.25);

    Observed observed() const;

private:
    struct Counters {  // Observed, counted by every loop
        std::atomic<std::uint64_t> connections{0}, finished{0}, bytes_read{0}, eofs_seen{0},
            resets_seen{0}, refused{0}, timed_out{0}, flooded{0};
    };

    // labserver_loop.cpp: the loop, and its newcomers.
    void run_loop(net::socket_t waker);
    std::chrono::steady_clock::time_point look_at_each(Loop& loop);
    std::chrono::steady_clock::time_point watch_listener(Loop& loop);
    void accept_new(Loop& loop);
    void welcome(Loop& loop, net::socket_t fd, const std::string& client, std::uint64_t number);
    // labserver_connection.cpp: what a ready socket or a deadline means, phase by phase.
    void on_ready(Connection& c, unsigned events);
    void read_head(Connection& c);
    void echo_some(Connection& c, unsigned events);
    void read_and_drop(Connection& c);
    void on_deadline(Connection& c);
    void on_request(Connection& c);
    void refuse_request(Connection& c, const char* status, const std::string& body);
    void send_some(Connection& c);
    void sent_all(Connection& c);
    void finish(Connection& c);
    long receive(Connection& c, char* buffer, std::size_t size);
    void end_connection(Connection& c);
    // labserver.cpp: the limits, and what every loop shares.
    bool admit(net::socket_t fd, const std::string& client);
    void refuse(net::socket_t fd, const std::string& client, const std::string& why);
    void leave(const std::string& client);
    void stop_accepting();
    void wake_loops();
    void event(const char* kind, const std::string& client, const std::string& text);
    // Counted only when it is a tighter limit than max_connections.
    bool counts_per_client() const { return limits_.per_client < limits_.max_connections; }

    Scenario scenario_;
    EventSink on_event_;
    Limits limits_;
    unsigned loop_count_;
    std::uint16_t port_ = 0;
    std::string address_;
    std::uint64_t count_ = 0;
    net::socket_t listener_ = net::invalid_socket;  // set by start(), closed by wait()
    std::vector<net::socket_t> wakers_;  // one UDP socket per loop: a datagram wakes its poll
    std::vector<std::thread> loops_;
    std::atomic<bool> listening_{false}, stopping_{false};
    std::atomic<std::uint64_t> accepted_{0}, open_{0};
    Counters counters_;
    std::mutex clients_mutex_;                         // only for per_client_
    std::map<std::string, std::uint64_t> per_client_;  // open connections per client address
};

}  // namespace lab
