// Temporary paths unique to the running test and process: CTest runs tests in parallel, and
// several build trees may run the same tests at once.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace sift {

inline std::string test_temp_path(const std::string& name) {
    const testing::TestInfo* info = testing::UnitTest::GetInstance()->current_test_info();
    std::string test = info ? std::string(info->test_suite_name()) + "_" + info->name() : "global";
    for (char& c : test) {
        if (c == '/') c = '_';  // parameterized test names contain '/'
    }
    return testing::TempDir() + "sift_" + std::to_string(::getpid()) + "_" + test + "_" + name;
}

}  // namespace sift
