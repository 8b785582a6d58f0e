#include "queue/queue_report.hpp"

#include <gtest/gtest.h>

using namespace ferry::queue;

namespace {

std::vector<QueuedMessage> sample() {
    QueuedMessage m;
    m.id = "1J0UM6QHSMG0000";
    m.arrival = 1000;
    m.sender = "al\"ice@example.test";
    m.size = 321;
    m.recipients.push_back(QueuedRecipient{"bob@example.org", false, 2, "451 4.3.0 try\tlater", 1300});
    m.recipients.push_back(QueuedRecipient{"carol@example.org", true, 0, "", 0});
    return {m};
}

}  // namespace

TEST(QueueReport, JsonHasEveryFieldEscaped) {
    const std::string j = format_queue_json(sample(), 1100);
    EXPECT_EQ(j, R"([{"id": "1J0UM6QHSMG0000", "arrival": 1000, "age": 100, "sender": "al\"ice@example.test", "size": 321, )"
                 R"("held": false, "hold_reason": null, "recipients": [{"address": "bob@example.org", "status": "pending", "attempts": 2, )"
                 R"("last_error": "451 4.3.0 try\u0009later", "next_attempt": 1300}, {"address": "carol@example.org", )"
                 R"("status": "in-flight", "attempts": 0, "last_error": "", "next_attempt": null}]}])"
                 "\n");
    EXPECT_EQ(format_queue_json({}, 0), "[]\n");
}

TEST(QueueReport, TextNamesWhatIsPendingAndWhen) {
    const std::string t = format_queue_text(sample(), 1100);
    EXPECT_NE(t.find("1J0UM6QHSMG0000"), std::string::npos);
    EXPECT_NE(t.find("<bob@example.org>  attempts 2, next try in 3m"), std::string::npos) << t;
    EXPECT_NE(t.find("451 4.3.0 try"), std::string::npos);
    EXPECT_NE(t.find("<carol@example.org>  attempts 0, being delivered"), std::string::npos);
    EXPECT_NE(t.find("1 message in the queue"), std::string::npos);
    EXPECT_EQ(format_queue_text({}, 0), "Mail queue is empty\n");
}

// A quarantined message: its reason and the command that releases it; its recipients wait for nothing else.
TEST(QueueReport, HeldMessageShowsItsReasonAndNoNextTry) {
    auto messages = sample();
    messages[0].held = true;
    messages[0].hold_reason = "milter \"clamav\": Eicar";
    messages[0].recipients[1].in_flight = false;
    const std::string t = format_queue_text(messages, 1100);
    EXPECT_NE(t.find("    HELD: milter \"clamav\": Eicar (ferry queue release 1J0UM6QHSMG0000)\n"), std::string::npos) << t;
    EXPECT_NE(t.find("<bob@example.org>  attempts 2, held\n"), std::string::npos) << t;
    EXPECT_EQ(t.find("next try"), std::string::npos) << t;
    const std::string j = format_queue_json(messages, 1100);
    EXPECT_NE(j.find(R"("held": true, "hold_reason": "milter \"clamav\": Eicar", )"), std::string::npos) << j;
    EXPECT_NE(j.find(R"("status": "held", "attempts": 2, "last_error": "451 4.3.0 try\u0009later", "next_attempt": null})"),
              std::string::npos) << j;
}
