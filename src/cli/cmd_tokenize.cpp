// `sift tokenize` and `sift detokenize`: the model's own tokenizer on the command line, for
// checking prompts, counting tokens and debugging templates.
#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli.h"
#include "cli/cli_files.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace sift::cli {
namespace {

struct TokenizeOptions {
    std::string model;
    std::string text;
    std::string file;
    bool text_given = false;
    bool no_special = false;
    bool no_bos = false;
    bool json = false;
    bool pieces = false;
};

struct DetokenizeOptions {
    std::string model;
    std::string ids;
    bool skip_special = false;
};

Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& model) {
    Result<std::string> path = resolve_model(model);
    if (!path) return path.error();
    Result<std::unique_ptr<gguf::File>> file = gguf::File::open(*path);
    if (!file) return file.error();
    Result<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::from_gguf(**file);
    if (!tokenizer) return make_error("{}: {}", *path, tokenizer.message());
    return tokenizer;
}

// A piece as text for --pieces: bytes that are not printable UTF-8 are shown as <0xNN>.
std::string printable_piece(const std::string& bytes) {
    std::string out;
    for (size_t i = 0; i < bytes.size();) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        size_t len = c < 0x80           ? 1
                     : (c >> 5) == 0x6  ? 2
                     : (c >> 4) == 0xE  ? 3
                     : (c >> 3) == 0x1E ? 4
                                        : 0;
        bool valid = len > 0 && i + len <= bytes.size();
        for (size_t k = 1; valid && k < len; ++k)
            valid = (static_cast<unsigned char>(bytes[i + k]) & 0xC0) == 0x80;
        if (!valid || (len == 1 && (c < 0x20 || c == 0x7F))) {
            if (c == '\n')
                out += "\\n";
            else if (c == '\t')
                out += "\\t";
            else if (c == '\r')
                out += "\\r";
            else
                out += fmt::format("<0x{:02X}>", c);
            ++i;
            continue;
        }
        out.append(bytes, i, len);
        i += len;
    }
    return out;
}

Status run_tokenize(const TokenizeOptions& opt) {
    std::string text = opt.text;
    if (!opt.file.empty()) {
        if (opt.file == "-") {
            text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
        } else {
            Result<std::string> t = read_text_file(opt.file);
            if (!t) return t.error();
            text = std::move(*t);
        }
    }
    Result<std::unique_ptr<Tokenizer>> loaded = load_tokenizer(opt.model);
    if (!loaded) return loaded.error();
    const Tokenizer* tokenizer = loaded->get();
    const std::vector<TokenId> ids = tokenizer->encode(text, !opt.no_bos, !opt.no_special);
    if (opt.json) {
        fmt::print("{}\n", nlohmann::json(ids).dump());
    } else if (opt.pieces) {
        for (TokenId id : ids)
            fmt::print("{:>8} '{}'\n", id, printable_piece(tokenizer->token_bytes(id, false)));
    } else {
        fmt::print("{}\n", fmt::join(ids, " "));
    }
    return {};
}

// "1,2,3", "1 2 3" or "[1, 2, 3]".
Result<std::vector<TokenId>> parse_ids(const std::string& s) {
    std::vector<TokenId> ids;
    size_t i = 0;
    auto is_sep = [](char c) {
        return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
    };
    std::string body = s;
    const size_t first = body.find_first_not_of(" \t\r\n");
    const size_t last = body.find_last_not_of(" \t\r\n");
    if (first != std::string::npos && body[first] == '[' && body[last] == ']')
        body = body.substr(first + 1, last - first - 1);
    while (i < body.size()) {
        if (is_sep(body[i])) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < body.size() && !is_sep(body[j])) ++j;
        int64_t v = 0;
        const char* b = body.data() + i;
        const char* e = body.data() + j;
        auto [ptr, ec] = std::from_chars(b, e, v);
        if (ec != std::errc() || ptr != e || v < 0 || v > INT32_MAX)
            return make_error("--ids: '{}' is not a token id", body.substr(i, j - i));
        ids.push_back(static_cast<TokenId>(v));
        i = j;
    }
    return ids;
}

Status run_detokenize(const DetokenizeOptions& opt) {
    Result<std::vector<TokenId>> parsed = parse_ids(opt.ids);
    if (!parsed) return parsed.error();
    const std::vector<TokenId>& ids = *parsed;
    Result<std::unique_ptr<Tokenizer>> loaded = load_tokenizer(opt.model);
    if (!loaded) return loaded.error();
    const Tokenizer* tokenizer = loaded->get();
    for (TokenId id : ids)
        if (id >= tokenizer->n_vocab())
            return make_error("--ids: token {} is outside the vocabulary (size {})", id,
                              tokenizer->n_vocab());
    const std::string text = tokenizer->decode(ids, opt.skip_special);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return {};
}

void report(const Status& s, int& exit_code) {
    if (!s) fmt::print(stderr, "sift: error: {}\n", s.message());
    exit_code = s ? 0 : 1;
}

}  // namespace

void add_tokenize_commands(CLI::App& app, int& exit_code) {
    auto t = std::make_shared<TokenizeOptions>();
    CLI::App* tok = app.add_subcommand("tokenize", "Print the token ids of a text");
    tok->add_option("-m,--model", t->model, "GGUF model (path or manifest name)")->required();
    CLI::Option* text = tok->add_option("--text", t->text, "Text to tokenize");
    CLI::Option* file =
        tok->add_option("--file", t->file, "Read the text from a file (- for stdin)");
    text->excludes(file);
    tok->add_flag("--no-special", t->no_special,
                  "Tokenize special-token text such as <|im_start|> as plain text");
    tok->add_flag("--no-bos", t->no_bos, "Do not add BOS/EOS even if the vocabulary asks for them");
    tok->add_flag("--json", t->json, "Print a JSON array of ids");
    tok->add_flag("--pieces", t->pieces, "Print one token per line with its text");
    tok->callback([t, text, file, &exit_code] {
        if (!*text && !*file) {
            report(make_error("give --text TEXT or --file FILE"), exit_code);
            return;
        }
        report(run_tokenize(*t), exit_code);
    });

    auto d = std::make_shared<DetokenizeOptions>();
    CLI::App* detok = app.add_subcommand("detokenize", "Print the text of token ids");
    detok->add_option("-m,--model", d->model, "GGUF model (path or manifest name)")->required();
    detok->add_option("--ids", d->ids, "Token ids: 1,2,3 or \"1 2 3\" or [1,2,3]")->required();
    detok->add_flag("--skip-special", d->skip_special, "Leave out control tokens");
    detok->callback([d, &exit_code] { report(run_detokenize(*d), exit_code); });
}

}  // namespace sift::cli
