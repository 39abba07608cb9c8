// response_verdict - what our response reader (common/response.h) says of
// each raw response in a set of files: one line per file,
//
//   NAME VERDICT BODYLEN
//
// VERDICT is one of
//   complete    the reader saw the whole response (BODYLEN: its body bytes)
//   truncated   at_eof() threw "response truncated: ..."
//   malformed   take() threw "response malformed: ..."
//   too-long    take() threw "response too long: ..." (bytes after the end)
//   empty       at_eof() threw "recv: the server closed the connection
//               without answering" (the file has no bytes)
// and BODYLEN is "-" for every verdict but complete.
//
// Each file is what a server sent before it closed the connection: the bytes
// go to take() in one piece, then at_eof() (the FIN). With --bytewise the same
// bytes are also fed one take() per byte, and the verdict must be the same:
// recv may cut a response anywhere, and where it cuts must not change what the
// reader decides. A difference is printed on stderr and the exit status is 1.
//
// tests/differential/compare.py runs this beside llhttp (Node.js) and
// CPython's http.client on thousands of generated responses; see
// docs/http-framing.md.
//
// Usage: response_verdict [--bytewise] [--why] FILE_OR_DIRECTORY...
//   A directory stands for the files in it, in name order.
//   --why  appends " | " and the reader's message (or how_it_ended()).
// Exit: 0, 1 when a bytewise verdict differs, 2 on a usage or file error.
#include "chapter.h"
#include "response.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

struct Verdict {
    std::string verdict;  // complete, truncated, malformed, too-long, empty
    std::string body_length = "-";
    std::string why;  // the reader's own words

    bool operator==(const Verdict& other) const {
        return verdict == other.verdict && body_length == other.body_length;
    }
};

// The verdict from the start of a Failure's text: "response truncated: ..."
// and so on (chapter.h: Failure's text is "CALL: REASON").
std::string verdict_of(const std::string& failure) {
    auto starts_with = [&](const char* prefix) { return failure.rfind(prefix, 0) == 0; };
    if (starts_with("response truncated:")) return "truncated";
    if (starts_with("response malformed:")) return "malformed";
    if (starts_with("response too long:")) return "too-long";
    if (starts_with("recv: the server closed the connection without answering")) return "empty";
    return "unexpected-failure";  // a message this program does not know: compare.py shows it
}

// Feed `bytes` to a fresh reader, `step` bytes per take(), then at_eof().
Verdict judge(const std::string& bytes, std::size_t step) {
    chapter::ResponseReader reader;
    Verdict result;
    try {
        for (std::size_t at = 0; at < bytes.size(); at += step)
            reader.take(bytes.data() + at, std::min(step, bytes.size() - at));
        reader.at_eof();  // the server closed the connection after these bytes
    } catch (const chapter::Failure& failure) {
        result.verdict = verdict_of(failure.what());
        result.why = failure.what();
        return result;
    }
    if (!reader.complete()) {
        // at_eof() either completes the response or throws; this is a reader bug.
        result.verdict = "not-complete-after-eof";
        return result;
    }
    result.verdict = "complete";
    result.body_length = std::to_string(reader.body_bytes());
    result.why = reader.how_it_ended();
    return result;
}

bool read_file(const std::filesystem::path& path, std::string& bytes) {
    std::ifstream file(path, std::ios::binary);
    if (!file) return false;
    bytes.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
    return !file.bad();
}

// Names on one line must stay one word: the reader's messages are escaped
// already (text::printable), but be sure no newline splits a line.
std::string one_line(std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    std::replace(text.begin(), text.end(), '\r', ' ');
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    bool bytewise = false;
    bool why = false;
    std::vector<std::filesystem::path> files;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--bytewise") {
            bytewise = true;
        } else if (arg == "--why") {
            why = true;
        } else if (!arg.empty() && arg[0] == '-') {
            std::fprintf(stderr,
                         "response_verdict: unknown option '%s'\n"
                         "usage: response_verdict [--bytewise] [--why] FILE_OR_DIRECTORY...\n",
                         arg.c_str());
            return 2;
        } else if (std::filesystem::is_directory(arg)) {
            std::vector<std::filesystem::path> in_directory;
            for (const auto& entry : std::filesystem::directory_iterator(arg))
                if (entry.is_regular_file()) in_directory.push_back(entry.path());
            std::sort(in_directory.begin(), in_directory.end());
            files.insert(files.end(), in_directory.begin(), in_directory.end());
        } else {
            files.push_back(arg);
        }
    }
    if (files.empty()) {
        std::fprintf(stderr, "usage: response_verdict [--bytewise] [--why] FILE_OR_DIRECTORY...\n");
        return 2;
    }

    int status = 0;
    std::string bytes;
    for (const auto& path : files) {
        if (!read_file(path, bytes)) {
            std::fprintf(stderr, "response_verdict: cannot read %s\n", path.string().c_str());
            return 2;
        }
        std::string name = path.filename().string();
        Verdict whole = judge(bytes, bytes.size() + 1);
        if (bytewise) {
            Verdict one_by_one = judge(bytes, 1);
            if (!(one_by_one == whole)) {
                std::fprintf(stderr,
                             "response_verdict: %s: fed whole: %s %s (%s); fed byte by byte: "
                             "%s %s (%s)\n",
                             name.c_str(), whole.verdict.c_str(), whole.body_length.c_str(),
                             one_line(whole.why).c_str(), one_by_one.verdict.c_str(),
                             one_by_one.body_length.c_str(), one_line(one_by_one.why).c_str());
                status = 1;
            }
        }
        std::string line = name + " " + whole.verdict + " " + whole.body_length;
        if (why) line += " | " + one_line(whole.why);
        std::printf("%s\n", line.c_str());
    }
    return status;
}
