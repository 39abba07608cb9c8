// labserver_connection.cpp - one connection of the lab server, phase by phase:
// what a ready socket means in each phase (on_ready), what its deadline means
// (on_deadline), and the answer each scenario gives (on_request).
//
// Every call here is on a non-blocking socket, from the loop's thread: each
// does what the socket allows now and returns; the loop calls again when the
// socket is ready or the deadline comes (labserver_loop.cpp).
#include "labserver_loop.h"

#include "diagram.h"
#include "text.h"

#include <algorithm>
#include <string>

namespace lab {

namespace {

constexpr double drip_pause = 0.05;               // seconds between two drip pieces
constexpr std::size_t echo_backlog = 256 * 1024;  // echo: stop reading while this much is unsent
constexpr std::size_t echo_pieces = 4096;         // echo:SECS: or while this many pieces wait

// The big block as a file in memory, made once, for net::send_file_part:
// -1 where there is none (not Linux).
int big_file() {
    static const int file = net::file_in_memory("labserver-big", big_block());
    return file;
}

// echo: the pieces whose time has come may be sent (all of them at once for
// plain echo, whose pieces are due as they come). Each one released restarts
// the quiet deadline: `quiet` seconds in which something must come or go back.
void release_due(Connection& c, double quiet) {
    Clock::time_point now = Clock::now();
    auto first_waiting = c.pieces.begin();
    for (; first_waiting != c.pieces.end() && first_waiting->due <= now; ++first_waiting) {
        c.release = first_waiting->end;
        c.quiet_deadline = after(quiet);
    }
    c.pieces.erase(c.pieces.begin(), first_waiting);
}

}  // namespace

unsigned wanted_events(const Connection& c) {
    switch (c.phase) {
        case Connection::head:
        case Connection::drain:
            return Waiter::readable;
        case Connection::send:
            return Waiter::writable;
        case Connection::echo:  // reading while the backlog allows, sending while bytes are due
            return (c.reading && c.out.size() < echo_backlog && c.pieces.size() < echo_pieces
                        ? Waiter::readable
                        : 0u) |
                   (c.sent < c.release ? Waiter::writable : 0u);
        case Connection::hold:
            return c.reading ? Waiter::readable : 0u;
        default:
            return 0;  // pause: only the deadline
    }
}

// The socket is ready for what the phase waits for (or has an error).
void Server::on_ready(Connection& c, unsigned events) {
    switch (c.phase) {
        case Connection::head:
            return read_head(c);
        case Connection::send:
            return send_some(c);
        case Connection::echo:
            return echo_some(c, events);
        case Connection::drain:
        case Connection::hold:
        case Connection::pause:
            return read_and_drop(c);
    }
}

// recv, counting what arrives and noting how the client ended. Returns what
// recv returned, with its error in net::last_error().
long Server::receive(Connection& c, char* buffer, std::size_t size) {
    for (;;) {
        long n = ::recv(c.fd, buffer, static_cast<int>(size), 0);
        int err = net::last_error();
        if (n < 0 && net::is_interrupted(err)) continue;
        diagram::server_received(c.fd, n, err);
        bool reset = n < 0 && net::is_connection_reset(err);
        if (n > 0) counters_.bytes_read += static_cast<std::uint64_t>(n);
        if (n == 0) {
            ++counters_.eofs_seen;
            event("client FINs", c.client, "recv returned 0: the client's FIN arrived");
        }
        if (reset) ++counters_.resets_seen;
        if (n < 0 && !net::is_would_block(err))
            event(reset ? "resets" : "errors", c.client,
                  "recv failed: " + net::error_name(err) + " (" + net::error_text(err) + ")" +
                      (reset ? ": the client reset the connection" : ""));
        net::set_last_error(err);
        return n;
    }
}

// The request head, as it arrives. A whole head starts the answer; bytes that
// cannot be a request get a 400 at once; a head that grows to max_head_size
// without ending gets a 431, so no client makes us hold more for it.
// Anything else: wait for more, until header_timeout.
void Server::read_head(Connection& c) {
    char buffer[16 * 1024];
    long n = receive(c, buffer, sizeof buffer);
    if (n <= 0) {
        c.done = n == 0 || !net::is_would_block(net::last_error());  // left early
        return;
    }
    c.head_text.append(buffer, static_cast<std::size_t>(n));
    HeadStatus head = parse_head(c.head_text, c.request);
    if (head == HeadStatus::complete) return on_request(c);
    if (head == HeadStatus::bad) {
        event("refusals", c.client,
              "not an HTTP request: \"" + text::printable(c.head_text, 60) + "\", 400");
        return refuse_request(c, "400 Bad Request", "not an HTTP request\n");
    }
    if (c.head_text.size() >= max_head_size) {
        event("refusals", c.client,
              "request head over " + std::to_string(max_head_size) + " bytes, refused");
        return refuse_request(c, "431 Request Header Fields Too Large", "request head too large\n");
    }
}

// echo: what arrives goes back out, at once or (echo:SECS) SECS after it
// came. Reading stops while echo_backlog bytes wait to be sent (a client that
// sends without reading cannot fill our memory), or echo_pieces pieces wait
// for their time; after the client's FIN, the rest is sent and we close.
// `events` is 0 when called because a piece's time has come.
void Server::echo_some(Connection& c, unsigned events) {
    if (events & (Waiter::readable | Waiter::failed)) {
        char buffer[16 * 1024];
        long n = c.reading ? receive(c, buffer, sizeof buffer) : 0;
        if (n > 0) {
            c.out.append(buffer, static_cast<std::size_t>(n));
            c.taken += static_cast<std::uint64_t>(n);
            c.pieces.push_back({after(c.scenario->seconds), c.out.size()});
        } else if (n == 0) {
            c.reading = false;
        } else if (!net::is_would_block(net::last_error())) {
            c.done = true;
            return;
        }
    }
    release_due(c, limits_.header_timeout);
    // While pieces wait, the next one's time; then the quiet deadline.
    c.deadline = c.pieces.empty() ? c.quiet_deadline : c.pieces.front().due;
    send_some(c);
    if (c.done || c.sent < c.out.size()) return;
    c.out.clear();
    c.sent = c.release = 0;
    if (!c.reading) {
        event("echoes", c.client, "echoed " + std::to_string(c.taken) + " bytes, closing");
        c.done = true;
    }
}

// drain, hold, pause: the client may still send; we read and drop it, and
// watch for its FIN. After the answer (drain, and keep-open's hold) the FIN
// is what we wait for. A client that keeps sending past drain_bytes is
// closed (an RST) while draining; while holding, we only stop reading.
void Server::read_and_drop(Connection& c) {
    char buffer[16 * 1024];
    long n = receive(c, buffer, sizeof buffer);
    if (n < 0) {
        c.done = !net::is_would_block(net::last_error());
    } else if (n == 0) {
        // The client's FIN: all is well. keep-open closes too; silent and
        // stall hold on.
        c.done = c.phase == Connection::drain || c.scenario->kind == Scenario::keep_open;
        c.reading = false;
    } else if ((c.taken += static_cast<std::uint64_t>(n)) > limits_.drain_bytes) {
        if (c.phase == Connection::drain) {
            ++counters_.flooded;
            event("floods", c.client,
                  "still sending after the answer: closing after " + std::to_string(c.taken) +
                      " more bytes (an RST)");
            c.done = true;
        }
        c.reading = false;  // hold: stop reading, keep holding
    }
}

// The phase's deadline has come.
void Server::on_deadline(Connection& c) {
    std::string why;
    switch (c.phase) {
        case Connection::head: {
            ++counters_.timed_out;
            event("timeouts", c.client,
                  "no complete request head within " + text::seconds_text(limits_.header_timeout) +
                      " (" + std::to_string(c.head_text.size()) + " bytes came): 408, closing");
            // One try, no waiting: what does not fit in the send buffer is not sent.
            std::string answer =
                short_answer("408 Request Timeout", "no complete request in time\n");
            long n = ::send(c.fd, answer.data(), static_cast<int>(answer.size()), net::send_flags);
            if (n > 0) diagram::server_sent(c.fd, static_cast<std::uint64_t>(n));
            ::shutdown(c.fd, net::shut_wr);
            diagram::server_shut_down(c.fd);
            c.done = true;
            return;
        }
        case Connection::pause:  // slow's wait is over, or drip's next piece is due
            c.release = std::min(c.out.size(), c.scenario->kind == Scenario::drip
                                                   ? c.release + c.scenario->count
                                                   : c.out.size());
            c.phase = Connection::send;
            c.deadline = after(limits_.send_timeout);
            return send_some(c);
        case Connection::send:
            why = "took none of our bytes for " + text::seconds_text(limits_.send_timeout) +
                  ", dropped";
            break;
        case Connection::drain:
            why = "no FIN within " + text::seconds_text(limits_.drain_timeout) +
                  " of the answer, closing";
            break;
        case Connection::echo:
            if (!c.pieces.empty()) return echo_some(c, 0);  // echo:SECS: a piece is due
            why = "nothing for " + text::seconds_text(limits_.header_timeout) + ", closing";
            break;
        case Connection::hold:
            why = "scenario " + std::string(scenario_name(c.scenario->kind)) + ": held " +
                  text::seconds_text(limits_.silent_hold) +
                  (c.scenario->kind == Scenario::keep_open ? " after the answer" : " unanswered") +
                  ", closing";
            break;
    }
    ++counters_.timed_out;
    event("timeouts", c.client, why);
    c.done = true;
}

// A request we will not serve: a short answer, then close, whatever the
// scenario (stall and keep-open would hold the connection after it).
void Server::refuse_request(Connection& c, const char* status, const std::string& body) {
    static const Scenario answer_then_close;  // hello's ending
    c.scenario = &answer_then_close;
    c.out = short_answer(status, body);
    c.release = c.out.size();
    c.phase = Connection::send;
    c.deadline = after(limits_.send_timeout);
    send_some(c);
}

// The request head is complete: start the scenario's answer.
void Server::on_request(Connection& c) {
    const Request& request = c.request;
    const Scenario& scenario = *c.scenario;
    event("requests", c.client,
          "request \"" + text::printable(request.line, 200) + "\"" +
              (request.http09 ? " (HTTP/0.9)" : ""));
    c.out = hello_response(request);
    c.phase = Connection::send;
    switch (scenario.kind) {
        case Scenario::silent:
            event("scenario", c.client,
                  "scenario silent: not answering; closing in " +
                      text::seconds_text(limits_.silent_hold));
            c.phase = Connection::hold;
            c.deadline = after(limits_.silent_hold);
            return;
        case Scenario::reset: {
            // SO_LINGER on with a zero time: close() discards what is unsent
            // and sends an RST instead of a FIN, which the client's recv
            // reports as ECONNRESET [claim:recv-after-rst-fails-econnreset].
            event("scenario", c.client,
                  "scenario reset: close with SO_LINGER {on, 0} sends an RST");
            linger abort_on_close{};
            abort_on_close.l_onoff = 1;
            abort_on_close.l_linger = 0;
            ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER,
                         reinterpret_cast<const char*>(&abort_on_close), sizeof abort_on_close);
            c.done = true;  // the loop closes it
            return;
        }
        case Scenario::close:
            event("scenario", c.client, "scenario close: closing without an answer");
            return finish(c);
        case Scenario::slow:
            c.phase = Connection::pause;
            c.deadline = after(scenario.seconds);
            return;
        case Scenario::drip:
            c.release = std::min<std::size_t>(c.out.size(), scenario.count);
            break;
        case Scenario::truncate:
        case Scenario::stall:
            // A promise it does not keep: the client must notice, whether the
            // server closes (truncate) or just stops sending (stall).
            c.out = request.http09 ? "" : response_head(truncate_promise);
            c.out += big_block().substr(0, static_cast<std::size_t>(scenario.cut));
            event("scenario", c.client,
                  "scenario " + std::string(scenario_name(scenario.kind)) + ": " +
                      std::to_string(scenario.cut) + " of " + std::to_string(truncate_promise) +
                      (scenario.kind == Scenario::stall ? " body bytes, then silence"
                                                        : " body bytes, then close"));
            break;
        case Scenario::chunked:
            c.out = request.http09 ? hello_body(request)
                                   : chunked_response(hello_body(request), scenario.cut);
            break;
        case Scenario::big:
            c.out = request.http09 ? "" : response_head(scenario.mebibytes * big_block_size);
            c.big_left = scenario.mebibytes * big_block_size;
            break;
        case Scenario::binary:
            c.out = binary_response(request, scenario.kibibytes);
            break;
        case Scenario::keep_open:  // then held open: sent_all
            c.out = hello_response(request, "keep-alive");
            break;
        default:
            break;
    }
    if (scenario.kind != Scenario::drip) c.release = c.out.size();
    c.deadline = after(limits_.send_timeout);
    send_some(c);
}

