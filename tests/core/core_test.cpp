#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/mmap.h"
#include "core/result.h"

#include "tests/test_temp.h"

namespace sift {
namespace {

Result<int> parse_positive(int v) {
    if (v <= 0) return make_error("value {} is not positive", v);
    return v;
}

Status twice_positive(int v) {
    SIFT_TRY(parse_positive(v));
    SIFT_TRY(parse_positive(2 * v));
    return {};
}

TEST(Result, CarriesValueOrError) {
    Result<int> ok = parse_positive(3);
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ(*ok, 3);
    Result<int> bad = parse_positive(-1);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.message(), "value -1 is not positive");
}

TEST(Result, TryPropagatesTheFirstError) {
    EXPECT_TRUE(twice_positive(1).ok());
    Status s = twice_positive(0);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.message(), "value 0 is not positive");
}

TEST(MappedFile, MapsWholeFileAndReportsMissingOnes) {
    const std::filesystem::path path = test_temp_path("mmap.bin");
    std::ofstream(path, std::ios::binary) << "hello";
    Result<std::unique_ptr<MappedFile>> file = MappedFile::open(path.string());
    ASSERT_TRUE(file.ok()) << file.message();
    ASSERT_EQ((*file)->bytes().size(), 5u);
    EXPECT_EQ((*file)->bytes()[4], 'o');
    std::filesystem::remove(path);

    Result<std::unique_ptr<MappedFile>> missing = MappedFile::open("/nonexistent/x.gguf");
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.message().find("/nonexistent/x.gguf: cannot open"), std::string::npos);

    Result<std::unique_ptr<MappedFile>> dir = MappedFile::open("/tmp");
    ASSERT_FALSE(dir.ok());
    EXPECT_NE(dir.message().find("not a regular file"), std::string::npos);
}

TEST(MappedFile, EmptyFileMapsToNoBytes) {
    const std::filesystem::path path = test_temp_path("empty.bin");
    std::ofstream(path, std::ios::binary).close();
    Result<std::unique_ptr<MappedFile>> file = MappedFile::open(path.string());
    ASSERT_TRUE(file.ok());
    EXPECT_TRUE((*file)->bytes().empty());
    std::filesystem::remove(path);
}

}  // namespace
}  // namespace sift
