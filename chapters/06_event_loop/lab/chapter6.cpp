// Lab 6 starter: chapter 6 with its socket work taken out (see ../README.md).
//
// Write the TODO steps, in order, where they are; leave the rest of the file
// as it is. Build and grade from the repository's root folder:
//
//   make lab6 && ./lab6       runs, and stops at the first step not written
//   make check-lab6             numbered checks of your program, and a score
//
// A run stops at the first unwritten step it reaches, which is not always the
// lowest number. A run reaches them in the order 1, 4, 2 (3 only when a
// deadline passes). A step not written in a connection's callback ends
// only that connection; step 4 is the loop's own turn.
//
// (Made from ../chapter6.cpp by tests/lab_starters.py --write.)
//
// Chapter 6 - an event loop: what Python's selectors and asyncio do underneath.
//
// Chapter 5 serves many connections on one thread, and pays for it on every
// wake-up: select() and poll() take the whole list of sockets each time, the
// kernel checks each one, and the loop looks at each answer, however few are
// ready. Every real event loop (asyncio, libuv, nginx, redis) takes the
// same three steps away from that, and this chapter takes them:
//
//   1. The kernel keeps the list (poller.h). Each socket is registered once,
//      with epoll_ctl, and changed only when what it waits for changes; a
//      wait hands back only the ready sockets. A wake-up costs what is
//      ready, not what is open. (Windows has no epoll: there the same
//      interface runs on WSAPoll, as CPython's selectors falls back.)
//   2. One heap for every deadline: each connection has one timer in it,
//      and the wait lasts until the nearest (asyncio's call_later). A
//      deadline renewed by progress is not searched for in the heap: its
//      timer, when it comes, sees the new deadline and goes back in.
//   3. A ready queue of callbacks (asyncio's _ready): a ready report, a due
//      timer, or a connection that wants another turn puts a callback in
//      the queue; each turn runs the ones queued before it, then waits. The
//      wait does not sleep while callbacks are queued.
//
// And one choice the kernel offers that chapter 5 could not: level- or
// edge-triggered (--edge). Level-triggered, the default (and all that
// select, poll and Python's selectors do), reports a socket for as long as it
// is ready. Edge-triggered reports it when something new happens to it: the
// reader must then read until EAGAIN, because bytes left unread are not
// reported again until more arrive (a loop that stops early can wait out
// its --timeout with the bytes in the kernel: the lab's mistake
// edge-no-drain). Registered for reading and writing at once, an
// edge-triggered socket never needs its registration changed.
//
// The turn of the loop, one thread (asyncio's BaseEventLoop._run_once):
//
//   1. wait for readiness: until the nearest timer, or 0 with callbacks queued
//   2. queue a callback for each ready socket, then for each timer due
//   3. run the callbacks queued so far; those they queue wait for the next turn
//
// Each connection is chapter 5's: connecting, sending, receiving, done or
// failed, stepped as far as its socket allows without blocking.
//
// Run it:  make chapter6 && ./chapter6
//          ./chapter6 --connections 8 --scenario mix --timeout 2.5
//          ./chapter6 --connections 10000 --quiet --edge

#include "chapter.h"
#include "platform.h"
#include "poller.h"
#include "response.h"
#include "trace.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <queue>
#include <string>
#include <vector>

using chapter::Failure;
using chapter::narrate;
using chapter::Options;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t buffer_size = 64 * 1024;  // one buffer, shared by every connection
constexpr int recv_calls_per_turn = 16;         // at most 1 MiB per connection per turn
constexpr std::size_t most_connections = 100000;
constexpr std::size_t narrate_each_up_to = 10;  // more: a summary instead of a line each

std::string connections_text;  // --connections, checked in main
std::string output_dir;        // --output
bool edge = false;             // --edge

