// labserver.h - the lab server every chapter talks to when no HOST is given,
// also built as the standalone `labserver` program for a classroom.
//
// One thread runs an event loop (labserver --loops N runs N): non-blocking
// sockets, one wait for the listening socket and every connection at once
// (poll(), WSAPoll() on Windows, epoll on Linux), and a small state per
// connection: reading the request head, pausing (slow, drip), sending,
// draining after the answer. Each state has a deadline, so every wait is
// bounded. This is chapter 5's idea on the server's side: no thread per
// connection, no lock held across a call, so thousands of clients cost a few
// hundred bytes each.
//
// It answers according to a scenario (SPEC, "The lab server") and reports
// what it saw of the client (its FIN, a reset, how many bytes), so a chapter
// can narrate the other side of the connection. Shared by a class, no client
// can hold it: see Limits.
#pragma once

#include "platform.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>
#include <string>

namespace lab {

struct Scenario {
    enum Kind { hello, slow, drip, big, silent, reset, close, echo, truncate, stall, chunked, mix };
    Kind kind = hello;
    double seconds = 2.0;          // slow: delay before answering
    std::uint64_t count = 8;       // drip: bytes per piece
    std::uint64_t mebibytes = 64;  // big: size of the body in MiB
    std::uint64_t cut = no_cut;    // truncate, stall, chunked: stop after this many body bytes
    static constexpr std::uint64_t no_cut = ~std::uint64_t{0};
    // mix: connection k (counted from 1, in the order accepted) is answered
    // by items[(k - 1) % items.size()], so one server has fast, slow, silent and
    // resetting peers at once (chapter 5's demo).
    std::vector<Scenario> items;
};

// mix with no list: eight connections, each behaving differently.
extern const char* const default_mix;

// truncate: the Content-Length it promises (1 MiB of the big pattern).
constexpr std::uint64_t truncate_promise = 1024 * 1024;

// "2", "0.25": digits with at most one decimal point; nothing else (no sign,
// space, exponent or hex).
bool parse_decimal(const std::string& text, double& value);

// An IPv4 or IPv6 address written out in full ("127.0.0.1", "::1", "0.0.0.0"),
// as inet_pton takes it: not "0" or "127.1", which getaddrinfo would take.
bool is_address(const std::string& text);

// What the head of a request told us.
struct Request {
    std::string line;     // "GET / HTTP/1.1", without the line end
    std::string target;   // "/"
    bool http09 = false;  // "GET /" with no version: answer with the body alone
};

// Has the whole request head arrived? `head` is every byte read so far.
//   complete    a request line (RFC 9112, 3) and header lines up to the first
//               empty line; or the tutorial's "GET /\n", an HTTP/0.9 request,
//               complete at its newline. Lines may end in CRLF or a bare LF
//               (RFC 9112, 2.2), and one or two empty lines may come first.
//   incomplete  no error so far: wait for more bytes
//   bad         these bytes cannot be the start of a request (binary bytes, a
//               bare CR, a header line with no colon or a folded one): answer 400
// Once complete or bad, more bytes after `head` do not change the answer.
enum class HeadStatus { incomplete, complete, bad };
HeadStatus parse_head(const std::string& head, Request& request);

// "slow:0.2" -> Scenario. On failure returns false and sets `error`.
bool parse_scenario(const std::string& text, Scenario& scenario, std::string& error);

// The scenario lines for --help.
extern const char* const scenario_help;

// Byte `offset` of the body of a `big` response: printable lines of 64 bytes,
// repeating every 4096 bytes, so a client can check every byte it received.
char big_body_byte(std::uint64_t offset);

// What one client may take, and for how long. The defaults suit one user on
// loopback; labserver_main.cpp makes them stricter for a class.
struct Limits {
    double header_timeout = 10;  // the whole request head must arrive within this (also:
                                 // echo's longest silence)
    double send_timeout = 10;    // a client that takes none of our bytes for this long is dropped
    double drain_timeout = 2;    // after answering, wait this long at most for the client's FIN,
    std::uint64_t drain_bytes = 64 * 1024;  // reading (and dropping) at most this much
    double silent_hold = 60;     // silent: how long an unanswered connection is held
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

    struct Connection;  // one client's state (labserver.cpp)

private:
    struct Counters {  // Observed, counted by every loop
        std::atomic<std::uint64_t> connections{0}, finished{0}, bytes_read{0}, eofs_seen{0},
            resets_seen{0}, refused{0}, timed_out{0}, flooded{0};
    };

    void run_loop(net::socket_t waker);
    bool accept_new(std::vector<std::unique_ptr<Connection>>& connections);
    bool admit(net::socket_t fd, const std::string& client);
    void refuse(net::socket_t fd, const std::string& client, const std::string& why);
    void on_ready(Connection& c, short revents);
    void on_deadline(Connection& c);
    void on_request(Connection& c);
    void refuse_request(Connection& c, const char* status, const std::string& body);
    void send_some(Connection& c);
    void sent_all(Connection& c);
    void finish(Connection& c);
    long receive(Connection& c, char* buffer, std::size_t size);
    void end_connection(Connection& c);
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
    std::mutex clients_mutex_;                          // only for per_client_
    std::map<std::string, std::uint64_t> per_client_;  // open connections per client address
};

}  // namespace lab
