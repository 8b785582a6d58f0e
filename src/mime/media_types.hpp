// File extension → media type, from the mime.types table Debian's media-types package installs (one media type
// per line, then zero or more extensions; '#' starts a comment). Used by `ferry send` for the Content-Type of an
// attachment. parse() is pure; load() reads the file.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ferry::mime {

inline constexpr const char* kDebianMimeTypes = "/etc/mime.types";
// RFC 2046 4.5.1: what an attachment of unknown type is sent as.
inline constexpr std::string_view kOctetStream = "application/octet-stream";

class MediaTypes {
public:
    // Lines without a "type/subtype" are skipped. Extensions compare case-insensitively. When an extension is
    // listed twice (Debian's file has sh under application/x-sh and text/x-sh), the later line wins, as
    // Python's mimetypes reads the same file, so Ferry and a script on the same machine agree.
    static MediaTypes parse(std::string_view text);
    // nullopt with `error` ("cannot read PATH: why") when the file cannot be read.
    static std::optional<MediaTypes> load(const std::filesystem::path& path, std::string& error);

    // The type for a file name (a path is cut to its base name): the longest listed extension the name ends in
    // (".tar.gz" would win over ".gz" if the table listed it), case-insensitive; kOctetStream when none is listed
    // or the name has no extension (a leading dot, as in ".profile", does not start one).
    std::string type_for(std::string_view filename) const;

    std::size_t size() const { return by_extension_.size(); }   // extensions known

private:
    std::unordered_map<std::string, std::string> by_extension_;   // lower-case extension, no dot → media type
};

}  // namespace ferry::mime
