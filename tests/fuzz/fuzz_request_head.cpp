// fuzz_request_head.cpp - the lab server's request-head parser,
// lab::parse_head (common/labserver.h), on any bytes a client could send.
//
// The server calls parse_head with every byte read so far, after each recv,
// and acts on the first answer that is not "incomplete". So the input is fed
// as the server sees it: growing prefixes (every prefix of a short input, a
// few dozen cut points of a long one), with one Request kept across the calls
// as the server keeps it, and each answer compared with a fresh Request's.
//
// What must hold, whatever the bytes:
//   - once a prefix is complete or bad, every longer prefix gives the same
//     status, and a complete one the same target ("Once complete or bad,
//     more bytes after `head` do not change the answer")
//   - a complete head's target is non-empty, with no space, control or
//     non-ASCII byte (no byte < 0x21 or >= 0x7f), and its request line has no
//     CR or LF; an HTTP/0.9 one is "GET TARGET"
//   - before the request line, at most two empty lines ("one or two empty
//     lines may come first"; a bare CR is bad)
//   - reusing one Request across calls gives the answers a fresh one gives
#include "fuzz.h"
#include "labserver.h"

#include <string>
#include <vector>

namespace {

bool visible(char c) {
    return c > 0x20 && c < 0x7f;
}

// The CR and LF bytes before the request line: at most two empty lines,
// each "\r\n" or "\n".
bool at_most_two_empty_lines(const std::string& head) {
    int lines = 0;
    std::size_t at = 0;
    for (; at < head.size() && (head[at] == '\r' || head[at] == '\n'); ++at) {
        if (head[at] == '\r' && (at + 1 >= head.size() || head[at + 1] != '\n')) return false;
        if (head[at] == '\n') ++lines;
    }
    return lines <= 2;
}

void check_complete(const std::string& head, const lab::Request& request) {
    FUZZ_CHECK(!request.target.empty(), "complete, with an empty target");
    for (char c : request.target)
        FUZZ_CHECK(visible(c), "complete, with a byte < 0x21 or >= 0x7f in the target");
    FUZZ_CHECK(request.line.find_first_of("\r\n") == std::string::npos,
               "complete, with a CR or LF in the request line");
    FUZZ_CHECK(request.line.find(" " + request.target) != std::string::npos,
               "complete, and the target is not in the request line");
    FUZZ_CHECK(!request.http09 || request.line == "GET " + request.target,
               "an HTTP/0.9 request that is not 'GET TARGET'");
    FUZZ_CHECK(at_most_two_empty_lines(head),
               "complete, after more than two empty lines or a bare CR before the request line");
}

// The prefix lengths to try, ascending, ending with the whole input.
std::vector<std::size_t> prefix_lengths(const std::uint8_t* data, std::size_t size) {
    std::vector<std::size_t> lengths;
    if (size <= 256) {
        for (std::size_t n = 0; n <= size; ++n)
            lengths.push_back(n);
        return lengths;
    }
    // 32 cut points from a generator seeded with the input's FNV-1a hash
    // (a saved input replays the same cuts), sorted, then the whole.
    std::uint64_t state = 14695981039346656037ull;
    for (std::size_t i = 0; i < size; ++i)
        state = (state ^ data[i]) * 1099511628211ull;
    if (state == 0) state = 1;
    std::vector<bool> cut(size, false);
    for (int i = 0; i < 32; ++i) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        cut[state % size] = true;
    }
    for (std::size_t n = 0; n < size; ++n)
        if (cut[n]) lengths.push_back(n);
    lengths.push_back(size);
    return lengths;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string input(reinterpret_cast<const char*>(data), size);
    lab::Request kept;  // one Request across the calls, as the server keeps it
    bool decided = false;
    lab::HeadStatus first_status = lab::HeadStatus::incomplete;
    std::string first_target;

    for (std::size_t length : prefix_lengths(data, size)) {
        const std::string head = input.substr(0, length);
        lab::Request fresh;
        lab::HeadStatus status = lab::parse_head(head, fresh);
        FUZZ_CHECK(lab::parse_head(head, kept) == status,
                   "a Request kept across calls gives another answer than a fresh one");
        if (status == lab::HeadStatus::complete) {
            check_complete(head, fresh);
            FUZZ_CHECK(kept.target == fresh.target && kept.http09 == fresh.http09,
                       "a Request kept across calls gives another target than a fresh one");
        }
        if (decided) {
            FUZZ_CHECK(status == first_status,
                       "complete or bad, then more bytes changed the answer");
            FUZZ_CHECK(status != lab::HeadStatus::complete || fresh.target == first_target,
                       "complete, then more bytes changed the target");
        } else if (status != lab::HeadStatus::incomplete) {
            decided = true;
            first_status = status;
            first_target = fresh.target;
        }
    }
    return 0;
}