const chapter::Program program = {
    "chapter6",
    "Chapter 6: an event loop on epoll (poll where there is none): sockets registered once, a "
    "timer heap and a ready queue of callbacks.",
    "hello",
    {{"connections", "N",
      "connections at once, 1 to 100000 (default 5); with more than 1, stdout gets one line "
      "per connection: INDEX ok|failed BYTES bytes SECONDS s [ERROR]",
      &connections_text, nullptr},
     {"edge", nullptr,
      "edge-triggered (EPOLLET): each socket is reported when something new happens to it, "
      "and is read until EAGAIN (epoll only)",
      nullptr, &edge},
     {"output", "DIR",
      "write the response of connection K to DIR/response-K; stdout gets the lines", &output_dir,
      nullptr}},
    "With --connections 1, stdout gets exactly the bytes received; narration and errors go to\n"
    "stderr. Exit status: 0 response read to the end, 1 network failure, 2 usage error.\n"
    "With more connections (or --output), stdout gets one line per connection as it ends,\n"
    "INDEX ok|failed BYTES bytes SECONDS s [ERROR]. Exit status: 0 only when every\n"
    "connection got its whole response, 1 when any did not, 2 usage error.\n"};

enum class State { connecting, sending, receiving, done, failed };

// One connection: all the loop knows about it, a few hundred bytes. The
// bytes received go out as they arrive; the ResponseReader keeps only the
// line it is reading.
struct Connection {
    std::size_t index = 0;  // 1..N, as printed; the poller's key is index - 1
    State state = State::connecting;
    net::Socket sock;
    unsigned watching = 0;              // what the poller watches its socket for; 0: not registered
    const addrinfo* address = nullptr;  // the address being tried
    Clock::time_point started, deadline;
    std::size_t sent = 0;  // bytes of the request sent
    chapter::ResponseReader response;
    std::FILE* file = nullptr;  // --output: open while bytes arrive
    std::string error;          // why it failed (or why the last address failed)
};

struct Loop;
using Step = void (*)(Loop&, Connection&);

// A callback in the ready queue: a step to run for one connection.
struct Callback {
    Step run;
    Connection* connection;
};

// A timer in the heap: at `when`, look at `connection`'s deadline (nullptr:
// --max-time, the end of the run).
struct Timer {
    Clock::time_point when;
    Connection* connection;
};
struct Later {  // the heap's order: the soonest timer on top
    bool operator()(const Timer& a, const Timer& b) const { return a.when > b.when; }
};

// What the status line and the last narration report, each counted where it
// happens (connections in std::size_t, whole-run totals in std::uint64_t).
struct Tally {
    std::size_t in_flight = 0;        // sockets open now
    std::size_t complete = 0;         // ended with their whole response
    std::size_t failed = 0;           // ended without it
    std::uint64_t waits = 0;          // epoll_wait (or poll) calls
    std::uint64_t handed = 0;         // sockets handed to the kernel, summed over every wait
    std::uint64_t ready_reports = 0;  // sockets reported ready, summed
    std::size_t most_ready = 0;       // the most reported by one wait
    std::uint64_t registrations = 0;  // epoll_ctl calls: ADD once, MOD when a wish changes
    std::uint64_t callbacks = 0;      // callbacks run from the ready queue
    std::uint64_t timers = 0;         // timers that came due
    std::uint64_t calls = 0;          // connect, getsockopt, send and recv
    std::uint64_t spurious = 0;       // recv calls that found nothing after a ready report
    std::uint64_t bytes = 0;          // received, over every connection
};

