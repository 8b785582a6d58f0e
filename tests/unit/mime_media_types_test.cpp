#include "mime/media_types.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "temp_dir_test.hpp"

using namespace ferry::mime;

namespace {

constexpr std::string_view kSample =
    "###############################\n"
    "#  Media (MIME) types and the extensions that represent them.\n"
    "###############################\n"
    "\n"
    "application/1d-interleaved-parityfec\n"
    "application/pdf\t\t\t\t\tpdf\n"
    "application/gzip\t\t\t\tgz\n"
    "application/sarif+json\t\t\t\tsarif sarif.json\n"
    "application/json\t\t\t\tjson\n"
    "application/x-sh\t\t\t\tsh\n"
    "application/vnd.Kinar\t\t\t\tkne knp sdf\n"
    "text/plain\t\t\t\t\ttxt text pot brf srt\n"
    "text/x-sh\t\t\t\t\tsh\n"
    "image/jpeg   jpeg jpg jpe  # trailing comment jfif\n"
    "application/ELN-ish\t\t\tELN\r\n"
    "not-a-type  zzz\n"
    "   # indented comment line with/slash ext\n"
    "text/html html htm";   // no final newline

TEST(MediaTypes, LooksUpByExtension) {
    const MediaTypes t = MediaTypes::parse(kSample);
    EXPECT_EQ(t.type_for("report.pdf"), "application/pdf");
    EXPECT_EQ(t.type_for("notes.txt"), "text/plain");
    EXPECT_EQ(t.type_for("photo.jpg"), "image/jpeg");
    EXPECT_EQ(t.type_for("photo.jpe"), "image/jpeg");
    EXPECT_EQ(t.type_for("page.htm"), "text/html");      // last line without a newline
    EXPECT_EQ(t.type_for("data.kne"), "application/vnd.Kinar");   // the type as the table writes it
}

TEST(MediaTypes, CaseInsensitive) {
    const MediaTypes t = MediaTypes::parse(kSample);
    EXPECT_EQ(t.type_for("REPORT.PDF"), "application/pdf");
    EXPECT_EQ(t.type_for("Photo.JpG"), "image/jpeg");
    EXPECT_EQ(t.type_for("x.eln"), "application/ELN-ish");   // an upper-case extension in the table, CR stripped
}

TEST(MediaTypes, UnknownIsOctetStream) {
    const MediaTypes t = MediaTypes::parse(kSample);
    for (const char* name : {"README", "archive.unknownext", "trailingdot.", ".profile", ".pdf", "", "x.zzz",
                             "x.jfif", "x.ext", "x.comment"})
        EXPECT_EQ(t.type_for(name), kOctetStream) << name;
    EXPECT_EQ(MediaTypes::parse("").type_for("a.pdf"), kOctetStream);
}

TEST(MediaTypes, LongestExtensionWinsAndPathsAreCut) {
    const MediaTypes t = MediaTypes::parse(kSample);
    EXPECT_EQ(t.type_for("results.sarif.json"), "application/sarif+json");
    EXPECT_EQ(t.type_for("other.json"), "application/json");
    EXPECT_EQ(t.type_for("backup.tar.gz"), "application/gzip");
    EXPECT_EQ(t.type_for("/home/alice/docs.d/report.pdf"), "application/pdf");
    EXPECT_EQ(t.type_for("dir.pdf/README"), kOctetStream);
    EXPECT_EQ(t.type_for(".hidden.pdf"), "application/pdf");
}

TEST(MediaTypes, LaterLineWins) {
    // Debian lists sh under application/x-sh and later text/x-sh; Python's mimetypes gives text/x-sh too.
    EXPECT_EQ(MediaTypes::parse(kSample).type_for("run.sh"), "text/x-sh");
}

TEST(MediaTypes, LoadsDebiansFile) {
    std::string error;
    const auto t = MediaTypes::load(kDebianMimeTypes, error);
    ASSERT_TRUE(t) << error;
    EXPECT_GT(t->size(), 1000U);
    EXPECT_EQ(t->type_for("a.pdf"), "application/pdf");
    EXPECT_EQ(t->type_for("a.txt"), "text/plain");
    EXPECT_EQ(t->type_for("a.PNG"), "image/png");
    EXPECT_EQ(t->type_for("a.html"), "text/html");
    EXPECT_EQ(t->type_for("a.gz"), "application/gzip");
    EXPECT_EQ(t->type_for("a.odt"), "application/vnd.oasis.opendocument.text");
    EXPECT_EQ(t->type_for("a.nosuchextension"), kOctetStream);
}

class MediaTypesFile : public ferry::testing::TempDirTest {};

TEST_F(MediaTypesFile, LoadReportsWhy) {
    std::string error;
    EXPECT_FALSE(MediaTypes::load(dir_ / "missing.types", error));
    EXPECT_NE(error.find("cannot read"), std::string::npos);
    EXPECT_NE(error.find("missing.types"), std::string::npos);
    EXPECT_NE(error.find("No such file"), std::string::npos) << error;
    error.clear();
    EXPECT_FALSE(MediaTypes::load(dir_, error));   // a directory: open works, read fails
    EXPECT_NE(error.find("Is a directory"), std::string::npos) << error;

    std::ofstream(dir_ / "my.types") << "application/x-ferry ferry\n";
    const auto t = MediaTypes::load(dir_ / "my.types", error);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->type_for("queue.FERRY"), "application/x-ferry");
}

}  // namespace
