// fuzz_command_line.cpp - the chapters' command line
// (chapter::parse_command_line, common/chapter.h) and the lab server's
// scenario and number parsers (lab::parse_scenario, lab::parse_decimal,
// lab::is_address, common/labserver.h) on any bytes.
//
// The input is an argv with its arguments separated by NUL bytes (an argument
// cannot contain one), after a program name: "--timeout\0" "0.5\0" "::1" is
//   chapterF --timeout 0.5 ::1
// The Program has every chapter's own options (chapters/*/chapter*.cpp): value
// options (--mode, --buffer-size, --close, --connections, --wait, --output)
// and a flag (--busy-wait). The whole input is also one --scenario text and
// one number for parse_scenario and parse_decimal.
//
// Only what the code documents is checked:
//   - parse_command_line returns -1 (go on), 0 (after --help) or 2 (usage error)
//   - when it returns -1 (SPEC, "Every chapter program"; chapter.cpp):
//       --timeout: finite, > 0 (at most a day); --max-time: 0 (none) or the same
//       PORT: 1 to 65535, as decimal text; HOST: empty (the built-in server) or
//       no space or control byte; --path: non-empty visible ASCII (RFC 9112, 3.2)
//       --scenario: one parse_scenario takes, and only without HOST; else the
//       program's default
//       the request http_request() makes is one request: three lines and the
//       empty line, and our lab server's parse_head takes it whole, with the
//       path as its target
//   - parse_decimal: true only for digits with at most one point, and then a
//     finite value >= 0
//   - parse_scenario: false sets the error; true gives a scenario in range
//   - is_address: true only for address characters
//
// parse_command_line prints the usage (stderr, or stdout for --help): run the
// fuzzer with -close_fd_mask=3.
#include "chapter.h"
#include "fuzz.h"
#include "labserver.h"
#include "trace.h"

#include <cmath>
#include <string>
#include <vector>

