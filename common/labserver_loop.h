// labserver_loop.h - what one event loop of the lab server keeps: its waiter
// and its connections, each in a phase with a deadline. Only the loop's own
// thread touches any of it, so none of it needs a lock.
//
// Inside the lab server only (labserver_loop.cpp, labserver_connection.cpp).
#pragma once

#include "labserver.h"
#include "waiter.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace lab {

using Clock = std::chrono::steady_clock;

// The moment `seconds` from now: a phase's deadline.
inline Clock::time_point after(double seconds) {
    return Clock::now() +
           std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// One client. Its phase says what we wait for, and `deadline` when we stop
// waiting: every phase has one, so no client can keep a connection forever.
//
//   head --request--> send ----all sent----> drain --FIN--> closed
//     |                 ^ |                    (our FIN sent; we wait for the client's)
//     |       slow,drip | v drip: more later
//     |               pause
//     +--> echo (echo: read and send back until the client's FIN)
//     +--> hold (silent; stall once its bytes are sent: held unanswered;
//                keep-open once its answer is sent: held until the client's FIN)
struct Connection {
    enum Phase {
        head,   // reading the request head (until header_timeout)
        pause,  // slow, drip: waiting before sending more (until the scenario's time)
        send,   // sending the answer (while the client takes bytes within send_timeout)
        drain,  // answered and sent our FIN: waiting for the client's (drain_timeout)
        echo,   // echo: reading and sending back (until silent for header_timeout)
        hold,   // silent, stall, keep-open: holding the connection (silent_hold)
    };
    // echo: bytes read and not yet sent back, up to `end` in `out`, may go at `due`
    // (echo:SECS: SECS after they came; plain echo: at once).
    struct EchoPiece {
        Clock::time_point due;
        std::size_t end;
    };
    net::socket_t fd = net::invalid_socket;
    std::string client;                  // "127.0.0.1:51234"
    const Scenario* scenario = nullptr;  // the server's, or for mix, this connection's item
    Phase phase = head;
    Clock::time_point deadline;
    std::string head_text;  // head: the request head so far
    Request request;
    std::string out;                   // the answer, or echo's bytes not sent yet
    std::size_t sent = 0;              // bytes of `out` sent
    std::size_t release = 0;           // we may send `out` up to here (drip: piece by piece)
    std::uint64_t big_left = 0;        // big: body bytes still to send after `out`
    std::uint64_t big_at = 0;          // big: offset into the body
    std::uint64_t taken = 0;           // drain, hold, echo: bytes read
    std::vector<EchoPiece> pieces;     // echo: pieces read, not yet due, oldest first
    Clock::time_point quiet_deadline;  // echo: closed if nothing came or went back by then
    bool reading = true;               // hold, echo: still reading (no FIN, not too much)
    bool done = false;                 // close it at the loop's next look
    unsigned watched = 0;              // what the waiter was last told to watch it for
};

// What the waiter should watch a connection for, in its phase
// (labserver_connection.cpp).
unsigned wanted_events(const Connection& c);

struct Loop {
    explicit Loop(net::socket_t wake_socket) : waker(wake_socket) {}
    net::socket_t waker;  // a datagram to it wakes the loop (stop(), or accepting ended)
    Waiter waiter;
    std::vector<Waiter::Ready> ready;  // what the last wait found
    // Found by descriptor: the waiter reports descriptors, and a descriptor
    // is unique among the open ones.
    std::unordered_map<net::socket_t, Connection> connections;
    unsigned listener_watched = 0;
    Clock::time_point accept_again{};  // after accept failed: not before this
};

}  // namespace lab
