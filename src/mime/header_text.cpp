#include "mime/header_text.hpp"

#include <vector>

#include "util/ascii.hpp"
#include "util/utf8.hpp"

namespace ferry::mime {
namespace {

using util::is_atext;

struct Word {
    std::string_view space;   // the whitespace before it (empty for the first)
    std::string_view text;
};

// `text` (trimmed) cut into words at runs of WSP, each with the run before it.
std::vector<Word> split_words(std::string_view text) {
    std::vector<Word> words;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const std::size_t start = pos;
        while (pos < text.size() && util::is_wsp(text[pos])) ++pos;
        const std::size_t word_start = pos;
        while (pos < text.size() && !util::is_wsp(text[pos])) ++pos;
        words.push_back({text.substr(start, word_start - start), text.substr(word_start, pos - word_start)});
    }
    return words;
}

bool needs_encoding(std::string_view word) {
    return !util::is_ascii(word) || word.find("=?") != std::string_view::npos || word.size() > kMaxPlainWord;
}

}  // namespace

std::string header_text_error(std::string_view text, std::string_view what) {
    for (const char c : text)
        if (c == '\r' || c == '\n' || c == '\0') return "header injection: CR, LF or NUL in " + std::string(what);
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7F) return "control character in " + std::string(what);
    }
    if (!util::is_valid_utf8(text)) return std::string(what) + " is not valid UTF-8";
    return "";
}

std::string_view trim_wsp(std::string_view text) {
    while (!text.empty() && util::is_wsp(text.front())) text.remove_prefix(1);
    while (!text.empty() && util::is_wsp(text.back())) text.remove_suffix(1);
    return text;
}

void write_unstructured(FieldWriter& w, std::string_view text) {
    const std::vector<Word> words = split_words(trim_wsp(text));
    for (std::size_t i = 0; i < words.size();) {
        if (!needs_encoding(words[i].text)) {
            w.word(words[i].text, words[i].space);
            ++i;
            continue;
        }
        // The run of words to encode, with the whitespace between them: one string of the original text.
        std::size_t j = i + 1;
        while (j < words.size() && needs_encoding(words[j].text)) ++j;
        const char* begin = words[i].text.data();
        const char* end = words[j - 1].text.data() + words[j - 1].text.size();
        w.encoded_words(std::string_view(begin, static_cast<std::size_t>(end - begin)), words[i].space);
        i = j;
    }
}

void write_verbatim(FieldWriter& w, std::string_view text) {
    for (const Word& word : split_words(trim_wsp(text))) w.word(word.text, word.space);
}

void write_phrase(FieldWriter& w, std::string_view display_name) {
    const std::string_view name = trim_wsp(display_name);
    const std::vector<Word> words = split_words(name);
    bool encode = false;
    bool atoms = true;
    for (const Word& word : words) {
        if (needs_encoding(word.text)) encode = true;
        if (!word.space.empty() && word.space != " ") atoms = false;
        for (const char c : word.text)
            if (!is_atext(c)) atoms = false;
    }
    if (encode) {
        w.encoded_words(name);
        return;
    }
    if (atoms) {
        for (const Word& word : words) w.word(word.text);
        return;
    }
    // RFC 5322 3.2.4: a quoted-string, '"' and '\' as quoted-pairs; FWS may stand inside it, so it folds at its
    // own whitespace and unfolds to the same content.
    for (std::size_t i = 0; i < words.size(); ++i) {
        std::string quoted;
        if (i == 0) quoted += '"';
        for (const char c : words[i].text) {
            if (c == '"' || c == '\\') quoted += '\\';
            quoted += c;
        }
        if (i + 1 == words.size()) quoted += '"';
        w.word(quoted, i == 0 ? " " : words[i].space);
    }
}

}  // namespace ferry::mime