// The loop: the options, the poller, the ready queue, the timer heap, the one
// receive buffer and the tally.
struct Loop {
    Loop(const Options& options, std::vector<Connection>& connections)
        : options(options),
          connections(connections),
          poller(edge),
          lines(connections.size() > 1 || !output_dir.empty()),
          narrate_each(connections.size() <= narrate_each_up_to) {}
    const Options& options;
    std::vector<Connection>& connections;
    poller::Poller poller;
    const bool lines;         // stdout gets one line per connection
    const bool narrate_each;  // narrate every connection (a few of them)
    std::string request;
    std::deque<Callback> ready;  // the ready queue
    std::priority_queue<Timer, std::vector<Timer>, Later> timers;
    std::vector<poller::Ready> reports;       // what the last wait found
    std::deque<Connection*> want_descriptor;  // out of descriptors: waiting for one to free
    std::size_t room = SIZE_MAX;  // at most this many of ours open at once (chapter::make_room_for)
    std::vector<char> buffer = std::vector<char>(buffer_size);
    Clock::time_point woke;  // when the last wait returned: the deadlines are judged by it
    std::size_t open = 0;    // connections not ended yet
    Tally tally;
};

Clock::duration as_duration(double seconds) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

bool ended(const Connection& c) {
    return c.state == State::done || c.state == State::failed;
}

// asyncio's call_soon: run `step` for c in the next turn of the loop.
void call_soon(Loop& loop, Connection& c, Step step) {
    loop.ready.push_back({step, &c});
}

// asyncio's call_at: look at c's deadline at `when` (c: nullptr for --max-time).
void call_at(Loop& loop, Clock::time_point when, Connection* c) {
    loop.timers.push({when, c});
}

// "connection 3: ..." narration, only for a few connections.
void say(const Loop& loop, const Connection& c, const std::string& text) {
    if (loop.narrate_each) narrate(loop.options, "connection %zu: %s", c.index, text.c_str());
}

// ---------------------------------------------------------------------------
// Registration: once, then changed only when the wish changes.

// Watch c's socket for `events`: epoll_ctl ADD the first time, MOD after,
// nothing when the wish is the one registered. Chapter 5 told the kernel
// every socket's wish on every wait; here the kernel remembers.
void watch(Loop& loop, Connection& c, unsigned events) {
    // TODO 1: register the socket once (add), then only when its wish changes (modify).
    chapter::todo(1, "register the socket once (add), then only when its wish changes (modify)");
}

// ---------------------------------------------------------------------------
// The end of a connection: close it, print its line.

void start_connect(Loop& loop, Connection& c);

void close_socket_of(Loop& loop, Connection& c) {
    net::socket_t fd = c.sock.release();
    loop.poller.forget(fd);
    c.watching = 0;
    traced(net::close_socket(fd), "close", fd);
    --loop.tally.in_flight;
    // A descriptor is free: the first connection waiting for one starts.
    while (!loop.want_descriptor.empty()) {
        Connection* next = loop.want_descriptor.front();
        loop.want_descriptor.pop_front();
        if (!ended(*next)) return call_soon(loop, *next, start_connect);
    }
}

// Line on stdout (with --connections above 1 or --output):
//   3 ok 127 bytes 0.002 s
//   7 failed 0 bytes 0.501 s recv: no data for 0.5 s
void finish(Loop& loop, Connection& c, State how, const std::string& error = "") {
    c.state = how;
    --loop.open;
    if (!error.empty()) c.error = error;
    if (c.sock.valid()) close_socket_of(loop, c);
    if (c.file) std::fclose(c.file);
    c.file = nullptr;
    double seconds = chapter::seconds_since(c.started);
    if (how == State::done) {
        ++loop.tally.complete;
        say(loop, c,
            (c.response.status_line().empty() ? "no status line" : c.response.status_line()) +
                "; " + c.response.how_it_ended());
    } else {
        ++loop.tally.failed;
        say(loop, c, "failed: " + c.error);
    }
    if (!loop.lines) return;
    std::string text = chapter::connection_line(c.index, how == State::done,
                                                c.response.bytes_taken(), seconds, c.error);
    chapter::write_lines_out(text.data(), text.size());
}

