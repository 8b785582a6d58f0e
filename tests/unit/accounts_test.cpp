#include "accounts/account_file.hpp"
#include "accounts/password.hpp"
#include "cli/user_command.hpp"

#include <gtest/gtest.h>

#include "temp_dir_test.hpp"

#include <crypt.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>

namespace fs = std::filesystem;
using ferry::accounts::AccountFile;
using ferry::accounts::hash_password;
using ferry::accounts::verify_password;

namespace {

class AccountsTest : public ferry::testing::TempDirTest {
protected:
    std::string read(const fs::path& p) {
        std::ifstream in(p);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }
    void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

    // Message of the std::runtime_error `f` throws.
    template <typename F>
    std::string error_of(F f) {
        try {
            f();
        } catch (const std::runtime_error& e) {
            return e.what();
        }
        ADD_FAILURE() << "no exception";
        return {};
    }
};

std::string sha512_crypt(const char* password) {
    auto data = std::make_unique<crypt_data>();
    const char* out = crypt_rn(password, "$6$saltsaltsalt$", data.get(), sizeof *data);
    return out ? out : "";
}

}  // namespace

TEST(AccountsPassword, HashVerifyRoundTrip) {
    std::string h = hash_password("correct horse");
    EXPECT_EQ(h.rfind("{CRYPT}$y$", 0), 0u) << h;
    EXPECT_TRUE(verify_password("correct horse", h));
    EXPECT_TRUE(verify_password("correct horse", h.substr(7)));   // without the scheme prefix
    EXPECT_NE(hash_password("correct horse"), h);                  // random salt
}

TEST(AccountsPassword, WrongPasswordFails) {
    std::string h = hash_password("secret");
    EXPECT_FALSE(verify_password("Secret", h));
    EXPECT_FALSE(verify_password("", h));
    EXPECT_FALSE(verify_password("secret ", h));
    EXPECT_FALSE(verify_password("secret", ""));
    EXPECT_FALSE(verify_password("secret", "{CRYPT}"));
    EXPECT_FALSE(verify_password("secret", "{PLAIN}secret"));
    EXPECT_FALSE(verify_password("secret", "{CRYPT}garbage"));
    EXPECT_FALSE(verify_password("secret", h.substr(0, h.size() - 1)));
}

TEST(AccountsPassword, Sha512CryptFromCryptRnVerifies) {
    std::string h = sha512_crypt("pa55word");
    ASSERT_EQ(h.rfind("$6$", 0), 0u) << h;
    EXPECT_TRUE(verify_password("pa55word", h));
    EXPECT_TRUE(verify_password("pa55word", "{SHA512-CRYPT}" + h));
    EXPECT_TRUE(verify_password("pa55word", "{CRYPT}" + h));
    EXPECT_TRUE(verify_password("pa55word", "{sha512-crypt}" + h));
    EXPECT_FALSE(verify_password("password", "{SHA512-CRYPT}" + h));
    EXPECT_FALSE(verify_password("pa55word", "{SSHA512}" + h));
}

TEST(AccountsPassword, NulInPasswordRejected) {
    EXPECT_THROW(hash_password(std::string("a\0b", 3)), std::invalid_argument);
    EXPECT_FALSE(verify_password(std::string("a\0b", 3), hash_password("a")));
}

TEST_F(AccountsTest, MissingFileIsEmpty) {
    AccountFile f(dir_ / "accounts");
    EXPECT_TRUE(f.load().empty());
    EXPECT_FALSE(f.find("alice@example.test").has_value());
}

TEST_F(AccountsTest, AddListPasswdDel) {
    AccountFile f(dir_ / "accounts");
    f.add("alice@example.test", "one");
    f.add("bob@example.test", "two");
    auto all = f.load();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].address, "alice@example.test");
    EXPECT_EQ(all[1].address, "bob@example.test");
    EXPECT_TRUE(verify_password("one", all[0].password_hash));
    EXPECT_TRUE(verify_password("two", all[1].password_hash));

    struct stat st {};
    ASSERT_EQ(::stat((dir_ / "accounts").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    f.set_password("alice@example.test", "uno");
    auto alice = f.find("alice@example.test");
    ASSERT_TRUE(alice);
    EXPECT_TRUE(verify_password("uno", alice->password_hash));
    EXPECT_FALSE(verify_password("one", alice->password_hash));

    f.remove("alice@example.test");
    all = f.load();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].address, "bob@example.test");

    // No temporary files left behind.
    std::size_t files = 0;
    for ([[maybe_unused]] auto& e : fs::directory_iterator(dir_)) ++files;
    EXPECT_EQ(files, 1u);
}