// Send what the socket takes now, without waiting: `out` up to `release`,
// then the big body. Each send that moves bytes restarts the send timeout;
// a full buffer (EWOULDBLOCK) returns to the loop, which waits for room.
//
// The big body goes out of one cache-hot block. With send() the kernel copies
// it into the socket; with sendfile() (Linux) it hands over the pages of a
// file in memory holding the block, with no copy. A client alone downloads
// faster with send(); with 1,000 downloads at once the copies took the CPU
// the clients needed (docs/benchmarks.md, "What made the difference"). So:
// send() while a client is alone, sendfile() when others are connected
// (nginx's `sendfile on` hands pages over too).
void Server::send_some(Connection& c) {
    for (;;) {
        bool from_out = c.sent < c.release;
        bool from_big = !from_out && c.big_left > 0 && c.release == c.out.size();
        if (!from_out && !from_big) {
            if (c.phase == Connection::send) sent_all(c);
            return;
        }
        long n;
        if (from_out) {
            n = ::send(c.fd, c.out.data() + c.sent, static_cast<int>(c.release - c.sent),
                       net::send_flags);
        } else {
            std::size_t at = static_cast<std::size_t>(c.big_at % big_block_size);
            std::size_t size =
                static_cast<std::size_t>(std::min<std::uint64_t>(c.big_left, big_block_size - at));
            n = open_ > 1 ? net::send_file_part(c.fd, big_file(), big_block(), at, size)
                          : ::send(c.fd, big_block().data() + at, static_cast<int>(size),
                                   net::send_flags);
        }
        if (n < 0) {
            int err = net::last_error();
            if (net::is_interrupted(err)) continue;
            if (net::is_would_block(err)) return;  // the buffer is full: the waiter says when
            bool reset = net::is_connection_reset(err);
            if (reset) ++counters_.resets_seen;
            event(reset ? "resets" : "errors", c.client,
                  "send failed: " + net::error_name(err) + " (" + net::error_text(err) + ")");
            c.done = true;
            return;
        }
        diagram::server_sent(c.fd, static_cast<std::uint64_t>(n));
        if (from_out) {
            c.sent += static_cast<std::size_t>(n);
        } else {
            c.big_at += static_cast<std::uint64_t>(n);
            c.big_left -= static_cast<std::uint64_t>(n);
        }
        if (c.phase == Connection::send) c.deadline = after(limits_.send_timeout);
    }
}

