#include "mime/media_types.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/ascii.hpp"

namespace ferry::mime {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// "type/subtype" with something on both sides of the one slash; anything else is not a media type line.
bool looks_like_media_type(std::string_view word) {
    const auto slash = word.find('/');
    return slash != std::string_view::npos && slash > 0 && slash + 1 < word.size() &&
           word.find('/', slash + 1) == std::string_view::npos;
}

}  // namespace

MediaTypes MediaTypes::parse(std::string_view text) {
    MediaTypes table;
    while (!text.empty()) {
        const auto eol = text.find('\n');
        std::string_view line = text.substr(0, eol);
        text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);

        std::string_view type;
        while (true) {
            while (!line.empty() && is_space(line.front())) line.remove_prefix(1);
            if (line.empty() || line.front() == '#') break;   // a word starting with '#' comments out the rest
            std::size_t n = 0;
            while (n < line.size() && !is_space(line[n])) ++n;
            const std::string_view word = line.substr(0, n);
            line.remove_prefix(n);
            if (type.empty()) {
                if (!looks_like_media_type(word)) break;
                type = word;
            } else {
                table.by_extension_[util::ascii_lower(word)] = std::string(type);
            }
        }
    }
    return table;
}

std::optional<MediaTypes> MediaTypes::load(const std::filesystem::path& path, std::string& error) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error = "cannot read " + path.string() + ": " + std::strerror(errno);
        return std::nullopt;
    }
    std::string text;
    char buffer[65536];
    while (true) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {   // EISDIR for a directory, EIO
            error = "cannot read " + path.string() + ": " + std::strerror(errno);
            ::close(fd);
            return std::nullopt;
        }
        if (n == 0) break;
        text.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return parse(text);
}

std::string MediaTypes::type_for(std::string_view filename) const {
    const auto slash = filename.rfind('/');
    if (slash != std::string_view::npos) filename.remove_prefix(slash + 1);
    const std::string name = util::ascii_lower(filename);
    // Every dot after the first character starts a candidate extension; the first one found is the longest.
    for (std::size_t dot = name.find('.', 1); dot != std::string::npos; dot = name.find('.', dot + 1)) {
        const auto it = by_extension_.find(name.substr(dot + 1));
        if (it != by_extension_.end()) return it->second;
    }
    return std::string(kOctetStream);
}

}  // namespace ferry::mime