TEST_F(AccountsTest, ErrorsForDuplicatesAbsentAndInvalid) {
    AccountFile f(dir_ / "accounts");
    f.add("alice@example.test", "one");
    EXPECT_EQ(error_of([&] { f.add("alice@example.test", "x"); }), "alice@example.test: account already exists");
    EXPECT_EQ(error_of([&] { f.add("ALICE@Example.Test", "x"); }), "alice@example.test: account already exists");
    EXPECT_EQ(error_of([&] { f.set_password("carol@example.test", "x"); }), "carol@example.test: no such account");
    EXPECT_EQ(error_of([&] { f.remove("carol@example.test"); }), "carol@example.test: no such account");
    EXPECT_NE(error_of([&] { f.add("not an address", "x"); }).find("invalid address"), std::string::npos);
    EXPECT_NE(error_of([&] { f.add("a:b@example.test", "x"); }).find("invalid address"), std::string::npos);
    EXPECT_EQ(f.load().size(), 1u);
}

TEST_F(AccountsTest, CaseInsensitive) {
    AccountFile f(dir_ / "accounts");
    f.add("Alice@Example.TEST", "one");
    EXPECT_EQ(f.load().at(0).address, "alice@example.test");
    EXPECT_TRUE(f.find("ALICE@example.test").has_value());
    f.set_password("alice@EXAMPLE.test", "two");
    EXPECT_TRUE(verify_password("two", f.find("alice@example.test")->password_hash));
    f.remove("ALICE@EXAMPLE.TEST");
    EXPECT_TRUE(f.load().empty());

    // Upper case written by hand is found too.
    write(dir_ / "accounts", "Bob@Example.Test:" + hash_password("b") + "\n");
    EXPECT_EQ(f.load().at(0).address, "bob@example.test");
}

TEST_F(AccountsTest, CommentsAndBlankLinesKept) {
    std::string h = sha512_crypt("pw");
    write(dir_ / "accounts", "# managed by hand\n\n  # indented comment\nalice@example.test:{SHA512-CRYPT}" + h +
                                 "\r\n");
    AccountFile f(dir_ / "accounts");
    auto all = f.load();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].password_hash, "{SHA512-CRYPT}" + h);
    EXPECT_TRUE(verify_password("pw", all[0].password_hash));

    f.add("bob@example.test", "b");
    std::string text = read(dir_ / "accounts");
    EXPECT_EQ(text.rfind("# managed by hand\n\n  # indented comment\nalice@example.test:", 0), 0u) << text;
    EXPECT_NE(text.find("\nbob@example.test:{CRYPT}$y$"), std::string::npos) << text;
}

TEST_F(AccountsTest, MalformedLineNamesFileAndLine) {
    fs::path p = dir_ / "accounts";
    AccountFile f(p);
    write(p, "# comment\nalice@example.test:{CRYPT}$y$abc\nno colon here\n");
    EXPECT_EQ(error_of([&] { f.load(); }), p.string() + ":3: expected ADDRESS:{SCHEME}HASH");
    write(p, "\nbad address:{CRYPT}$y$abc\n");
    EXPECT_NE(error_of([&] { f.load(); }).find(p.string() + ":2: invalid address"), std::string::npos);
    write(p, "alice@example.test:\n");
    EXPECT_EQ(error_of([&] { f.load(); }), p.string() + ":1: missing password hash after ':'");
    write(p, "alice@example.test:{CRYPT}x\n#\nALICE@example.test:{CRYPT}y\n");
    EXPECT_EQ(error_of([&] { f.load(); }),
              p.string() + ":3: duplicate account alice@example.test (first on line 1)");
    // A change never rewrites a file it cannot parse.
    EXPECT_THROW(f.add("bob@example.test", "b"), std::runtime_error);
    EXPECT_EQ(read(p), "alice@example.test:{CRYPT}x\n#\nALICE@example.test:{CRYPT}y\n");
}

