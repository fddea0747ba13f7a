// Structure-aware compression: which bytes of a rendered chat a compressor may cut, on the real
// templates of tests/data/templates (verbatim, trimming and content-rewriting templates).
#include "spec/prefill/chat_segments.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace sift::spec {
namespace {

namespace fs = std::filesystem;
const fs::path kTemplates = fs::path(SIFT_TEST_DATA) / "templates";

ChatTemplate load(const std::string& file) {
    std::ifstream in(kTemplates / file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    Result<ChatTemplate> t = ChatTemplate::parse(ss.str(), {"<|begin_of_text|>", "<|eot_id|>"});
    EXPECT_TRUE(t) << file << ": " << (t ? "" : t.message());
    return std::move(*t);
}

jinja::Value msg(const std::string& role, const std::string& content) {
    jinja::Dict d;
    d.set("role", role);
    d.set("content", content);
    return jinja::Value::dict(std::move(d));
}

// Distinct sentences so no content is a substring of another.
std::string document(const std::string& tag, int sentences) {
    std::string s;
    for (int i = 0; i < sentences; ++i)
        s += "Record " + tag + "-" + std::to_string(i) + " notes that the river rose " +
             std::to_string(i * 7 % 13) + " feet. ";
    return s;
}

jinja::Value tools() {
    jinja::Dict fn;
    fn.set("name", "search");
    fn.set("description", "Searches the archive for a phrase and returns matching records.");
    jinja::Dict tool;
    tool.set("type", "function");
    tool.set("function", jinja::Value::dict(std::move(fn)));
    return jinja::Value::list({jinja::Value::dict(std::move(tool))});
}

bool inside(const std::vector<ByteRange>& ranges, int64_t begin, int64_t end) {
    for (const ByteRange& r : ranges)
        if (r.begin <= begin && end <= r.end) return true;
    return false;
}

// protect and the compressible ranges tile the text exactly.
void expect_partition(const ChatPrompt& p) {
    std::vector<ByteRange> all = p.protect;
    for (const ChatSegment& s : p.segments)
        if (s.compressible.end > s.compressible.begin) all.push_back(s.compressible);
    std::sort(all.begin(), all.end(),
              [](const ByteRange& a, const ByteRange& b) { return a.begin < b.begin; });
    int64_t at = 0;
    for (const ByteRange& r : all) {
        EXPECT_EQ(r.begin, at);
        EXPECT_GT(r.end, r.begin);
        at = r.end;
    }
    EXPECT_EQ(at, static_cast<int64_t>(p.text.size()));
}

std::string range_text(const ChatPrompt& p, const ByteRange& r) {
    return p.text.substr(static_cast<size_t>(r.begin), static_cast<size_t>(r.end - r.begin));
}

TEST(ChatSegments, AgentConversationOnQwen) {
    const ChatTemplate tmpl = load("qwen2.5-coder-1.5b-instruct.jinja");
    const std::string system = "You are a careful archivist. " + document("sys", 80);
    const std::string history = document("hist", 60);
    const std::string answer = document("ans", 60);
    const std::string tool_result = document("tool", 90);
    const std::string doc = document("doc", 120);
    const std::string question = "Which record says the river rose 12 feet?";
    ChatTemplateInputs in;
    in.messages =
        jinja::Value::list({msg("system", system), msg("user", history), msg("assistant", answer),
                            msg("tool", tool_result), msg("user", doc + "\n\n" + question)});
    in.tools = tools();
    in.add_generation_prompt = true;
    Result<ChatPrompt> p = render_chat_segments(tmpl, in, SegmentPolicy{});
    ASSERT_TRUE(p) << p.message();
    EXPECT_EQ(p->text, *tmpl.render(in));  // the text itself is never changed
    ASSERT_EQ(p->segments.size(), 5u);
    expect_partition(*p);

    EXPECT_EQ(p->segments[0].compressible.end, 0);  // system prompt: kept
    EXPECT_EQ(range_text(*p, p->segments[0].range), system);
    EXPECT_EQ(range_text(*p, p->segments[1].compressible), history);
    EXPECT_EQ(range_text(*p, p->segments[2].compressible), answer);
    EXPECT_EQ(range_text(*p, p->segments[3].compressible), tool_result);
    EXPECT_EQ(p->segments[3].reason, "tool result");
    EXPECT_EQ(range_text(*p, p->segments[4].compressible), doc);  // the question is cut off

    // The system prompt, the tool definitions, every piece of markup and the question are kept.
    const auto where = [&](const std::string& s) {
        const size_t at = p->text.find(s);
        EXPECT_NE(at, std::string::npos) << s;
        return std::pair<int64_t, int64_t>(at, at + s.size());
    };
    for (const std::string& kept : {system, std::string("Searches the archive"), question,
                                    std::string("<|im_start|>assistant\n")}) {
        const auto [b, e] = where(kept);
        EXPECT_TRUE(inside(p->protect, b, e)) << kept;
    }
    EXPECT_NE(p->summary().find("4 of 5 message contents compressible"), std::string::npos)
        << p->summary();
}

TEST(ChatSegments, StablePrefixAcrossTurns) {
    const ChatTemplate tmpl = load("qwen2.5-coder-1.5b-instruct.jinja");
    const std::string system = "You are an agent. " + document("sys", 50);
    ChatTemplateInputs turn1;
    turn1.messages = jinja::Value::list(
        {msg("system", system), msg("user", document("a", 100) + "\n\nSummarise record a-3.")});
    turn1.tools = tools();
    turn1.add_generation_prompt = true;
    ChatTemplateInputs turn2 = turn1;
    turn2.messages = jinja::Value::list(
        {msg("system", system), msg("user", document("a", 100) + "\n\nSummarise record a-3."),
         msg("assistant", "Record a-3 notes a rise of 8 feet."), msg("tool", document("t", 90)),
         msg("user", "And record t-5?")});
    Result<ChatPrompt> p1 = render_chat_segments(tmpl, turn1, SegmentPolicy{});
    Result<ChatPrompt> p2 = render_chat_segments(tmpl, turn2, SegmentPolicy{});
    ASSERT_TRUE(p1 && p2);
    // Everything before the first compressible byte (system prompt, tools, markup) is kept and is
    // the same bytes in both turns.
    const int64_t end1 = p1->protect.front().end;
    const int64_t end2 = p2->protect.front().end;
    EXPECT_EQ(end1, end2);
    EXPECT_EQ(p1->text.substr(0, end1), p2->text.substr(0, end2));
    EXPECT_NE(p1->text.substr(0, end1).find("Searches the archive"), std::string::npos);
    // The short final question of turn 2 is kept whole; the earlier long user turn is history.
    EXPECT_EQ(p2->segments[4].compressible.end, 0);
    EXPECT_EQ(p2->segments[1].reason, "history");
    expect_partition(*p2);
}

TEST(ChatSegments, TrimmingTemplateFallsBackToSearch) {
    // Llama 3 prints `content | trim`: substituting the untrimmed contents back does not give the
    // text, so the contents are found by search in their trimmed form.
    const ChatTemplate tmpl = load("llama-3.2-3b-instruct.jinja");
    const std::string doc = document("doc", 100);
    ChatTemplateInputs in;
    in.messages = jinja::Value::list(
        {msg("system", "Answer briefly.\n"), msg("user", "\n" + doc + "\n\nWhat rose?\n")});
    in.add_generation_prompt = true;
    in.extra.set("date_string", "26 Jul 2024");
    Result<ChatPrompt> p = render_chat_segments(tmpl, in, SegmentPolicy{});
    ASSERT_TRUE(p) << p.message();
    ASSERT_EQ(p->segments.size(), 2u);
    EXPECT_EQ(range_text(*p, p->segments[1].range), doc + "\n\nWhat rose?");
    EXPECT_EQ(range_text(*p, p->segments[1].compressible), doc.substr(0, doc.size()));
    expect_partition(*p);
}

TEST(ChatSegments, RewrittenContentIsKeptWhole) {
    // Qwen3 splits an assistant content at </think> and prints the pieces: it cannot be located,
    // so it is kept; the other contents are still found.
    const ChatTemplate tmpl = load("qwen3-0.6b.jinja");
    const std::string thought =
        "<think>\n" + document("think", 80) + "\n</think>\n\n" + document("reply", 80);
    const std::string doc = document("doc", 100);
    ChatTemplateInputs in;
    in.messages = jinja::Value::list({msg("user", document("first", 80)), msg("assistant", thought),
                                      msg("user", doc + "\n\nWhich record?")});
    in.add_generation_prompt = true;
    Result<ChatPrompt> p = render_chat_segments(tmpl, in, SegmentPolicy{});
    ASSERT_TRUE(p) << p.message();
    ASSERT_EQ(p->segments.size(), 3u);
    EXPECT_EQ(p->segments[1].compressible.end, 0);
    EXPECT_EQ(p->segments[1].reason, "not located in the rendered text");
    EXPECT_EQ(range_text(*p, p->segments[0].compressible), document("first", 80));
    EXPECT_EQ(range_text(*p, p->segments[2].compressible), doc);
    expect_partition(*p);
}

TEST(ChatSegments, PolicyAndShortContents) {
    const ChatTemplate tmpl = load("qwen2.5-coder-1.5b-instruct.jinja");
    ChatTemplateInputs in;
    in.messages = jinja::Value::list({msg("user", "short history"), msg("tool", document("t", 90)),
                                      msg("user", document("q", 100) + "\n\nWhich?")});
    in.add_generation_prompt = true;
    SegmentPolicy policy;
    policy.tool_results = false;
    Result<ChatPrompt> p = render_chat_segments(tmpl, in, policy);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->segments[0].reason, "short");
    EXPECT_EQ(p->segments[1].reason, "tool result (policy)");
    EXPECT_GT(p->segments[2].compressible.end, 0);
    policy.final_user = false;
    p = render_chat_segments(tmpl, in, policy);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->compressible_bytes(), 0);
    ASSERT_EQ(p->protect.size(), 1u);  // the whole text
    EXPECT_EQ(p->protect[0].end, static_cast<int64_t>(p->text.size()));
}

