# make chapterN   -> ./chapterN at the repo root (chapters/NN_*/chapterN.cpp + common/)
# make labserver  -> ./labserver
# make all        -> every chapter and the lab server
# make test       -> configure CMake in build/, build, run the whole CTest suite
# make test-windows -> the same, cross-built with MinGW-w64 and run under Wine
# CXX and CXXFLAGS may be overridden: make chapter1 CXX=clang++ CXXFLAGS=-O0
CXXFLAGS ?= -O2 -g
REQUIRED_FLAGS := -std=c++17 -Wall -Wextra -Werror -pthread -Icommon

COMMON_SRC := $(filter-out common/labserver_main.cpp,$(wildcard common/*.cpp))
COMMON_HDR := $(wildcard common/*.h)
CHAPTER_SRC := $(wildcard chapters/*/chapter*.cpp)
CHAPTERS := $(basename $(notdir $(CHAPTER_SRC)))

.PHONY: all clean test test-windows
all: $(CHAPTERS) labserver

# One rule per chapter folder found, so a new chapter needs no edit here.
define chapter_rule
$(basename $(notdir $(1))): $(1) $$(COMMON_SRC) $$(COMMON_HDR)
	$$(CXX) $$(REQUIRED_FLAGS) $$(CPPFLAGS) $$(CXXFLAGS) -o $$@ $(1) $$(COMMON_SRC) $$(LDFLAGS) $$(LDLIBS)
endef
$(foreach src,$(CHAPTER_SRC),$(eval $(call chapter_rule,$(src))))

labserver: common/labserver_main.cpp $(COMMON_SRC) $(COMMON_HDR)
	$(CXX) $(REQUIRED_FLAGS) $(CPPFLAGS) $(CXXFLAGS) -o $@ common/labserver_main.cpp $(COMMON_SRC) $(LDFLAGS) $(LDLIBS)

BUILD_DIR ?= build
CMAKE_ARGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
test:
	cmake -S . -B $(BUILD_DIR) $(CMAKE_ARGS)
	cmake --build $(BUILD_DIR) -j 2
	cd $(BUILD_DIR) && ctest --output-on-failure -j 2 --timeout 120

clean:
	rm -f $(CHAPTERS) labserver
	rm -rf build build-*
