// Lab 5 starter: chapter 5 with its socket work taken out (see ../README.md).
//
// Write the TODO steps, in order, where they are; leave the rest of the file
// as it is. Build and grade from the repository's root folder:
//
//   make lab5 && ./lab5       runs, and stops at the first step not written
//   make check-lab5             numbered checks of your program, and a score
//
// A run stops at the first unwritten step it reaches, which is not always the
// lowest number. A run reaches them in the order 5, 1, 2, 3 (with --wait
// select: 4, 1, 2, 3). In the event loop a step not written ends only the
// connection that reached it.
//
// (Made from ../chapter5.cpp by tests/lab_starters.py --write.)
//
// Chapter 5 - many connections on one thread: what non-blocking sockets are for.
//
// The tutorial puts one socket on a thread of its own and makes it
// non-blocking. One socket does not need that: a blocking socket with a
// timeout does the same job (chapter 2). Non-blocking sockets exist for the
// next step: one thread that serves many connections at once, each at its own
// pace, none holding up the others. No call may ever wait for one connection,
// so each connection keeps its own state, and the thread waits in one call
// for any of them:
//
// clang-format off
//   state        waits for                    when it is ready
//   -----------  ---------------------------  -------------------------------------------
//   connecting   writable (or an error)       SO_ERROR 0: sending; an error: the next
//                                             address, or failed
//   sending      writable                     send what fits; all sent: receiving
//   receiving    readable                     recv until it would block; the response
//                                             complete: done
//   done/failed  nothing: closed, its line printed
// clang-format on
//
// Every connection has its own deadline, --timeout after its last progress,
// and --max-time bounds the whole run. The loop, one thread:
//
//   1. say what each connection in flight waits for (its state decides)
//   2. wait, in select() or poll() (--wait), for any of them or the nearest deadline
//   3. step each ready connection as far as it goes without blocking
//   4. fail each connection whose deadline has passed: only that one
//
// Run it:  make chapter5 && ./chapter5
//          ./chapter5 --connections 8 --scenario mix --timeout 2.5 (slow, silent and reset
//                                                       peers: the others finish first)
//          ./chapter5 --connections 1100 --wait select --quiet     (the FD_SETSIZE wall)

#include "chapter.h"
#include "platform.h"
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
#include <filesystem>
#include <string>
#include <vector>

using chapter::Failure;
using chapter::narrate;
using chapter::Options;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t buffer_size = 64 * 1024;  // one buffer, shared by every connection
constexpr int recv_calls_per_turn = 16;         // at most 1 MiB per connection per wake-up
constexpr std::size_t most_connections = 100000;
constexpr std::size_t narrate_each_up_to = 10;  // more: a summary instead of a line each

std::string connections_text;  // --connections, checked in main
std::string wait_text;         // --wait
std::string output_dir;        // --output

const chapter::Program program = {
    "chapter5",
    "Chapter 5: many connections on one thread, with non-blocking sockets and select() or "
    "poll().",
    "hello",
    {{"connections", "N",
      "connections at once, 1 to 100000 (default 5); with more than 1, stdout gets one line "
      "per connection: INDEX ok|failed BYTES bytes SECONDS s [ERROR]",
      &connections_text, nullptr},
     {"wait", "select|poll",
      "the waiting call (default poll); select cannot watch a descriptor beyond FD_SETSIZE",
      &wait_text, nullptr},
     {"output", "DIR",
      "write the response of connection K to DIR/response-K; stdout gets the lines", &output_dir,
      nullptr}},
    "With --connections 1, stdout gets exactly the bytes received; narration and errors go to\n"
    "stderr. Exit status: 0 response read to the end, 1 network failure, 2 usage error.\n"
    "With more connections (or --output), stdout gets one line per connection as it ends,\n"
    "INDEX ok|failed BYTES bytes SECONDS s [ERROR]. Exit status: 0 only when every\n"
    "connection got its whole response, 1 when any did not, 2 usage error.\n"};

enum class State { connecting, sending, receiving, done, failed };

// One connection: all the loop knows about it. No response is kept: the
// bytes go out (stdout, a file, or nowhere) as they arrive, and the
// ResponseReader keeps only the line it is reading. A few hundred bytes each.
struct Connection {
    std::size_t index = 0;  // 1..N, as printed
    State state = State::connecting;
    net::Socket sock;
    const addrinfo* address = nullptr;  // the address being tried
    Clock::time_point started, deadline;
    std::size_t sent = 0;  // bytes of the request sent
    chapter::ResponseReader response;
    std::FILE* file = nullptr;  // --output: open while bytes arrive
    std::string error;          // why it failed (or why the last address failed)
};

