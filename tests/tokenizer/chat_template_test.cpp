// Chat templates of real models rendered by sift's Jinja engine, compared byte for byte with
// goldens rendered by Python jinja2 through transformers (scripts/gen_template_golden.py).
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace sift {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

const fs::path kTemplates = fs::path(SIFT_TEST_DATA) / "templates";

std::string slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// JSON (key order kept) to the values templates see; the cli layer has the production version.
jinja::Value to_value(const ordered_json& j) {
    switch (j.type()) {
        case ordered_json::value_t::null:
            return jinja::Value::none();
        case ordered_json::value_t::boolean:
            return jinja::Value(j.get<bool>());
        case ordered_json::value_t::number_integer:
        case ordered_json::value_t::number_unsigned:
            return jinja::Value(j.get<int64_t>());
        case ordered_json::value_t::number_float:
            return jinja::Value(j.get<double>());
        case ordered_json::value_t::string:
            return jinja::Value(j.get<std::string>());
        case ordered_json::value_t::array: {
            jinja::ValueList items;
            for (const auto& item : j) items.push_back(to_value(item));
            return jinja::Value::list(std::move(items));
        }
        case ordered_json::value_t::object: {
            jinja::Dict d;
            for (auto it = j.begin(); it != j.end(); ++it) d.set(it.key(), to_value(it.value()));
            return jinja::Value::dict(std::move(d));
        }
        default:
            return jinja::Value();
    }
}

// The clock the goldens were rendered with (FIXED_NOW in the script).
std::tm golden_now() {
    std::tm tm{};
    tm.tm_year = 2025 - 1900;
    tm.tm_mon = 2;
    tm.tm_mday = 14;
    tm.tm_hour = 9;
    tm.tm_min = 26;
    tm.tm_sec = 53;
    tm.tm_wday = 5;
    tm.tm_yday = 72;
    return tm;
}

struct Conversation {
    jinja::Value messages;
    jinja::Value tools;
};

std::map<std::string, Conversation> load_conversations() {
    std::map<std::string, Conversation> out;
    for (const auto& entry : fs::directory_iterator(kTemplates / "conversations")) {
        const ordered_json j = ordered_json::parse(slurp(entry.path()));
        Conversation c;
        c.messages = to_value(j.at("messages"));
        if (j.contains("tools")) c.tools = to_value(j.at("tools"));
        out[entry.path().stem().string()] = c;
    }
    return out;
}

ChatTemplateInputs inputs_for(const Conversation& conv, const ordered_json& c) {
    ChatTemplateInputs in;
    in.messages = conv.messages;
    in.tools = conv.tools;
    in.add_generation_prompt = c.at("add_generation_prompt").get<bool>();
    for (auto it = c.at("kwargs").begin(); it != c.at("kwargs").end(); ++it) {
        if (it.key() == "enable_thinking") {
            in.enable_thinking = it.value().get<bool>();
        } else {
            in.extra.set(it.key(), to_value(it.value()));
        }
    }
    in.now = golden_now();
    return in;
}

TEST(ChatTemplateGolden, EveryGoldenRendersByteIdentically) {
    ASSERT_TRUE(fs::exists(kTemplates / "golden"))
        << "missing goldens: run /tmp/ovenv/bin/python scripts/gen_template_golden.py";
    const auto conversations = load_conversations();
    int total = 0, matched = 0, reported = 0;
    for (const auto& entry : fs::directory_iterator(kTemplates / "golden")) {
        const ordered_json golden = ordered_json::parse(slurp(entry.path()));
        const std::string file = golden.at("template").get<std::string>();
        ChatTemplateTokens tokens;
        const ordered_json& special = golden.at("special_tokens");
        if (special.contains("bos_token"))
            tokens.bos_token = special["bos_token"].get<std::string>();
        if (special.contains("eos_token"))
            tokens.eos_token = special["eos_token"].get<std::string>();
        Result<ChatTemplate> tmpl = ChatTemplate::parse(slurp(kTemplates / file), tokens);
        ASSERT_TRUE(tmpl.ok()) << file << ": " << tmpl.message();
        int file_total = 0, file_matched = 0;
        for (const ordered_json& c : golden.at("cases")) {
            const std::string conv = c.at("conversation").get<std::string>();
            ASSERT_TRUE(conversations.count(conv)) << conv;
            const std::string label = file + " / " + conv + " / agp=" +
                                      (c["add_generation_prompt"].get<bool>() ? "1" : "0") + " / " +
                                      c["kwargs"].dump();
            Result<std::string> out = tmpl->render(inputs_for(conversations.at(conv), c));
            bool ok;
            std::string why;
            if (c.contains("output")) {
                const std::string expected = c["output"].get<std::string>();
                ok = out.ok() && *out == expected;
                if (!out.ok())
                    why = "unexpected error: " + out.message();
                else if (!ok)
                    why = "got:\n" + *out + "\nexpected:\n" + expected;
            } else {
                // The template raises in Python: sift must fail too, with the same message.
                const std::string expected = c["error"].get<std::string>();
                ok = !out.ok() && out.message().find(expected) != std::string::npos;
                if (out.ok())
                    why = "rendered, but Python raised: " + expected;
                else if (!ok)
                    why = "error '" + out.message() + "', Python raised '" + expected + "'";
            }
            // Report the first few mismatches in full; the count below gives the rest.
            if (!ok && ++reported <= 5) ADD_FAILURE() << label << ": " << why;
            ++file_total;
            file_matched += ok;
        }
        std::printf("  %-40s %3d/%3d match\n", file.c_str(), file_matched, file_total);
        total += file_total;
        matched += file_matched;
    }
    std::printf("  chat template goldens: %d/%d match\n", matched, total);
    EXPECT_GT(total, 0);
    EXPECT_EQ(matched, total);
}

TEST(ChatTemplate, ParsesOnceAndRendersRepeatedly) {
    Result<ChatTemplate> tmpl = ChatTemplate::parse(
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}");
    ASSERT_TRUE(tmpl.ok()) << tmpl.message();
    ChatTemplateInputs in;
    jinja::Dict m;
    m.set("role", jinja::Value("user"));
    m.set("content", jinja::Value("hi"));
    in.messages = jinja::Value::list({jinja::Value::dict(m)});
    for (bool agp : {false, true, false}) {
        in.add_generation_prompt = agp;
        Result<std::string> out = tmpl->render(in);
        ASSERT_TRUE(out.ok()) << out.message();
        EXPECT_EQ(*out, agp ? "<user>hi<assistant>" : "<user>hi");
    }
}

TEST(ChatTemplate, NormalizesMessagesLikeApplyChatTemplate) {
    // None-valued keys disappear; reasoning is copied to reasoning_content and thinking.
    Result<ChatTemplate> tmpl = ChatTemplate::parse(
        "{% for m in messages %}{{ m.content is defined }} {{ m | tojson }}\n{% endfor %}");
    ASSERT_TRUE(tmpl.ok()) << tmpl.message();
    jinja::Dict a;
    a.set("role", jinja::Value("assistant"));
    a.set("content", jinja::Value::none());
    a.set("reasoning", jinja::Value("r"));
    ChatTemplateInputs in;
    in.messages = jinja::Value::list({jinja::Value::dict(a)});
    Result<std::string> out = tmpl->render(in);
    ASSERT_TRUE(out.ok()) << out.message();
    EXPECT_EQ(*out,
              "False {\"thinking\": \"r\", \"role\": \"assistant\", \"reasoning\": \"r\", "
              "\"reasoning_content\": \"r\"}\n");
}

TEST(ChatTemplate, ContextHasToolsNoneAndSpecialTokens) {
    Result<ChatTemplate> tmpl = ChatTemplate::parse(
        "{{ tools is none }} {{ documents is none }} {{ bos_token }}|{{ eos_token }}|"
        "{{ enable_thinking is defined }}|{{ date_string }}",
        ChatTemplateTokens{"<s>", "</s>"});
    ASSERT_TRUE(tmpl.ok()) << tmpl.message();
    ChatTemplateInputs in;
    jinja::Dict m;
    m.set("role", jinja::Value("user"));
    in.messages = jinja::Value::list({jinja::Value::dict(m)});
    in.extra.set("date_string", jinja::Value("1 Jan 2025"));
    Result<std::string> out = tmpl->render(in);
    ASSERT_TRUE(out.ok()) << out.message();
    EXPECT_EQ(*out, "True True <s>|</s>|False|1 Jan 2025");
}

TEST(ChatTemplate, RejectsEmptyConversationAndBadTemplates) {
    Result<ChatTemplate> tmpl = ChatTemplate::parse("{{ messages[0].content }}");
    ASSERT_TRUE(tmpl.ok());
    ChatTemplateInputs in;
    in.messages = jinja::Value::list({});
    EXPECT_FALSE(tmpl->render(in).ok());
    Result<ChatTemplate> bad = ChatTemplate::parse("{% for m in messages %}");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.message().find("'for' block opened at line 1, column 4 is not closed"),
              std::string::npos)
        << bad.message();
}

