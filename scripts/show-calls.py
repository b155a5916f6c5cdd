#!/usr/bin/env python3
"""Shows the host emulator's JSON lines (stdin) as a 1C developer reads them: each call as BSL
on the `Клиент` object, results as the 1C debugger shows values (Истина/Ложь, dates as
ДД.ММ.ГГГГ ЧЧ:ММ:СС, ДвоичныеДанные as size and leading bytes), failures as exceptions, and
the host memory check in plain words. Exits with the emulator's status.

    host1c LIB SCRIPT | show-calls.py [SCRIPT]

Given the script the emulator ran, the calls are shown with their arguments.
"""
import json
import sys

BINARY_PREFIX = 16  # bytes of ДвоичныеДанные shown


def date_1c(iso):
    """2024-01-02T03:04:05 as 1C shows a date: 02.01.2024 03:04:05."""
    day, _, time = iso.partition("T")
    y, m, d = day.split("-")
    return f"{d}.{m}.{y} {time}"


def shown_string(s, quote):
    """A String in quotes; control characters (a NUL, say) appear as Символ(N) instead of
    vanishing on the terminal. quote=True doubles quotes, as BSL source does (for arguments);
    results are shown as the debugger shows them, without doubling."""
    parts, run = [], []
    text = (lambda r: '"' + ("".join(r).replace('"', '""') if quote else "".join(r)) + '"')
    for c in s:
        if ord(c) < 0x20 and c != "\t":
            if run:
                parts.append(text(run))
                run = []
            parts.append(f"Символ({ord(c)})")
        else:
            run.append(c)
    if run or not parts:
        parts.append(text(run))
    return " + ".join(parts)


def bytes_word(n):
    """байт, байта or байт, as Russian counts them."""
    if n % 10 == 1 and n % 100 != 11:
        return "байт"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return "байта"
    return "байт"


def binary_1c(hex_text):
    data = bytes.fromhex(hex_text)
    shown = " ".join(f"{b:02X}" for b in data[:BINARY_PREFIX])
    more = " …" if len(data) > BINARY_PREFIX else ""
    return f"ДвоичныеДанные ({len(data)} {bytes_word(len(data))}): {shown}{more}".rstrip(": ")


def value_1c(v):
    """An emulator variant ({"type": ..., "value"/"hex": ...}) as 1C shows it."""
    t = v.get("type")
    if t == "Boolean":
        return "Истина" if v["value"] else "Ложь"
    if t == "Number":
        return str(v["value"])
    if t == "Date":
        return date_1c(v["value"])
    if t == "String":
        return shown_string(v["value"], quote=False)
    if t == "BinaryData":
        return binary_1c(v["hex"])
    if t == "Undefined":
        return "Неопределено"
    if t == "Null":
        return "Null"
    return f"<{t}>"


# ---- the script, to show arguments ----
def script_args(text):
    """The arguments of a script line as BSL literals."""
    out, i = [], 0
    while i < len(text):
        if text[i] in " \t":
            i += 1
        elif text[i] == '"':
            s, i = json.JSONDecoder().raw_decode(text, i)
            out.append(shown_string(s, quote=True))
        elif text.startswith('x"', i):
            end = text.index('"', i + 2)
            out.append(f'ПолучитьДвоичныеДанныеИзHexСтроки("{text[i + 2:end]}")')
            i = end + 1
        elif text.startswith('d"', i):
            end = text.index('"', i + 2)
            out.append(f"'{text[i + 2:end]}'")
            i = end + 1
        else:
            word = text[i:].split(None, 1)[0]
            words = {"true": "Истина", "false": "Ложь", "undefined": "Неопределено",
                     "null": "Null", "default": ""}
            out.append(words.get(word, word))
            i += len(word)
    return out


def script_commands(path):
    """(command, arguments) for each script line that prints an answer."""
    out = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cmd, _, rest = line.partition(" ")
        if cmd in ("call", "proc"):
            _, _, rest = rest.strip().partition(" ")
            try:
                out.append((cmd, script_args(rest)))
            except ValueError:
                out.append((cmd, None))
        else:
            out.append((cmd, None))
    return out


def show(m, args):
    cmd = m.get("cmd")
    if cmd == "load":
        ok = "Истина" if m.get("ok") else "Ложь"
        print(f"  ПодключитьВнешнююКомпоненту(...) → {ok}")
    elif cmd == "new":
        print('  Клиент = Новый("AddIn.Kafka.Client")' if m.get("ok") else
              '  Новый("AddIn.Kafka.Client") !! объект не создан')
    elif cmd in ("call", "proc", "get"):
        name = m.get("method") or m.get("prop")
        call = f"Клиент.{name}"
        if cmd != "get":
            call += "(" + (", ".join(args) if args is not None else "…") + ")"
        if not m.get("ok"):
            result = "!! исключение: " + (m.get("error") or m.get("host_error") or "без описания")
        elif "ret" in m or "value" in m:
            result = "→ " + value_1c(m.get("ret", m.get("value")))
        else:
            result = "→ выполнено"
        sep = "\n      " if len(call) > 60 else " "
        print(f"  {call}{sep}{result}")
    elif cmd == "event":
        print(f"  внешнее событие: {m.get('source')}, {m.get('message')}, {m.get('data')}")
    elif cmd == "exit":
        if m["leaked"] == 0 and m["bad_frees"] == 0:
            print(f"demo: вся память, выданная 1С, возвращена ({m['allocs']} выделений, каждое "
                  "освобождено ровно один раз)")
        else:
            print(f"demo: ОШИБКА памяти: не возвращено блоков, выданных 1С: {m['leaked']}; "
                  f"освобождено повторно или чужих: {m['bad_frees']}")
        sys.exit(m["status"])


def main():
    commands = script_commands(sys.argv[1]) if len(sys.argv) > 1 else None
    for line in sys.stdin:
        if not line.startswith("{"):
            continue
        m = json.loads(line)
        args = None
        if commands is not None and m.get("cmd") not in ("load", "event", "exit"):
            # Each script command answers one line, in order; events come in between.
            cmd, args = commands.pop(0) if commands else (None, None)
            if cmd != m.get("cmd"):
                commands, args = None, None  # out of step: show calls without arguments
        show(m, args)
    sys.exit("demo: the emulator ended without its memory check")


if __name__ == "__main__":
    main()
