// DNS record data from the network (whatever a resolver or a hostile authoritative server hands over): names,
// MX, A and AAAA rdata, and the MX plan made from a list of them (input: records separated by 0xFF 0xFF); and the
// same input read as a whole message for the records of its answer section.
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "dns/mx_plan.hpp"
#include "dns/resolver.hpp"
#include "dns/wire.hpp"
#include "fuzz_check.hpp"

using namespace ferry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = fuzz::as_text(data, size);
    std::size_t pos = 0;
    if (const auto name = dns::read_name(input, pos)) {
        FUZZ_CHECK(pos <= input.size() && name->size() <= 253);
        for (const char c : *name) FUZZ_CHECK(static_cast<unsigned char>(c) > 0x20 && c != 0x7f && !(c >= 'A' && c <= 'Z'));
        FUZZ_CHECK(name->find("..") == std::string::npos && (name->empty() || name->front() != '.'));
    } else {
        FUZZ_CHECK(pos == 0);
    }
    if (const auto a = dns::parse_a(input)) FUZZ_CHECK(input.size() == 4 && a->size() <= 15);
    if (const auto a = dns::parse_aaaa(input)) FUZZ_CHECK(input.size() == 16 && a->size() <= 39);

    if (const auto rcode = dns::message_rcode(input)) FUZZ_CHECK(*rcode >= 0 && *rcode <= 15);
    for (const int type : {dns::kTypeTxt, dns::kTypeA}) {
        if (const auto records = dns::answer_rdata(input, "example.org", type)) {
            std::size_t octets = 0;
            // The header, then per record at least an owner pointer, the fixed fields and the rdata.
            for (const auto& r : *records) octets += 2 + 10 + r.size();
            FUZZ_CHECK(12 + octets <= input.size());
        }
    }

    dns::Answer answer;
    answer.status = dns::Answer::Status::data;
    for (std::size_t start = 0; start <= input.size();) {
        const auto end = input.find("\xff\xff", start);
        answer.rdata.emplace_back(input.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
        if (end == std::string_view::npos) break;
        start = end + 2;
    }
    std::mt19937 random(static_cast<unsigned>(size));
    const auto plan = dns::plan_mx("example.org", answer, random);
    if (plan.kind == dns::MxPlan::Kind::hosts) {
        FUZZ_CHECK(!plan.hosts.empty() && plan.hosts.size() <= dns::kMaxMxHosts);
        for (std::size_t i = 0; i < plan.hosts.size(); ++i) {
            FUZZ_CHECK(!plan.hosts[i].host.empty() && !plan.hosts[i].implicit);
            if (i > 0) FUZZ_CHECK(plan.hosts[i - 1].preference <= plan.hosts[i].preference);
            for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK(plan.hosts[j].host != plan.hosts[i].host);
        }
    } else {
        FUZZ_CHECK(plan.hosts.empty() && !plan.reason.empty());
    }
    return 0;
}