TEST(ChatSegments, LongQuestionWithoutParagraphs) {
    // No blank line: the last question_bytes (from a word start) are the question.
    const ChatTemplate tmpl = load("qwen2.5-coder-1.5b-instruct.jinja");
    const std::string content = document("one", 200);
    ChatTemplateInputs in;
    in.messages = jinja::Value::list({msg("user", content)});
    in.add_generation_prompt = true;
    SegmentPolicy policy;
    policy.question_bytes = 500;
    Result<ChatPrompt> p = render_chat_segments(tmpl, in, policy);
    ASSERT_TRUE(p);
    const ChatSegment& s = p->segments[0];
    const int64_t question = s.range.end - s.compressible.end;
    EXPECT_GE(question, 500);
    EXPECT_LT(question, 600);
    EXPECT_EQ(p->text[static_cast<size_t>(s.compressible.end)], ' ');  // a word boundary
}

TEST(ChatSegments, ContentPartsAreLocated) {
    const ChatTemplate tmpl = load("qwen3.5-35b-a3b.jinja");
    jinja::Dict part1, part2;
    part1.set("type", "text");
    part1.set("text", document("p1", 100));
    part2.set("type", "text");
    part2.set("text", "Which record?");
    jinja::Dict m;
    m.set("role", "user");
    m.set("content", jinja::Value::list({jinja::Value::dict(part1), jinja::Value::dict(part2)}));
    ChatTemplateInputs in;
    in.messages = jinja::Value::list({jinja::Value::dict(std::move(m))});
    in.add_generation_prompt = true;
    Result<ChatPrompt> p = render_chat_segments(tmpl, in, SegmentPolicy{});
    ASSERT_TRUE(p) << p.message();
    ASSERT_EQ(p->segments.size(), 2u);
    EXPECT_EQ(range_text(*p, p->segments[0].range), document("p1", 100));
    EXPECT_EQ(range_text(*p, p->segments[1].range), "Which record?");
    expect_partition(*p);
}

}  // namespace
}  // namespace sift::spec