// Where the received bytes go: stdout (one connection), DIR/response-K
// (--output), or nowhere (counted only). Written at once, never gathered.
void deliver(Loop& loop, Connection& c, const char* data, std::size_t size) {
    loop.tally.bytes += size;
    if (!output_dir.empty()) {
        std::string path = output_dir + "/response-" + std::to_string(c.index);
        if (!c.file) {
            c.file = std::fopen(path.c_str(), "wb");
            if (!c.file) throw Failure("open " + path, std::strerror(errno));
            std::setvbuf(c.file, nullptr, _IONBF, 0);  // no stdio buffer holding our bytes
        }
        if (std::fwrite(data, 1, size, c.file) != size)
            throw Failure("write " + path, std::strerror(errno));
    } else if (!loop.lines) {
        chapter::write_lines_out(data, size);
    }
}

// ---------------------------------------------------------------------------
// Steps: each does what the socket allows now, and returns without waiting.

void send_request(Loop& loop, Connection& c);
void receive(Loop& loop, Connection& c);

// Start a non-blocking connect to c.address (or the next address, if this
// one fails at once), and register the socket: writable is how a connect
// ends, connected or refused [claim:nonblocking-connect-writable-so-error-zero]
// [claim:nonblocking-connect-refused-via-so-error]. Edge-triggered, it is
// registered for reading too, once for good.
void start_connect(Loop& loop, Connection& c) {
    c.deadline = Clock::now() + as_duration(loop.options.timeout);
    if (loop.tally.in_flight >= loop.room) {  // our share of descriptors is in use
        c.error = "socket: " + std::to_string(loop.room) + " of ours open, the most at once";
        loop.want_descriptor.push_back(&c);
        return;
    }
    for (; c.address; c.address = c.address->ai_next) {
        const addrinfo* a = c.address;
        net::Socket sock(traced(::socket(a->ai_family, a->ai_socktype, a->ai_protocol), "socket",
                                a->ai_family == AF_INET6 ? "AF_INET6" : "AF_INET", "SOCK_STREAM"));
        if (!sock.valid()) {
            int err = net::last_error();
            c.error = text::failure_text("socket", err);
            // Out of descriptors (EMFILE): one of ours will free one when it
            // ends. Wait for that, rather than fail (nothing frees one when
            // none of ours is open).
            if (net::is_out_of_descriptors(err) && loop.tally.in_flight > 0) {
                loop.want_descriptor.push_back(&c);
                return;
            }
            continue;
        }
        net::no_sigpipe(sock.get());
        if (net::set_nonblocking(sock.get(), true) != 0) {
            c.error = Failure("set O_NONBLOCK", net::last_error()).what();
            continue;
        }
        std::string where = text::address_text(a->ai_addr);
        say(loop, c, "trying " + where);
        ++loop.tally.calls;
        int rc = traced(::connect(sock.get(), a->ai_addr, static_cast<socklen_t>(a->ai_addrlen)),
                        "connect", sock.get(), where);
        int err = net::last_error();
        if (rc != 0 && !net::is_in_progress(err)) {  // refused at once, unreachable...
            c.error = Failure("connect " + where, err).what();
            continue;
        }
        c.sock = std::move(sock);
        ++loop.tally.in_flight;
        c.state = State::connecting;
        c.deadline = Clock::now() + as_duration(loop.options.timeout);
        watch(loop, c, edge ? poller::readable | poller::writable : poller::writable);
        if (rc == 0) call_soon(loop, c, send_request);  // connected at once (POSIX allows it)
        return;
    }
    finish(loop, c, State::failed,
           c.error.empty() ? "connect " + loop.options.host + ": no address to try" : c.error);
}

// This address failed (c.error says why): close its socket and try the next.
void try_next_address(Loop& loop, Connection& c) {
    say(loop, c, c.error);
    close_socket_of(loop, c);
    c.address = c.address->ai_next;
    start_connect(loop, c);
}

