"""Tokens of 1C:Enterprise script (BSL), as far as the runner's subset needs them.

Keywords are case-insensitive and come in Russian and English; identifiers keep their spelling
but compare case-insensitively (the parser folds them). Anything the lexer does not know is an
error naming the line: the runner never guesses past unsupported text.
"""
from decimal import Decimal
import datetime
import re

from errors import Unsupported

# Canonical keyword name for every spelling (lower case).
KEYWORDS = {}
for canon, *spellings in [
    ("if", "если", "if"), ("then", "тогда", "then"), ("elsif", "иначеесли", "elsif"),
    ("else", "иначе", "else"), ("endif", "конецесли", "endif"), ("for", "для", "for"),
    ("each", "каждого", "each"), ("in", "из", "in"), ("to", "по", "to"),
    ("while", "пока", "while"), ("do", "цикл", "do"), ("enddo", "конеццикла", "enddo"),
    ("procedure", "процедура", "procedure"), ("endprocedure", "конецпроцедуры", "endprocedure"),
    ("function", "функция", "function"), ("endfunction", "конецфункции", "endfunction"),
    ("var", "перем", "var"), ("export", "экспорт", "export"), ("val", "знач", "val"),
    ("return", "возврат", "return"), ("break", "прервать", "break"),
    ("continue", "продолжить", "continue"), ("try", "попытка", "try"),
    ("except", "исключение", "except"), ("endtry", "конецпопытки", "endtry"),
    ("raise", "вызватьисключение", "raise"), ("and", "и", "and"), ("or", "или", "or"),
    ("not", "не", "not"), ("true", "истина", "true"), ("false", "ложь", "false"),
    ("undefined", "неопределено", "undefined"), ("null", "null"), ("new", "новый", "new"),
    ("goto", "перейти", "goto"), ("async", "асинх", "async"), ("await", "ждать", "await"),
    ("addhandler", "добавитьобработчик", "addhandler"),
    ("removehandler", "удалитьобработчик", "removehandler"),
]:
    for s in spellings:
        KEYWORDS[s] = canon

# Keywords the runner recognises only to refuse them clearly.
REFUSED = {"goto", "async", "await", "addhandler", "removehandler"}

OPERATORS = ["<>", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%", "(", ")", "[", "]", ",",
             ";", ".", "?"]

NUMBER = re.compile(r"\d+(\.\d+)?")
WORD = re.compile(r"\w+")
REGION = re.compile(r"#\s*(область|конецобласти|region|endregion)\b", re.IGNORECASE)


class Token:
    __slots__ = ("kind", "value", "line", "col", "raw")

    def __init__(self, kind, value, line, col, raw=None):
        self.kind, self.value, self.line, self.col = kind, value, line, col
        self.raw = raw  # a keyword as written: after a dot it is a member name

    def is_kw(self, *names):
        return self.kind == "kw" and self.value in names

    def is_op(self, *ops):
        return self.kind == "op" and self.value in ops

    def __repr__(self):
        return f"{self.kind}:{self.value!r}@{self.line}"


def tokenize(text, source, first_line=1):
    """Tokens of `text`; `source` names it in errors, `first_line` is the number of its line 1."""
    lines = text.split("\n")
    tokens = []
    i = 0  # line index
    while i < len(lines):
        line, pos = lines[i], 0
        stripped = line.lstrip()
        if stripped.startswith("#"):
            # Regions only structure a module; other preprocessor lines change what is compiled.
            if not REGION.match(stripped):
                raise Unsupported(f"{source}:{first_line + i}: preprocessor instruction "
                                  f"{stripped.split()[0]}")
            i += 1
            continue
        while pos < len(line):
            c = line[pos]
            lineno = first_line + i
            if c in " \t\r\ufeff":
                pos += 1
            elif line.startswith("//", pos):
                break
            elif c == '"':
                start = pos
                value, i, line, pos = read_string(lines, i, pos, source, first_line)
                tokens.append(Token("str", value, lineno, start))
            elif c == "'":
                end = line.find("'", pos + 1)
                if end < 0:
                    raise Unsupported(f"{source}:{lineno}: unterminated date literal")
                tokens.append(Token("date", date_literal(line[pos + 1:end], source, lineno),
                                    lineno, pos))
                pos = end + 1
            elif c.isdigit():
                m = NUMBER.match(line, pos)
                tokens.append(Token("num", Decimal(m.group()), lineno, pos))
                pos = m.end()
            elif c.isalpha() or c == "_":
                m = WORD.match(line, pos)
                word = m.group()
                canon = KEYWORDS.get(word.lower())
                after_dot = tokens and tokens[-1].kind == "op" and tokens[-1].value == "."
                if canon in REFUSED and not after_dot:
                    raise Unsupported(f"{source}:{lineno}: {word} is not supported")
                tokens.append(Token("kw", canon, lineno, pos, word) if canon
                              else Token("id", word, lineno, pos))
                pos = m.end()
            else:
                op = next((o for o in OPERATORS if line.startswith(o, pos)), None)
                if op is None:
                    raise Unsupported(f"{source}:{lineno}: unexpected character {c!r} "
                                      "(labels, annotations and directives are not supported)")
                tokens.append(Token("op", op, lineno, pos))
                pos += len(op)
        i += 1
    tokens.append(Token("eof", None, first_line + len(lines), 0))
    return tokens


def read_string(lines, i, pos, source, first_line):
    """A string literal from lines[i][pos] (the opening quote): "" is a quote; a line break
    continues on the next line that starts with `|`; lines of only a comment in between are
    skipped. Returns the text and where reading stopped."""
    out = []
    line = lines[i]
    pos += 1
    while True:
        if pos >= len(line):
            # Continues on a later line starting with `|`.
            out.append("\n")
            i += 1
            while i < len(lines) and lines[i].lstrip().startswith("//"):
                i += 1
            if i >= len(lines) or not lines[i].lstrip().startswith("|"):
                raise Unsupported(f"{source}:{first_line + i - 1}: unterminated string literal")
            line = lines[i]
            pos = line.index("|") + 1
            continue
        c = line[pos]
        if c == '"':
            if line.startswith('""', pos):
                out.append('"')
                pos += 2
                continue
            return "".join(out), i, line, pos + 1
        out.append(c)
        pos += 1


def date_literal(text, source, lineno):
    """'ГГГГММДД[ЧЧММСС]': 1C ignores any separators between the digits."""

    digits = re.sub(r"\D", "", text)
    if len(digits) not in (8, 12, 14):
        raise Unsupported(f"{source}:{lineno}: bad date literal '{text}'")
    digits = digits.ljust(14, "0")
    if int(digits) == 0:
        return datetime.datetime(1, 1, 1)  # the empty date
    parts = [int(digits[a:b]) for a, b in ((0, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14))]
    try:
        return datetime.datetime(*parts)
    except ValueError:
        raise Unsupported(f"{source}:{lineno}: bad date literal '{text}'") from None
