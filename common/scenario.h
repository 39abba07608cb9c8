// scenario.h - how the lab server is told to behave: "hello", "slow:0.2",
// "mix:hello,silent,reset" (SPEC, "The lab server"), read from the command
// line of labserver or of a chapter (--scenario).
//
// Pure functions of text, no sockets: tests/labserver_tests.cpp checks every
// name, argument and error, and tests/fuzz/fuzz_command_line.cpp feeds them
// any bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lab {

struct Scenario {
    enum Kind {
        hello,
        slow,
        drip,
        big,
        silent,
        reset,
        close,
        echo,
        truncate,
        stall,
        chunked,
        binary,
        keep_open,
        mix,  // the last: tests/fuzz/fuzz_command_line.cpp checks the range
    };
    Kind kind = hello;
    double seconds = 2.0;          // slow: delay before answering; echo: before each piece (0)
    std::uint64_t count = 8;       // drip: bytes per piece
    std::uint64_t mebibytes = 64;  // big: size of the body in MiB
    std::uint64_t kibibytes = 64;  // binary: size of the body in KiB
    std::uint64_t cut = no_cut;    // truncate, stall, chunked: stop after this many body bytes
    static constexpr std::uint64_t no_cut = ~std::uint64_t{0};
    // mix: connection k (counted from 1, in the order accepted) is answered
    // by items[(k - 1) % items.size()], so one server has fast, slow, silent and
    // resetting peers at once (chapter 5's demo).
    std::vector<Scenario> items;
};

// mix with no list: eight connections, each behaving differently.
extern const char* const default_mix;

// truncate, stall: the Content-Length they promise (1 MiB of the big pattern).
constexpr std::uint64_t truncate_promise = 1024 * 1024;

// Body bytes sent when no BYTES is given: truncate, then close; stall, then silence.
constexpr std::uint64_t truncate_default = 1000;
constexpr std::uint64_t stall_default = 200000;

// binary: a body of KIB KiB (1 to binary_most, default 64) that holds every
// byte value and a zero in every 7 bytes, the first at byte 3, so a client
// that treats the body as text (printf("%s"), strlen, a text-mode stdout)
// loses bytes. Byte i of it (http_answers.h, binary_body):
//   i % 7 == 3   0
//   otherwise    with m counting the bytes before i that are not forced to 0
//                (m = i - (i + 3) / 7):
//                  v = (m * 167 + (m >> 8) * 73 + 1) mod 256
//                  v = v XOR (v >> 4)
//                  byte = v * 29 mod 256
// Each step is a one-to-one map of 0..255, so each run of 256 values of m
// (m = 256k .. 256k + 255) holds every byte value once: the first 299 bytes
// already hold all 256. tests/e2e.py's binary_body() is the same in Python.
constexpr std::uint64_t binary_most = 1024;

// "slow:0.2" -> Scenario. On failure returns false and sets `error`, one line
// for the user ("scenario drip: '0' must be a whole number of at least 1").
bool parse_scenario(const std::string& text, Scenario& scenario, std::string& error);

// The scenario lines for --help.
extern const char* const scenario_help;

// The name of a kind: "hello", "stall".
const char* scenario_name(Scenario::Kind kind);

// A scenario written back as parse_scenario takes it: "slow:1", "reset",
// "truncate:1000", "mix:hello,reset". A mix item is narrated this way.
std::string describe_scenario(const Scenario& scenario);

// "2", "0.25": digits with at most one decimal point; nothing else (no sign,
// space, exponent or hex).
bool parse_decimal(const std::string& text, double& value);

// An IPv4 or IPv6 address written out in full ("127.0.0.1", "::1", "0.0.0.0"),
// as inet_pton takes it: not "0" or "127.1", which getaddrinfo would take.
bool is_address(const std::string& text);

}  // namespace lab