// The connect has ended: SO_ERROR says how, 0 for connected, as in chapter 5.
void connect_ended(Loop& loop, Connection& c) {
    int so_error = 0;
    socklen_t length = sizeof so_error;
    ++loop.tally.calls;
    int rc = ::getsockopt(c.sock.get(), SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&so_error),
                          &length);
    if (rc != 0) so_error = net::last_error();  // the call itself failed: take its error
    trace::line("getsockopt(" + std::to_string(c.sock.get()) + ", SO_ERROR) = " +
                (rc != 0 ? "-1 " + net::error_name(so_error)
                         : "0, value " + (so_error ? net::error_name(so_error) : "0 (connected)")));
    std::string where = text::address_text(c.address->ai_addr);
    if (so_error == 0) {
        say(loop, c, "connected to " + where);
        return send_request(loop, c);
    }
    c.error = Failure("connect " + where, so_error).what();
    try_next_address(loop, c);
}

// Send what the socket takes now; when it would block, the poller reports
// it writable later. All sent: wait for the answer.
void send_request(Loop& loop, Connection& c) {
    c.state = State::sending;
    while (c.sent < loop.request.size()) {
        ++loop.tally.calls;
        long n = traced(::send(c.sock.get(), loop.request.data() + c.sent,
                               static_cast<int>(loop.request.size() - c.sent), net::send_flags),
                        "send", c.sock.get(), loop.request.size() - c.sent);
        if (n >= 0) {
            c.sent += static_cast<std::size_t>(n);
            c.deadline = Clock::now() + as_duration(loop.options.timeout);
            continue;
        }
        int err = net::last_error();
        if (net::is_interrupted(err)) continue;
        if (net::is_would_block(err)) return;
        return finish(loop, c, State::failed, Failure("send", err).what());
    }
    say(loop, c, "sent " + std::to_string(c.sent) + " bytes");
    c.state = State::receiving;
    c.deadline = Clock::now() + as_duration(loop.options.timeout);
    if (!edge) return watch(loop, c, poller::readable);  // MOD: from writable to readable
    // Edge-triggered: the report that brought us here may have said
    // readable too, and it will not come again: read now.
    receive(loop, c);
}

// Read what has arrived, until recv would block, or at most
// recv_calls_per_turn times, so a fast peer cannot keep the loop from the
// others. Level-triggered, the poller reports the socket again while bytes
// wait [claim:epoll-level-reports-again-while-bytes-wait]. Edge-triggered it
// will not [claim:epoll-edge-reports-once-until-new-bytes]: the connection
// queues its own next turn (call_soon), and only EAGAIN ends its reading
// until the next report.
void receive(Loop& loop, Connection& c) {
    // TODO 2: recv until EAGAIN or complete; with --edge, call_soon at the turn's cap.
    chapter::todo(2, "recv until EAGAIN or complete; with --edge, call_soon at the turn's cap");
}

// A ready report: step the connection as its state says.
void step(Loop& loop, Connection& c) {
    switch (c.state) {
        case State::connecting:
            return connect_ended(loop, c);
        case State::sending:
            return send_request(loop, c);
        case State::receiving:
            return receive(loop, c);
        default:
            return;
    }
}

// Its deadline passed: --timeout with no progress. Only this connection ends
// (or, while connecting, moves on to its next address).
void deadline_passed(Loop& loop, Connection& c) {
    std::string limit = chapter::seconds_text(loop.options.timeout);
    if (!c.sock.valid())  // still waiting for a descriptor
        return finish(loop, c, State::failed, c.error + ", none free for " + limit);
    if (c.state == State::connecting) {
        c.error =
            "connect " + text::address_text(c.address->ai_addr) + ": no answer within " + limit;
        return try_next_address(loop, c);
    }
    if (c.state == State::sending)
        return finish(loop, c, State::failed, "send: the server accepted nothing for " + limit);
    finish(loop, c, State::failed, "recv: no data for " + limit);
}

