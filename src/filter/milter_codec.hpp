// The Sendmail/Postfix milter protocol, version 6, from the MTA side: the bytes on the wire and what they mean.
// Pure (no I/O): filter/milter_client does the talking.
//
// Every packet in both directions is a frame: a 4-octet big-endian length covering the command octet and the
// data, the command octet, the data. Strings in the data end in NUL. The MTA sends commands (SMFIC_*); the
// filter answers with replies (SMFIR_*), or with its own SMFIC_OPTNEG frame to the MTA's option negotiation.
// Names of the constants are libmilter's (mfapi.h, mfdef.h) so the code reads beside its documentation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filter/filter_types.hpp"
#include "smtp/reply.hpp"

namespace ferry::filter::milter {

inline constexpr std::uint32_t kProtocolVersion = 6;
inline constexpr std::size_t kChunkSize = 65535;          // MILTER_CHUNK_SIZE: the most body octets per SMFIC_BODY
inline constexpr std::size_t kMaxFrame = 1024 * 1024;     // a longer frame from a filter is malformed

// MTA → filter commands (mfdef.h).
inline constexpr char SMFIC_ABORT = 'A';
inline constexpr char SMFIC_BODY = 'B';
inline constexpr char SMFIC_CONNECT = 'C';
inline constexpr char SMFIC_MACRO = 'D';
inline constexpr char SMFIC_BODYEOB = 'E';
inline constexpr char SMFIC_HELO = 'H';
inline constexpr char SMFIC_QUIT_NC = 'K';
inline constexpr char SMFIC_HEADER = 'L';
inline constexpr char SMFIC_MAIL = 'M';
inline constexpr char SMFIC_EOH = 'N';
inline constexpr char SMFIC_OPTNEG = 'O';
inline constexpr char SMFIC_QUIT = 'Q';
inline constexpr char SMFIC_RCPT = 'R';
inline constexpr char SMFIC_DATA = 'T';
inline constexpr char SMFIC_UNKNOWN = 'U';

// Filter → MTA replies (mfdef.h).
inline constexpr char SMFIR_ADDRCPT = '+';
inline constexpr char SMFIR_DELRCPT = '-';
inline constexpr char SMFIR_ADDRCPT_PAR = '2';
inline constexpr char SMFIR_SHUTDOWN = '4';
inline constexpr char SMFIR_ACCEPT = 'a';
inline constexpr char SMFIR_REPLBODY = 'b';
inline constexpr char SMFIR_CONTINUE = 'c';
inline constexpr char SMFIR_DISCARD = 'd';
inline constexpr char SMFIR_CHGFROM = 'e';
inline constexpr char SMFIR_CONN_FAIL = 'f';
inline constexpr char SMFIR_ADDHEADER = 'h';
inline constexpr char SMFIR_INSHEADER = 'i';
inline constexpr char SMFIR_SETSYMLIST = 'l';
inline constexpr char SMFIR_CHGHEADER = 'm';
inline constexpr char SMFIR_PROGRESS = 'p';
inline constexpr char SMFIR_QUARANTINE = 'q';
inline constexpr char SMFIR_REJECT = 'r';
inline constexpr char SMFIR_SKIP = 's';
inline constexpr char SMFIR_TEMPFAIL = 't';
inline constexpr char SMFIR_REPLYCODE = 'y';

// Address families of SMFIC_CONNECT (mfdef.h SMFIA_*).
inline constexpr char SMFIA_UNKNOWN = 'U';
inline constexpr char SMFIA_UNIX = 'L';
inline constexpr char SMFIA_INET = '4';
inline constexpr char SMFIA_INET6 = '6';

// Actions the filter may take (mfapi.h SMFIF_*), offered by the MTA and chosen by the filter.
inline constexpr std::uint32_t SMFIF_ADDHDRS = 0x01;
inline constexpr std::uint32_t SMFIF_CHGBODY = 0x02;
inline constexpr std::uint32_t SMFIF_ADDRCPT = 0x04;
inline constexpr std::uint32_t SMFIF_DELRCPT = 0x08;
inline constexpr std::uint32_t SMFIF_CHGHDRS = 0x10;
inline constexpr std::uint32_t SMFIF_QUARANTINE = 0x20;
inline constexpr std::uint32_t SMFIF_CHGFROM = 0x40;
inline constexpr std::uint32_t SMFIF_ADDRCPT_PAR = 0x80;
inline constexpr std::uint32_t SMFIF_SETSYMLIST = 0x100;

// Protocol steps (mfdef.h SMFIP_*): stages the filter does not want (NO*), stages it will not answer (NR_*).
inline constexpr std::uint32_t SMFIP_NOCONNECT = 0x01;
inline constexpr std::uint32_t SMFIP_NOHELO = 0x02;
inline constexpr std::uint32_t SMFIP_NOMAIL = 0x04;
inline constexpr std::uint32_t SMFIP_NORCPT = 0x08;
inline constexpr std::uint32_t SMFIP_NOBODY = 0x10;
inline constexpr std::uint32_t SMFIP_NOHDRS = 0x20;
inline constexpr std::uint32_t SMFIP_NOEOH = 0x40;
inline constexpr std::uint32_t SMFIP_NR_HDR = 0x80;   // also called SMFIP_NOHREPL
inline constexpr std::uint32_t SMFIP_NOUNKNOWN = 0x100;
inline constexpr std::uint32_t SMFIP_NODATA = 0x200;
inline constexpr std::uint32_t SMFIP_SKIP = 0x400;
inline constexpr std::uint32_t SMFIP_RCPT_REJ = 0x800;
inline constexpr std::uint32_t SMFIP_NR_CONN = 0x1000;
inline constexpr std::uint32_t SMFIP_NR_HELO = 0x2000;
inline constexpr std::uint32_t SMFIP_NR_MAIL = 0x4000;
inline constexpr std::uint32_t SMFIP_NR_RCPT = 0x8000;
inline constexpr std::uint32_t SMFIP_NR_DATA = 0x10000;
inline constexpr std::uint32_t SMFIP_NR_UNKN = 0x20000;
inline constexpr std::uint32_t SMFIP_NR_EOH = 0x40000;
inline constexpr std::uint32_t SMFIP_NR_BODY = 0x80000;
inline constexpr std::uint32_t SMFIP_HDR_LEADSPC = 0x100000;

// Stages of a SMFIR_SETSYMLIST request (mfapi.h SMFIM_*).
inline constexpr std::uint32_t SMFIM_CONNECT = 0;
inline constexpr std::uint32_t SMFIM_HELO = 1;
inline constexpr std::uint32_t SMFIM_ENVFROM = 2;
inline constexpr std::uint32_t SMFIM_ENVRCPT = 3;
inline constexpr std::uint32_t SMFIM_DATA = 4;
inline constexpr std::uint32_t SMFIM_EOM = 5;
inline constexpr std::uint32_t SMFIM_EOH = 6;
inline constexpr std::size_t kMacroStages = 7;

using Macros = std::vector<std::pair<std::string, std::string>>;   // name ("j", "{client_addr}"), value

// ---- MTA → filter: each returns one whole frame (several for a long body). ----
std::string encode_frame(char command, std::string_view data);
std::string encode_optneg(std::uint32_t version, std::uint32_t actions, std::uint32_t protocol);
// The macros that go with the next `stage` command: stage octet, then name NUL value NUL pairs.
std::string encode_macros(char stage, const Macros& macros);
// family SMFIA_UNKNOWN sends no port nor address.
std::string encode_connect(std::string_view hostname, char family, std::uint16_t port, std::string_view address);
std::string encode_helo(std::string_view helo);
// `address` without <>: the frame carries "<address>" ("<>" for the null reverse-path), then each ESMTP argument.
std::string encode_mail(std::string_view address, const std::vector<std::string>& esmtp_args);
std::string encode_rcpt(std::string_view address, const std::vector<std::string>& esmtp_args);
std::string encode_data();
std::string encode_header(std::string_view name, std::string_view value);
std::string encode_eoh();
// The body as SMFIC_BODY frames of at most kChunkSize octets each (none for an empty body).
std::string encode_body(std::string_view body);
std::string encode_eob();
std::string encode_abort();
std::string encode_quit();
std::string encode_quit_nc();

// ---- filter → MTA ----
struct OptnegReply {
    std::uint32_t version = 0;
    std::uint32_t actions = 0;
    std::uint32_t protocol = 0;
    // SMFIR_SETSYMLIST data in the reply: per SMFIM_* stage, the macro names the filter wants (space-separated
    // in the frame, split here); nullopt: the MTA's own list.
    std::array<std::optional<std::vector<std::string>>, kMacroStages> macro_lists;
};

struct Reply {
    enum class Kind {
        optneg,        // the filter's SMFIC_OPTNEG answer: `optneg`
        accept, continue_, reject, tempfail, discard, shutdown, conn_fail, progress, skip,
        replycode,     // `reply`
        quarantine,    // `value`: the reason
        add_header,    // `name`, `value`
        insert_header, // `index` (0 = first field), `name`, `value`
        change_header, // `index` (1-based per name; 0 taken as 1, as Sendmail), `name`, `value` ("" deletes)
        add_rcpt,      // `address` (without <>)
        add_rcpt_par,  // `address`, `args`
        delete_rcpt,   // `address`
        change_from,   // `address`, `args` ("" when none)
        replace_body,  // `value`: one chunk of the new body, as sent
    };
    Kind kind = Kind::continue_;
    char command = 0;              // the octet on the wire
    smtp::Reply reply;
    std::uint32_t index = 0;
    std::string name, value, address, args;
    OptnegReply optneg;
};

// The final answers that end a stage (everything but progress, quarantine and the modifications).
bool is_final(Reply::Kind kind);
// Modifications are only allowed in answer to SMFIC_BODYEOB; the action each needs negotiated (0 = none).
bool is_modification(Reply::Kind kind);
std::uint32_t required_action(Reply::Kind kind);

struct Decoded {
    enum class Status { incomplete, reply, error };
    Status status = Status::incomplete;
    Reply reply;
    std::string error;   // status error: why, for the log
};

// One reply's data (after the command octet), parsed.
Decoded parse_reply(char command, std::string_view data);
// "550 5.7.1 text" (possibly "550-5.7.1 a\r\n550 5.7.1 b"), the data of SMFIR_REPLYCODE without its NUL.
// '%%' is '%' and a lone '%' is dropped (Sendmail uses the text as a format string; Postfix does the same).
// Without an enhanced code the default is x.0.0, as libmilter's smfi_setreply gives.
std::optional<smtp::Reply> parse_reply_code(std::string_view text, std::string& error);

// Frames from the filter as they arrive, in any pieces. After an error every next() repeats it.
class ReplyDecoder {
public:
    void feed(std::string_view octets) { buffer_.append(octets); }
    Decoded next();
    std::size_t buffered() const { return buffer_.size() - offset_; }

private:
    std::string buffer_;
    std::size_t offset_ = 0;
    std::string error_;
};

// ---- Ferry's meaning of the replies ----
// A final reply as a stage Decision: continue → proceed, accept → accept, reject → reject (the default
// 550 5.7.1), tempfail → tempfail (451 4.7.1), replycode → reject or tempfail by its class with that reply,
// discard → discard, shutdown/conn_fail → shutdown (421 4.7.0).
Decision decision_of(const Reply& reply);

// The end-of-message answers of one filter gathered into a ContentVerdict.
class VerdictBuilder {
public:
    // `actions`: what the filter negotiated. `hidden_first_field`: the name of the first header field when it
    // was not shown to the filter (our Received:), whose change indexes then count from the next one.
    VerdictBuilder(std::uint32_t actions, std::string hidden_first_field = {});
    // A modification or quarantine; an error (a modification not negotiated, a bad index) as text.
    std::optional<std::string> add(const Reply& reply);
    // The final reply: the verdict, with the modifications gathered so far.
    ContentVerdict finish(const Reply& final_reply);

private:
    std::uint32_t actions_;
    std::string hidden_first_field_;
    ContentVerdict verdict_;
    std::string body_;
    bool replaced_body_ = false;
};

// Addresses as milters send them: "<a@b>" or "a@b" → "a@b".
std::string strip_angle_brackets(std::string_view address);
// Bare LF to CRLF, and a last line without a line end ended, as Postfix does with a replaced body.
std::string to_crlf(std::string_view text);

}  // namespace ferry::filter::milter
