// replay_main.cpp - a fuzz target without libFuzzer: run it once on each
// saved input.
//
//   fuzz-replay-NAME PATH...
//
// Each PATH is a file, or a folder whose files (not its subfolders) are run in
// name order. Every input libFuzzer ever found a bug with is kept in the
// corpus (tests/fuzz/corpus/NAME/crash-*, hang-*), so this, run by CTest in
// every build (g++, MinGW, sanitizers), keeps those bugs fixed.
//
// Exit status: 0 when at least one input ran and none broke an invariant (a
// broken one aborts, naming the FUZZ_CHECK); 1 when there was nothing to run
// or a PATH could not be read.
#include "fuzz.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

namespace fs = std::filesystem;

namespace {

// The files to run for one PATH, in name order; false if it cannot be read.
bool inputs_in(const fs::path& path, std::vector<fs::path>& inputs) {
    std::error_code error;
    if (!fs::is_directory(path, error)) {
        if (!fs::is_regular_file(path, error)) return false;
        inputs.push_back(path);
        return true;
    }
    std::vector<fs::path> found;
    for (fs::directory_iterator entry(path, error), end; !error && entry != end;
         entry.increment(error))
        if (entry->is_regular_file(error)) found.push_back(entry->path());
    if (error) return false;
    std::sort(found.begin(), found.end());
    inputs.insert(inputs.end(), found.begin(), found.end());
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<fs::path> inputs;
    for (int i = 1; i < argc; ++i) {
        if (!inputs_in(argv[i], inputs)) {
            std::fprintf(stderr, "%s: cannot read '%s'\n", argv[0], argv[i]);
            return 1;
        }
    }
    for (const fs::path& input : inputs) {
        std::ifstream file(input, std::ios::binary);
        std::vector<char> bytes((std::istreambuf_iterator<char>(file)),
                                std::istreambuf_iterator<char>());
        if (!file.good() && !file.eof()) {
            std::fprintf(stderr, "%s: cannot read '%s'\n", argv[0], input.string().c_str());
            return 1;
        }
        // Named before it runs: if it aborts, the last name printed is the culprit.
        std::printf("%s (%zu bytes)\n", input.string().c_str(), bytes.size());
        std::fflush(stdout);
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
    std::printf("replayed %zu inputs\n", inputs.size());
    if (inputs.empty()) std::fprintf(stderr, "%s: no inputs to replay\n", argv[0]);
    return inputs.empty() ? 1 : 0;
}