// A connection's timer came due. Progress since it was set moved the
// deadline later: back in the heap at the new one. Else the deadline has
// passed, judged at the moment the wait woke, after the turn's ready reports.
void timer_fired(Loop& loop, Connection& c) {
    // TODO 3: a due timer: re-arm it if the deadline moved, else the deadline passed.
    chapter::todo(3, "a due timer: re-arm it if the deadline moved, else the deadline passed");
}

// --max-time: every connection not ended fails now.
void out_of_time(Loop& loop) {
    for (Connection& c : loop.connections)
        if (!ended(c))
            finish(loop, c, State::failed,
                   "--max-time: no complete response within " +
                       chapter::seconds_text(loop.options.max_time));
}

// ---------------------------------------------------------------------------
// The event loop.

// How long the wait may last: 0 with callbacks queued, else until the
// nearest timer (with the status line, 0.1 s at most); whole milliseconds,
// rounded up, so it never wakes just before a deadline. Timers of connections
// that have ended are dropped from the top of the heap here.
int wait_limit_ms(Loop& loop, bool status_line) {
    if (!loop.ready.empty()) return 0;
    while (!loop.timers.empty() && loop.timers.top().connection &&
           ended(*loop.timers.top().connection))
        loop.timers.pop();
    Clock::time_point next = Clock::now() + std::chrono::hours(24);
    if (!loop.timers.empty()) next = std::min(next, loop.timers.top().when);
    if (status_line) next = std::min(next, Clock::now() + std::chrono::milliseconds(100));
    auto left = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now());
    return static_cast<int>(std::max(left, std::chrono::milliseconds(0)).count());
}

// One wait: each ready socket's connection gets a callback in the queue.
void wait_for_readiness(Loop& loop, int timeout_ms) {
    int n = loop.poller.wait(timeout_ms, loop.reports);
    if (n < 0 && !net::is_interrupted(net::last_error()))
        throw Failure(loop.poller.name(), net::last_error());
    loop.woke = Clock::now();
    Tally& tally = loop.tally;
    ++tally.waits;
    tally.handed += loop.poller.handed_last_wait();
    tally.ready_reports += loop.reports.size();
    tally.most_ready = std::max(tally.most_ready, loop.reports.size());
    for (const poller::Ready& r : loop.reports)
        call_soon(loop, loop.connections[r.key], step);
    if (loop.narrate_each)
        narrate(loop.options, "wait %" PRIu64 ": %zu open, %zu ready, %zu callbacks queued",
                tally.waits, loop.open, loop.reports.size(), loop.ready.size());
}

// The turn of the comment at the top: wait, queue, run.
void run_turn(Loop& loop, bool status_line) {
    // TODO 4: wait (0 if callbacks wait), queue ready sockets and due timers, run them.
    chapter::todo(4, "wait (0 if callbacks wait), queue ready sockets and due timers, run them");
}

void show_progress(const Loop& loop) {
    const Tally& tally = loop.tally;
    char status[160];
    std::snprintf(status, sizeof status,
                  "%.1f s: %zu in flight, %zu complete, %zu failed of %zu; %" PRIu64
                  " bytes; %" PRIu64 " waits",
                  chapter::seconds_since(loop.options.started), tally.in_flight, tally.complete,
                  tally.failed, loop.connections.size(), tally.bytes, tally.waits);
    chapter::show_status(loop.options, status);
}

// Start every connect at once, each with its timer, then turn until every
// connection has ended. --max-time is one more timer in the same heap.
void run_loop(Loop& loop, const addrinfo* first) {
    if (loop.options.max_time > 0)  // ends the run a little early, so it exits within it
        call_at(loop,
                loop.options.started + as_duration(loop.options.max_time) -
                    std::chrono::milliseconds(50),
                nullptr);
    loop.open = loop.connections.size();
    for (Connection& c : loop.connections) {
        c.started = Clock::now();
        c.address = first;
        try {
            start_connect(loop, c);
        } catch (const Failure& failure) {  // its registration failed
            finish(loop, c, State::failed, failure.what());
        }
        if (!ended(c)) call_at(loop, c.deadline, &c);
    }
    bool status_line = !loop.options.quiet && net::stderr_is_terminal();
    while (loop.open > 0) {
        run_turn(loop, status_line);
        if (status_line) show_progress(loop);
    }
    chapter::show_status(loop.options, "");
}

