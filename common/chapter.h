// chapter.h - what every chapter program shares besides the sockets:
// the command line (SPEC, "Every chapter program"), narration on stderr,
// one way to report a failure, and the built-in lab server when no HOST is given.
#pragma once

#include "labserver.h"
#include "platform.h"
#include "text.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace chapter {

struct Options {
    std::string host;  // empty: talk to the built-in lab server
    std::string port = "80";
    std::string path = "/";
    double timeout = 5.0;  // seconds, for connect and for each wait for data
    double max_time = 0;   // --max-time: seconds for the whole run, 0 = no limit
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::string scenario;  // the built-in server's scenario, "" = the chapter's default
    bool trace = false;
    bool quiet = false;
    bool diagram = false;      // --diagram: a sequence chart on stderr after the run
    std::string mermaid_file;  // --mermaid FILE: the same as a Mermaid sequenceDiagram
};

// An option of one chapter only: "--name VALUE" when value_name is set
// (stored in *value), or a flag (sets *flag).
struct ExtraOption {
    const char* name;
    const char* value_name;  // nullptr for a flag
    const char* help;
    std::string* value;
    bool* flag;
};

struct Program {
    const char* name;              // "chapter1"
    const char* summary;           // one line for --help
    const char* default_scenario;  // built-in server scenario when --scenario is absent
    std::vector<ExtraOption> extras;
    // For --help: what stdout gets and the exit status, when they are not
    // every chapter's (chapter 5's many connections); nullptr for the usual.
    const char* output_and_status = nullptr;
};

// Parse the command line into `options`. Returns -1 to go on, or the exit
// status to return at once: 0 after --help, 2 after a usage error (the error
// line and the usage are already on stderr).
int parse_command_line(int argc, char** argv, const Program& program, Options& options);

// For a chapter's own checks of its extra options: print "NAME: message" and
// the usage on stderr, return 2.
int usage_error(const Program& program, const std::string& message);

// Narration: one line on stderr, unless --quiet. printf-style.
void narrate(const Options& options, const char* format, ...) NET_PRINTF_FORMAT(2, 3);

// From text.h, for the chapters: print_line (one line on stderr), Failure (a
// call that failed, thrown to main), seconds_text ("5 s"), seconds_since.
using text::Failure;
using text::print_line;
using text::seconds_since;
using text::seconds_text;

// The live status line at the bottom of stderr ("waiting 1.2 s, 0 bytes"),
// only when stderr is a terminal and not --quiet; show_status("") clears it.
void show_status(const Options& options, const std::string& text);

// Print "NAME: <failure>" on stderr and return 1, the exit status for a network failure.
int report(const Program& program, const Failure& failure);

// In a lab starter (chapters/*/lab/), a step the student has not written yet:
// throws Failure "TODO 3 is not done yet: <what the step does>", which main
// reports like any failure (exit 1).
[[noreturn]] void todo(int step, const char* what);

// Without HOST, start the lab server in this process on 127.0.0.1 (ephemeral
// port, the chosen scenario), narrate it, and point options.host/port at it.
// With HOST, return nullptr. Throws Failure if the server cannot start.
// `connections`: how many the chapter will open at once (chapter 5), so the
// server's caps never answer one of ours with a 503.
std::unique_ptr<lab::Server> start_builtin_server(Options& options, std::uint64_t connections = 1);

// Chapters 5 and 6, many connections at once.
//
// "--connections 1200": a whole number from 1 to `most`.
bool parse_count(const std::string& text, std::size_t most, std::size_t& count);
// A connection's line on stdout, as it ends:
//   "3 ok 127 bytes 0.002 s\n", "7 failed 0 bytes 0.501 s recv: no data for 0.5 s\n"
std::string connection_line(std::size_t index, bool ok, std::uint64_t bytes, double seconds,
                            const std::string& error);
// A failed write to stdout ends the whole run (exit 1), not one connection:
// write_lines_out is write_stdout, throwing StdoutFailed, which main catches
// apart from the Failures that end one connection.
struct StdoutFailed {
    Failure failure;
};
void write_lines_out(const char* data, std::size_t size);
// `count` connections need a descriptor each, one more each for the built-in
// server's side and for an --output file, and about 64 for the rest of the
// process. Raise the soft descriptor limit to the hard one (and the hard one,
// where the process may), narrate a raise, and say when it is still too few,
// and what then happens to those past it (`past_it`: "fail"). Returns how many of ours may be open
// at once: all `count`, unless even the raised limit is too few with the built-in server. Its
// sockets come from the same limit: were ours to take them all first (a busy machine can run our
// loop before its thread), it could accept none, and every connection would wait for an answer that
// cannot come. Then at most (limit - 64) / (descriptors per connection), which leaves it one for
// each.
std::size_t make_room_for(const Options& options, std::size_t count, bool builtin_server,
                          bool output_files, const char* past_it);

// Step 1 of every chapter: getaddrinfo(HOST, PORT) for TCP over IPv4 or IPv6
// (AF_UNSPEC), narrated and traced. Returns every address, in the resolver's
// order, for the chapter to try in turn; freeaddrinfo() runs when the list
// goes out of scope. Throws Failure when the name does not resolve.
using AddressList = std::unique_ptr<addrinfo, void (*)(addrinfo*)>;
AddressList resolve(const Options& options);

// The request every chapter sends (SPEC): "GET PATH HTTP/1.1" with Host and
// "Connection: close", so the server closes after its answer and the client
// can read until EOF. Unlike the tutorial's "GET /\n" (HTTP/0.9), this gets a
// status line and headers from every server.
std::string http_request(const Options& options);

// Copy received bytes to stdout, all of them, at once: write(2) (_write on
// Windows, in binary mode), no stdio buffer, so a byte received is a byte out
// even if the run is killed a moment later. Throws Failure "write stdout: ..."
// when stdout fails: a full disk (ENOSPC), a closed pipe (EPIPE; SIGPIPE is
// ignored, see net::Startup).
void write_stdout(const char* data, size_t size);

// --timeout bounds each wait (connect, and every silence while receiving);
// --max-time bounds the whole run, for a server that never stops sending.
//
// How long the next wait may last: --timeout, or less when --max-time ends
// sooner. Throws the --max-time failure when no time is left.
double wait_limit(const Options& options);
// The same as a point in time, for select() and poll() loops.
std::chrono::steady_clock::time_point wait_deadline(const Options& options);
// After a wait ran out: throws "--max-time: no complete response within N s"
// if it was --max-time that ended it; returns if it was --timeout.
void check_max_time(const Options& options);
// For a socket whose waits the kernel bounds: SO_RCVTIMEO or SO_SNDTIMEO set
// to wait_limit(), traced. Call it once before connect, then before each
// blocking call: it calls setsockopt again only in the last --timeout seconds
// before --max-time, when each wait must be shorter than --timeout.
void set_wait_limit(const Options& options, net::socket_t fd, int option, bool first = false);

}  // namespace chapter