namespace {

// The options of every chapter, in one program.
struct ChapterOptions {
    std::string mode, buffer_size, close, connections, wait, output;
    bool busy_wait = false;
};

chapter::Program every_chapter(ChapterOptions& own) {
    return {"chapterF",
            "Every chapter's own options at once, for the fuzzer.",
            "hello",
            {{"mode", "MODE", "chapter 2", &own.mode, nullptr},
             {"buffer-size", "BYTES", "chapter 3", &own.buffer_size, nullptr},
             {"busy-wait", nullptr, "chapter 3", nullptr, &own.busy_wait},
             {"close", "MODE", "chapter 4", &own.close, nullptr},
             {"connections", "N", "chapter 5", &own.connections, nullptr},
             {"wait", "select|poll", "chapter 5", &own.wait, nullptr},
             {"output", "DIR", "chapter 5", &own.output, nullptr}}};
}

bool all_digits(const std::string& text) {
    return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
}

bool seconds_ok(double seconds) {
    return std::isfinite(seconds) && seconds > 0 && seconds <= 86400;
}

std::size_t count_of(const std::string& text, char c) {
    std::size_t n = 0;
    for (char each : text)
        n += each == c;
    return n;
}

void check_scenario(const lab::Scenario& scenario, bool in_mix) {
    FUZZ_CHECK(scenario.kind >= lab::Scenario::hello && scenario.kind <= lab::Scenario::mix,
               "parse_scenario: a kind out of range");
    switch (scenario.kind) {
        case lab::Scenario::slow:
            FUZZ_CHECK(std::isfinite(scenario.seconds) && scenario.seconds >= 0,
                       "parse_scenario: slow with a negative or infinite delay");
            break;
        case lab::Scenario::drip:
            FUZZ_CHECK(scenario.count >= 1, "parse_scenario: drip of 0 bytes at a time");
            break;
        case lab::Scenario::truncate:
            FUZZ_CHECK(scenario.cut < lab::truncate_promise,
                       "parse_scenario: truncate sends all it promised");
            break;
        case lab::Scenario::mix:
            FUZZ_CHECK(!in_mix, "parse_scenario: a mix in a mix");
            FUZZ_CHECK(!scenario.items.empty() && scenario.items.size() <= 64,
                       "parse_scenario: a mix of no items, or of more than 64");
            for (const lab::Scenario& item : scenario.items)
                check_scenario(item, true);
            break;
        default:
            break;
    }
}

// What parse_command_line promises when it returns -1 (go on).
void check_options(const chapter::Options& options, const chapter::Program& program) {
    FUZZ_CHECK(seconds_ok(options.timeout), "--timeout: not finite and > 0");
    FUZZ_CHECK(options.max_time == 0 || seconds_ok(options.max_time),
               "--max-time: not 0 (none), or finite and > 0");

    FUZZ_CHECK(all_digits(options.port) && options.port.size() <= 5 &&
                   std::stol(options.port) >= 1 && std::stol(options.port) <= 65535,
               "PORT: not a number from 1 to 65535");
    for (unsigned char c : options.host)
        FUZZ_CHECK(c > ' ' && c != 0x7f, "HOST: a space or a control byte");
    FUZZ_CHECK(!options.path.empty(), "--path: empty");
    for (unsigned char c : options.path)
        FUZZ_CHECK(c > 0x20 && c < 0x7f, "--path: a space, a control byte or a byte above 0x7e");

    lab::Scenario scenario;
    std::string error;
    FUZZ_CHECK(lab::parse_scenario(options.scenario, scenario, error),
               "--scenario: parse_scenario does not take the chosen scenario");
    FUZZ_CHECK(options.host.empty() || options.scenario == program.default_scenario,
               "--scenario with HOST was taken");

    // One request, and our own server reads it as the chapter meant it.
    std::string request = chapter::http_request(options);
    FUZZ_CHECK(count_of(request, '\n') == 4 && count_of(request, '\r') == 4 &&
                   request.size() >= 4 && request.compare(request.size() - 4, 4, "\r\n\r\n") == 0,
               "http_request: not three lines and the empty line");
    lab::Request parsed;
    FUZZ_CHECK(lab::parse_head(request, parsed) == lab::HeadStatus::complete,
               "http_request: the lab server's parse_head does not take it");
    FUZZ_CHECK(!parsed.http09 && parsed.target == options.path,
               "http_request: the lab server reads another target than --path");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string input(reinterpret_cast<const char*>(data), size);

    // argv: the program name, then the input split at each NUL.
    std::vector<std::string> arguments{"chapterF"};
    if (size > 0) {
        for (std::size_t at = 0;;) {
            std::size_t nul = input.find('\0', at);
            arguments.push_back(input.substr(at, nul - at));
            if (nul == std::string::npos) break;
            at = nul + 1;
        }
    }
    std::vector<char*> argv;
    for (std::string& argument : arguments)
        argv.push_back(&argument[0]);
    argv.push_back(nullptr);

    ChapterOptions own;
    chapter::Program program = every_chapter(own);
    chapter::Options options;
    int status = chapter::parse_command_line(static_cast<int>(arguments.size()), argv.data(),
                                             program, options);
    FUZZ_CHECK(status == -1 || status == 0 || status == 2,
               "parse_command_line returned something other than -1, 0 or 2");
    if (status == -1) check_options(options, program);
    if (status == 0) {
        bool help = false;
        for (const std::string& argument : arguments)
            help = help || argument == "--help";
        FUZZ_CHECK(help, "parse_command_line returned 0 without --help");
    }
    trace::enable(false);  // parse_command_line set it from --trace

    // Each argument as an address (--bind), and the whole input as a scenario and a number.
    for (const std::string& argument : arguments)
        if (lab::is_address(argument))
            FUZZ_CHECK(!argument.empty() && argument.find_first_not_of(
                                                "0123456789abcdefABCDEF.:") == std::string::npos,
                       "is_address: true for a text that is not an address");

    lab::Scenario scenario;
    std::string error;
    if (lab::parse_scenario(input, scenario, error))
        check_scenario(scenario, false);
    else
        FUZZ_CHECK(!error.empty(), "parse_scenario: false with no error");

    double value = -1;
    if (lab::parse_decimal(input, value)) {
        FUZZ_CHECK(input.find_first_not_of("0123456789.") == std::string::npos &&
                       count_of(input, '.') <= 1 && input != ".",
                   "parse_decimal: true for more than digits and one point");
        FUZZ_CHECK(std::isfinite(value) && value >= 0, "parse_decimal: not a finite value >= 0");
    }
    return 0;
}