// ---------------------------------------------------------------------------
// main's steps.

// The command line: every chapter's options, then this one's. Returns -1 to
// go on, else the exit status (0 after --help, 2 for a usage error).
int parse_command_line(int argc, char** argv, Options& options, std::size_t& count) {
    int status = chapter::parse_command_line(argc, argv, program, options);
    if (status >= 0) return status;
    if (!connections_text.empty() &&
        !chapter::parse_count(connections_text, most_connections, count))
        return chapter::usage_error(program, "--connections: '" + connections_text +
                                                 "' is not a whole number from 1 to 100000");
    if (edge && !poller::Poller::has_edge_mode())
        return chapter::usage_error(program,
                                    "--edge: this build waits with poll, which has no "
                                    "edge-triggered mode (epoll has: Linux)");
    std::error_code error;
    if (!output_dir.empty() && !std::filesystem::is_directory(output_dir, error))
        return chapter::usage_error(program, "--output: '" + output_dir + "' is not a directory");
    return -1;
}

void narrate_summary(const Loop& loop) {
    const Tally& t = loop.tally;
    narrate(loop.options,
            "%zu complete, %zu failed in %.3f s; %" PRIu64 " waits (%s) for %" PRIu64
            " ready reports (at most %zu at once), handing the kernel %" PRIu64
            " sockets in all; %" PRIu64 " registrations; %" PRIu64 " callbacks, %" PRIu64
            " timers due; %" PRIu64 " connect, getsockopt, send and recv calls; %" PRIu64
            " recv found nothing after a ready report",
            t.complete, t.failed, chapter::seconds_since(loop.options.started), t.waits,
            loop.poller.name(), t.ready_reports, t.most_ready, t.handed, t.registrations,
            t.callbacks, t.timers, t.calls, t.spurious);
}

// 0 when every connection got its whole response. Else 1, and why on stderr:
// one connection's error, or how many failed.
int exit_status(const Loop& loop) {
    if (loop.tally.failed == 0) return 0;
    std::string why = loop.connections[0].error;
    if (loop.lines)
        why = std::to_string(loop.tally.failed) + " of " + std::to_string(loop.connections.size()) +
              " connections failed";
    chapter::print_line(std::string(program.name) + ": " + why);
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    net::Startup startup;
    Options options;
    std::size_t count = 5;
    int status = parse_command_line(argc, argv, options, count);
    if (status >= 0) return status;

    try {
        // Only without HOST; its caps are raised to `count`, so none of ours gets a 503.
        auto server = chapter::start_builtin_server(options, count);
        std::size_t room =
            chapter::make_room_for(options, count, server != nullptr, !output_dir.empty(),
                                   "wait for one of ours to close");
        chapter::AddressList addresses = chapter::resolve(options);  // once, for every connection

        std::vector<Connection> connections(count);
        for (std::size_t i = 0; i < count; ++i)
            connections[i].index = i + 1;
        Loop loop(options, connections);
        loop.room = room;
        loop.request = chapter::http_request(options);
        narrate(options, "%zu connection%s on one thread, waiting with %s%s", count,
                count == 1 ? "" : "s", loop.poller.name(), edge ? ", edge-triggered" : "");
        run_loop(loop, addresses.get());
        narrate_summary(loop);

        server.reset();  // stop the built-in server first: its last lines come before ours
        return exit_status(loop);
    } catch (const chapter::StdoutFailed& failed) {
        return chapter::report(program, failed.failure);
    } catch (const Failure& failure) {
        return chapter::report(program, failure);
    }
}