// Everything released so far is sent.
void Server::sent_all(Connection& c) {
    if (c.release < c.out.size()) {  // drip: the next piece after a pause
        c.phase = Connection::pause;
        c.deadline = after(drip_pause);
        return;
    }
    if (c.big_at > 0 && c.big_left == 0)
        event("scenario", c.client, "sent " + std::to_string(c.scenario->mebibytes) + " MiB");
    if (c.scenario->kind == Scenario::stall) {  // silent from here on, the connection open
        c.phase = Connection::hold;
        c.deadline = after(limits_.silent_hold);
        return;
    }
    if (c.scenario->kind == Scenario::keep_open) {  // open until the client's FIN
        event("scenario", c.client,
              "scenario keep-open: answered with Connection: keep-alive; holding the connection "
              "open until the client closes (at most " +
                  text::seconds_text(limits_.silent_hold) + ")");
        c.phase = Connection::hold;
        c.taken = 0;
        c.deadline = after(limits_.silent_hold);
        return;
    }
    finish(c);
}

// After answering: send our FIN (shutdown for writing), then wait for the
// client's FIN before closing. Closing while received bytes sit unread sends
// an RST instead of a FIN [claim:close-with-unread-data-sends-rst], which can
// destroy the answer the client has not read yet; and waiting lets us report
// how the client ended. The wait is bounded: drain_timeout in all, and at
// most drain_bytes read (and dropped), so no client can make us absorb data.
void Server::finish(Connection& c) {
    ::shutdown(c.fd, net::shut_wr);
    diagram::server_shut_down(c.fd);
    c.phase = Connection::drain;
    c.taken = 0;
    c.deadline = after(limits_.drain_timeout);
}

}  // namespace lab