// --- ferry user ------------------------------------------------------------------------------------------------

class AccountsUserCommandTest : public AccountsTest {
protected:
    void SetUp() override {
        AccountsTest::SetUp();
        config_ = dir_ / "ferry.toml";
        write(config_, "data_dir = \"data\"\n[[listen]]\naddress = \"127.0.0.1:0\"\n[domains]\nlocal = [\"example.test\"]\n");
    }

    int run(const std::string& action, const std::string& address, const std::string& input = "") {
        std::istringstream in(input);
        out_.str("");
        err_.str("");
        return ferry::cli::run_user_command(action, address, config_, in, out_, err_);
    }

    fs::path config_;
    std::ostringstream out_, err_;
};

TEST_F(AccountsUserCommandTest, AddListPasswdDel) {
    EXPECT_EQ(run("add", "Alice@example.test", "secret\r\n"), 0) << err_.str();
    EXPECT_TRUE(fs::exists(dir_ / "data" / "accounts"));
    EXPECT_EQ(run("add", "bob@example.test", "pw"), 0) << err_.str();
    EXPECT_EQ(run("list", ""), 0);
    EXPECT_EQ(out_.str(), "alice@example.test\nbob@example.test\n");

    AccountFile f(dir_ / "data" / "accounts");
    EXPECT_TRUE(verify_password("secret", f.find("alice@example.test")->password_hash));
    EXPECT_EQ(run("passwd", "alice@example.test", "new\nignored second line\n"), 0) << err_.str();
    EXPECT_TRUE(verify_password("new", f.find("alice@example.test")->password_hash));

    EXPECT_EQ(run("del", "ALICE@example.test"), 0) << err_.str();
    EXPECT_EQ(run("list", ""), 0);
    EXPECT_EQ(out_.str(), "bob@example.test\n");
}

TEST_F(AccountsUserCommandTest, Refusals) {
    EXPECT_EQ(run("add", "alice@example.test", "x\n"), 0);
    EXPECT_EQ(run("add", "alice@example.test", "y\n"), 1);
    EXPECT_EQ(err_.str(), "ferry user add: alice@example.test: account already exists\n");
    EXPECT_EQ(run("passwd", "carol@example.test", "y\n"), 1);
    EXPECT_EQ(err_.str(), "ferry user passwd: carol@example.test: no such account\n");
    EXPECT_EQ(run("del", "carol@example.test"), 1);
    EXPECT_EQ(err_.str(), "ferry user del: carol@example.test: no such account\n");
    EXPECT_EQ(run("add", "not-an-address", "y\n"), 1);
    EXPECT_NE(err_.str().find("invalid address"), std::string::npos) << err_.str();
    EXPECT_EQ(run("add", "dave@elsewhere.test", "y\n"), 1);
    EXPECT_NE(err_.str().find("elsewhere.test is not a local domain"), std::string::npos) << err_.str();
    EXPECT_EQ(run("add", "erin@example.test", "\n"), 1);
    EXPECT_NE(err_.str().find("empty password"), std::string::npos) << err_.str();
    EXPECT_EQ(run("add", "erin@example.test", ""), 1);
    EXPECT_EQ(run("frobnicate", "erin@example.test"), 2);
    EXPECT_EQ(run("add", ""), 2);
    for (const std::string& e : {err_.str()}) EXPECT_EQ(e.find('\n'), e.size() - 1) << e;

    EXPECT_EQ(run("list", ""), 0);
    EXPECT_EQ(out_.str(), "alice@example.test\n");
}

TEST_F(AccountsUserCommandTest, ConfigErrorExitsTwo) {
    write(config_, "[[listen]]\naddress = \"127.0.0.1:0\"\nbogus = 1\n");
    EXPECT_EQ(run("list", ""), 2);
    EXPECT_EQ(err_.str(), config_.string() + ":3: listen[0].bogus: unknown key\n");
    config_ = dir_ / "missing.toml";
    EXPECT_EQ(run("list", ""), 2);
    EXPECT_EQ(err_.str(), config_.string() + ": cannot read: No such file or directory\n");
}
