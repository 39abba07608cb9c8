// labserver.h - the lab server every chapter talks to when no HOST is given,
// also built as the standalone `labserver` program for a classroom.
//
// One thread per connection, blocking calls: the simplest server that is
// obviously correct, serves a thousand clients at once and stays out of the
// way of a benchmark. It answers according to a scenario (SPEC, "The lab
// server") and reports what it saw of the client (its FIN, a reset, how many
// bytes), so a chapter can narrate the other side of the connection.
#pragma once

#include "platform.h"

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace lab {

struct Scenario {
    enum Kind { hello, slow, drip, big, silent, reset, close, echo, truncate, chunked };
    Kind kind = hello;
    double seconds = 2.0;          // slow: delay before answering
    std::uint64_t count = 8;       // drip: bytes per piece
    std::uint64_t mebibytes = 64;  // big: size of the body in MiB
    std::uint64_t cut = no_cut;    // truncate, chunked: close after this many body bytes
    static constexpr std::uint64_t no_cut = ~std::uint64_t{0};
};

// truncate: the Content-Length it promises (1 MiB of the big pattern).
constexpr std::uint64_t truncate_promise = 1024 * 1024;

// "slow:0.2" -> Scenario. On failure returns false and sets `error`.
bool parse_scenario(const std::string& text, Scenario& scenario, std::string& error);

// The scenario lines for --help.
extern const char* const scenario_help;

// Byte `offset` of the body of a `big` response: printable lines of 64 bytes,
// repeating every 4096 bytes, so a client can check every byte it received.
char big_body_byte(std::uint64_t offset);

// What the server saw, added up over all its connections.
struct Observed {
    std::uint64_t connections = 0;  // accepted
    std::uint64_t finished = 0;     // done and closed
    std::uint64_t bytes_read = 0;   // from clients
    std::uint64_t eofs_seen = 0;    // clients' FINs (recv returned 0)
    std::uint64_t resets_seen = 0;  // clients' RSTs (recv or send failed with a reset)
};

class Server {
public:
    // on_event receives one line per thing worth narrating ("recv returned 0:
    // the client's FIN arrived"); it may be called from any connection thread.
    explicit Server(Scenario scenario, std::function<void(const std::string&)> on_event = {});
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Bind ADDR (an IPv4 or IPv6 literal) and PORT (0: any free port), listen,
    // and start accepting. After max_connections accepted connections (0: no
    // limit) it stops accepting. False with `error` set if it cannot listen.
    bool start(const std::string& address, std::uint16_t port, std::string& error,
               std::uint64_t max_connections = 0);

    std::uint16_t port() const { return port_; }
    std::string address() const { return address_; }  // "127.0.0.1:41234"

    // Block until the accept loop has ended (after max_connections, or stop())
    // and every connection is finished.
    void wait();

    // Wait up to `seconds` until `count` connections have been served to
    // their end (accepted, answered, closed). False if time ran out.
    bool wait_for_finished(std::uint64_t count, double seconds);

    // Stop accepting; give open connections up to `grace` seconds to end by
    // themselves (so their last events are reported), then cut them
    // (shutdown) and wait for their threads.
    void stop(double grace = 0.25);

    Observed observed() const;

private:
    void accept_loop();
    void serve(net::socket_t fd, std::string client);
    void serve_echo(net::socket_t fd, const std::string& client);
    void serve_request(net::socket_t fd, const std::string& client);
    void finish(net::socket_t fd, const std::string& client);
    long receive(net::socket_t fd, const std::string& client, char* buffer, std::size_t size);
    bool send_all(net::socket_t fd, const std::string& client, const char* data, std::size_t size);
    bool pause(double seconds);  // false when stop() interrupted it
    void end_connection(net::socket_t fd);
    void event(const std::string& text);

    Scenario scenario_;
    std::function<void(const std::string&)> on_event_;
    net::socket_t listener_ = net::invalid_socket;
    std::uint16_t port_ = 0;
    std::string address_;
    std::uint64_t max_connections_ = 0;
    std::thread accept_thread_;

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    bool stopping_ = false;
    bool accepting_ = false;
    std::set<net::socket_t> open_;  // connections being served
    std::uint64_t active_ = 0;      // connection threads still running
    Observed observed_;
};

}  // namespace lab
