// Chapter 1 - a blocking TCP client.
//
// The tutorial's "previous article" built this client in Python:
//
//     sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
//     sock.connect((host, port))
//     sock.sendall(request)
//     data = sock.recv(4096)
//     sock.close()
//
// Here is the same client one level down, at the system calls Python makes for
// each of those lines. Every call *blocks*: the thread sleeps inside the kernel
// until the call can finish. That is the simplest way to write a client, and it
// is what a new socket does until you ask for something else (chapter 2).
//
// Run it:  make chapter1 && ./chapter1             (talks to the built-in lab server)
//          ./chapter1 --scenario drip --trace      (watch recv return piece by piece)
//          ./chapter1 example.org 80 > page.txt    (stdout gets exactly the bytes received)

#include "chapter.h"
#include "connect.h"  // step 1: chapter1::connect_to_host
#include "platform.h"
#include "response.h"
#include "trace.h"

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <string>

using chapter::Failure;
using chapter::narrate;
using chapter::Options;
using chapter::seconds_text;

namespace {

const chapter::Program program = {
    "chapter1",
    "Chapter 1: a blocking client (connect, send, recv until EOF, close).",
    "hello",
    {}};

// Step 1 - resolve the name and connect: chapter1::connect_to_host, in
// connect.h beside this file (chapter 4 connects with it too).

// Step 2 - send the request.
//
// Python: sock.sendall(request). send() may take fewer bytes than we asked:
// it copies what fits into the kernel's send buffer and returns that count.
// On Linux that happens when SO_SNDTIMEO runs out half way; Winsock fails the
// whole call with WSAETIMEDOUT instead [claim:send-partial-on-timeout].
// So, like sendall(), we loop until every byte is gone. A signal arriving
// before anything was copied makes it fail with EINTR: we simply call again.
void send_all(const Options& options, net::socket_t fd, const std::string& data) {
    // lab step 2: send every byte of data, however many send() calls it takes
    std::size_t sent = 0;
    while (sent < data.size()) {
        // net::send_flags is MSG_NOSIGNAL where it exists: if the server is
        // gone, send fails with EPIPE instead of SIGPIPE killing the process
        // [claim:send-flags-no-sigpipe].
        long n = traced(
            ::send(fd, data.data() + sent, static_cast<int>(data.size() - sent), net::send_flags),
            "send", fd, data.size() - sent);
        if (n < 0) {
            int err = net::last_error();
            if (net::is_interrupted(err)) continue;
            if (net::is_timed_out(err))
                throw Failure("send",
                              "the server took nothing for " + seconds_text(options.timeout));
            throw Failure("send", err);
        }
        sent += static_cast<std::size_t>(n);
    }
    narrate(options, "sent %zu bytes: %s", sent, data.substr(0, data.find('\r')).c_str());
}

// Step 3 - receive the whole response.
//
// Python: data = sock.recv(4096). The tutorial stops after one recv, but one
// recv returns whatever has arrived so far, as soon as anything has arrived,
// not a whole response [claim:blocking-recv-returns-what-is-there]. A response
// larger than one buffer, or one that comes in pieces, is cut short.
//
// So we loop, copying each piece to stdout at once (memory stays at one
// buffer, whatever the size), until the response says it is complete. Only
// the response knows its length: a Content-Length header, a chunked body
// whose last chunk has size 0, or, when it has neither, the server's FIN,
// when recv returns 0 [claim:recv-zero-at-eof]. chapter::ResponseReader
// (common/response.h) follows that framing as the bytes stream past. A FIN
// before the promised end is a truncated response, and we say so: exit 0
// means the whole response arrived, not just "the connection ended".
void receive_response(const Options& options, net::socket_t fd) {
    // lab step 3: recv() until the response is complete, each piece to stdout
    static char buffer[64 * 1024];  // chapter 3 measures which size is best
    chapter::ResponseReader response;
    std::uint64_t calls = 0;
    auto start = std::chrono::steady_clock::now();
    while (!response.complete()) {
        // SO_RCVTIMEO is --timeout; near --max-time, the time that is left.
        chapter::set_wait_limit(options, fd, SO_RCVTIMEO);
        long n = traced(::recv(fd, buffer, sizeof buffer, 0), "recv", fd, sizeof buffer);
        if (n > 0) {
            if (calls++ == 0)
                narrate(options, "first bytes after %.3f s", chapter::seconds_since(start));
            chapter::write_stdout(buffer, static_cast<std::size_t>(n));
            response.take(buffer, static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0) {  // the server's FIN: complete only if the response ends there
            narrate(options, "recv returned 0: the server closed the connection");
            response.at_eof();
            break;
        }
        int err = net::last_error();
        // EINTR: a signal came first. A recv with SO_RCVTIMEO is not restarted
        // even under SA_RESTART [claim:rcvtimeo-recv-eintr-despite-sa-restart],
        // and on Linux a stop and continue (Ctrl-Z, then fg) interrupts it with
        // no handler at all [claim:stop-continue-interrupts-timed-recv]. We
        // simply call again.
        if (net::is_interrupted(err)) continue;
        if (net::is_timed_out(err)) {
            chapter::check_max_time(options);
            throw Failure("recv", "no data for " + seconds_text(options.timeout) +
                                      " (SO_RCVTIMEO expired: " + net::error_name(err) + ")");
        }
        // ECONNRESET: the server aborted the connection with an RST
        // [claim:recv-after-rst-fails-econnreset]. Bytes that came before it
        // are already on stdout.
        throw Failure("recv", err);
    }
    narrate(options, "%s (%s); %" PRIu64 " bytes in %" PRIu64 " recv calls",
            response.how_it_ended().c_str(),
            response.status_line().empty() ? "no status line" : response.status_line().c_str(),
            response.bytes_taken(), calls);
}

}  // namespace

int main(int argc, char** argv) {
    net::Startup startup;  // WSAStartup on Windows, nothing on POSIX
    Options options;
    int status = chapter::parse_command_line(argc, argv, program, options);
    if (status >= 0) return status;

    try {
        auto server = chapter::start_builtin_server(options);  // only without HOST
        net::Socket sock = chapter1::connect_to_host(options);
        send_all(options, sock.get(), chapter::http_request(options));
        receive_response(options, sock.get());

        // Step 4 - close. Python: sock.close(), one close() call
        // [claim:python-shutdown-close]. It releases the descriptor;
        // the kernel still delivers anything queued and ends the connection
        // with a FIN (chapter 4 is about the ways to end a connection).
        // lab step 4: close the socket
        net::socket_t fd = sock.release();
        traced(net::close_socket(fd), "close", fd);
        narrate(options, "closed the socket");
    } catch (const Failure& failure) {
        return chapter::report(program, failure);
    }
    return 0;
}