TEST(ChatTemplate, RaiseExceptionMessageReachesTheCaller) {
    Result<ChatTemplate> tmpl = ChatTemplate::parse(
        "{% if messages[0].role != 'user' %}\n  {{ raise_exception('First message must be from "
        "the user') }}\n{% endif %}");
    ASSERT_TRUE(tmpl.ok());
    jinja::Dict m;
    m.set("role", jinja::Value("assistant"));
    ChatTemplateInputs in;
    in.messages = jinja::Value::list({jinja::Value::dict(m)});
    Result<std::string> out = tmpl->render(in);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.message(),
              "chat template: line 2, column 6: First message must be from the user");
}

// A 200-message conversation through the largest template: parsing happens once, rendering is
// a few milliseconds (the bound here only catches pathological slowdowns; it is not a benchmark).
TEST(ChatTemplate, LongConversationRendersQuickly) {
    const auto conversations = load_conversations();
    Result<ChatTemplate> tmpl = ChatTemplate::parse(slurp(kTemplates / "qwen3.5-35b-a3b.jinja"),
                                                    {"<|endoftext|>", "<|im_end|>"});
    ASSERT_TRUE(tmpl.ok()) << tmpl.message();
    ChatTemplateInputs in;
    in.messages = conversations.at("long_200").messages;
    in.add_generation_prompt = true;
    constexpr int kRuns = 20;
    const auto start = std::chrono::steady_clock::now();
    size_t bytes = 0;
    for (int i = 0; i < kRuns; ++i) {
        Result<std::string> out = tmpl->render(in);
        ASSERT_TRUE(out.ok()) << out.message();
        bytes += out->size();
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count() /
        kRuns;
    std::printf("  201 messages, Qwen3.5 template: %.2f ms per render (%zu bytes)\n", ms,
                bytes / kRuns);
    EXPECT_LT(ms, 250.0);
}

}  // namespace
}  // namespace sift
