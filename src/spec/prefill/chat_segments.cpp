#include "spec/prefill/chat_segments.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string_view>

namespace sift::spec {
namespace {

// One message content (or one text part of a list content).
struct Content {
    size_t message = 0;
    int part = -1;
    std::string role;
    std::string text;
};

const std::string* string_field(const jinja::Value& v, std::string_view key) {
    if (!v.is_dict()) return nullptr;
    const jinja::Value* f = v.as_dict().find(key);
    return f && f->is_string() ? &f->as_string() : nullptr;
}

std::vector<Content> collect_contents(const jinja::Value& messages) {
    std::vector<Content> out;
    if (!messages.is_list()) return out;
    const jinja::ValueList& list = messages.as_list();
    for (size_t i = 0; i < list.size(); ++i) {
        const std::string* role = string_field(list[i], "role");
        const jinja::Value* content =
            list[i].is_dict() ? list[i].as_dict().find("content") : nullptr;
        if (!content) continue;
        const std::string r = role ? *role : "";
        if (content->is_string()) {
            out.push_back({i, -1, r, content->as_string()});
        } else if (content->is_list()) {
            const jinja::ValueList& parts = content->as_list();
            for (size_t p = 0; p < parts.size(); ++p)
                if (const std::string* t = string_field(parts[p], "text"))
                    out.push_back({i, static_cast<int>(p), r, *t});
        }
    }
    return out;
}

std::string sentinel(size_t k) {
    return fmt::format("\x1esift-segment-{}\x1e", k);
}

// The messages with every content replaced by its sentinel.
jinja::Value with_sentinels(const jinja::Value& messages, const std::vector<Content>& contents) {
    jinja::ValueList list = messages.as_list();
    for (size_t k = 0; k < contents.size(); ++k) {
        const Content& c = contents[k];
        jinja::Dict d = list[c.message].as_dict();
        if (c.part < 0) {
            d.set("content", jinja::Value(sentinel(k)));
        } else {
            jinja::ValueList parts = d.find("content")->as_list();
            jinja::Dict part = parts[static_cast<size_t>(c.part)].as_dict();
            part.set("text", jinja::Value(sentinel(k)));
            parts[static_cast<size_t>(c.part)] = jinja::Value::dict(std::move(part));
            d.set("content", jinja::Value::list(std::move(parts)));
        }
        list[c.message] = jinja::Value::dict(std::move(d));
    }
    return jinja::Value::list(std::move(list));
}

// Locates the contents through the sentinel rendering; false when the template did not print
// them verbatim (substituting them back must give exactly `text`).
bool locate_by_sentinels(const std::string& text, const std::string& marked,
                         const std::vector<Content>& contents, std::vector<ByteRange>& ranges) {
    std::map<size_t, size_t> at;  // position in `marked` -> content
    for (size_t k = 0; k < contents.size(); ++k) {
        const std::string s = sentinel(k);
        const size_t p = marked.find(s);
        if (p == std::string::npos) continue;  // the template does not print this content
        if (marked.find(s, p + 1) != std::string::npos) return false;
        at[p] = k;
    }
    std::string rebuilt;
    rebuilt.reserve(text.size());
    size_t prev = 0;
    for (const auto& [p, k] : at) {
        rebuilt.append(marked, prev, p - prev);
        ranges[k] = {static_cast<int64_t>(rebuilt.size()),
                     static_cast<int64_t>(rebuilt.size() + contents[k].text.size())};
        rebuilt += contents[k].text;
        prev = p + sentinel(k).size();
    }
    rebuilt.append(marked, prev, std::string::npos);
    return rebuilt == text;
}

std::string_view trimmed(std::string_view s) {
    const size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    const size_t e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
}

// Fallback: each content (or its trimmed form) searched in message order.
void locate_by_search(const std::string& text, const std::vector<Content>& contents,
                      std::vector<ByteRange>& ranges) {
    size_t cursor = 0;
    for (size_t k = 0; k < contents.size(); ++k) {
        ranges[k] = {};
        for (std::string_view needle :
             {std::string_view(contents[k].text), trimmed(contents[k].text)}) {
            if (needle.empty()) continue;
            const size_t p = text.find(needle, cursor);
            if (p == std::string::npos) continue;
            ranges[k] = {static_cast<int64_t>(p), static_cast<int64_t>(p + needle.size())};
            cursor = p + needle.size();
            break;
        }
    }
}

// Bytes of the final user message's content that are its question (kept whole).
int64_t question_start(std::string_view content, int64_t question_bytes) {
    const size_t end = content.find_last_not_of(" \t\r\n");
    if (end == std::string_view::npos) return 0;
    const size_t para = content.rfind("\n\n", end);
    if (para != std::string_view::npos && static_cast<int64_t>(end - para) <= question_bytes)
        return static_cast<int64_t>(para);
    if (static_cast<int64_t>(end) < question_bytes) return 0;
    // The last question_bytes, from a line start if one is near, else from a word start.
    const size_t from = end + 1 - static_cast<size_t>(question_bytes);
    const size_t line = content.rfind('\n', from);
    if (line != std::string_view::npos && from - line < 512) return static_cast<int64_t>(line);
    const size_t word = content.rfind(' ', from);
    return word == std::string_view::npos ? 0 : static_cast<int64_t>(word);
}

bool is_tool_role(const std::string& role) {
    return role == "tool" || role == "ipython" || role == "function" || role == "tool_result";
}

// Fills seg.compressible and seg.reason from the policy.
void classify(ChatSegment& seg, const Content& c, std::string_view located, bool final_user,
              const SegmentPolicy& policy) {
    const int64_t size = seg.range.end - seg.range.begin;
    ByteRange body = seg.range;
    if (size == 0) {
        seg.reason = "not located in the rendered text";
        return;
    }
    if (c.role == "system" || c.role == "developer") {
        seg.reason = "system prompt";
        return;
    }
    if (final_user) {
        if (!policy.final_user) {
            seg.reason = "final user message";
            return;
        }
        body.end = body.begin + question_start(located, policy.question_bytes);
    } else if (is_tool_role(c.role)) {
        if (!policy.tool_results) {
            seg.reason = "tool result (policy)";
            return;
        }
    } else if (c.role == "user" || c.role == "assistant") {
        if (!policy.history) {
            seg.reason = "history (policy)";
            return;
        }
    } else {
        seg.reason = fmt::format("role '{}'", c.role);
        return;
    }
    if (body.end - body.begin < policy.min_bytes) {
        seg.reason = final_user ? "final user message: short besides its question" : "short";
        return;
    }
    seg.compressible = body;
    seg.reason = final_user             ? "final user message without its question"
                 : is_tool_role(c.role) ? "tool result"
                                        : "history";
}

}  // namespace

Result<ChatPrompt> render_chat_segments(const ChatTemplate& tmpl, const ChatTemplateInputs& inputs,
                                        const SegmentPolicy& policy) {
    Result<std::string> text = tmpl.render(inputs);
    if (!text) return make_error("chat template: {}", text.message());
    ChatPrompt out;
    out.text = std::move(*text);
    const std::vector<Content> contents = collect_contents(inputs.messages);

    std::vector<ByteRange> ranges(contents.size());
    bool located = false;
    if (!contents.empty()) {
        ChatTemplateInputs marked_inputs = inputs;
        marked_inputs.messages = with_sentinels(inputs.messages, contents);
        Result<std::string> marked = tmpl.render(marked_inputs);
        located = marked && locate_by_sentinels(out.text, *marked, contents, ranges);
    }
    if (!located) locate_by_search(out.text, contents, ranges);

    // The question is in the final user message's last content (part).
    size_t final_user = SIZE_MAX;
    for (size_t k = 0; k < contents.size(); ++k)
        if (contents[k].role == "user") final_user = k;
    if (final_user != SIZE_MAX)
        while (final_user + 1 < contents.size() &&
               contents[final_user + 1].message == contents[final_user].message)
            ++final_user;
    std::vector<ByteRange> cut;
    for (size_t k = 0; k < contents.size(); ++k) {
        ChatSegment seg;
        seg.message = contents[k].message;
        seg.part = contents[k].part;
        seg.role = contents[k].role;
        seg.range = ranges[k];
        const std::string_view located =
            std::string_view(out.text).substr(static_cast<size_t>(seg.range.begin),
                                              static_cast<size_t>(seg.range.end - seg.range.begin));
        classify(seg, contents[k], located, k == final_user, policy);
        if (seg.compressible.end > seg.compressible.begin) cut.push_back(seg.compressible);
        out.segments.push_back(std::move(seg));
    }
    std::sort(cut.begin(), cut.end(),
              [](const ByteRange& a, const ByteRange& b) { return a.begin < b.begin; });
    int64_t at = 0;
    for (const ByteRange& r : cut) {
        if (r.begin > at) out.protect.push_back({at, r.begin});
        at = std::max(at, r.end);
    }
    const auto size = static_cast<int64_t>(out.text.size());
    if (at < size) out.protect.push_back({at, size});
    return out;
}

int64_t ChatPrompt::compressible_bytes() const {
    int64_t n = 0;
    for (const ChatSegment& s : segments) n += s.compressible.end - s.compressible.begin;
    return n;
}

std::string ChatPrompt::summary() const {
    size_t n = 0;
    std::string kept;
    for (const ChatSegment& s : segments) {
        if (s.compressible.end > s.compressible.begin) {
            ++n;
        } else {
            kept +=
                fmt::format("{}{} #{} ({})", kept.empty() ? "" : ", ", s.role, s.message, s.reason);
        }
    }
    return fmt::format("{} of {} message contents compressible ({} of {} bytes){}{}", n,
                       segments.size(), compressible_bytes(), text.size(),
                       kept.empty() ? "" : "; kept whole: ", kept);
}

}  // namespace sift::spec