// What the status line and the last narration report, each counted where it
// happens. Connections and sockets are counted in std::size_t (%zu), the
// totals of a whole run in std::uint64_t (PRIu64).
struct Tally {
    // The connections.
    std::size_t in_flight = 0;          // sockets open now (select on Windows is limited by it)
    std::size_t complete = 0;           // ended with their whole response
    std::size_t failed = 0;             // ended without it
    std::size_t beyond_fd_setsize = 0;  // of the failed: select() could not watch their socket
    // The waits.
    std::uint64_t waits = 0;          // select() or poll() calls
    std::uint64_t watched = 0;        // sockets handed to them, summed over every wait
    std::uint64_t ready_reports = 0;  // sockets they reported ready, summed
    std::size_t most_ready = 0;       // the most reported by one wait
    // The sockets' calls.
    std::uint64_t calls = 0;     // connect, getsockopt, send and recv
    std::uint64_t spurious = 0;  // recv calls that found nothing after a ready report
    std::uint64_t bytes = 0;     // received, over every connection
};

// What the loop shares between its steps: the options, the one receive
// buffer, and the tally.
struct Loop {
    Loop(const Options& options, std::size_t count)
        : options(options),
          use_select(wait_text == "select"),
          lines(count > 1 || !output_dir.empty()),
          narrate_each(count <= narrate_each_up_to) {}
    const Options& options;
    const bool use_select;    // --wait select
    const bool lines;         // stdout gets one line per connection
    const bool narrate_each;  // narrate every connection (a few of them)
    std::string request;
    std::vector<char> buffer = std::vector<char>(buffer_size);
    std::vector<net::pollfd_t> poll_list;  // poll's array, kept so it is not allocated each time
    Tally tally;
};

Clock::duration as_duration(double seconds) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// A connection's deadline: --timeout from now, renewed at each bit of
// progress. (--max-time is the loop's, for all of them.)
Clock::time_point idle_deadline(const Options& options) {
    return Clock::now() + as_duration(options.timeout);
}

bool ended(const Connection& c) {
    return c.state == State::done || c.state == State::failed;
}

// "connection 3: ..." narration, only for a few connections.
void say(const Loop& loop, const Connection& c, const std::string& text) {
    if (loop.narrate_each) narrate(loop.options, "connection %zu: %s", c.index, text.c_str());
}

// ---------------------------------------------------------------------------
// The end of a connection: close it, print its line.

// Close the connection's socket: one fewer in flight.
void close_socket_of(Loop& loop, Connection& c) {
    net::socket_t fd = c.sock.release();
    traced(net::close_socket(fd), "close", fd);
    --loop.tally.in_flight;
}

// Line on stdout (with --connections above 1 or --output):
//   3 ok 127 bytes 0.002 s
//   7 failed 0 bytes 0.501 s recv: no data for 0.5 s
void finish(Loop& loop, Connection& c, State how, const std::string& error = "") {
    c.state = how;
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
        if (!c.file) {
            std::string path = output_dir + "/response-" + std::to_string(c.index);
            c.file = std::fopen(path.c_str(), "wb");
            if (!c.file) throw Failure("open " + path, std::strerror(errno));
            std::setvbuf(c.file, nullptr, _IONBF, 0);  // no stdio buffer holding our bytes
        }
        if (std::fwrite(data, 1, size, c.file) != size)
            throw Failure("write " + output_dir + "/response-" + std::to_string(c.index),
                          std::strerror(errno));
    } else if (!loop.lines) {
        chapter::write_lines_out(data, size);
    }
}

// ---------------------------------------------------------------------------
// Steps: each does what the socket allows now, and returns without waiting.

void send_request(Loop& loop, Connection& c);

// Start a non-blocking connect to c.address, or to the next address if this
// one fails at once. connect() returns -1 with EINPROGRESS (WSAEWOULDBLOCK
// on Windows) while the handshake goes on, as in chapter 3; the loop then
// waits for the socket to become writable, among all the others.
void start_connect(Loop& loop, Connection& c) {
    for (; c.address; c.address = c.address->ai_next) {
        const addrinfo* a = c.address;
        net::Socket sock(traced(::socket(a->ai_family, a->ai_socktype, a->ai_protocol), "socket",
                                a->ai_family == AF_INET6 ? "AF_INET6" : "AF_INET", "SOCK_STREAM"));
        if (!sock.valid()) {  // e.g. EMFILE: out of descriptors
            c.error = Failure("socket", net::last_error()).what();
            continue;
        }
        // An fd_set on POSIX is a bitmap of FD_SETSIZE (1024) bits: FD_SET
        // on a larger descriptor is out of bounds (glibc built with
        // _FORTIFY_SOURCE aborts the program; without it, FD_SET writes past
        // the set: the README shows both), so select() cannot watch it; on
        // Windows an fd_set holds FD_SETSIZE (64) sockets. poll() has neither
        // limit.
        std::string why = net::why_select_cannot_watch(sock.get(), loop.tally.in_flight);
        if (loop.use_select && !why.empty()) {
            ++loop.tally.beyond_fd_setsize;
            return finish(loop, c, State::failed,
                          "select: " + why + "; select() cannot watch it (--wait poll can)");
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
        c.deadline = idle_deadline(loop.options);
        c.state = State::connecting;
        // On Linux even a loopback connect is still under way when connect()
        // returns [claim:nonblocking-connect-in-progress-on-loopback]; POSIX
        // allows one to be done at once (connect(): read): then send now.
        if (rc == 0) send_request(loop, c);
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

// The connect has ended, one way or the other: SO_ERROR says which, 0 for
// connected [claim:nonblocking-connect-writable-so-error-zero] or the error
// [claim:nonblocking-connect-refused-via-so-error]. A refused connect wakes
// poll() with POLLERR and POLLHUP [claim:poll-reports-refused-connect], select()
// with the socket writable, or on Windows in exceptfds
// [claim:windows-failed-connect-in-exceptfds]: whatever woke us, SO_ERROR
// tells. Older Windows versions' WSAPoll never reported a refused connect at
// all; there the connection waits out its --timeout (which versions, and the
// sources: docs/portability.md, poll-reports-refused-connect).
void connect_ended(Loop& loop, Connection& c) {
    // TODO 1: ask SO_ERROR how the connect ended; connected: send; else try_next_address.
    chapter::todo(1, "ask SO_ERROR how the connect ended; connected: send; else try_next_address");
}

// Send what the socket takes now. A non-blocking send takes what fits in the
// send buffer and fails with EWOULDBLOCK when it is full
// [claim:nonblocking-send-partial-then-would-block]: then the loop waits for
// writability and we go on where we stopped (c.sent).
void send_request(Loop& loop, Connection& c) {
    // TODO 2: send what the socket takes now; when it would block, return and wait.
    chapter::todo(2, "send what the socket takes now; when it would block, return and wait");
}

// Read what has arrived, until recv would block, or at most
// recv_calls_per_turn times: a peer that sends as fast as we read must not
// keep the loop from the others (the wait reports this socket again next
// time, as long as bytes are waiting
// [claim:poll-reports-again-while-bytes-wait]). A ready report is about the
// moment the wait returned, not a promise: a recv after it can still fail with
// EWOULDBLOCK [claim:readiness-can-be-spurious] (when another reader took the
// bytes first, as in the claim's test; the select(2) man page, BUGS, adds a
// datagram whose checksum failed: read). That is not an error: the
// connection goes back to waiting. This is why an event loop's sockets must
// be non-blocking: a blocking recv here would stop every other connection.
void receive(Loop& loop, Connection& c) {
    // TODO 3: recv until it would block or the response is complete; readiness can lie.
    chapter::todo(3, "recv until it would block or the response is complete; readiness can lie");
}  // its turn is over: the others go first

// A ready report: step the connection as its state says. A failure here is
// this connection's only (ResponseReader's verdicts are Failures too).
void step(Loop& loop, Connection& c) {
    try {
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
    } catch (const Failure& failure) {
        finish(loop, c, State::failed, failure.what());
    }
}

// Its deadline passed: --timeout with no progress. Only this connection ends
// (or, while connecting, moves on to its next address, as chapter 3 does).
void deadline_passed(Loop& loop, Connection& c) {
    std::string limit = chapter::seconds_text(loop.options.timeout);
    if (c.state == State::connecting) {
        c.error =
            "connect " + text::address_text(c.address->ai_addr) + ": no answer within " + limit;
        return try_next_address(loop, c);
    }
    if (c.state == State::sending)
        return finish(loop, c, State::failed, "send: the server accepted nothing for " + limit);
    finish(loop, c, State::failed, "recv: no data for " + limit);
}

// ---------------------------------------------------------------------------
// The waiting call: select() or poll(). Both take the whole list of sockets
// on every call, and both say only "these are ready now".

bool wants_to_write(const Connection& c) {
    return c.state == State::connecting || c.state == State::sending;
}

// select(): up to three sets of descriptors. They are rebuilt before every
// call, since select overwrites them with the ready ones
// [claim:select-clears-sets]. The kernel takes the bitmaps up to nfds, the
// highest descriptor + 1, and looks at no descriptor at or above it
// [claim:select-scans-up-to-nfds]; then we ask FD_ISSET about every
// connection in flight: a scan of all of them on every wake-up, however few
// are ready. While connecting, a socket is in exceptfds too: that is
// where Windows reports a failed connect.
int wait_with_select(const std::vector<Connection*>& in_flight, int timeout_ms,
                     std::vector<Connection*>& ready) {
    // TODO 4: fill the three sets, select() until the nearest deadline, collect the ready.
    chapter::todo(4, "fill the three sets, select() until the nearest deadline, collect the ready");
}

// poll() (WSAPoll() on Windows): one array of {fd, events, revents}. No
// bitmap, so no FD_SETSIZE: it watches a descriptor of any number
// [claim:poll-watches-beyond-fd-setsize]. The kernel still checks every
// entry on every call, and we look at every revents after it: the cost of a
// wake-up still grows with the number of connections, not with how many are
// ready (epoll and kqueue end that; see the README).
int wait_with_poll(Loop& loop, const std::vector<Connection*>& in_flight, int timeout_ms,
                   std::vector<Connection*>& ready) {
    // TODO 5: fill poll's array, poll() until the nearest deadline, collect the ready.
    chapter::todo(5, "fill poll's array, poll() until the nearest deadline, collect the ready");
}

// ---------------------------------------------------------------------------
// The event loop.

// How long the next wait may last: until the nearest deadline of those in
// flight, or the end of the run, or (with the status line) 0.1 s; in whole
// milliseconds, rounded up, so it never wakes just before a deadline.
int wait_limit_ms(const std::vector<Connection*>& in_flight, Clock::time_point end_of_run,
                  bool status_line) {
    Clock::time_point next = end_of_run;
    for (const Connection* c : in_flight)
        next = std::min(next, c->deadline);
    if (status_line) next = std::min(next, Clock::now() + std::chrono::milliseconds(100));
    auto left = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now());
    auto day = std::chrono::milliseconds(24 * 3600 * 1000);
    return static_cast<int>(std::clamp(left, std::chrono::milliseconds(0), day).count());
}

// One wait for all of them, in select() or poll(): the ready ones land in
// `ready`. Returns the moment it woke: the deadlines are judged at that
// moment, so a connection that was not ready then, but whose bytes come while
// we step the others, is looked at in the next wait, not failed.
Clock::time_point wait_for_any(Loop& loop, const std::vector<Connection*>& in_flight,
                               int timeout_ms, std::vector<Connection*>& ready) {
    ready.clear();
    auto before = Clock::now();
    int n = loop.use_select ? wait_with_select(in_flight, timeout_ms, ready)
                            : wait_with_poll(loop, in_flight, timeout_ms, ready);
    if (n < 0 && !net::is_interrupted(net::last_error()))
        throw Failure(loop.use_select ? "select" : "poll", net::last_error());
    Clock::time_point woke = Clock::now();
    Tally& tally = loop.tally;
    ++tally.waits;
    tally.watched += in_flight.size();  // each one handed to the kernel, and looked at after
    tally.ready_reports += ready.size();
    tally.most_ready = std::max(tally.most_ready, ready.size());
    if (loop.narrate_each)
        narrate(loop.options, "wait %" PRIu64 ": %zu in flight, %zu ready after %.3f s",
                tally.waits, in_flight.size(), ready.size(), chapter::seconds_since(before));
    return woke;
}

// End each connection still in flight whose deadline had passed when the wait
// returned, and every one of them when --max-time is (all but) over.
void end_the_late(Loop& loop, const std::vector<Connection*>& in_flight, Clock::time_point woke,
                  Clock::time_point end_of_run) {
    bool out_of_time = Clock::now() >= end_of_run - std::chrono::milliseconds(50);
    for (Connection* c : in_flight) {
        if (ended(*c)) continue;
        if (out_of_time)
            finish(loop, *c, State::failed,
                   "--max-time: no complete response within " +
                       chapter::seconds_text(loop.options.max_time));
        else if (woke >= c->deadline)
            deadline_passed(loop, *c);
    }
}

void show_progress(const Loop& loop, std::size_t total) {
    const Tally& tally = loop.tally;
    char status[160];
    std::snprintf(status, sizeof status,
                  "%.1f s: %zu in flight, %zu complete, %zu failed of %zu; %" PRIu64
                  " bytes; %" PRIu64 " waits",
                  chapter::seconds_since(loop.options.started), tally.in_flight, tally.complete,
                  tally.failed, total, tally.bytes, tally.waits);
    chapter::show_status(loop.options, status);
}

// The loop of the comment at the top, until every connection has ended.
void run_loop(Loop& loop, std::vector<Connection>& connections) {
    Clock::time_point end_of_run = Clock::time_point::max();
    if (loop.options.max_time > 0)
        end_of_run = loop.options.started + as_duration(loop.options.max_time);
    bool status_line = !loop.options.quiet && net::stderr_is_terminal();
    std::vector<Connection*> in_flight, ready;
    for (Connection& c : connections)
        if (!ended(c)) in_flight.push_back(&c);

    while (!in_flight.empty()) {
        // 1, 2. One wait for all of them (each says what it waits for), until
        // the nearest deadline.
        int timeout_ms = wait_limit_ms(in_flight, end_of_run, status_line);
        Clock::time_point woke = wait_for_any(loop, in_flight, timeout_ms, ready);
        // 3. Step every ready connection; 4. end those out of time.
        for (Connection* c : ready)
            step(loop, *c);
        end_the_late(loop, in_flight, woke, end_of_run);
        in_flight.erase(std::remove_if(in_flight.begin(), in_flight.end(),
                                       [](const Connection* c) { return ended(*c); }),
                        in_flight.end());
        if (status_line) show_progress(loop, connections.size());
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
    if (!wait_text.empty() && wait_text != "select" && wait_text != "poll")
        return chapter::usage_error(program, "--wait: '" + wait_text + "' is not select or poll");
    std::error_code error;
    if (!output_dir.empty() && !std::filesystem::is_directory(output_dir, error))
        return chapter::usage_error(program, "--output: '" + output_dir + "' is not a directory");
    return -1;
}

// Start every connect at once, each to the first address; none waits for another.
// Past `room` (chapter::make_room_for), the descriptors left are the built-in
// server's: those connections fail unopened.
std::vector<Connection> start_connections(Loop& loop, std::size_t count, std::size_t room,
                                          const addrinfo* first) {
    std::vector<Connection> connections(count);
    for (std::size_t i = 0; i < count; ++i) {
        Connection& c = connections[i];
        c.index = i + 1;
        c.started = Clock::now();
        c.address = first;
        if (loop.tally.in_flight < room)
            start_connect(loop, c);
        else
            finish(loop, c, State::failed,
                   "socket: not opened: " + std::to_string(room) +
                       " of ours are open, the most the descriptor limit leaves room for");
    }
    return connections;
}

void narrate_summary(const Loop& loop) {
    const Tally& tally = loop.tally;
    narrate(loop.options,
            "%zu complete, %zu failed in %.3f s; %" PRIu64 " waits, watching %" PRIu64
            " sockets in all, for %" PRIu64 " ready reports (at most %zu at once); %" PRIu64
            " connect, getsockopt, send and recv calls; %" PRIu64
            " recv found nothing after a ready report",
            tally.complete, tally.failed, chapter::seconds_since(loop.options.started), tally.waits,
            tally.watched, tally.ready_reports, tally.most_ready, tally.calls, tally.spurious);
}

// 0 when every connection got its whole response. Else 1, and why on stderr:
// one connection's error, as every chapter reports one, or how many failed.
int exit_status(const Loop& loop, const std::vector<Connection>& connections) {
    const Tally& tally = loop.tally;
    if (tally.failed == 0) return 0;
    std::string why = connections[0].error;
    if (loop.lines) {
        why = std::to_string(tally.failed) + " of " + std::to_string(connections.size()) +
              " connections failed";
        if (tally.beyond_fd_setsize > 0)
            why += " (" + std::to_string(tally.beyond_fd_setsize) +
                   " of them beyond select()'s FD_SETSIZE: use --wait poll)";
    }
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

    Loop loop(options, count);
    try {
        // Only without HOST; its caps are raised to `count`, so none of ours gets a 503.
        auto server = chapter::start_builtin_server(options, count);
        std::size_t room =
            chapter::make_room_for(options, count, server != nullptr, !output_dir.empty(), "fail");

        // Resolve once, for every connection.
        chapter::AddressList addresses = chapter::resolve(options);
        loop.request = chapter::http_request(options);
        narrate(options, "%zu connection%s on one thread, waiting with %s", count,
                count == 1 ? "" : "s", loop.use_select ? "select()" : "poll()");

        std::vector<Connection> connections = start_connections(loop, count, room, addresses.get());
        run_loop(loop, connections);
        narrate_summary(loop);

        server.reset();  // stop the built-in server first: its last lines come before ours
        return exit_status(loop, connections);
    } catch (const chapter::StdoutFailed& failed) {
        return chapter::report(program, failed.failure);
    } catch (const Failure& failure) {
        return chapter::report(program, failure);
    }
}
